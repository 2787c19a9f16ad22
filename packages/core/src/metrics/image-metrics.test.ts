import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { meanL1, psnr, psnrPerImage, ssim, ssimPerImage } from './image-metrics.js';

/** Straightforward SSIM on one [H, W, C] image in [0, 1] (Gaussian 11/1.5, valid positions), for comparison. */
function naiveSsim(x: Float32Array, y: Float32Array, h: number, w: number, c: number): number {
  const k = 11;
  const g = Array.from({ length: k }, (_, i) => Math.exp(-((i - 5) ** 2) / (2 * 1.5 * 1.5)));
  const s = g.reduce((a, b) => a + b, 0);
  const C1 = 0.01 ** 2;
  const C2 = 0.03 ** 2;
  let total = 0;
  let count = 0;
  for (let ch = 0; ch < c; ch++)
    for (let i = 0; i + k <= h; i++)
      for (let j = 0; j + k <= w; j++) {
        let mx = 0,
          my = 0,
          xx = 0,
          yy = 0,
          xy = 0;
        for (let a = 0; a < k; a++)
          for (let b = 0; b < k; b++) {
            const wt = (g[a]! * g[b]!) / (s * s);
            const p = ((i + a) * w + (j + b)) * c + ch;
            mx += wt * x[p]!;
            my += wt * y[p]!;
            xx += wt * x[p]! ** 2;
            yy += wt * y[p]! ** 2;
            xy += wt * x[p]! * y[p]!;
          }
        const sx = xx - mx * mx,
          sy = yy - my * my,
          sxy = xy - mx * my;
        total += ((2 * mx * my + C1) * (2 * sxy + C2)) / ((mx * mx + my * my + C1) * (sx + sy + C2));
        count++;
      }
  return total / count;
}

describe('image metrics', () => {
  const a = tf.randomUniform([2, 24, 20, 3], -1, 1, 'float32', 1) as tf.Tensor4D;
  const noise = tf.randomNormal([2, 24, 20, 3], 0, 0.1, 'float32', 2);
  const b = tf.clipByValue(tf.add(a, noise), -1, 1) as tf.Tensor4D;

  it('identical images: L1 0, PSNR capped at 100 dB, SSIM 1', () => {
    expect(meanL1(a, a)).toBe(0);
    expect(psnr(a, a)).toBe(100);
    expect(ssim(a, a)).toBeCloseTo(1, 5);
  });

  it('PSNR and L1 follow their definitions, per image', () => {
    const x = tf.zeros([1, 4, 4, 1]);
    const y = tf.fill([1, 4, 4, 1], 0.5);
    expect(meanL1(x, y)).toBeCloseTo(0.5, 6);
    // MSE 0.25 on a range of width 2: 10 log10(4 / 0.25) = 12.04 dB.
    expect(psnr(x, y)).toBeCloseTo(10 * Math.log10(16), 4);
    expect(psnr(x, y, { range: '[0,1]' })).toBeCloseTo(10 * Math.log10(4), 4);
    expect(psnrPerImage(tf.concat([x, x]), tf.concat([y, x]))).toEqual([expect.closeTo(12.041, 3), 100]);
  });

  it('SSIM matches a direct implementation and is the same in [0,1] and [-1,1]', () => {
    const a01 = tf.div(tf.add(a, 1), 2);
    const b01 = tf.div(tf.add(b, 1), 2);
    const got = ssimPerImage(a01, b01, { range: '[0,1]' });
    const av = a01.dataSync() as Float32Array;
    const bv = b01.dataSync() as Float32Array;
    const per = 24 * 20 * 3;
    for (let i = 0; i < 2; i++) {
      expect(got[i]).toBeCloseTo(
        naiveSsim(av.subarray(i * per, (i + 1) * per), bv.subarray(i * per, (i + 1) * per), 24, 20, 3),
        4,
      );
    }
    expect(ssim(a, b)).toBeCloseTo(ssim(a01, b01, { range: '[0,1]' }), 5);
    expect(psnr(a, b)).toBeCloseTo(psnr(a01, b01, { range: '[0,1]' }), 4);
  });

  it('worse images score worse; 3-D inputs, small images and bad shapes', () => {
    const worse = tf.clipByValue(tf.add(a, tf.mul(noise, 4)), -1, 1);
    expect(ssim(a, worse)).toBeLessThan(ssim(a, b));
    expect(psnr(a, worse)).toBeLessThan(psnr(a, b));
    const one = tf.slice(a, [0, 0, 0, 0], [1, 24, 20, 3]).squeeze([0]);
    const oneB = tf.slice(b, [0, 0, 0, 0], [1, 24, 20, 3]).squeeze([0]);
    expect(ssim(one, oneB)).toBeCloseTo(ssimPerImage(a, b)[0]!, 5);
    expect(ssim(tf.slice(a, [0, 0, 0, 0], [1, 6, 6, 3]), tf.slice(b, [0, 0, 0, 0], [1, 6, 6, 3]))).toBeLessThan(1);
    expect(() => psnr(a, tf.zeros([1, 2, 2, 3]))).toThrow(/shapes differ/);
    expect(() => psnr(a, b, { range: '[0,255]' as never })).toThrow(/range/);
  });

  it('leaves no tensors behind', () => {
    const before = tf.memory().numTensors;
    psnr(a, b);
    ssim(a, b);
    meanL1(a, b);
    expect(tf.memory().numTensors).toBe(before);
  });
});
