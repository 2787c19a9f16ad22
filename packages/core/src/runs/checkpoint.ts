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
import { GantryError } from '../errors.js';
import { atomicWrite, mkdirp, tempSibling, writeError } from './fsutil.js';

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
  mkdirp(dir);
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

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Reads and checks `dir/model.json`. Model files are untrusted input (downloads, imports): the structure is
 * checked here, the weight paths, shapes and dtypes in `readWeightFiles`.
 */
function readModelJson(dir: string): ModelJson {
  const file = path.join(dir, 'model.json');
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new GantryError(`${file}: ${code === 'ENOENT' ? 'not found' : 'not a valid TF.js model.json'}`);
  }
  if (!isObject(json) || !isObject(json.modelTopology) || !Array.isArray(json.weightsManifest)) {
    throw new GantryError(`${file}: not a TF.js layers model (no modelTopology/weightsManifest)`);
  }
  for (const g of json.weightsManifest) {
    if (
      !isObject(g) ||
      !Array.isArray(g.paths) ||
      !Array.isArray(g.weights) ||
      !g.paths.every((p) => typeof p === 'string')
    ) {
      throw new GantryError(`${file}: weightsManifest entries must have 'paths' (file names) and 'weights' lists`);
    }
  }
  return json as unknown as ModelJson;
}

/** Bytes per value of the dtypes TF.js weight files store (quantized weights use their quantization dtype). */
const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2 };

/**
 * Checks weight specs against the bytes that hold them: every name a string, every shape a list of non-negative
 * integers, every dtype one TF.js stores, the total size equal to the file's (a truncated or padded file is
 * refused), and no NaN/Inf among float32 values. `files` names the byte ranges' files for the messages.
 */
export function checkWeightData(
  specs: unknown,
  data: ArrayBuffer,
  files: { file: string; bytes: number }[],
): tf.io.WeightsManifestEntry[] {
  const name = (offset: number) => {
    let end = 0;
    for (const f of files) {
      end += f.bytes;
      if (offset < end) return f.file;
    }
    return files.at(-1)?.file ?? '?';
  };
  const all = files.map((f) => f.file).join(', ');
  if (!Array.isArray(specs)) throw new GantryError(`${all}: no weight list for this file`);
  let offset = 0;
  for (const s of specs as unknown[]) {
    if (!isObject(s) || typeof s.name !== 'string' || !Array.isArray(s.shape))
      throw new GantryError(`${all}: a weight entry without a name or shape`);
    if (!s.shape.every((d) => Number.isInteger(d) && (d as number) >= 0 && (d as number) < 2 ** 31)) {
      throw new GantryError(
        `${all}: weight ${s.name} has shape ${JSON.stringify(s.shape)}, expected non-negative integers`,
      );
    }
    const q = isObject(s.quantization) ? s.quantization : undefined;
    const dtype = String(q ? q.dtype : s.dtype);
    const per = DTYPE_BYTES[dtype];
    if (!per || (!q && !['float32', 'int32', 'bool'].includes(dtype)))
      throw new GantryError(`${all}: weight ${s.name} has dtype ${dtype}, expected float32, int32 or bool`);
    const count = (s.shape as number[]).reduce((a, b) => a * b, 1);
    const bytes = count * per;
    if (offset + bytes > data.byteLength) {
      throw new GantryError(
        `${name(data.byteLength - 1)}: truncated (${data.byteLength} bytes, the weight list needs at least ${offset + bytes})`,
      );
    }
    if (dtype === 'float32' && !q) {
      const values =
        offset % 4 === 0 ? new Float32Array(data, offset, count) : new Float32Array(data.slice(offset, offset + bytes));
      for (let i = 0; i < count; i++) {
        if (!Number.isFinite(values[i]!))
          throw new GantryError(
            `${name(offset + 4 * i)}: weight ${s.name} contains ${values[i]} (refusing NaN/Inf weights)`,
          );
      }
    }
    offset += bytes;
  }
  if (offset !== data.byteLength)
    throw new GantryError(
      `${name(data.byteLength - 1)}: ${data.byteLength} bytes, but the weight list describes ${offset}`,
    );
  return specs as tf.io.WeightsManifestEntry[];
}

