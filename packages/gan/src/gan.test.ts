/**
 * The original GAN's networks against their description (the PyTorch-GAN MLP of Goodfellow et al. 2014's
 * generator and discriminator); the toy-distribution step is in tests/toy-distribution.test.ts.
 */
import { countParams, initBackend } from '@gantry/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildDiscriminator, buildGenerator, type GanConfig } from './index.js';

beforeAll(() => initBackend({ backend: 'wasm', log: () => {} }));

/** Trainable parameters of dense layers `sizes[0] → sizes[1] → …`, with a bias each and a batch norm (γ, β) where `bn`. */
function mlpParams(sizes: number[], bn: boolean[]): number {
  let n = 0;
  for (let i = 1; i < sizes.length; i++) n += sizes[i - 1]! * sizes[i]! + sizes[i]! + (bn[i - 1] ? 2 * sizes[i]! : 0);
  return n;
}

const config = (minibatchStddev: number): GanConfig => ({ latentDim: 100, imageSize: 28, minibatchStddev });

describe('gan networks', () => {
  it('G: z(100) → 128 → 256 → 512 → 1024 (batch norm on the last three) → 784, tanh, as a 28×28 image', () => {
    const g = buildGenerator(config(4));
    expect(g.inputs[0]!.shape).toEqual([null, 100]);
    expect(g.outputs[0]!.shape).toEqual([null, 28, 28, 1]);
    // 1,510,032: PyTorch-GAN's gan.py generator.
    expect(countParams(g)).toBe(mlpParams([100, 128, 256, 512, 1024, 784], [false, true, true, true, false]));
    const y = tf.tidy(() => g.predict(tf.randomNormal([3, 100])) as tf.Tensor);
    const [lo, hi] = [y.min().dataSync()[0]!, y.max().dataSync()[0]!];
    expect(lo >= -1 && hi <= 1).toBe(true);
    y.dispose();
    g.dispose();
  });

  it('D: 784 → 512 → 256 → one logit; the minibatch standard deviation adds one feature', () => {
    const plain = buildDiscriminator(config(0));
    expect(plain.outputs[0]!.shape).toEqual([null, 1]);
    // 533,505: PyTorch-GAN's gan.py discriminator.
    expect(countParams(plain)).toBe(mlpParams([784, 512, 256, 1], [false, false, false]));
    const withStddev = buildDiscriminator(config(4));
    expect(countParams(withStddev)).toBe(countParams(plain) + 1);
    plain.dispose();
    withStddev.dispose();
  });
});
