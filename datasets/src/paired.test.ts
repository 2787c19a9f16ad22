import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GantryError, initBackend, mulberry32 } from '@gantry/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlignedDataset } from './paired.js';
import { hconcat, noiseImage, writePng } from './testutil.js';

const tmp = mkdtempSync(join(tmpdir(), 'gantry-paired-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
beforeAll(async () => {
  await initBackend({ backend: 'cpu', log: () => {} });
});

const same = join(tmp, 'same'); // A|B with B = A
const dark = join(tmp, 'dark'); // A dark, B bright
beforeAll(async () => {
  for (let i = 0; i < 4; i++) {
    const a = noiseImage(40, 30, i);
    await writePng(join(same, 'train', `${i + 1}.png`), hconcat(a, a));
    await writePng(join(dark, 'train', `${i}.png`), hconcat(noiseImage(20, 20, i), noiseImage(20, 20, i, 150)));
  }
  writeFileSync(join(same, 'train', 'README.txt'), 'not an image');
  writeFileSync(join(same, 'train', '.DS_Store'), 'junk');
  mkdirSync(join(same, 'train', 'subfolder'));
});

function mean(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]!;
  return s / v.length;
}

describe('AlignedDataset', () => {
  it('lists A|B images in natural order, skipping non-images', async () => {
    const ds = await AlignedDataset.open(same, { cropSize: 16, loadSize: 24 });
    expect(ds.length).toBe(4);
    expect(ds.layout).toBe('aligned');
    expect(ds.skipped).toBe(3);
    expect(ds.sources.map((s) => ('ab' in s ? s.ab.split('/').pop() : ''))).toEqual([
      '1.png',
      '2.png',
      '3.png',
      '4.png',
    ]);
  });

  it('augments A and B identically (B = A stays equal) and in [-1, 1]', async () => {
    const ds = await AlignedDataset.open(same, { cropSize: 16, loadSize: 24 });
    const rng = mulberry32(1);
    const seen = new Set<string>();
    for (let k = 0; k < 4; k++) {
      const { a, b } = await ds.batch([0, 1, 2, 3], rng);
      expect(a.shape).toEqual([4, 16, 16, 3]);
      const av = a.dataSync();
      expect(Array.from(b.dataSync())).toEqual(Array.from(av));
      expect(Math.min(...av)).toBeGreaterThanOrEqual(-1);
      expect(Math.max(...av)).toBeLessThanOrEqual(1);
      seen.add(Array.from(av.subarray(0, 20)).join());
      a.dispose();
      b.dispose();
    }
    expect(seen.size).toBeGreaterThan(1); // crops/flips differ between draws
    // Same seed, same batch.
    const x = await ds.batch([2], mulberry32(9));
    const y = await ds.batch([2], mulberry32(9));
    expect(Array.from(x.a.dataSync())).toEqual(Array.from(y.a.dataSync()));
  });

  it('flips horizontally when asked, and never when flip is false', async () => {
    const ds = await AlignedDataset.open(same, { preprocess: 'none', flip: true });
    const noFlip = await AlignedDataset.open(same, { preprocess: 'none', flip: false });
    const ref = (await noFlip.batch([0], mulberry32(0))).a.dataSync();
    let flipped = 0;
    const rng = mulberry32(3);
    for (let k = 0; k < 8; k++) {
      const v = (await ds.batch([0], rng)).a.dataSync();
      if (Array.from(v).join() !== Array.from(ref).join()) {
        flipped++;
        // Pixel (0,0) of the flip is pixel (0, W-1) of the original.
        expect(Array.from(v.subarray(0, 3))).toEqual(Array.from(ref.subarray(39 * 3, 40 * 3)));
      }
    }
    expect(flipped).toBeGreaterThan(0);
    expect(flipped).toBeLessThan(8);
  });

  it('swaps A and B for BtoA', async () => {
    const ab = await AlignedDataset.open(dark, { cropSize: 16, loadSize: 16, split: 'train' });
    const ba = await AlignedDataset.open(dark, { cropSize: 16, loadSize: 16, direction: 'BtoA' });
    const p = await ab.batch([0, 1], mulberry32(0));
    const q = await ba.batch([0, 1], mulberry32(0));
    expect(mean(p.a.dataSync())).toBeLessThan(mean(p.b.dataSync()) - 0.5);
    expect(Array.from(q.a.dataSync())).toEqual(Array.from(p.b.dataSync()));
    expect(Array.from(q.b.dataSync())).toEqual(Array.from(p.a.dataSync()));
  });

  it('defaults to 286 -> 256 with flips for train, and no flip / no enlargement otherwise', async () => {
    const train = await AlignedDataset.open(same);
    expect(train.transform).toEqual({
      preprocess: 'resize_and_crop',
      loadSize: 286,
      cropSize: 256,
      flip: true,
      channels: 3,
    });
    await writePng(join(same, 'test', '0.png'), hconcat(noiseImage(8, 8, 0), noiseImage(8, 8, 0)));
    const test = await AlignedDataset.open(same, { split: 'test' });
    expect(test.transform).toEqual({
      preprocess: 'resize_and_crop',
      loadSize: 256,
      cropSize: 256,
      flip: false,
      channels: 3,
    });
    const gray = await AlignedDataset.open(same, { split: 'test', channels: 1, cropSize: 8 });
    expect((await gray.batch([0], mulberry32(0))).a.shape).toEqual([1, 8, 8, 1]);
  });

  it('reads A/ and B/ folder layouts with matching names', async () => {
    const layouts = {
      inner: (s: 'A' | 'B', f: string) => join(tmp, 'inner', 'train', s, f),
      outer: (s: 'A' | 'B', f: string) => join(tmp, 'outer', s, f),
      combine: (s: 'A' | 'B', f: string) => join(tmp, 'combine', s, 'train', f),
    };
    for (const [name, at] of Object.entries(layouts)) {
      for (let i = 0; i < 3; i++) {
        const img = noiseImage(24, 24, i);
        await writePng(at('A', `img${i}.png`), img);
        await writePng(at('B', `img${i}.png`), img);
      }
      const ds = await AlignedDataset.open(join(tmp, name), { cropSize: 16, loadSize: 20 });
      expect(ds.layout, name).toBe('folders');
      expect(ds.length).toBe(3);
      const { a, b } = await ds.batch([0, 1, 2], mulberry32(4));
      expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
    }
    // Mismatched names.
    await writePng(layouts.outer('A', 'extra.png'), noiseImage(24, 24, 0));
    await expect(AlignedDataset.open(join(tmp, 'outer'))).rejects.toThrow(
      /B: no B image for 1 A image \(first: extra\.png\); A and B folders must hold files with the same names/,
    );
    rmSync(layouts.outer('A', 'extra.png'));
    await writePng(layouts.outer('B', 'lonely.png'), noiseImage(24, 24, 0));
    await expect(AlignedDataset.open(join(tmp, 'outer'))).rejects.toThrow(
      /no A image for 1 B image \(first: lonely\.png\)/,
    );
    // Only A/ inside the split.
    await writePng(join(tmp, 'half', 'train', 'A', '0.png'), noiseImage(8, 8, 0));
    await expect(AlignedDataset.open(join(tmp, 'half'))).rejects.toThrow(/has A\/ but no B\//);
  });

  it('reports layout and content errors in one line', async () => {
    const err = async (p: Promise<unknown>, re: RegExp) => {
      const e = await p.then(
        () => undefined,
        (x) => x,
      );
      expect(e).toBeInstanceOf(GantryError);
      expect(e.message).toMatch(re);
      expect(e.message).not.toContain('\n');
    };
    await err(AlignedDataset.open(join(tmp, 'nope')), /nope: dataset folder not found/);
    mkdirSync(join(tmp, 'emptyroot'));
    await err(AlignedDataset.open(join(tmp, 'emptyroot')), /emptyroot: no train\/ folder \(expected pix2pix layout/);
    mkdirSync(join(tmp, 'empty', 'train'), { recursive: true });
    writeFileSync(join(tmp, 'empty', 'train', 'notes.txt'), 'x');
    await err(
      AlignedDataset.open(join(tmp, 'empty')),
      /train: no images \(expected A\|B images side by side.*1 other entry skipped\)/,
    );
    mkdirSync(join(tmp, 'cyc', 'trainA'), { recursive: true });
    await err(AlignedDataset.open(join(tmp, 'cyc')), /looks like an unaligned \(CycleGAN\) dataset/);
    await writePng(join(tmp, 'odd', 'train', '0.png'), noiseImage(41, 20, 0));
    await err(
      AlignedDataset.open(join(tmp, 'odd')),
      /0\.png: width 41 is odd; aligned A\|B images must be two equal halves side by side/,
    );
    await writePng(join(tmp, 'small', 'train', '0.png'), hconcat(noiseImage(20, 20, 0), noiseImage(20, 20, 0)));
    const small = await AlignedDataset.open(join(tmp, 'small'), { preprocess: 'crop', cropSize: 32 });
    await err(small.batch([0], mulberry32(0)), /0\.png: 20x20 image is smaller than cropSize 32/);
    await err(
      AlignedDataset.open(join(tmp, 'small'), { loadSize: 100, cropSize: 128 }),
      /loadSize 100 is smaller than cropSize 128/,
    );
    await err(AlignedDataset.open(join(tmp, 'small'), { split: '../small' }), /split must be a plain folder name/);
    await err(small.batch([1], mulberry32(0)), /index 1 out of range 0\.\.0/);
    // A corrupt file with an image extension is reported when loaded.
    writeFileSync(join(tmp, 'small', 'train', '1.jpg'), 'not really a jpeg');
    const bad = await AlignedDataset.open(join(tmp, 'small'), { cropSize: 8, loadSize: 8 });
    await err(bad.batch([1], mulberry32(0)), /1\.jpg: not a readable image/);
  });

  it('does not follow symlinks out of the dataset root', async () => {
    const outside = join(tmp, 'outside.png');
    await writePng(outside, hconcat(noiseImage(8, 8, 0), noiseImage(8, 8, 0)));
    const root = join(tmp, 'links');
    await writePng(join(root, 'train', 'in.png'), hconcat(noiseImage(8, 8, 1), noiseImage(8, 8, 1)));
    symlinkSync(outside, join(root, 'train', 'escape.png'));
    symlinkSync(join(root, 'train', 'in.png'), join(root, 'train', 'inside-link.png'));
    const ds = await AlignedDataset.open(root, { cropSize: 8, loadSize: 8 });
    expect(ds.sources.map((s) => ('ab' in s ? s.ab.split('/').pop() : ''))).toEqual(['in.png', 'inside-link.png']);
    expect(ds.skipped).toBe(1);
  });
});
