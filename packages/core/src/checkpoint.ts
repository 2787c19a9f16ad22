/**
 * Checkpoints: every network in the TF.js layers format (`model.json` + `weights.bin`, loadable with
 * `tf.loadLayersModel`), optimizer state and the step/epoch counters. A checkpoint is written into a temporary
 * directory and renamed into place, so a crash or a full disk never leaves a half-written checkpoint behind.
 *
 *   <run>/checkpoints/step-00001200/{state.json, <net>/model.json, <net>/weights.bin, optim-<name>.bin}
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { GantryError } from './errors.js';
import { atomicWrite, tempSibling, writeError } from './fsutil.js';

export interface CheckpointState {
  variant: string;
  step: number;
  epoch: number;
  /** The options the networks were built with; a checkpoint is only restored into networks built the same way. */
  config: Record<string, unknown>;
  savedAt?: string;
  optimizers?: Record<string, tf.io.WeightsManifestEntry[]>;
  [extra: string]: unknown;
}

function weightBuffer(data: tf.io.WeightData | undefined): Uint8Array {
  if (!data) return new Uint8Array(0);
  return new Uint8Array(Array.isArray(data) ? new tf.io.CompositeArrayBuffer(data).slice() : data);
}

/** Writes `model` as `dir/model.json` + `dir/weights.bin` (not atomic by itself: see `saveCheckpoint`). */
export async function saveModel(model: tf.LayersModel, dir: string): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const modelJson = {
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy,
        convertedBy: 'Gantry',
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs ?? [] }],
      };
      fs.writeFileSync(path.join(dir, 'weights.bin'), weightBuffer(artifacts.weightData));
      fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(modelJson));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
}

interface ModelJson {
  modelTopology: object;
  weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
}

function readModelJson(dir: string): ModelJson {
  const file = path.join(dir, 'model.json');
  let json: ModelJson;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8')) as ModelJson;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new GantryError(`${file}: ${code === 'ENOENT' ? 'not found' : 'not a valid TF.js model.json'}`);
  }
  if (!json.modelTopology || !Array.isArray(json.weightsManifest)) {
    throw new GantryError(`${file}: not a TF.js layers model (no modelTopology/weightsManifest)`);
  }
  return json;
}

function readWeightFiles(dir: string, json: ModelJson): { specs: tf.io.WeightsManifestEntry[]; data: ArrayBuffer } {
  const specs = json.weightsManifest.flatMap((g) => g.weights);
  const parts = json.weightsManifest.flatMap((g) =>
    g.paths.map((p) => {
      const file = path.join(dir, p);
      if (!fs.existsSync(file)) throw new GantryError(`${file}: weights file missing`);
      const b = fs.readFileSync(file);
      return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
    }),
  );
  return { specs, data: tf.io.concatenateArrayBuffers(parts) };
}

/** Loads a model saved by `saveModel` (or any TF.js layers model directory) with `tf.loadLayersModel`. */
export async function loadModel(dir: string): Promise<tf.LayersModel> {
  const json = readModelJson(dir);
  const { specs, data } = readWeightFiles(dir, json);
  try {
    return await tf.loadLayersModel(
      tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: specs, weightData: data }),
    );
  } catch (err) {
    throw new GantryError(`${dir}: cannot load model (${(err as Error).message.split('\n')[0]})`);
  }
}

/** Sets `model`'s weights from a saved directory, checking that every weight's shape matches. */
export function restoreModelWeights(model: tf.LayersModel, dir: string): void {
  const json = readModelJson(dir);
  const { specs, data } = readWeightFiles(dir, json);
  const named = tf.io.decodeWeights(data, specs);
  const values = specs.map((s) => named[s.name]!);
  try {
    const expected = model.weights;
    const mismatch =
      expected.length !== values.length
        ? `${values.length} weights saved, ${expected.length} expected`
        : expected
            .map((w, i) => (w.shape.join('x') === values[i]!.shape.join('x') ? '' : `${w.name}: saved ${values[i]!.shape}, expected ${w.shape}`))
            .find((m) => m);
    if (mismatch) throw new GantryError(`checkpoint ${dir} does not fit this model (${mismatch})`);
    model.setWeights(values);
  } finally {
    tf.dispose(Object.values(named));
  }
}

const STEP_DIR = /^step-(\d+)$/;

function checkpointsDir(runDir: string): string {
  return path.join(runDir, 'checkpoints');
}

