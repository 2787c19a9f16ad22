/**
 * A reader for PyTorch state dicts as `torch.save(net.state_dict(), f)` writes them, with no Python:
 *
 * - the zip format (PyTorch ≥ 1.6): `<name>/data.pkl` (the pickled dict, tensors as persistent ids that name a
 *   storage) and `<name>/data/<key>` (each storage's raw little-endian bytes); read with fflate;
 * - the legacy format (older files, `_use_new_zipfile_serialization=False`): five things back to back — a pickled
 *   magic number, protocol version and sys info, the pickled dict, the pickled list of storage keys, then every
 *   storage as an int64 element count and its raw bytes.
 *
 * Pickles are read with pickleparser, which only builds objects through the name resolver given here: the
 * globals a state dict needs (collections.OrderedDict, torch._utils._rebuild_tensor[_v2], _rebuild_parameter and
 * the float/half/bfloat16/double/long storage types), looked up in a Map so that no JavaScript property name
 * (`constructor`, `__proto__`, `toString`) can pass for one. Any other global is refused, so a file cannot make the
 * reader run anything. Objects the reader made are told apart from look-alikes a pickle could forge (BUILD can set
 * an object's prototype) by a WeakSet, not by `instanceof`.
 *
 * A reading budget bounds what a file can make Gantry allocate, checked on the declared sizes before any storage is
 * decompressed or copied (docs/torch-import.md states it): every tensor at most 2^28 elements and no more than the
 * storage it views holds (no broadcast, stride-0 or overlapping views); all tensors together no more elements than
 * the distinct storages they view (a shared storage counts once) and at most 2^29; sizes integers below 2^31, at
 * most 8 dimensions. In a zip, only data.pkl (at most 16 MiB) and the members of storages a tensor uses are
 * inflated, each to exactly its storage's bytes, all deflated members together to at most 16 × the file's size +
 * 1 MiB, and every member read has its CRC-32 checked. Tensors come out as float32 (float16/float64 converted), laid out C-contiguous by their strides;
 * bfloat16 also; int64 tensors (batch norm's num_batches_tracked) keep only their shape.
 */
import { BufferReader, Parser } from 'pickleparser';
import { keyName, listZip, readMember, ZipFormatError, type ZipMember } from './zip.js';

export { keyName };

/** A reading failure: the message says what is wrong (the caller names the file). */
export class TorchFormatError extends Error {}

export type TorchDtype = 'float32' | 'float16' | 'bfloat16' | 'float64' | 'int64';

export interface TorchTensor {
  dtype: TorchDtype;
  shape: number[];
  /** The values as float32 for float tensors; null for int64 tensors. */
  data: Float32Array | null;
}

/** The storage types a state dict uses: a Map, so that no Object.prototype name is ever found in it. */
const STORAGES = new Map<string, { dtype: TorchDtype; bytes: number }>([
  ['FloatStorage', { dtype: 'float32', bytes: 4 }],
  ['HalfStorage', { dtype: 'float16', bytes: 2 }],
  ['BFloat16Storage', { dtype: 'bfloat16', bytes: 2 }],
  ['DoubleStorage', { dtype: 'float64', bytes: 8 }],
  ['LongStorage', { dtype: 'int64', bytes: 8 }],
]);

/** The reading budget (see the header and docs/torch-import.md). */
export const TORCH_LIMITS = {
  /** Elements of one tensor: 1 GiB as float32, far above any generator's largest weight. */
  tensorElements: 2 ** 28,
  /** Elements of all tensors together: 2 GiB as float32 (unet_256 at ngf 64 has 54 million). */
  totalElements: 2 ** 29,
  /** One size or stride. */
  dim: 2 ** 31 - 1,
  rank: 8,
  /** data.pkl, inflated. */
  pickleBytes: 16 * 2 ** 20,
  /** Deflated members together inflate to at most this many times the file's size, plus `inflateSlack`. */
  inflateRatio: 16,
  inflateSlack: 2 ** 20,
} as const;