/** A weight path from a manifest, refused unless it names a file inside `dir` (no absolute paths, no `..`, no links out). */
function weightPath(dir: string, p: string, manifest: string): string {
  const file = path.resolve(dir, p);
  const inside = (root: string, f: string) => {
    const rel = path.relative(root, f);
    return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
  };
  if (path.isAbsolute(p) || !inside(path.resolve(dir), file))
    throw new GantryError(`${manifest}: weight path '${p}' points outside the model folder`);
  if (!fs.existsSync(file)) throw new GantryError(`${file}: weights file missing`);
  if (!inside(fs.realpathSync(dir), fs.realpathSync(file)))
    throw new GantryError(`${manifest}: weight path '${p}' links outside the model folder`);
  if (!fs.statSync(file).isFile()) throw new GantryError(`${file}: not a weights file`);
  return file;
}

function readWeightFiles(dir: string, json: ModelJson): { specs: tf.io.WeightsManifestEntry[]; data: ArrayBuffer } {
  const manifest = path.join(dir, 'model.json');
  const files: { file: string; bytes: number }[] = [];
  const parts = json.weightsManifest.flatMap((g) =>
    g.paths.map((p) => {
      const file = weightPath(dir, p, manifest);
      const b = fs.readFileSync(file);
      files.push({ file, bytes: b.byteLength });
      return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
    }),
  );
  const data = tf.io.concatenateArrayBuffers(parts);
  const specs = checkWeightData(
    json.weightsManifest.flatMap((g) => g.weights),
    data,
    files,
  );
  return { specs, data };
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

type LayerJson = { class_name?: string; config?: Record<string, unknown> };

/** The parts of a layer that change what it computes (not its name): class, padding, strides, bias, cropping. */
function layerSignature(layers: LayerJson[]): string[] {
  const keys = ['padding', 'strides', 'kernel_size', 'use_bias', 'cropping', 'epsilon'];
  return layers.map((l) => [l.class_name, ...keys.map((k) => JSON.stringify(l.config?.[k]))].join(' '));
}

/**
 * Refuses to restore into `model` weights saved from a network of another layer structure, such as the networks
 * before they matched the reference implementation's padding and biases layer for layer: their weights can have
 * the same shapes and would load silently into a network that computes something else.
 */
function checkStructure(model: tf.LayersModel, dir: string, json: ModelJson): void {
  const saved = (json.modelTopology as { config?: { layers?: LayerJson[] } }).config?.layers;
  if (!Array.isArray(saved)) return;
  const built = (model.toJSON(undefined, false) as unknown as { config: { layers: LayerJson[] } }).config.layers;
  const a = layerSignature(saved);
  const b = layerSignature(built);
  if (a.length !== b.length || a.some((s, i) => s !== b[i])) {
    throw new GantryError(
      `checkpoint ${dir} has an older layer structure than this version's networks (saved before they matched the reference implementation): it still translates and exports, but cannot resume training; start a new run`,
    );
  }
}

/** Sets `model`'s weights from a saved directory, checking the layer structure and that every weight's shape matches. */
export function restoreModelWeights(model: tf.LayersModel, dir: string): void {
  const json = readModelJson(dir);
  checkStructure(model, dir, json);
  const { specs, data } = readWeightFiles(dir, json);
  const named = tf.io.decodeWeights(data, specs);
  const values = specs.map((s) => named[s.name]!);
  try {
    const expected = model.weights;
    const mismatch =
      expected.length !== values.length
        ? `${values.length} weights saved, ${expected.length} expected`
        : expected
            .map((w, i) =>
              w.shape.join('x') === values[i]!.shape.join('x')
                ? ''
                : `${w.name}: saved ${values[i]!.shape}, expected ${w.shape}`,
            )
            .find((m) => m);
    if (mismatch) throw new GantryError(`checkpoint ${dir} does not fit this model (${mismatch})`);
    model.setWeights(values);
  } finally {
    tf.dispose(Object.values(named));
  }
}

const STEP_DIR = /^step-(\d+)$/;
const LEGACY_OPTIMIZER: Record<string, string> = { G: 'generator', D: 'discriminator' };

function checkpointsDir(runDir: string): string {
  return path.join(runDir, 'checkpoints');
}

const stepOf = (name: string) => Number(STEP_DIR.exec(path.basename(name))?.[1]);

/** Complete checkpoints of a run, oldest first (a directory counts only once its rename made it visible). */
export function listCheckpoints(runDir: string): string[] {
  const dir = checkpointsDir(runDir);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => STEP_DIR.test(n) && fs.existsSync(path.join(dir, n, 'state.json')))
    .sort((a, b) => stepOf(a) - stepOf(b))
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
    mkdirp(tmp);
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
  // Pruning keeps the checkpoint just written and the newest others before it; it never touches later steps.
  const keep = o.keep ?? 0;
  if (keep > 0) {
    const older = listCheckpoints(runDir).filter((d) => d !== final && stepOf(d) < o.state.step);
    for (const old of older.slice(0, Math.max(0, older.length - (keep - 1))))
      fs.rmSync(old, { recursive: true, force: true });
  }
  // Leftovers of checkpoints interrupted by a kill are never complete: clear them.
  for (const n of fs.readdirSync(root))
    if (n.startsWith('.partial.tmp-') && !n.includes(`-${process.pid}-`))
      fs.rmSync(path.join(root, n), { recursive: true, force: true });
  return final;
}