/** Complete checkpoints of a run, oldest first (a directory counts only once its rename made it visible). */
export function listCheckpoints(runDir: string): string[] {
  const dir = checkpointsDir(runDir);
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((n) => STEP_DIR.test(n) && fs.existsSync(path.join(dir, n, 'state.json')))
    .sort()
    .map((n) => path.join(dir, n));
}

export function latestCheckpoint(runDir: string): string | undefined {
  return listCheckpoints(runDir).at(-1);
}

export interface SaveCheckpointOptions {
  state: CheckpointState;
  nets: Record<string, tf.LayersModel>;
  optimizers: Record<string, tf.Optimizer>;
  /** Keep this many most recent checkpoints (0 keeps all). */
  keep?: number;
}

export async function saveCheckpoint(runDir: string, o: SaveCheckpointOptions): Promise<string> {
  const root = checkpointsDir(runDir);
  const final = path.join(root, `step-${String(o.state.step).padStart(8, '0')}`);
  const tmp = tempSibling(path.join(root, '.partial'));
  try {
    fs.mkdirSync(tmp, { recursive: true });
    for (const [name, model] of Object.entries(o.nets)) await saveModel(model, path.join(tmp, name));
    const optimizers: Record<string, tf.io.WeightsManifestEntry[]> = {};
    for (const [name, opt] of Object.entries(o.optimizers)) {
      const weights = await opt.getWeights();
      try {
        const { data, specs } = await tf.io.encodeWeights(weights);
        fs.writeFileSync(path.join(tmp, `optim-${name}.bin`), new Uint8Array(data));
        optimizers[name] = specs;
      } finally {
        // getWeights returns the optimizer's own variables plus a fresh iteration scalar; dispose only the latter.
        for (const w of weights) if (!(w.tensor instanceof tf.Variable)) w.tensor.dispose();
      }
    }
    const state = { ...o.state, optimizers, savedAt: new Date().toISOString() };
    atomicWrite(path.join(tmp, 'state.json'), JSON.stringify(state, null, 2));
    fs.rmSync(final, { recursive: true, force: true });
    fs.renameSync(tmp, final);
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err instanceof GantryError ? err : writeError(final, err);
  }
  const keep = o.keep ?? 0;
  if (keep > 0) for (const old of listCheckpoints(runDir).slice(0, -keep)) fs.rmSync(old, { recursive: true, force: true });
  // Leftovers of checkpoints interrupted by a kill are never complete: clear them.
  for (const n of fs.readdirSync(root)) if (n.startsWith('.partial.tmp-') && !n.includes(`-${process.pid}-`)) fs.rmSync(path.join(root, n), { recursive: true, force: true });
  return final;
}

export function readCheckpointState(dir: string): CheckpointState {
  const file = path.join(dir, 'state.json');
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as CheckpointState;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new GantryError(`${dir}: ${code === 'ENOENT' ? 'not a Gantry checkpoint (no state.json)' : 'state.json is unreadable'}`);
  }
}

/**
 * Restores networks and optimizers built with the same options from checkpoint `dir`, after checking that it
 * belongs to `variant` and was made with the same `config` keys listed in `mustMatch`.
 */
export async function restoreCheckpoint(
  dir: string,
  o: { variant: string; nets: Record<string, tf.LayersModel>; optimizers: Record<string, tf.Optimizer>; config: Record<string, unknown>; mustMatch: string[] },
): Promise<CheckpointState> {
  const state = readCheckpointState(dir);
  if (state.variant !== o.variant) {
    throw new GantryError(`checkpoint ${dir} is a ${state.variant} checkpoint, expected ${o.variant}`);
  }
  for (const key of o.mustMatch) {
    if (JSON.stringify(state.config[key]) !== JSON.stringify(o.config[key])) {
      throw new GantryError(`checkpoint ${dir} was trained with ${key}=${JSON.stringify(state.config[key])}, not ${JSON.stringify(o.config[key])}`);
    }
  }
  for (const [name, model] of Object.entries(o.nets)) restoreModelWeights(model, path.join(dir, name));
  for (const [name, opt] of Object.entries(o.optimizers)) {
    const specs = state.optimizers?.[name];
    const file = path.join(dir, `optim-${name}.bin`);
    if (!specs || !fs.existsSync(file)) throw new GantryError(`checkpoint ${dir}: optimizer state '${name}' missing`);
    const b = fs.readFileSync(file);
    const named = tf.io.decodeWeights(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer, specs);
    // Adam matches its slots to variables by position, so keep the saved order.
    await opt.setWeights(specs.map((s) => ({ name: s.name, tensor: named[s.name]! })));
    tf.dispose(Object.values(named));
  }
  return state;
}
