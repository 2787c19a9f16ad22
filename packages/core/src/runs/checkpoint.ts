/**
 * Checkpoints: every network in the TF.js layers format (`model.json` + `weights.bin`, loadable with
 * `tf.loadLayersModel`), optimizer state and the step/epoch counters. A checkpoint is written into a temporary
 * directory and renamed into place, so a crash or a full disk never leaves a half-written checkpoint behind.
 *
 *   <run>/checkpoints/step-00001200/{state.json, <net>/model.json, <net>/weights.bin, optim-<name>.bin}
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { GantryError } from '../errors.js';
import {
  type CheckpointFiles,
  type CheckpointState,
  type CheckpointTarget,
  checkCheckpointFits,
  checkedWeights,
  checkpointFiles,
  type ModelJson,
  modelFiles,
  modelFromArtifacts,
  optimizerFileNames,
  parseCheckpointState,
  parseModelJson,
  restoreFromFiles,
  setModelWeights,
  type WeightFile,
} from './checkpoint-data.js';
import { atomicWrite, mkdirp, tempSibling, writeError } from './fsutil.js';

export {
  addedConfigKeys,
  type CheckpointFiles,
  type CheckpointState,
  type CheckpointTarget,
  checkWeightData,
  type KeyMigrations,
  MAX_STEP,
  migrateKeys,
  registerKeyMigrations,
} from './checkpoint-data.js';

/** Writes `model` as `dir/model.json` + `dir/weights.bin` (not atomic by itself: see `saveCheckpoint`). */
export async function saveModel(model: tf.LayersModel, dir: string): Promise<void> {
  mkdirp(dir);
  const { modelJson, weights } = await modelFiles(model);
  fs.writeFileSync(path.join(dir, 'weights.bin'), weights);
  fs.writeFileSync(path.join(dir, 'model.json'), modelJson);
}

/** Writes checkpoint files (relative paths) under `dir`. */
function writeFiles(dir: string, files: CheckpointFiles): void {
  for (const [rel, bytes] of files) {
    const file = path.join(dir, rel);
    mkdirp(path.dirname(file));
    fs.writeFileSync(file, bytes);
  }
}

/** A file's bytes, or undefined when it does not exist (other read errors are thrown). */
function readIfExists(file: string): Uint8Array | undefined {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Reads and checks `dir/model.json` (its structure; the weights are checked in `readWeightFiles`). */
function readModelJson(dir: string): ModelJson {
  const file = path.join(dir, 'model.json');
  let bytes: Uint8Array | undefined;
  try {
    bytes = readIfExists(file);
  } catch {
    throw new GantryError(`${file}: not a valid TF.js model.json`);
  }
  return parseModelJson(bytes, file);
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

/** The weight files a model.json names, after the path checks (inside the folder, regular files). */
function readWeightParts(dir: string, json: ModelJson): (WeightFile & { rel: string })[] {
  const manifest = path.join(dir, 'model.json');
  return json.weightsManifest.flatMap((g) =>
    g.paths.map((p) => {
      const file = weightPath(dir, p, manifest);
      return { file, rel: path.relative(dir, file).split(path.sep).join('/'), bytes: fs.readFileSync(file) };
    }),
  );
}

function readWeightFiles(dir: string, json: ModelJson): { specs: tf.io.WeightsManifestEntry[]; data: ArrayBuffer } {
  return checkedWeights(json, readWeightParts(dir, json));
}

/** Loads a model saved by `saveModel` (or any TF.js layers model directory) with `tf.loadLayersModel`. */
export async function loadModel(dir: string): Promise<tf.LayersModel> {
  const json = readModelJson(dir);
  const { specs, data } = readWeightFiles(dir, json);
  return modelFromArtifacts(json, specs, data, dir);
}

/** Sets `model`'s weights from a saved directory, checking the layer structure and that every weight's shape matches. */
export function restoreModelWeights(model: tf.LayersModel, dir: string): void {
  const json = readModelJson(dir);
  const { specs, data } = readWeightFiles(dir, json);
  setModelWeights(model, json, specs, data, dir);
}

const STEP_DIR = /^step-(\d+)$/;

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
    const files = await checkpointFiles(o);
    const state = files.get('state.json')!;
    files.delete('state.json');
    writeFiles(tmp, files);
    // state.json last: a checkpoint counts as complete once it is there.
    atomicWrite(path.join(tmp, 'state.json'), state);
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

/** Reads `dir/state.json` and checks every field's type and range (a checkpoint is untrusted input). */
export function readCheckpointState(dir: string): CheckpointState {
  let bytes: Uint8Array | undefined;
  try {
    bytes = readIfExists(path.join(dir, 'state.json'));
  } catch {
    throw new GantryError(`${dir}: state.json is unreadable`);
  }
  return parseCheckpointState(bytes, dir, stepOf(dir));
}

/**
 * Reads checkpoint `dir` into memory, the files `target` needs (its networks' model.json and weight files, with the
 * path checks of `loadModel`, and its optimizers' state), for `restoreFromFiles`.
 */
export function readCheckpointFiles(
  dir: string,
  target: Pick<CheckpointTarget, 'nets' | 'optimizers'>,
): CheckpointFiles {
  const state = readCheckpointState(dir);
  const files: CheckpointFiles = new Map([['state.json', fs.readFileSync(path.join(dir, 'state.json'))]]);
  for (const name of Object.keys(target.nets)) {
    const netDir = path.join(dir, name);
    const json = readModelJson(netDir);
    files.set(`${name}/model.json`, fs.readFileSync(path.join(netDir, 'model.json')));
    for (const part of readWeightParts(netDir, json)) files.set(`${name}/${part.rel}`, part.bytes);
  }
  for (const rel of optimizerFileNames(state, target)) {
    const file = path.join(dir, rel);
    if (fs.statSync(file, { throwIfNoEntry: false })?.isFile()) files.set(rel, fs.readFileSync(file));
  }
  return files;
}

/**
 * Restores networks and optimizers built with the same options from checkpoint `dir`, after checking that it
 * belongs to `variant` and was made with the same `config` keys listed in `mustMatch`.
 */
export async function restoreCheckpoint(dir: string, o: CheckpointTarget): Promise<CheckpointState> {
  // The variant and config are checked before the weights are read, so a checkpoint of another kind says so.
  checkCheckpointFits(readCheckpointState(dir), dir, o);
  return restoreFromFiles(readCheckpointFiles(dir, o), dir, o, stepOf(dir));
}
