/**
 * Full-reference image quality figures for image-to-image models (pix2pix `evaluate`, CycleGAN `evaluate`):
 * mean L1, PSNR and SSIM between a batch of outputs and a batch of targets.
 *
 * Inputs: two float tensors of one shape, [N, H, W, C] or [H, W, C], with values in the RANGE given by
 * `range`: '[-1,1]' (Gantry's model space, the default) or '[0,1]'. Values are not clipped.
 *
 * - meanL1: mean absolute difference, in the tensors' own units (for '[-1,1]' this is pix2pix's L1 loss; halve
 *   it for [0,1] units, multiply by 127.5 for 8-bit levels).
 * - PSNR: 10·log10(MAX² / MSE) in dB with MAX the range's width (2 for [-1,1], 1 for [0,1], so the figure is
 *   the same as on 8-bit images), computed per image and averaged over the batch (the usual convention; an
 *   image equal to its target has infinite PSNR, so the per-image value is capped at 100 dB).
 * - SSIM (Wang, Bovik, Sheikh & Simoncelli 2004): 11×11 Gaussian window with σ = 1.5, K1 = 0.01, K2 = 0.03,
 *   L = 1 on intensities in [0,1] (a '[-1,1]' input is mapped there first, as SSIM's luminance term is not
 *   shift-invariant), statistics over 'valid' window positions, computed per channel and averaged over
 *   channels and positions per image, then over the batch — the same as `tf.image.ssim` and
 *   `skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
 *   data_range=1, channel_axis=-1)` on images in [0,1]. Images smaller than 11 pixels use the largest odd window that fits.
 */
import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';

export type ValueRange = '[-1,1]' | '[0,1]';

export interface ImageMetricOptions {
  /** Value range of both tensors (default '[-1,1]'). */
  range?: ValueRange;
}

function rangeWidth(range: ValueRange | undefined): number {
  const r = range ?? '[-1,1]';
  check(r === '[-1,1]' || r === '[0,1]', `image metrics: range must be '[-1,1]' or '[0,1]', got '${r}'`);
  return r === '[-1,1]' ? 2 : 1;
}

function as4d(a: tf.Tensor, b: tf.Tensor, what: string): [tf.Tensor4D, tf.Tensor4D] {
  check(a.shape.join('x') === b.shape.join('x'), `${what}: shapes differ ([${a.shape}] vs [${b.shape}])`);
  check(a.rank === 3 || a.rank === 4, `${what}: expected [N,H,W,C] or [H,W,C], got [${a.shape}]`);
  return a.rank === 3
    ? [tf.expandDims(a, 0) as tf.Tensor4D, tf.expandDims(b, 0) as tf.Tensor4D]
    : [a as tf.Tensor4D, b as tf.Tensor4D];
}

/** Mean absolute difference over all elements, in the tensors' units. */
export function meanL1(a: tf.Tensor, b: tf.Tensor): number {
  check(a.shape.join('x') === b.shape.join('x'), `meanL1: shapes differ ([${a.shape}] vs [${b.shape}])`);
  return tf.tidy(() => tf.mean(tf.abs(tf.sub(a, b))).dataSync()[0]!);
}

/** PSNR in dB of each image of the batch (capped at 100 dB for identical images). */
export function psnrPerImage(a: tf.Tensor, b: tf.Tensor, o: ImageMetricOptions = {}): number[] {
  const max = rangeWidth(o.range);
  return tf.tidy(() => {
    const [x, y] = as4d(a, b, 'psnr');
    const mse = tf.mean(tf.square(tf.sub(x, y)), [1, 2, 3]).dataSync();
    return Array.from(mse, (m) => (m <= 0 ? 100 : Math.min(100, 10 * Math.log10((max * max) / m))));
  });
}

/** Mean over the batch of the per-image PSNR, in dB. */
export function psnr(a: tf.Tensor, b: tf.Tensor, o: ImageMetricOptions = {}): number {
  const v = psnrPerImage(a, b, o);
  return v.reduce((s, x) => s + x, 0) / v.length;
}

/** The normalised 2-D Gaussian window as a depthwise kernel [k, k, C, 1]. */
function gaussianKernel(size: number, sigma: number, channels: number): tf.Tensor4D {
  const half = (size - 1) / 2;
  const g = Array.from({ length: size }, (_, i) => Math.exp(-((i - half) ** 2) / (2 * sigma * sigma)));
  const sum = g.reduce((s, x) => s + x, 0);
  const w: number[] = [];
  for (let i = 0; i < size; i++)
    for (let j = 0; j < size; j++) for (let c = 0; c < channels; c++) w.push((g[i]! * g[j]!) / (sum * sum));
  return tf.tensor4d(w, [size, size, channels, 1]);
}

export interface SsimOptions extends ImageMetricOptions {
  /** Window size (default 11, reduced to the largest odd size that fits). */
  windowSize?: number;
  /** Gaussian σ (default 1.5). */
  sigma?: number;
}

/** SSIM of each image of the batch (see the module comment for the definition). */
export function ssimPerImage(a: tf.Tensor, b: tf.Tensor, o: SsimOptions = {}): number[] {
  const signed = rangeWidth(o.range) === 2;
  const L = 1;
  return tf.tidy(() => {
    let [x, y] = as4d(a, b, 'ssim');
    // SSIM's luminance term is not shift-invariant: it is defined on intensities, so [-1,1] maps to [0,1] first.
    if (signed) [x, y] = [tf.div(tf.add(x, 1), 2), tf.div(tf.add(y, 1), 2)];
    const [, h, w, c] = x.shape;
    let k = Math.min(o.windowSize ?? 11, h, w);
    if (k % 2 === 0) k--;
    check(k >= 1, `ssim: image too small ([${x.shape}])`);
    const kernel = gaussianKernel(k, o.sigma ?? 1.5, c);
    const blur = (t: tf.Tensor4D) => tf.depthwiseConv2d(t, kernel, 1, 'valid');
    const C1 = (0.01 * L) ** 2;
    const C2 = (0.03 * L) ** 2;
    const muX = blur(x);
    const muY = blur(y);
    const muX2 = tf.square(muX);
    const muY2 = tf.square(muY);
    const muXY = tf.mul(muX, muY);
    const sX = tf.sub(blur(tf.square(x)), muX2);
    const sY = tf.sub(blur(tf.square(y)), muY2);
    const sXY = tf.sub(blur(tf.mul(x, y)), muXY);
    const num = tf.mul(tf.add(tf.mul(2, muXY), C1), tf.add(tf.mul(2, sXY), C2));
    const den = tf.mul(tf.add(tf.add(muX2, muY2), C1), tf.add(tf.add(sX, sY), C2));
    return Array.from(tf.mean(tf.div(num, den), [1, 2, 3]).dataSync());
  });
}

/** Mean over the batch of the per-image SSIM (1 = identical). */
export function ssim(a: tf.Tensor, b: tf.Tensor, o: SsimOptions = {}): number {
  const v = ssimPerImage(a, b, o);
  return v.reduce((s, x) => s + x, 0) / v.length;
}