/**
 * How a variant's older checkpoints and run.json files map onto its config today. A variant declares them in its
 * definition (`renamedKeys`, `addedKeys`); core registers them when it makes the variant's commands or loads its
 * runs, so core itself names no variant.
 */
export interface KeyMigrations {
  /** Config and run.json keys renamed since older runs (old → new); old files are read under the new names. */
  renamedKeys?: Readonly<Record<string, string>>;
  /**
   * Architecture keys added to the config since older checkpoints, with the value that rebuilds an older
   * checkpoint's networks (filled in where a checkpoint's config lacks the key). Run.json files are not filled in:
   * a run resumed from one takes such keys from its checkpoint.
   */
  addedKeys?: Readonly<Record<string, (config: Record<string, unknown>) => unknown>>;
}

const MIGRATIONS = new Map<string, KeyMigrations>();

/** Registers a variant's key migrations (its definition's `renamedKeys` and `addedKeys`). */
export function registerKeyMigrations(def: { name: string } & KeyMigrations): void {
  if (def.renamedKeys || def.addedKeys)
    MIGRATIONS.set(def.name, { renamedKeys: def.renamedKeys, addedKeys: def.addedKeys });
}

/** `o` (a config or run.json values) with `variant`'s renamed keys under their new names. */
export function migrateKeys(variant: string, o: Record<string, unknown>): Record<string, unknown> {
  const renamed = MIGRATIONS.get(variant)?.renamedKeys ?? {};
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) out[renamed[k] && !(renamed[k] in o) ? renamed[k] : k] = v;
  return out;
}

/** The keys `variant` added since older checkpoints (its `addedKeys`). */
export const addedConfigKeys = (variant: string): string[] => Object.keys(MIGRATIONS.get(variant)?.addedKeys ?? {});
function withAddedKeys(variant: string, config: Record<string, unknown>): Record<string, unknown> {
  const added = Object.entries(MIGRATIONS.get(variant)?.addedKeys ?? {}).filter(([k]) => !(k in config));
  return added.length ? { ...config, ...Object.fromEntries(added.map(([k, old]) => [k, old(config)])) } : config;
}

/** Checkpoint names have eight digits, so steps stay below 10⁸. */
export const MAX_STEP = 99_999_999;

