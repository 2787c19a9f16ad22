/**
 * Checkpoints as in-memory files, the part shared by Node (checkpoint.ts writes them into a run directory) and the
 * browser (the page keeps them in IndexedDB and downloads them). Browser-safe: TF.js only, no file system.
 *
 * A checkpoint is a map from relative paths to bytes, the same layout a Node run writes:
 *
 *   state.json, <net>/model.json, <net>/weights.bin, optim-<name>.bin
 *
 * Every file is untrusted input when read back (a download, an upload, a tampered folder): the structure of
 * model.json and state.json, the weight names, shapes, dtypes, sizes and values are checked here, once, for both.
 */
import * as tf from '@tensorflow/tfjs';
import { GantryError } from '../errors.js';

/** Relative path ('state.json', 'generator/model.json', …) → bytes. */
export type CheckpointFiles = Map<string, Uint8Array>;

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

/** What a checkpoint is restored into: networks and optimizers built with `config`. */
export interface CheckpointTarget {
  variant: string;
  nets: Record<string, tf.LayersModel>;
  optimizers: Record<string, tf.Optimizer>;
  config: Record<string, unknown>;
  mustMatch: string[];
}

export interface ModelJson {
  modelTopology: object;
  weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
}

export const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

/** `dir/rel` for messages (checkpoint folders and file names are joined with '/', as Node does on POSIX). */
export const joinLabel = (dir: string, rel: string): string => (dir ? `${dir.replace(/\/+$/, '')}/${rel}` : rel);

/** An ArrayBuffer holding exactly `bytes` (a Uint8Array may view part of a larger buffer). */
export function exactBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer
    ? bytes.buffer
    : (new Uint8Array(bytes).buffer as ArrayBuffer); // a copy (Node's Buffer.slice would be a view of its pool)
}

function weightBuffer(data: tf.io.WeightData | undefined): Uint8Array {
  if (!data) return new Uint8Array(0);
  return new Uint8Array(Array.isArray(data) ? new tf.io.CompositeArrayBuffer(data).slice() : data);
}

/** `model` as the two files of the TF.js layers format: `model.json` (topology + manifest) and `weights.bin`. */
export async function modelFiles(model: tf.LayersModel): Promise<{ modelJson: Uint8Array; weights: Uint8Array }> {
  let out: { modelJson: Uint8Array; weights: Uint8Array } | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const modelJson = {
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy,
        convertedBy: 'Gantry',
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs ?? [] }],
      };
      out = { modelJson: utf8.encode(JSON.stringify(modelJson)), weights: weightBuffer(artifacts.weightData) };
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  if (!out) throw new Error('model.save produced no artifacts');
  return out;
}

/**
 * Parses and checks a model.json (`file` names it in messages). Model files are untrusted input: the structure is
 * checked here, the weight paths, shapes and dtypes in `checkWeightData`.
 */
export function parseModelJson(bytes: Uint8Array | undefined, file: string): ModelJson {
  let json: unknown;
  if (!bytes) throw new GantryError(`${file}: not found`);
  try {
    json = JSON.parse(fromUtf8.decode(bytes));
  } catch {
    throw new GantryError(`${file}: not a valid TF.js model.json`);
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
    // Own names only: a dtype of 'constructor' must not find Object's (and skip the size check with NaN).
    const per = Object.hasOwn(DTYPE_BYTES, dtype) ? DTYPE_BYTES[dtype] : undefined;
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

/** A weight file's bytes and the name used for it in messages. */
export interface WeightFile {
  file: string;
  bytes: Uint8Array;
}

/** Concatenates a model's weight files and checks them against its manifest. */
export function checkedWeights(
  json: ModelJson,
  parts: WeightFile[],
): { specs: tf.io.WeightsManifestEntry[]; data: ArrayBuffer } {
  const data = tf.io.concatenateArrayBuffers(parts.map((p) => exactBuffer(p.bytes)));
  const specs = checkWeightData(
    json.weightsManifest.flatMap((g) => g.weights),
    data,
    parts.map((p) => ({ file: p.file, bytes: p.bytes.byteLength })),
  );
  return { specs, data };
}

/**
 * A weight path of a manifest, relative to its model folder, refused unless it names a file inside that folder:
 * no absolute paths, no `..`, no empty segments. Returns the normalised relative path.
 */
export function relativeWeightPath(p: string, manifest: string): string {
  const parts = p.split('/').filter((s) => s !== '.');
  if (p.startsWith('/') || p.includes('\\') || parts.length === 0 || parts.some((s) => s === '..' || s === ''))
    throw new GantryError(`${manifest}: weight path '${p}' points outside the model folder`);
  return parts.join('/');
}

/** A model's files in a checkpoint map (`prefix` is its folder there, e.g. 'generator'), checked. */
export function modelFromFiles(
  files: CheckpointFiles,
  prefix: string,
  label: string,
): { json: ModelJson; specs: tf.io.WeightsManifestEntry[]; data: ArrayBuffer } {
  const at = (rel: string) => (prefix ? `${prefix}/${rel}` : rel);
  const manifest = joinLabel(label, at('model.json'));
  const json = parseModelJson(files.get(at('model.json')), manifest);
  const parts = json.weightsManifest.flatMap((g) =>
    g.paths.map((p) => {
      const rel = at(relativeWeightPath(p, manifest));
      const bytes = files.get(rel);
      if (!bytes) throw new GantryError(`${joinLabel(label, rel)}: weights file missing`);
      return { file: joinLabel(label, rel), bytes };
    }),
  );
  return { json, ...checkedWeights(json, parts) };
}

/** A TF.js layers model from checked topology and weights (`where` names it in the message if TF.js refuses it). */
export async function modelFromArtifacts(
  json: ModelJson,
  specs: tf.io.WeightsManifestEntry[],
  data: ArrayBuffer,
  where: string,
): Promise<tf.LayersModel> {
  // The layers the topology declares are built (and their weights allocated) before the saved weights are
  // matched to them: a 1 KB model.json declaring a 15000-unit dense layer took 1 GB. So weight creation is
  // bounded by what the weight files really hold.
  const held = specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
  const restore = boundWeightCreation(held, joinLabel(where, 'model.json'));
  try {
    return await tf.loadLayersModel(
      tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: specs, weightData: data }),
    );
  } catch (err) {
    if (err instanceof GantryError) throw err;
    throw new GantryError(`${where}: cannot load model (${(err as Error).message.split('\n')[0]})`);
  } finally {
    restore();
  }
}

