import { describe, expect, it } from 'vitest';
import { type BytesImage, formatStructure, lumaDownscaled, STRUCTURE_WARN, structureScore } from './structure.js';

/** A scene of shapes: a bright disc, a dark bar and a ramp, `width`×`height`, RGB. */
function shapes(width: number, height: number, f: (v: number, x: number, y: number) => number = (v) => v): BytesImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let v = 60 + (80 * x) / width;
      if ((x - width * 0.3) ** 2 + (y - height * 0.4) ** 2 < (height * 0.2) ** 2) v = 230;
      if (x > width * 0.6 && x < width * 0.75 && y > height * 0.2) v = 20;
      for (let k = 0; k < 3; k++)
        data[(y * width + x) * 3 + k] = Math.max(0, Math.min(255, Math.round(f(v, x, y) * (1 - 0.1 * k))));
    }
  }
  return { data, width, height, channels: 3 };
}

/** Deterministic noise in [0, 255]. */
function noise(width: number, height: number, seed: number): BytesImage {
  let s = seed >>> 0;
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s >>> 24;
  }
  return { data, width, height, channels: 3 };
}

function boxBlur(img: BytesImage, r: number): BytesImage {
  const { width: w, height: h, channels: c } = img;
  const out = new Uint8Array(img.data.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let k = 0; k < c; k++) {
        let s = 0;
        let n = 0;
        for (let dy = -r; dy <= r; dy++) {
          for (let dx = -r; dx <= r; dx++) {
            const yy = y + dy;
            const xx = x + dx;
            if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
            s += img.data[(yy * w + xx) * c + k]!;
            n++;
          }
        }
        out[(y * w + x) * c + k] = Math.round(s / n);
      }
    }
  }
  return { ...img, data: out };
}

describe('structureScore', () => {
  const input = shapes(120, 90);

  it('is 1 for the same scene, darkened, recoloured or inverted (edges, not tones)', () => {
    expect(structureScore(input, input).correlation).toBeCloseTo(1, 6);
    expect(
      structureScore(
        input,
        shapes(120, 90, (v) => v * 0.3),
      ).correlation,
    ).toBeGreaterThan(0.99);
    expect(
      structureScore(
        input,
        shapes(120, 90, (v) => 255 - v),
      ).correlation,
    ).toBeGreaterThan(0.99);
  });

  it('is lower for a blurred scene, near 0 for noise or a different scene, and 0 for a flat output', () => {
    const blurred = structureScore(input, boxBlur(input, 3)).correlation;
    expect(blurred).toBeGreaterThan(0.5);
    expect(blurred).toBeLessThan(0.95);
    expect(Math.abs(structureScore(input, noise(120, 90, 1)).correlation)).toBeLessThan(0.15);
    // The same shapes moved by a third of the width: the edges are elsewhere.
    const moved = shapes(120, 90, (_, x, y) => input.data[(y * 120 + ((x + 40) % 120)) * 3]!);
    expect(structureScore(input, moved).correlation).toBeLessThan(0.3);
    const flat: BytesImage = { data: new Uint8Array(120 * 90 * 3).fill(12), width: 120, height: 90, channels: 3 };
    const s = structureScore(input, flat);
    expect(s.correlation).toBe(0);
    const f = formatStructure(s);
    expect(f.text).toBe('structure 0.00');
    expect(f.warning).toContain(`< ${STRUCTURE_WARN}`);
    expect(formatStructure(structureScore(input, input))).toEqual({ text: 'structure 1.00' });
  });

  it('says n/a for an input without edges, and refuses images of different sizes', () => {
    const flat: BytesImage = { data: new Uint8Array(40 * 30 * 3).fill(99), width: 40, height: 30, channels: 3 };
    const s = structureScore(flat, noise(40, 30, 2));
    expect(s.inputHasEdges).toBe(false);
    expect(formatStructure(s).text).toBe('structure n/a (the input has no edges)');
    expect(() => structureScore(input, flat)).toThrow(/differ in size/);
  });

  it('works on large and grayscale images, averaged down to at most 512 pixels a side', () => {
    const big = shapes(1500, 400);
    expect(lumaDownscaled(big, 3).width).toBe(500);
    expect(
      structureScore(
        big,
        shapes(1500, 400, (v) => v / 2),
      ).correlation,
    ).toBeGreaterThan(0.99);
    const gray: BytesImage = { data: big.data.filter((_, i) => i % 3 === 0), width: 1500, height: 400, channels: 1 };
    expect(structureScore(gray, big).correlation).toBeGreaterThan(0.95);
  });
});
