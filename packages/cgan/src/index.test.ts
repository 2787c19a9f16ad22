import * as tf from '@tensorflow/tfjs';
import { initBackend, seedWeights } from '@gantry/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildDiscriminator, buildGenerator, type CganConfig } from './index.js';

const config = (conditioning: CganConfig['conditioning']): CganConfig => ({
  latentDim: 16,
  imageSize: 28,
  numClasses: 10,
  ngf: 8,
  ndf: 8,
  conditioning,
  embeddingDim: 10,
});

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: () => {} });
});

describe.each(['projection', 'concat'] as const)('cgan networks (%s)', (conditioning) => {
  it('G maps (z, label) to 28×28 images in [-1, 1]; the label alone changes the image', () => {
    seedWeights(1);
    const g = buildGenerator(config(conditioning));
    const z = tf.tile(tf.randomNormal([1, 16], 0, 1, 'float32', 3), [10, 1]);
    const labels = tf.tensor2d([...Array(10).keys()], [10, 1], 'int32');
    const images = g.predict([z, labels]) as tf.Tensor;
    expect(images.shape).toEqual([10, 28, 28, 1]);
    expect(tf.max(images).dataSync()[0]).toBeLessThanOrEqual(1);
    expect(tf.min(images).dataSync()[0]).toBeGreaterThanOrEqual(-1);
    // Same noise, different labels: every pair of images differs.
    const flat = images.reshape([10, -1]).arraySync() as number[][];
    for (let a = 0; a < 10; a++) for (let b = a + 1; b < 10; b++) expect(flat[a]).not.toEqual(flat[b]);
    tf.dispose([z, labels, images]);
  });

  it("D's score depends on the label it is given", () => {
    seedWeights(2);
    const d = buildDiscriminator(config(conditioning));
    const x = tf.tile(tf.randomUniform([1, 28, 28, 1], -1, 1, 'float32', 4), [10, 1, 1, 1]);
    const labels = tf.tensor2d([...Array(10).keys()], [10, 1], 'int32');
    const scores = Array.from((d.predict([x, labels]) as tf.Tensor).dataSync());
    expect(scores).toHaveLength(10);
    expect(new Set(scores).size).toBe(10);
    tf.dispose([x, labels]);
  });

  it('builds the same weights from the same seed', () => {
    const weights = () => {
      seedWeights(5);
      return [buildGenerator(config(conditioning)), buildDiscriminator(config(conditioning))].flatMap((m) => m.getWeights().map((w) => Array.from(w.dataSync())));
    };
    expect(weights()).toEqual(weights());
  });
});
