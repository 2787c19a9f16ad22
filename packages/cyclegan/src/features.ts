/**
 * Image statistics for CycleGAN's distribution distance. The project has no pretrained image network (no
 * Inception), and a network trained here on the same scenes would share the generator's blind spots, so
 * `evaluate` measures the Fréchet distance (core's `frechetDistance`, the FID formula) between Gaussians fitted
 * to 25 documented, hand-made statistics per image — what separates day from night scenes:
 *
 *  - 16: mean luminance of each cell of a 4×4 grid (where the image is bright: sky at the top, street below);
 *  - 3 + 3: mean and standard deviation of R, G and B (overall colour and contrast);
 *  - 1: fraction of warm bright pixels (luminance > 0.6 and R − B > 0.15: lit windows and street lamps);
 *  - 1: fraction of dark pixels (luminance < 0.2);
 *  - 1: edge energy (mean |∂x Y| + |∂y Y|: how much structure survives).
 *
 * Values are on [0, 1] intensities after a bilinear resize to 64×64, so any input size gives the same features.
 * This is a "scene statistics Fréchet distance", not FID: it says whether translated images have the target
 * domain's brightness layout, colours, lit windows and texture, not whether their fine detail is realistic.
 */

import { check } from '@gantry/core';
import * as tf from '@tensorflow/tfjs';

export const SCENE_STAT_NAMES: readonly string[] = [
  ...Array.from({ length: 16 }, (_, i) => `lum[${Math.floor(i / 4)},${i % 4}]`),
  'meanR',
  'meanG',
  'meanB',
  'stdR',
  'stdG',
  'stdB',
  'warmBright',
  'dark',
  'edges',
];
export const SCENE_STAT_DIM = SCENE_STAT_NAMES.length;

/** The statistics of each image of a [N, H, W, 3] batch in [-1, 1], as N rows of SCENE_STAT_DIM values. */
export function sceneStatistics(images: tf.Tensor4D): Float32Array {
  check(images.rank === 4 && images.shape[3] === 3, `sceneStatistics: expected [N, H, W, 3], got [${images.shape}]`);
  const n = images.shape[0];
  return tf.tidy(() => {
    const x = tf.div(tf.add(tf.image.resizeBilinear(images, [64, 64]), 1), 2) as tf.Tensor4D;
    const [r, g, b] = tf.split(x, 3, 3) as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
    const lum = tf.addN([tf.mul(0.299, r), tf.mul(0.587, g), tf.mul(0.114, b)]) as tf.Tensor4D;
    const grid = tf.reshape(tf.avgPool(lum, 16, 16, 'valid'), [n, 16]);
    const { mean, variance } = tf.moments(x, [1, 2]);
    const std = tf.sqrt(variance);
    const frac = (mask: tf.Tensor) => tf.reshape(tf.mean(tf.cast(mask, 'float32'), [1, 2, 3]), [n, 1]);
    const warm = frac(tf.logicalAnd(tf.greater(lum, 0.6), tf.greater(tf.sub(r, b), 0.15)));
    const dark = frac(tf.less(lum, 0.2));
    const dx = tf.abs(
      tf.sub(tf.slice(lum, [0, 0, 1, 0], [-1, -1, -1, -1]), tf.slice(lum, [0, 0, 0, 0], [-1, -1, 63, -1])),
    );
    const dy = tf.abs(
      tf.sub(tf.slice(lum, [0, 1, 0, 0], [-1, -1, -1, -1]), tf.slice(lum, [0, 0, 0, 0], [-1, 63, -1, -1])),
    );
    const edges = tf.reshape(tf.add(tf.mean(dx, [1, 2, 3]), tf.mean(dy, [1, 2, 3])), [n, 1]);
    return tf.concat([grid, mean, std, warm, dark, edges], 1).dataSync() as Float32Array;
  });
}
