import { initBackend, mulberry32 } from '@gantry/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { PARZEN_SIGMAS, parzenEvaluate, parzenLogLikelihoods } from './parzen.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: () => {} });
});

/** log p(x) computed directly in float64: log of the mean of N Gaussian densities. */
function bruteForce(samples: number[][], x: number[], sigma: number): number {
  const d = x.length;
  const logs = samples.map(
    (mu) =>
      -mu.reduce((a, m, j) => a + (x[j]! - m) ** 2, 0) / (2 * sigma * sigma) -
      (d / 2) * Math.log(2 * Math.PI * sigma * sigma),
  );
  const max = Math.max(...logs);
  return max + Math.log(logs.reduce((a, l) => a + Math.exp(l - max), 0) / samples.length);
}

const rows = (n: number, d: number, seed: number) => {
  const rng = mulberry32(seed);
  return Array.from({ length: n }, () => Array.from({ length: d }, () => rng()));
};

describe('Parzen window log-likelihood', () => {
  it('uses the paper code width grid: 10 widths from 0.1 to 1, log-spaced', () => {
    expect(PARZEN_SIGMAS).toHaveLength(10);
    expect(PARZEN_SIGMAS[0]).toBeCloseTo(0.1, 12);
    expect(PARZEN_SIGMAS[9]).toBeCloseTo(1, 12);
    expect(PARZEN_SIGMAS[5]! / PARZEN_SIGMAS[4]!).toBeCloseTo(PARZEN_SIGMAS[1]! / PARZEN_SIGMAS[0]!, 12);
  });

  it('equals the direct computation, across chunks and widths', () => {
    const samples = rows(40, 16, 1);
    const data = rows(300, 16, 2); // more than one chunk
    const [s, x] = [tf.tensor2d(samples), tf.tensor2d(data)];
    const ll = parzenLogLikelihoods(s, x, [0.2, 0.5]);
    tf.dispose([s, x]);
    for (const [k, sigma] of [0.2, 0.5].entries()) {
      for (const i of [0, 137, 299]) expect(ll[k]![i]).toBeCloseTo(bruteForce(samples, data[i]!, sigma), 3);
    }
  });

  it('picks the width that fits the validation data best and reports the test mean with its standard error', () => {
    const before = tf.memory().numTensors;
    const samples = tf.tensor2d(rows(50, 8, 3));
    const valid = tf.tensor2d(rows(60, 8, 4));
    const test = tf.tensor2d(rows(70, 8, 5));
    const r = parzenEvaluate(samples, valid, test);
    const best = Math.max(...r.validation.map((v) => v.logLikelihood));
    expect(r.validation.find((v) => v.sigma === r.sigma)!.logLikelihood).toBe(best);
    const ll = parzenLogLikelihoods(samples, test, [r.sigma])[0]!;
    const mean = ll.reduce((a, b) => a + b, 0) / ll.length;
    expect(r.logLikelihood).toBeCloseTo(mean, 9);
    const sd = Math.sqrt(ll.reduce((a, b) => a + (b - mean) ** 2, 0) / ll.length);
    expect(r.standardError).toBeCloseTo(sd / Math.sqrt(70), 9);
    // Samples drawn like the data score higher than samples far from it.
    const far = tf.add(samples, 3) as tf.Tensor2D;
    expect(parzenEvaluate(far, valid, test).logLikelihood).toBeLessThan(r.logLikelihood);
    tf.dispose([samples, valid, test, far]);
    expect(tf.memory().numTensors).toBe(before);
  });
});