/** Reads `dir/state.json` and checks every field's type and range (a checkpoint is untrusted input). */
export function readCheckpointState(dir: string): CheckpointState {
  const file = path.join(dir, 'state.json');
  let state: unknown;
  try {
    state = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new GantryError(
      `${dir}: ${code === 'ENOENT' ? 'not a Gantry checkpoint (no state.json)' : 'state.json is unreadable'}`,
    );
  }
  const bad = (field: string, expected: string, value: unknown) =>
    new GantryError(`${file}: '${field}' is ${JSON.stringify(value) ?? 'missing'}, expected ${expected}`);
  if (!isObject(state)) throw new GantryError(`${file}: expected a JSON object`);
  if (typeof state.variant !== 'string' || !/^[\w-]{1,64}$/.test(state.variant))
    throw bad('variant', 'a variant name', state.variant);
  if (!Number.isInteger(state.step) || (state.step as number) < 0 || (state.step as number) > MAX_STEP)
    throw bad('step', `an integer in 0..${MAX_STEP}`, state.step);
  const named = stepOf(dir);
  if (Number.isInteger(named) && named !== state.step)
    throw bad('step', `${named}, the step in the checkpoint's name`, state.step);
  if (
    state.epoch !== undefined &&
    !(typeof state.epoch === 'number' && Number.isFinite(state.epoch) && state.epoch >= 0)
  )
    throw bad('epoch', 'a non-negative number', state.epoch);
  if (!isObject(state.config)) throw bad('config', 'an object', state.config);
  if (state.lrScale !== undefined && !(typeof state.lrScale === 'number' && state.lrScale > 0 && state.lrScale <= 1))
    throw bad('lrScale', 'a number in (0, 1]', state.lrScale);
  if (
    state.optimizers !== undefined &&
    !(isObject(state.optimizers) && Object.values(state.optimizers).every(Array.isArray))
  ) {
    throw bad('optimizers', 'an object of weight lists', '…');
  }
  const checked = state as CheckpointState;
  return { ...checked, config: withAddedKeys(checked.variant, migrateKeys(checked.variant, checked.config)) };
}

/**
 * Restores networks and optimizers built with the same options from checkpoint `dir`, after checking that it
 * belongs to `variant` and was made with the same `config` keys listed in `mustMatch`.
 */
export async function restoreCheckpoint(
  dir: string,
  o: {
    variant: string;
    nets: Record<string, tf.LayersModel>;
    optimizers: Record<string, tf.Optimizer>;
    config: Record<string, unknown>;
    mustMatch: string[];
  },
): Promise<CheckpointState> {
  const state = readCheckpointState(dir);
  if (state.variant !== o.variant) {
    throw new GantryError(`checkpoint ${dir} is a ${state.variant} checkpoint, expected ${o.variant}`);
  }
  for (const key of o.mustMatch) {
    if (JSON.stringify(state.config[key]) !== JSON.stringify(o.config[key])) {
      throw new GantryError(
        `checkpoint ${dir} was trained with ${key}=${JSON.stringify(state.config[key])}, not ${JSON.stringify(o.config[key])}`,
      );
    }
  }
  for (const [name, model] of Object.entries(o.nets)) restoreModelWeights(model, path.join(dir, name));
  for (const [key, opt] of Object.entries(o.optimizers)) {
    // Checkpoints from before the G/D naming called the optimizers 'generator' and 'discriminator'.
    const name = state.optimizers?.[key] || !LEGACY_OPTIMIZER[key] ? key : LEGACY_OPTIMIZER[key]!;
    const specs = state.optimizers?.[name];
    const file = path.join(dir, `optim-${name}.bin`);
    if (!specs || !fs.existsSync(file)) throw new GantryError(`checkpoint ${dir}: optimizer state '${name}' missing`);
    const b = fs.readFileSync(file);
    const data = b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
    checkWeightData(specs, data, [{ file, bytes: data.byteLength }]);
    const named = tf.io.decodeWeights(data, specs);
    // setWeights replaces the optimizer's slot variables without disposing the old ones (each rollback leaked a
    // copy of Adam's state): dispose them once the new ones are in place. getWeights' iteration scalar is fresh.
    const previous = await opt.getWeights();
    try {
      // Adam matches its slots to variables by position, so keep the saved order.
      await opt.setWeights(specs.map((s) => ({ name: s.name, tensor: named[s.name]! })));
      tf.dispose(previous.map((w) => w.tensor));
    } catch (err) {
      tf.dispose(previous.filter((w) => !(w.tensor instanceof tf.Variable)).map((w) => w.tensor));
      throw new GantryError(
        `checkpoint ${dir}: optimizer state '${name}' does not fit (${(err as Error).message.split('\n')[0]})`,
      );
    } finally {
      tf.dispose(Object.values(named));
    }
  }
  return state;
}
