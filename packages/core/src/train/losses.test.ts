import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { adversarialLoss, GAN_LOSSES, gradientPenalty, l1, modeSeekingLoss, r1Penalty } from './losses.js';

const v = (t: tf.Tensor) => t.dataSync()[0]!;
const real = () => tf.tensor1d([2, -1]);
const fake = () => tf.tensor1d([0.5, -3]);
const softplus = (x: number) => Math.log1p(Math.exp(x));

beforeAll(async () => {
  await initBackend({ backend: 'cpu', log: () => {} });
});

describe('adversarial losses on known scores', () => {
  it('bce: D = E[softplus(−r)] + E[softplus(f)], G (non-saturating) = E[softplus(−f)]', () => {
    const loss = adversarialLoss('bce');
    expect(v(loss.discriminator(real(), fake()))).toBeCloseTo(
      (softplus(-2) + softplus(1)) / 2 + (softplus(0.5) + softplus(-3)) / 2,
      5,
    );
    expect(v(loss.generator(fake()))).toBeCloseTo((softplus(-0.5) + softplus(3)) / 2, 5);
  });
  it('lsgan: D = ½(E[(r−1)²] + E[f²]), G = E[(f−1)²]', () => {
    const loss = adversarialLoss('lsgan');
    expect(v(loss.discriminator(real(), fake()))).toBeCloseTo(0.5 * ((1 + 4) / 2 + (0.25 + 9) / 2), 5);
    expect(v(loss.generator(fake()))).toBeCloseTo((0.25 + 16) / 2, 5);
  });
  it('hinge: D = E[relu(1−r)] + E[relu(1+f)], G = −E[f]', () => {
    const loss = adversarialLoss('hinge');
    expect(v(loss.discriminator(real(), fake()))).toBeCloseTo((0 + 2) / 2 + (1.5 + 0) / 2, 5);
    expect(v(loss.generator(fake()))).toBeCloseTo(1.25, 5);
  });
  it('wgan-gp: D = E[f] − E[r], G = −E[f], and asks for the gradient penalty', () => {
    const loss = adversarialLoss('wgan-gp');
    expect(v(loss.discriminator(real(), fake()))).toBeCloseTo(-1.25 - 0.5, 5);
    expect(v(loss.generator(fake()))).toBeCloseTo(1.25, 5);
    expect(loss.needsGradientPenalty).toBe(true);
    expect(GAN_LOSSES.filter((n) => adversarialLoss(n).needsGradientPenalty)).toEqual(['wgan-gp']);
  });
  it('rejects an unknown name in one line naming the flag', () => {
    expect(() => adversarialLoss('nope')).toThrow(
      /^--loss: unknown loss 'nope' \(expected one of bce, lsgan, wgan-gp, hinge\)$/,
    );
  });
});

describe('gradientPenalty', () => {
  it('is λ(‖∇D‖ − 1)² for a linear critic, whatever the interpolates', () => {
    // D(x) = Σ w·x has gradient w everywhere: ‖w‖ = 3 gives 10·(3 − 1)² = 40.
    const w = tf.tensor2d([[1, 2, 2]]);
    const critic = (x: tf.Tensor) => tf.sum(tf.mul(x, w), 1);
    const gp = gradientPenalty(
      critic,
      tf.randomNormal([4, 3], 0, 1, 'float32', 1),
      tf.randomNormal([4, 3], 0, 1, 'float32', 2),
      10,
      3,
    );
    expect(v(gp)).toBeCloseTo(40, 3);
  });
  it('is zero for a 1-Lipschitz linear critic', () => {
    const critic = (x: tf.Tensor) => tf.sum(tf.mul(x, tf.tensor2d([[0.6, 0.8]])), 1);
    expect(v(gradientPenalty(critic, tf.ones([2, 2]), tf.zeros([2, 2])))).toBeCloseTo(0, 5);
  });
});

describe('r1Penalty', () => {
  it('is (γ/2)·E[‖∇D(x)‖²] at the real samples', () => {
    // D(x) = Σ x² has gradient 2x: rows (1, 0) and (0, 2) give ‖∇‖² = 4 and 16, mean 10; γ = 0.5 → 2.5.
    const critic = (x: tf.Tensor) => tf.sum(tf.square(x), 1);
    expect(
      v(
        r1Penalty(
          critic,
          tf.tensor2d([
            [1, 0],
            [0, 2],
          ]),
          0.5,
        ),
      ),
    ).toBeCloseTo(2.5, 5);
  });
});

describe('modeSeekingLoss', () => {
  it('is the inverse of image distance over noise distance between the two halves, ignoring the rest', () => {
    // Pairs (row 0, row 2) and (row 1, row 3): image gaps |1-0|, |3-1| → mean 1.5; noise gaps 1, 2 → mean 1.5;
    // ratio 1 → loss 1/(1 + 1e-5). Row 4 is outside the pairs and must not count.
    const images = tf.tensor2d([[1], [3], [0], [1], [100]]);
    const z = tf.tensor2d([[0], [0], [1], [2], [-50]]);
    expect(v(modeSeekingLoss(images, z, 2))).toBeCloseTo(1, 4);
    // Identical images for different noise (the collapse it punishes) cost far more than varied ones.
    expect(v(modeSeekingLoss(tf.tensor2d([[1], [1], [1], [1]]), z.slice(0, 4), 2))).toBeGreaterThan(1e4);
  });
});

describe('l1', () => {
  it('is the mean absolute difference', () => {
    expect(v(l1(tf.tensor1d([1, -1, 0]), tf.tensor1d([0, 1, 0])))).toBeCloseTo(1, 6);
  });
});
