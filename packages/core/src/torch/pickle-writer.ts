/**
 * A small writer of PyTorch-style state-dict files, for the tests and the bench: it writes what a hostile or
 * broken file may hold (any size, stride, storage type or global name), which torch.save never would. Not part of
 * the public API.
 */
import { zipSync } from 'fflate';

export interface FakeTensor {
  /** The storage key (tensors with the same key share one storage). */
  storage: string;
  /** Storage type name under `torch.` (FloatStorage, or anything, e.g. `constructor`). */
  type?: string;
  /** Elements the storage declares. */
  numel: number;
  offset?: number;
  size: number[];
  stride?: number[];
}

const ascii = (t: string) => [...new TextEncoder().encode(t)];

function int(v: number): number[] {
  if (Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31) {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    return [0x4a, ...b];
  }
  if (Number.isSafeInteger(v)) {
    // LONG1: little-endian two's complement.
    const b = Buffer.alloc(8);
    b.writeBigInt64LE(BigInt(v));
    return [0x8a, 8, ...b];
  }
  // BINFLOAT: big-endian double (a "size" no real file has).
  const b = Buffer.alloc(8);
  b.writeDoubleBE(v);
  return [0x47, ...b];
}

function str(t: string): number[] {
  const bytes = ascii(t);
  const n = Buffer.alloc(4);
  n.writeUInt32LE(bytes.length);
  return [0x58, ...n, ...bytes];
}

const global = (module: string, name: string) => [0x63, ...ascii(`${module}\n${name}\n`)];
const tuple = (items: number[][]) => [0x28, ...items.flat(), 0x74];

/** C-contiguous strides of a size. */
export function contiguous(size: number[]): number[] {
  const s = size.map(() => 1);
  for (let d = size.length - 2; d >= 0; d--) s[d] = s[d + 1]! * size[d + 1]!;
  return s;
}

/** The pickle (protocol 2) of a dict of tensors, as torch.save writes a state dict's data.pkl. */
export function statePickle(tensors: Record<string, FakeTensor>): Uint8Array {
  const out: number[] = [0x80, 2, 0x7d, 0x28];
  for (const [key, t] of Object.entries(tensors)) {
    const pid = tuple([
      str('storage'),
      global('torch', t.type ?? 'FloatStorage'),
      str(t.storage),
      str('cpu'),
      int(t.numel),
    ]);
    out.push(...str(key), ...global('torch._utils', '_rebuild_tensor_v2'));
    out.push(
      ...tuple([
        [...pid, 0x51],
        int(t.offset ?? 0),
        tuple(t.size.map(int)),
        tuple((t.stride ?? contiguous(t.size)).map(int)),
        [0x89],
      ]),
      0x52,
    );
  }
  out.push(0x75, 0x2e);
  return new Uint8Array(out);
}

/**
 * A zip-format file: `archive/data.pkl` plus one member per storage. `data` gives a storage's bytes (default:
 * numel × 4 zero bytes); `extra` adds members (always stored); `level` 0 stores, 9 deflates the others.
 */
export function torchZip(
  tensors: Record<string, FakeTensor>,
  opts: { data?: Record<string, Uint8Array>; extra?: Record<string, Uint8Array>; level?: 0 | 9 } = {},
): Uint8Array {
  const files: Record<string, Uint8Array | [Uint8Array, { level: 0 }]> = Object.create(null);
  files['archive/data.pkl'] = statePickle(tensors);
  for (const t of Object.values(tensors)) {
    const name = `archive/data/${t.storage}`;
    if (!(name in files)) files[name] = opts.data?.[t.storage] ?? new Uint8Array(Math.max(0, t.numel) * 4);
  }
  for (const [name, data] of Object.entries(opts.extra ?? {})) files[name] = [data, { level: 0 }];
  files['archive/version'] = new TextEncoder().encode('3\n');
  return zipSync(files, { level: opts.level ?? 0 });
}

/** The U-Net state dict keys and shapes of the reference at a given width (unet_128 when numDowns is 7). */
export function unetShapes(ngf: number, numDowns = 7, inC = 3, outC = 3): Record<string, number[]> {
  const shapes: Record<string, number[]> = {};
  const path = ['model.model'];
  for (let d = 1; d < numDowns; d++) path.push(d === 1 ? 'model.model.1' : `${path[d - 1]}.model.3`);
  const width = (d: number) => ngf * Math.min(2 ** d, 8);
  shapes[`${path[0]}.0.weight`] = [ngf, inC, 4, 4];
  for (let d = 1; d < numDowns; d++) {
    const o = width(d - 1);
    const i = width(d);
    const innermost = d === numDowns - 1;
    shapes[`${path[d]}.model.1.weight`] = [i, o, 4, 4];
    if (!innermost)
      for (const k of ['weight', 'bias', 'running_mean', 'running_var']) shapes[`${path[d]}.model.2.${k}`] = [i];
    shapes[`${path[d]}.model.${innermost ? 3 : 5}.weight`] = [innermost ? i : 2 * i, o, 4, 4];
    for (const k of ['weight', 'bias', 'running_mean', 'running_var'])
      shapes[`${path[d]}.model.${innermost ? 4 : 6}.${k}`] = [o];
  }
  shapes[`${path[0]}.3.weight`] = [2 * ngf, outC, 4, 4];
  shapes[`${path[0]}.3.bias`] = [outC];
  return shapes;
}

/** Tensors for `shapes`, each on its own storage of exactly its size. */
export function ownStorages(shapes: Record<string, number[]>): Record<string, FakeTensor> {
  return Object.fromEntries(
    Object.entries(shapes).map(([k, size], i) => [
      k,
      { storage: String(i), numel: size.reduce((a, b) => a * b, 1), size },
    ]),
  );
}

/** A zip of the given members (stored, or deflated at `level` 9). */
export function zipFiles(files: Record<string, Uint8Array>, level: 0 | 9 = 0): Uint8Array {
  return zipSync(files, { level });
}