/**
 * Until the returned function is called, every layer weight TF.js creates counts against `held` elements (plus a
 * little slack), and one past it throws before it is allocated. Layers.addWeight is where every layer's build
 * allocates its weights.
 */
function boundWeightCreation(held: number, where: string): () => void {
  const proto = tf.layers.Layer.prototype as unknown as { addWeight: (...a: unknown[]) => unknown };
  const original = proto.addWeight;
  let used = 0;
  proto.addWeight = function (this: unknown, ...args: unknown[]) {
    const shape = args[1];
    if (Array.isArray(shape)) used += shape.reduce((a: number, b: unknown) => a * (typeof b === 'number' ? b : 1), 1);
    if (used > held + 4096)
      throw new GantryError(
        `${where}: its layers declare more than ${used} weight values, but its weight files hold ${held}`,
      );
    return original.apply(this, args);
  };
  return () => {
    proto.addWeight = original;
  };
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

/**
 * Sets `model`'s weights from checked artifacts (`dir` names the checkpoint in messages), checking the layer
 * structure and that every weight's shape matches.
 */
export function setModelWeights(
  model: tf.LayersModel,
  json: ModelJson,
  specs: tf.io.WeightsManifestEntry[],
  data: ArrayBuffer,
  dir: string,
): void {
  checkStructure(model, dir, json);
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
  // Own names only (run.json and state.json are files: 'constructor' or '__proto__' must not find Object's).
  const renamed = MIGRATIONS.get(variant)?.renamedKeys ?? {};
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if (k === '__proto__') continue; // assigning it would set out's prototype
    const to = Object.hasOwn(renamed, k) && !Object.hasOwn(o, renamed[k]!) ? renamed[k]! : k;
    out[to] = v;
  }
  return out;
}

const addedOf = (variant: string) => MIGRATIONS.get(variant)?.addedKeys ?? {};
/** The keys `variant` added since older checkpoints (its `addedKeys`). */
export const addedConfigKeys = (variant: string): string[] => Object.keys(addedOf(variant));
function withAddedKeys(variant: string, config: Record<string, unknown>): Record<string, unknown> {
  const added = Object.entries(addedOf(variant)).filter(([k]) => !Object.hasOwn(config, k));
  return added.length ? { ...config, ...Object.fromEntries(added.map(([k, old]) => [k, old(config)])) } : config;
}

/** Checkpoint names have eight digits, so steps stay below 10⁸. */
export const MAX_STEP = 99_999_999;

/** A checkpoint's folder name: `step-00001200`. */
export const checkpointName = (step: number): string => `step-${String(step).padStart(8, '0')}`;

/**
 * Parses and checks a state.json (`dir` names the checkpoint, `namedStep` is the step in its folder name when it
 * has one): every field's type and range (a checkpoint is untrusted input).
 */
