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
 * the float/half/bfloat16/double/long storage types). Any other global is refused, so a file cannot make the reader run
 * anything. Tensors come out as float32 (float16/float64 converted), laid out C-contiguous by their strides;
 * bfloat16 also; int64 tensors (batch norm's num_batches_tracked) keep only their shape.
 */
import { unzipSync } from 'fflate';
import { BufferReader, Parser } from 'pickleparser';

/** A reading failure: the message says what is wrong (the caller names the file). */
export class TorchFormatError extends Error {}

export type TorchDtype = 'float32' | 'float16' | 'bfloat16' | 'float64' | 'int64';

export interface TorchTensor {
  dtype: TorchDtype;
  shape: number[];
  /** The values as float32 for float tensors; null for int64 tensors. */
  data: Float32Array | null;
}

const STORAGES: Record<string, { dtype: TorchDtype; bytes: number }> = {
  FloatStorage: { dtype: 'float32', bytes: 4 },
  HalfStorage: { dtype: 'float16', bytes: 2 },
  BFloat16Storage: { dtype: 'bfloat16', bytes: 2 },
  DoubleStorage: { dtype: 'float64', bytes: 8 },
  LongStorage: { dtype: 'int64', bytes: 8 },
};

class StorageType {
  constructor(
    readonly name: string,
    readonly dtype: TorchDtype,
    readonly bytes: number,
  ) {
    // A pickle's BUILD opcode assigns attributes to the object on the stack: these must not change.
    Object.freeze(this);
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
  }
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;

function rebuildTensor(storage: unknown, offset: unknown, size: unknown, stride: unknown): LazyTensor {
  if (!(storage instanceof StorageRef)) throw new TorchFormatError('a tensor without a storage');
  if (
    !isInt(offset) ||
    !Array.isArray(size) ||
    !Array.isArray(stride) ||
    size.length !== stride.length ||
    !size.every(isInt) ||
    !stride.every(isInt)
  ) {
    throw new TorchFormatError('a tensor with a malformed size or stride');
  }
  return new LazyTensor(
    storage,
    offset,
    Object.freeze([...(size as number[])]) as number[],
    Object.freeze([...(stride as number[])]) as number[],
  );
}

function torchGlobal(module: string, name: string): unknown {
  const full = `${module}.${name}`;
  if (full === 'collections.OrderedDict') {
    return function OrderedDict() {
      return new Map();
    };
  }
  if (full === 'torch._utils._rebuild_tensor_v2' || full === 'torch._utils._rebuild_tensor') {
    return (storage: unknown, offset: unknown, size: unknown, stride: unknown) =>
      rebuildTensor(storage, offset, size, stride);
  }
  if (full === 'torch._utils._rebuild_parameter') {
    return (data: unknown) => {
      if (!(data instanceof LazyTensor)) throw new TorchFormatError('a parameter without a tensor');
      return data;
    };
  }
  const s = module === 'torch' ? STORAGES[name] : undefined;
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
          !(p[1] instanceof StorageType) ||
          typeof p[2] !== 'string' ||
          !isInt(p[4])
        ) {
          throw new TorchFormatError('a persistent id that is not a tensor storage');
        }
        if (p.length > 5 && p[5] != null)
          throw new TorchFormatError('storage views (PyTorch < 0.4 files) are not supported');
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

/** 2^28 float32 values (1 GiB) per tensor: far above any generator's largest weight, a bound for broadcast (stride 0) tensors. */
const MAX_ELEMENTS = 2 ** 28;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function materialise(t: LazyTensor, bytes: Uint8Array): TorchTensor {
  const { type, numel } = t.storage;
  if (bytes.byteLength < numel * type.bytes) throw new TorchFormatError(`storage ${t.storage.key} is truncated`);
  const count = t.shape.reduce((a, b) => a * b, 1);
  if (count > MAX_ELEMENTS) throw new TorchFormatError(`a tensor of ${count} elements (more than ${MAX_ELEMENTS})`);
  if (count > 0) {
    const last = t.offset + t.shape.reduce((a, d, i) => a + (d - 1) * t.stride[i]!, 0);
    if (last >= numel) throw new TorchFormatError(`a tensor reaches past its storage ${t.storage.key}`);
  }
  if (type.dtype === 'int64') return { dtype: 'int64', shape: t.shape, data: null };
  // C-contiguous float32 (what state dicts hold): one copy of the bytes, on little-endian hosts.
  let contiguous = true;
  for (let d = t.shape.length - 1, step = 1; d >= 0; d--) {
    if (t.shape[d]! > 1 && t.stride[d] !== step) contiguous = false;
    step *= t.shape[d]!;
  }
  if (contiguous && type.dtype === 'float32' && LITTLE_ENDIAN) {
    const start = bytes.byteOffset + t.offset * 4;
    return { dtype: 'float32', shape: t.shape, data: new Float32Array(bytes.buffer.slice(start, start + count * 4)) };
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
  return { dtype: type.dtype, shape: t.shape, data: out };
}

function asStateDict(obj: unknown, storage: (key: string) => Uint8Array): Map<string, TorchTensor> {
  if (!(obj instanceof Map))
    throw new TorchFormatError('not a state dict (the pickled object is not a dict of tensors)');
  const out = new Map<string, TorchTensor>();
  for (const [k, v] of obj) {
    if (typeof k !== 'string') throw new TorchFormatError('not a state dict (a key that is not a string)');
    if (!(v instanceof LazyTensor)) throw new TorchFormatError(`not a state dict ('${k}' is not a tensor)`);
    out.set(k, materialise(v, storage(v.storage.key)));
  }
  if (out.size === 0) throw new TorchFormatError('an empty state dict');
  return out;
}

const ZIP_MAGIC = [0x50, 0x4b, 0x03, 0x04];
const LEGACY_MAGIC = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e];
const startsWith = (b: Uint8Array, m: number[]) => b.length >= m.length && m.every((v, i) => b[i] === v);

function readZip(bytes: Uint8Array): Map<string, TorchTensor> {
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(bytes);
  } catch (err) {
    throw new TorchFormatError(`not a readable zip archive (${(err as Error).message}): truncated?`);
  }
  const pkl = Object.keys(files).find((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (!pkl) throw new TorchFormatError('a zip archive without <name>/data.pkl: not a PyTorch file');
  const prefix = pkl.slice(0, -'data.pkl'.length);
  const order = files[`${prefix}byteorder`];
  if (order && new TextDecoder().decode(order).trim() !== 'little') throw new TorchFormatError('a big-endian file');
  const obj = parser().parse(files[pkl]!);
  return asStateDict(obj, (key) => {
    const data = files[`${prefix}data/${key}`];
    if (!data) throw new TorchFormatError(`storage data/${key} missing from the archive`);
    return data;
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
  const obj = p.read<unknown>(reader);
  const keys = p.read<unknown>(reader);
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string'))
    throw new TorchFormatError('no storage key list after the pickled object');
  // Storage element sizes come from the types the pickled tensors named.
  const types = new Map<string, StorageType>();
  const collect = (v: unknown) => {
    if (v instanceof LazyTensor) types.set(v.storage.key, v.storage.type);
  };
  if (obj instanceof Map) for (const v of obj.values()) collect(v);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = reader.position;
  const data = new Map<string, Uint8Array>();
  for (const key of keys as string[]) {
    const type = types.get(key);
    if (!type) throw new TorchFormatError(`storage ${key} has no tensor`);
    if (at + 8 > bytes.byteLength) throw new TorchFormatError(`storage ${key} is truncated`);
    const numel = Number(view.getBigInt64(at, true));
    const end = at + 8 + numel * type.bytes;
    if (numel < 0 || end > bytes.byteLength) throw new TorchFormatError(`storage ${key} is truncated`);
    data.set(key, bytes.subarray(at + 8, end));
    at = end;
  }
  return asStateDict(obj, (key) => {
    const d = data.get(key);
    if (!d) throw new TorchFormatError(`storage ${key} missing`);
    return d;
  });
}

/**
 * The tensors of a PyTorch state dict file, in the file's order. Throws TorchFormatError for anything that is
 * not a state dict of float tensors (the message does not name the file).
 */
export function readStateDict(bytes: Uint8Array): Map<string, TorchTensor> {
  try {
    if (startsWith(bytes, ZIP_MAGIC)) return readZip(bytes);
    if (startsWith(bytes, LEGACY_MAGIC)) return readLegacy(bytes);
  } catch (err) {
    if (err instanceof TorchFormatError) throw err;
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
