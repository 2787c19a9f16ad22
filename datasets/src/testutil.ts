// Helpers shared by the tests (not exported from the package index).
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { mulberry32, type RawImage, writeRawImage } from '@gantry/core';

/** A w x h RGB image of seeded noise plus a gradient, so crops and flips are distinguishable. */
export function noiseImage(w: number, h: number, seed: number, offset = 0): RawImage {
  const rng = mulberry32(seed);
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let c = 0; c < 3; c++)
        data[(y * w + x) * 3 + c] = Math.min(255, Math.max(0, Math.round((x * 255) / w / 2 + rng() * 100 + offset)));
  return { data, width: w, height: h, channels: 3 };
}

/** Places `a` and `b` (same size) side by side. */
export function hconcat(a: RawImage, b: RawImage): RawImage {
  const w = a.width + b.width;
  const data = new Uint8Array(w * a.height * 3);
  for (let y = 0; y < a.height; y++) {
    data.set(a.data.subarray(y * a.width * 3, (y + 1) * a.width * 3), y * w * 3);
    data.set(b.data.subarray(y * b.width * 3, (y + 1) * b.width * 3), (y * w + a.width) * 3);
  }
  return { data, width: w, height: a.height, channels: 3 };
}

export async function writePng(path: string, img: RawImage): Promise<void> {
  mkdirSync(dirname(path), { recursive: true });
  await writeRawImage(img, path);
}