export function parseCheckpointState(bytes: Uint8Array | undefined, dir: string, namedStep?: number): CheckpointState {
  const file = joinLabel(dir, 'state.json');
  if (!bytes) throw new GantryError(`${dir}: not a Gantry checkpoint (no state.json)`);
  let state: unknown;
  try {
    state = JSON.parse(fromUtf8.decode(bytes));
  } catch {
    throw new GantryError(`${dir}: state.json is unreadable`);
  }
  const bad = (field: string, expected: string, value: unknown) =>
    new GantryError(`${file}: '${field}' is ${JSON.stringify(value) ?? 'missing'}, expected ${expected}`);
  if (!isObject(state)) throw new GantryError(`${file}: expected a JSON object`);
  if (typeof state.variant !== 'string' || !/^[\w-]{1,64}$/.test(state.variant))
    throw bad('variant', 'a variant name', state.variant);
  if (!Number.isInteger(state.step) || (state.step as number) < 0 || (state.step as number) > MAX_STEP)
    throw bad('step', `an integer in 0..${MAX_STEP}`, state.step);
  if (namedStep !== undefined && Number.isInteger(namedStep) && namedStep !== state.step)
    throw bad('step', `${namedStep}, the step in the checkpoint's name`, state.step);
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
 * A checkpoint of `nets` and `optimizers` as files: every network in the TF.js layers format, the optimizers'
 * state, and state.json (the counters, the config and the optimizers' weight lists).
 */
export async function checkpointFiles(o: {
  state: CheckpointState;
  nets: Record<string, tf.LayersModel>;
  optimizers: Record<string, tf.Optimizer>;
}): Promise<CheckpointFiles> {
  const files: CheckpointFiles = new Map();
  for (const [name, model] of Object.entries(o.nets)) {
    const { modelJson, weights } = await modelFiles(model);
    files.set(`${name}/model.json`, modelJson);
    files.set(`${name}/weights.bin`, weights);
  }
  const optimizers: Record<string, tf.io.WeightsManifestEntry[]> = {};
  for (const [name, opt] of Object.entries(o.optimizers)) {
    const weights = await opt.getWeights();
    try {
      const { data, specs } = await tf.io.encodeWeights(weights);
      files.set(`optim-${name}.bin`, new Uint8Array(data));
      optimizers[name] = specs;
    } finally {
      // getWeights returns the optimizer's own variables plus a fresh iteration scalar; dispose only the latter.
      for (const w of weights) if (!(w.tensor instanceof tf.Variable)) w.tensor.dispose();
    }
  }
  const state = { ...o.state, optimizers, savedAt: new Date().toISOString() };
  files.set('state.json', utf8.encode(JSON.stringify(state, null, 2)));
  return files;
}

const LEGACY_OPTIMIZER: Record<string, string> = { G: 'generator', D: 'discriminator' };

/** The optimizer files a checkpoint of `state` holds for `target` (their names, after the G/D renaming). */
export function optimizerFileNames(state: CheckpointState, target: Pick<CheckpointTarget, 'optimizers'>): string[] {
  return Object.keys(target.optimizers).map((key) => `optim-${optimizerName(state, key)}.bin`);
}

function optimizerName(state: CheckpointState, key: string): string {
  // Checkpoints from before the G/D naming called the optimizers 'generator' and 'discriminator'.
  return state.optimizers?.[key] || !Object.hasOwn(LEGACY_OPTIMIZER, key) ? key : LEGACY_OPTIMIZER[key]!;
}

/** Refuses a checkpoint of another variant, or one made with other values of the `mustMatch` config keys. */
export function checkCheckpointFits(state: CheckpointState, dir: string, o: CheckpointTarget): void {
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
}

/**
 * Restores networks and optimizers built with the same options from checkpoint files (`dir` names the checkpoint
 * in messages), after checking that it belongs to `variant` and was made with the same `config` keys listed in
 * `mustMatch`. Every file is checked before any weight changes, so a bad checkpoint leaves the networks as they were.
 */
export async function restoreFromFiles(
  files: CheckpointFiles,
  dir: string,
  o: CheckpointTarget,
  namedStep?: number,
): Promise<CheckpointState> {
  const state = parseCheckpointState(files.get('state.json'), dir, namedStep);
  checkCheckpointFits(state, dir, o);
  const models = Object.entries(o.nets).map(([name, model]) => ({ model, ...modelFromFiles(files, name, dir) }));
  const optimizers = Object.entries(o.optimizers).map(([key, opt]) => {
    const name = optimizerName(state, key);
    const specs = state.optimizers?.[name];
    const file = joinLabel(dir, `optim-${name}.bin`);
    const bytes = files.get(`optim-${name}.bin`);
    if (!specs || !bytes) throw new GantryError(`checkpoint ${dir}: optimizer state '${name}' missing`);
    const data = exactBuffer(bytes);
    checkWeightData(specs, data, [{ file, bytes: data.byteLength }]);
    return { name, opt, specs, data };
  });
  for (const m of models) setModelWeights(m.model, m.json, m.specs, m.data, dir);
  for (const { name, opt, specs, data } of optimizers) {
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
