import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GantryError, initBackend, mulberry32 } from '@gantry/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { noiseImage, writePng } from './testutil.js';
import { UnalignedDataset } from './unpaired.js';

const tmp = mkdtempSync(join(tmpdir(), 'gantry-unpaired-'));
const root = join(tmp, 'cyc');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
beforeAll(async () => {
  await initBackend({ backend: 'cpu', log: () => {} });
});

beforeAll(async () => {
  for (let i = 0; i < 5; i++) await writePng(join(root, 'trainA', `a${i}.png`), noiseImage(20, 20, i));
  for (let i = 0; i < 3; i++) await writePng(join(root, 'trainB', `b${i}.png`), noiseImage(24, 16, 100 + i, 120));
  await writePng(join(root, 'testA', 'a.png'), noiseImage(20, 20, 9));
  await writePng(join(root, 'testB', 'b.png'), noiseImage(20, 20, 10));
  writeFileSync(join(root, 'trainB', 'Thumbs.db'), 'junk');
});

describe('UnalignedDataset', () => {
  it('counts A and B independently; length is the larger', async () => {
    const ds = await UnalignedDataset.open(root, { cropSize: 16, loadSize: 18 });
    expect([ds.sizeA, ds.sizeB, ds.length, ds.skipped]).toEqual([5, 3, 5, 1]);
    const test = await UnalignedDataset.open(root, { split: 'test', cropSize: 16 });
    expect([test.sizeA, test.sizeB, test.length]).toEqual([1, 1, 1]);
  });

  it('draws B at random from a seeded rng', async () => {
    const ds = await UnalignedDataset.open(root, { cropSize: 16, loadSize: 18 });
    const idx = [0, 1, 2, 3, 4];
    const p = await ds.batch(idx, mulberry32(1));
    const q = await ds.batch(idx, mulberry32(1));
    expect(p.filesA.map((f) => f.split('/').pop())).toEqual(['a0.png', 'a1.png', 'a2.png', 'a3.png', 'a4.png']);
    expect(q.filesB).toEqual(p.filesB);
    expect(Array.from(q.a.dataSync())).toEqual(Array.from(p.a.dataSync()));
    expect(p.a.shape).toEqual([5, 16, 16, 3]);
    expect(p.b.shape).toEqual([5, 16, 16, 3]);
    const draws = new Set<string>();
    for (let s = 0; s < 10; s++) draws.add((await ds.batch(idx, mulberry32(s))).filesB.join());
    expect(draws.size).toBeGreaterThan(1);
    const serial = await UnalignedDataset.open(root, { cropSize: 16, loadSize: 18, serialBatches: true });
    expect((await serial.batch(idx, mulberry32(0))).filesB.map((f) => f.split('/').pop())).toEqual([
      'b0.png',
      'b1.png',
      'b2.png',
      'b0.png',
      'b1.png',
    ]);
  });

  it('reports missing folders, with a hint for pix2pix layouts', async () => {
    await expect(UnalignedDataset.open(join(tmp, 'none'))).rejects.toThrow(/none: dataset folder not found/);
    mkdirSync(join(tmp, 'p2p', 'train'), { recursive: true });
    const e = await UnalignedDataset.open(join(tmp, 'p2p')).catch((x) => x);
    expect(e).toBeInstanceOf(GantryError);
    expect(e.message).toMatch(
      /trainA: folder not found \(expected CycleGAN layout .*looks like a paired pix2pix dataset \(use AlignedDataset\)\)/,
    );
    mkdirSync(join(tmp, 'halfcyc', 'trainA'), { recursive: true });
    mkdirSync(join(tmp, 'halfcyc', 'trainB'), { recursive: true });
    await writePng(join(tmp, 'halfcyc', 'trainA', 'x.png'), noiseImage(8, 8, 0));
    await expect(UnalignedDataset.open(join(tmp, 'halfcyc'))).rejects.toThrow(
      /trainB: no images \(expected domain B images/,
    );
  });
});