/** Objects this reader made (a pickle can forge look-alikes that pass `instanceof`, never these). */
const genuine = new WeakSet<object>();
const isGenuine = <T extends object>(v: unknown, cls: abstract new (...a: never[]) => T): v is T =>
  typeof v === 'object' && v !== null && genuine.has(v) && v instanceof cls;

class StorageType {
  constructor(
    readonly name: string,
    readonly dtype: TorchDtype,
    readonly bytes: number,
  ) {
    // A pickle's BUILD opcode assigns attributes to the object on the stack: these must not change.
    Object.freeze(this);
    genuine.add(this);
  }
}

class StorageRef {
  constructor(
    readonly type: StorageType,
    readonly key: string,
    readonly numel: number,
  ) {
    // A pickle's BUILD opcode assigns attributes to the object on the stack: these must not change.
    Object.freeze(this);
    genuine.add(this);
  }
}

class LazyTensor {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {
    // A pickle's BUILD opcode assigns attributes to the object on the stack: these must not change.
    Object.freeze(this);
    genuine.add(this);
  }
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;
const isDim = (v: unknown): v is number => isInt(v) && v <= TORCH_LIMITS.dim;
const fmtSize = (s: readonly unknown[]) => `[${s.map((v) => String(v)).join(', ')}]`;

function rebuildTensor(storage: unknown, offset: unknown, size: unknown, stride: unknown): LazyTensor {
  if (!isGenuine(storage, StorageRef)) throw new TorchFormatError('a tensor without a storage');
  if (!Array.isArray(size) || !Array.isArray(stride) || size.length !== stride.length) {
    throw new TorchFormatError('a tensor with a malformed size or stride');
  }
  if (size.length > TORCH_LIMITS.rank)
    throw new TorchFormatError(`a tensor of ${size.length} dimensions (at most ${TORCH_LIMITS.rank})`);
  if (!isDim(offset) || !size.every(isDim) || !stride.every(isDim)) {
    throw new TorchFormatError(
      `a tensor of size ${fmtSize(size)}, stride ${fmtSize(stride)}, offset ${String(offset)}: each must be an integer in 0..2^31-1`,
    );
  }
  return new LazyTensor(
    storage,
    offset,
    Object.freeze([...(size as number[])]) as number[],
    Object.freeze([...(stride as number[])]) as number[],
  );
}

/** Fixed globals by their full name (a Map: no prototype lookups). */
const GLOBALS = new Map<string, () => unknown>([
  [
    'collections.OrderedDict',
    () =>
      function OrderedDict() {
        return new Map();
      },
  ],
  [
    'torch._utils._rebuild_tensor_v2',
    () => (storage: unknown, offset: unknown, size: unknown, stride: unknown) =>
      rebuildTensor(storage, offset, size, stride),
  ],
  [
    'torch._utils._rebuild_tensor',
    () => (storage: unknown, offset: unknown, size: unknown, stride: unknown) =>
      rebuildTensor(storage, offset, size, stride),
  ],
  [
    'torch._utils._rebuild_parameter',
    () => (data: unknown) => {
      if (!isGenuine(data, LazyTensor)) throw new TorchFormatError('a parameter without a tensor');
      return data;
    },
  ],
]);

function torchGlobal(module: string, name: string): unknown {
  const full = `${module}.${name}`;
  const fixed = GLOBALS.get(full);
  if (fixed) return fixed();
  const s = module === 'torch' ? STORAGES.get(name) : undefined;
  if (s) return new StorageType(name, s.dtype, s.bytes);
  throw new TorchFormatError(`refers to ${full}, which a state dict of float tensors does not use`);
}

function parser(): Parser {
  return new Parser({
    nameResolver: { resolve: (module, name) => torchGlobal(module, name) as (...a: unknown[]) => unknown },
    persistentResolver: {
      resolve: (pid: unknown) => {
        // ('storage', type, key, location, numel[, view_metadata])
        const p = pid as unknown[];
        if (
          !Array.isArray(p) ||
          p[0] !== 'storage' ||
          !isGenuine(p[1], StorageType) ||
          typeof p[2] !== 'string' ||
          !isInt(p[4])
        ) {
          throw new TorchFormatError('a persistent id that is not a tensor storage');
        }
        if (p.length > 5 && p[5] != null)
          throw new TorchFormatError('storage views (PyTorch < 0.4 files) are not supported');
        if (!Number.isSafeInteger(p[4] * p[1].bytes))
          throw new TorchFormatError(`storage ${keyName(p[2])} declares ${p[4]} elements`);
        return new StorageRef(p[1], p[2], p[4]);
      },
    },
    unpicklingTypeOfDictionary: 'Map',
  });
}

/** bfloat16 is the upper half of a float32. */
const bf16 = new DataView(new ArrayBuffer(4));
function bfloatToFloat(h: number): number {
  bf16.setUint32(0, h << 16, true);
  return bf16.getFloat32(0, true);
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const elements = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** The tensors of an unpickled state dict, by key, checked against the budget before any storage is read. */
function lazyStateDict(obj: unknown): Map<string, LazyTensor> {
  if (!(obj instanceof Map))
    throw new TorchFormatError('not a state dict (the pickled object is not a dict of tensors)');
  const out = new Map<string, LazyTensor>();
  for (const [k, v] of obj) {
    if (typeof k !== 'string') throw new TorchFormatError('not a state dict (a key that is not a string)');
    if (!isGenuine(v, LazyTensor)) throw new TorchFormatError(`not a state dict ('${keyName(k)}' is not a tensor)`);
    out.set(k, v);
  }
  if (out.size === 0) throw new TorchFormatError('an empty state dict');
  // Per tensor: its elements, and the last element it reaches, within its storage.
  let total = 0;
  const storages = new Map<string, StorageRef>();
  for (const [k, t] of out) {
    const count = elements(t.shape);
    const { numel, key } = t.storage;
    if (count > TORCH_LIMITS.tensorElements)
      throw new TorchFormatError(`${keyName(k)}: ${count} elements (at most ${TORCH_LIMITS.tensorElements})`);
    if (count > numel)
      throw new TorchFormatError(
        `${keyName(k)}: size ${fmtSize(t.shape)} has ${count} elements, more than its storage ${keyName(key)} holds (${numel}): broadcast or overlapping views are not a state dict's`,
      );
    if (count > 0) {
      const last = t.offset + t.shape.reduce((a, d, i) => a + (d - 1) * t.stride[i]!, 0);
      if (last >= numel) throw new TorchFormatError(`${keyName(k)}: reaches past its storage ${keyName(key)}`);
    }
    const seen = storages.get(key);
    if (seen && (seen.numel !== numel || seen.type.dtype !== t.storage.type.dtype))
      throw new TorchFormatError(`storage ${keyName(key)} is declared twice with different sizes or types`);
    storages.set(key, t.storage);
    total += count;
  }
  // All tensors: no more elements than the distinct storages they view hold (a shared storage counts once).
  const held = [...storages.values()].reduce((a, s) => a + s.numel, 0);
  if (total > held)
    throw new TorchFormatError(
      `its tensors have ${total} elements, more than their ${storages.size} storages hold (${held}): tensors sharing a storage overlap`,
    );
  if (total > TORCH_LIMITS.totalElements)
    throw new TorchFormatError(`${total} elements in all (at most ${TORCH_LIMITS.totalElements})`);
  return out;
}

function materialise(k: string, t: LazyTensor, bytes: Uint8Array): TorchTensor {
  const { type, numel } = t.storage;
  if (bytes.byteLength < numel * type.bytes)
    throw new TorchFormatError(`${keyName(k)}: storage ${keyName(t.storage.key)} is truncated`);
  const count = elements(t.shape);
  if (type.dtype === 'int64') return { dtype: 'int64', shape: [...t.shape], data: null };
  // C-contiguous float32 (what state dicts hold): one copy of the bytes, on little-endian hosts.
  let contiguous = true;
  for (let d = t.shape.length - 1, step = 1; d >= 0; d--) {
    if (t.shape[d]! > 1 && t.stride[d] !== step) contiguous = false;
    step *= t.shape[d]!;
  }
  if (contiguous && type.dtype === 'float32' && LITTLE_ENDIAN) {
    const start = bytes.byteOffset + t.offset * 4;
    return {
      dtype: 'float32',
      shape: [...t.shape],
      data: new Float32Array(bytes.buffer.slice(start, start + count * 4)),
    };
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const read =
    type.dtype === 'float32'
      ? (i: number) => view.getFloat32(i * 4, true)
      : type.dtype === 'float64'
        ? (i: number) => view.getFloat64(i * 8, true)
        : type.dtype === 'bfloat16'
          ? (i: number) => bfloatToFloat(view.getUint16(i * 2, true))
          : (i: number) => halfToFloat(view.getUint16(i * 2, true));
  const out = new Float32Array(count);
  const rank = t.shape.length;
  const index = new Array<number>(rank).fill(0);
  for (let n = 0; n < count; n++) {
    let at = t.offset;
    for (let d = 0; d < rank; d++) at += index[d]! * t.stride[d]!;
    out[n] = read(at);
    for (let d = rank - 1; d >= 0; d--) {
      if (++index[d]! < t.shape[d]!) break;
      index[d] = 0;
    }
  }
  return { dtype: type.dtype, shape: [...t.shape], data: out };
}

/** Reads each distinct storage once (`storage` is called once per key) and materialises the tensors. */
function asStateDict(lazy: Map<string, LazyTensor>, storage: (s: StorageRef) => Uint8Array): Map<string, TorchTensor> {
  const cache = new Map<string, Uint8Array>();
  const out = new Map<string, TorchTensor>();
  for (const [k, t] of lazy) {
    let bytes = cache.get(t.storage.key);
    if (!bytes) {
      bytes = storage(t.storage);
      cache.set(t.storage.key, bytes);
    }
    out.set(k, materialise(k, t, bytes));
  }
  return out;
}

const ZIP_MAGIC = [0x50, 0x4b, 0x03, 0x04];
const LEGACY_MAGIC = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e];
const startsWith = (b: Uint8Array, m: number[]) => b.length >= m.length && m.every((v, i) => b[i] === v);

function readZip(bytes: Uint8Array): Map<string, TorchTensor> {
  const members = listZip(bytes);
  const pkl = [...members.keys()].find((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (!pkl) throw new TorchFormatError('a zip archive without <name>/data.pkl: not a PyTorch file');
  const prefix = pkl.slice(0, -'data.pkl'.length);
  // What deflated members may inflate to, all together (real PyTorch files store their members uncompressed).
  let inflateLeft = TORCH_LIMITS.inflateRatio * bytes.byteLength + TORCH_LIMITS.inflateSlack;
  const read = (m: ZipMember, max: number) => {
    if (m.method !== 0) {
      if (m.size > inflateLeft)
        throw new TorchFormatError(
          `its deflated members inflate to more than ${TORCH_LIMITS.inflateRatio} × the file's size: a zip bomb?`,
        );
      inflateLeft -= m.size;
    }
    return readMember(bytes, m, max);
  };
  const order = members.get(`${prefix}byteorder`);
  if (order && new TextDecoder().decode(read(order, 64)).trim() !== 'little')
    throw new TorchFormatError('a big-endian file');
  const lazy = lazyStateDict(parser().parse(read(members.get(pkl)!, TORCH_LIMITS.pickleBytes)));
  return asStateDict(lazy, (s) => {
    const m = members.get(`${prefix}data/${s.key}`);
    if (!m) throw new TorchFormatError(`storage data/${keyName(s.key)} missing from the archive`);
    const want = s.numel * s.type.bytes;
    if (m.size < want) throw new TorchFormatError(`storage ${keyName(s.key)} is truncated`);
    // A member inflates to exactly its storage's bytes: never more than the pickle declared.
    return read(m, want);
  });
}

function readLegacy(bytes: Uint8Array): Map<string, TorchTensor> {
  const reader = new BufferReader(bytes);
  const p = parser();
  // The magic number pickle (a 10-byte long, which pickleparser does not read) is checked on the raw bytes.
  reader.skip(LEGACY_MAGIC.length);
  const protocol = p.read<unknown>(reader);
  if (protocol !== 1001) throw new TorchFormatError(`legacy protocol ${String(protocol)}, expected 1001`);
  const sysInfo = p.read<unknown>(reader);
  if (sysInfo instanceof Map && sysInfo.get('little_endian') === false) throw new TorchFormatError('a big-endian file');
  const lazy = lazyStateDict(p.read<unknown>(reader));
  const keys = p.read<unknown>(reader);
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string'))
    throw new TorchFormatError('no storage key list after the pickled object');
  // Storage element sizes come from the types the pickled tensors named.
  const types = new Map<string, StorageType>();
  for (const t of lazy.values()) types.set(t.storage.key, t.storage.type);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = reader.position;
  // Views into the file: the storages' bytes are there already, nothing is copied until a tensor is built.
  const data = new Map<string, Uint8Array>();
  for (const key of keys as string[]) {
    const type = types.get(key);
    if (!type) throw new TorchFormatError(`storage ${keyName(key)} has no tensor`);
    if (at + 8 > bytes.byteLength) throw new TorchFormatError(`storage ${keyName(key)} is truncated`);
    const numel = Number(view.getBigInt64(at, true));
    const end = at + 8 + numel * type.bytes;
    if (numel < 0 || end > bytes.byteLength) throw new TorchFormatError(`storage ${keyName(key)} is truncated`);
    data.set(key, bytes.subarray(at + 8, end));
    at = end;
  }
  return asStateDict(lazy, (s) => {
    const d = data.get(s.key);
    if (!d) throw new TorchFormatError(`storage ${keyName(s.key)} missing`);
    return d;
  });
}

/**
 * Whether a file's first bytes (at least 262) could start a PyTorch file: a zip, a legacy pickle, or the old tar
 * format (refused later, with its own message). Lets a caller refuse a large file of something else unread.
 */
export function looksLikeTorchFile(head: Uint8Array): boolean {
  return (
    startsWith(head, ZIP_MAGIC) ||
    startsWith(head, LEGACY_MAGIC) ||
    (head.length >= 262 && new TextDecoder().decode(head.subarray(257, 262)) === 'ustar')
  );
}

/**
 * The tensors of a PyTorch state dict file, in the file's order. Throws TorchFormatError for anything that is
 * not a state dict of float tensors, or that exceeds the reading budget (the message does not name the file).
 */
export function readStateDict(bytes: Uint8Array): Map<string, TorchTensor> {
  try {
    if (startsWith(bytes, ZIP_MAGIC)) return readZip(bytes);
    if (startsWith(bytes, LEGACY_MAGIC)) return readLegacy(bytes);
  } catch (err) {
    if (err instanceof TorchFormatError) throw err;
    if (err instanceof ZipFormatError) throw new TorchFormatError(`not a readable zip archive (${err.message})`);
    // pickleparser's own errors (an unknown opcode, reading past the end) and malformed objects.
    const msg = (err as Error).message ?? String(err);
    throw new TorchFormatError(
      /out of range|offset|bounds|beyond|end of/i.test(msg)
        ? `truncated or corrupt pickle (${msg})`
        : `corrupt pickle (${msg})`,
    );
  }
  if (bytes.length >= 262 && new TextDecoder().decode(bytes.subarray(257, 262)) === 'ustar') {
    throw new TorchFormatError('the tar format of PyTorch < 0.1.10 is not supported');
  }
  throw new TorchFormatError('not a PyTorch file (neither a zip archive nor a legacy torch.save pickle)');
}
