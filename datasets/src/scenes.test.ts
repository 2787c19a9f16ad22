import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GantryError, readImage } from '@gantry/core';
import { afterAll, describe, expect, it } from 'vitest';
import { renderScene, writeAlignedDataset, writeUnalignedDataset } from './scenes.js';

const tmp = mkdtempSync(join(tmpdir(), 'gantry-scenes-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const mean = (px: Uint8Array) => px.reduce((a, b) => a + b, 0) / px.length;
/** Pixels that look like a lit window: bright, warm (red > green > blue). */
function warmPixels(px: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < px.length; i += 3) {
    const [r, g, b] = [px[i]!, px[i + 1]!, px[i + 2]!];
    if (r > 200 && g > 150 && b < 170 && r - b > 70) n++;
  }
  return n;
}

describe('renderScene', () => {
  it('is deterministic and varies with the seed', () => {
    const a = renderScene(7, 64, 'day');
    expect(a.length).toBe(64 * 64 * 3);
    expect(renderScene(7, 64, 'day')).toEqual(a);
    expect(renderScene(8, 64, 'day')).not.toEqual(a);
    expect(renderScene(7, 64, 'night')).toEqual(renderScene(7, 64, 'night'));
  });

  it('renders night darker than day, with lit warm windows', () => {
    for (let seed = 0; seed < 10; seed++) {
      const day = renderScene(seed, 128, 'day');
      const night = renderScene(seed, 128, 'night');
      expect(mean(night), `seed ${seed}`).toBeLessThan(mean(day) * 0.45);
      expect(warmPixels(night), `seed ${seed}`).toBeGreaterThan(40);
      expect(warmPixels(day), `seed ${seed}`).toBeLessThan(warmPixels(night) / 4);
      // Same scene: the ground line (first row of ground) is at the same height in both.
      const sky = (px: Uint8Array, y: number) => px[(y * 128 + 64) * 3 + 2]!;
      expect(sky(day, 0)).toBeGreaterThan(sky(night, 0));
    }
  });

  it('shows by day (curtains) which windows are lit at night, so the translation is learnable', () => {
    // Day pixels under the night's lit windows vs under its unlit ones (upper 70%: lamps and glow are lower).
    // Curtains are beige, glass reflecting the sky is blue: red − blue tells them apart.
    const warmth = { lit: [] as number[], unlit: [] as number[] };
    for (let seed = 0; seed < 10; seed++) {
      const day = renderScene(seed, 128, 'day');
      const night = renderScene(seed, 128, 'night');
      for (let i = 0; i < 128 * 90 * 3; i += 3) {
        const [r, g, b] = [night[i]!, night[i + 1]!, night[i + 2]!];
        const dayWarmth = day[i]! - day[i + 2]!;
        if (r > 200 && g > 150 && b < 170 && r - b > 70) warmth.lit.push(dayWarmth);
        else if (r === 9 && g === 11 && b === 20) warmth.unlit.push(dayWarmth); // the unlit window colour
      }
    }
    expect(warmth.lit.length).toBeGreaterThan(500);
    expect(warmth.unlit.length).toBeGreaterThan(500);
    const share = (xs: number[], f: (x: number) => boolean) => xs.filter(f).length / xs.length;
    expect(share(warmth.lit, (x) => x > -40)).toBeGreaterThan(0.99);
    expect(share(warmth.unlit, (x) => x < -40)).toBeGreaterThan(0.99);
  });

  it('renders 1000 scenes at 128 px quickly', () => {
    const t = performance.now();
    for (let i = 0; i < 500; i++) {
      renderScene(i, 128, 'day');
      renderScene(i, 128, 'night');
    }
    expect(performance.now() - t).toBeLessThan(15_000);
  });

  it('rejects bad arguments', () => {
    expect(() => renderScene(1, 8, 'day')).toThrow(GantryError);
    expect(() => renderScene(1, 64, 'dusk' as 'day')).toThrow(/mode must be 'day' or 'night'/);
  });
});

describe('writeAlignedDataset', () => {
  it('writes train/val/test A|B pairs with A = night and B = day', async () => {
    const root = join(tmp, 'aligned');
    const counts = await writeAlignedDataset(root, { count: 10, size: 32, seed: 3 });
    expect(counts).toEqual({ train: 8, val: 1, test: 1 });
    expect(readdirSync(join(root, 'train'))).toEqual([
      '0000.png',
      '0001.png',
      '0002.png',
      '0003.png',
      '0004.png',
      '0005.png',
      '0006.png',
      '0007.png',
    ]);
    expect(readdirSync(join(root, 'val'))).toEqual(['0000.png']);
    expect(readdirSync(tmp).filter((n) => n.includes('.tmp-'))).toEqual([]);
    const img = await readImage(join(root, 'train', '0000.png'));
    expect([img.width, img.height]).toEqual([64, 32]);
    let left = 0;
    let right = 0;
    for (let y = 0; y < 32; y++)
      for (let x = 0; x < 32; x++)
        for (let c = 0; c < 3; c++) {
          left += img.data[(y * 64 + x) * 3 + c]!;
          right += img.data[(y * 64 + 32 + x) * 3 + c]!;
        }
    expect(left).toBeLessThan(right * 0.5); // night | day

    await expect(writeAlignedDataset(root, { count: 2, size: 32 })).rejects.toThrow(/already exists and is not empty/);
    expect(
      await writeAlignedDataset(root, { count: 2, size: 32, overwrite: true, splits: { train: 1, val: 0, test: 0 } }),
    ).toEqual({
      train: 2,
      val: 0,
      test: 0,
    });
    expect(readdirSync(root)).toEqual(['train']);
    await expect(
      writeAlignedDataset(join(tmp, 'x'), { count: 2, splits: { train: 0.5, val: 0.1, test: 0.1 } }),
    ).rejects.toThrow(/splits must sum to 1/);
    await expect(writeAlignedDataset(join(tmp, 'x'), { count: 0 })).rejects.toThrow(/count must be a positive integer/);
  });

  it('writes 1000 aligned pairs at 128 px in well under a minute', async () => {
    const t = performance.now();
    await writeAlignedDataset(join(tmp, 'big'), { count: 1000, size: 128, seed: 1 });
    const s = (performance.now() - t) / 1000;
    expect(readdirSync(join(tmp, 'big', 'train')).length).toBe(800);
    expect(s).toBeLessThan(30);
  });

  it('refuses a file in the way', async () => {
    writeFileSync(join(tmp, 'file'), 'x');
    await expect(writeAlignedDataset(join(tmp, 'file'), { count: 1, size: 16 })).rejects.toThrow(
      /exists and is not a folder/,
    );
  });
});

describe('writeUnalignedDataset', () => {
  it('writes trainA/trainB/testA/testB with day in A and night in B from different seeds', async () => {
    const root = join(tmp, 'unaligned');
    mkdirSync(root); // an empty folder is fine
    const counts = await writeUnalignedDataset(root, { count: 10, countB: 5, size: 32, seed: 5, testFraction: 0.2 });
    expect(counts).toEqual({ trainA: 8, trainB: 4, testA: 2, testB: 1 });
    for (const [d, n] of Object.entries(counts)) expect(readdirSync(join(root, d)).length).toBe(n);
    const a = await readImage(join(root, 'trainA', '0000.png'));
    const b = await readImage(join(root, 'trainB', '0000.png'));
    expect(mean(a.data)).toBeGreaterThan(mean(b.data) * 2);
    // B is not the night version of A's scene.
    const nightOfA = renderScene(0, 32, 'night');
    expect(b.data).not.toEqual(nightOfA);
    expect(existsSync(join(root, 'train'))).toBe(false);
  });
});
