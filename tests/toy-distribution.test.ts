/**
 * The MLP GAN and the DCGAN each learn a toy distribution in a few steps: 28×28 images of a constant 0.6 (plus a
 * little noise). G starts near 0 everywhere (tanh of small weights); after the steps its samples' mean is close to
 * the data's, and the tensor count stays flat from the second step on.
 */
import { adversarialLoss, initBackend, LatentGanTask } from '@gantry/core';
import * as dcgan from '@gantry/dcgan';
import * as gan from '@gantry/gan';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';

beforeAll(() => initBackend({ backend: 'wasm', log: () => {} }));

const TARGET = 0.6;

/** 64 toy images: TARGET plus N(0, 0.05) noise, clipped to [-1, 1]; the label is always 0. */
const data = {
  count: 64,
  batch: (idx: Int32Array) =>
    tf.tidy(() => ({
      x: tf
        .add(
          tf.fill([idx.length, 28, 28, 1], TARGET),
          tf.randomNormal([idx.length, 28, 28, 1], 0, 0.05, 'float32', idx[0]),
        )
        .clipByValue(-1, 1) as tf.Tensor4D,
      y: tf.zeros([idx.length], 'int32') as tf.Tensor1D,
    })),
};

const cases = [
  {
    variant: 'gan',
    latentDim: 100,
    steps: 100,
    nets: () => {
      const c: gan.GanConfig = { latentDim: 100, imageSize: 28, minibatchStddev: 4 };
      return { generator: gan.buildGenerator(c), discriminator: gan.buildDiscriminator(c) };
    },
  },
  {
    variant: 'dcgan',
    latentDim: 16,
    steps: 120,
    nets: () => {
      const c: dcgan.DcganConfig = { latentDim: 16, imageSize: 28, ngf: 8, ndf: 8, dLayers: 3, dHidden: 32 };
      return { generator: dcgan.buildGenerator(c), discriminator: dcgan.buildDiscriminator(c) };
    },
  },
];

describe.each(cases)('$variant training', ({ variant, latentDim, steps, nets }) => {
  it(`learns a toy distribution in ${steps} steps: its samples' mean moves to the data's ${TARGET}`, () => {
    const task = new LatentGanTask({
      variant,
      ...nets(),
      latentDim,
      loss: adversarialLoss('bce'),
      lr: 1e-3,
      beta1: 0.5,
      seed: 1,
      batchSize: 16,
      data,
      config: {},
      mustMatch: [],
    });
    const z = tf.randomNormal([32, latentDim], 0, 1, 'float32', 5) as tf.Tensor2D;
    const error = () => tf.tidy(() => tf.abs(tf.sub(tf.mean(task.sample(z)), TARGET)).dataSync()[0]!);
    const before = error();
    const step = (i: number) => {
      const b = task.nextBatch(i);
      const losses = task.trainStep(b, i);
      tf.dispose([b.x, b.y, b.z, b.yFake, ...Object.values(losses)]);
    };
    step(0); // creates the optimizers' state
    const tensors = tf.memory().numTensors;
    for (let i = 1; i < steps; i++) step(i);
    expect(tf.memory().numTensors).toBe(tensors);
    const after = error();
    expect(before).toBeGreaterThan(0.4);
    expect(after).toBeLessThan(0.15);
    task.dispose();
    z.dispose();
    for (const m of Object.values(task.nets)) m?.dispose();
  });
});
