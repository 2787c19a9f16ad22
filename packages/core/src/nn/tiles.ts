/**
 * Translating an image too large for one forward pass: overlapping tiles, blended without seams. Browser-safe
 * (TF.js only).
 *
 * The image is first reflect-padded to the network's stride multiple M, exactly as for a whole-image pass, and the
 * padded image is cut into windows of `tile`×`tile` pixels (a multiple of M) whose origins are multiples of M, so
 * every strided layer samples the same positions as in the whole-image pass. Adjacent windows overlap by at least
 * `overlap` pixels. In each window, the outer quarter of the overlap next to an inner edge is context only
 * (weight 0: its outputs see the window's border, which the whole image does not have); across the middle half the
 * weight rises linearly from 0 to 1; edges on the padded image's own border keep weight 1. Outputs are averaged with
 * these weights (separable in y and x), so each pixel is a convex mix of the windows that see it well, and the
 * weights vary by at most 1/(overlap/2) per pixel: no step at a window's border.
 *
 * What this changes:
 * - A network without normalisation whose receptive-field radius is at most overlap/4 gives exactly the whole-image
 *   output (every kept output pixel saw the same inputs).
 * - Instance norm (CycleGAN) and batch norm on the batch's own statistics (pix2pix in the reference's default test
 *   mode) normalise each window with its own mean and variance instead of the whole image's, so a window of sky and
 *   a window of street are normalised differently; the blend hides the border but not the difference. Batch norm
 *   with running statistics (`--eval`) is a fixed affine map and tiles like a network without normalisation.
 * - Networks whose receptive field exceeds the context (a U-Net's reaches the whole window) compute each window
 *   from less of the scene than the whole-image pass would.
 */
import * as tf from '@tensorflow/tfjs';
import { GantryError } from '../errors.js';
import { cropFloatImage, type FloatImage, forwardImage, type ImageFn, padPlan, reflectPad } from './fully-conv.js';

export interface TileOptions {
  /** The network's stride multiple M (see `strideMultiple`). */
  multiple: number;
  /** Window side in pixels, rounded down to a multiple of M (at least M). */
  tile: number;
  /** Minimum overlap of adjacent windows in pixels (default tile / 4). */
  overlap?: number;
}

/** Window origins along an axis of padded length `n`: multiples of `m`, each window `t` long. */
export function tileOrigins(n: number, t: number, step: number): number[] {
  if (t >= n) return [0];
  const out: number[] = [];
  for (let s = 0; ; s += step) {
    if (s + t >= n) {
      out.push(n - t);
      break;
    }
    out.push(s);
  }
  return out;
}

/** Blend weights along one axis of a window at `origin` (length `t`, padded axis length `n`). */
export function axisWeights(origin: number, t: number, n: number, context: number, ramp: number): Float32Array {
  const w = new Float32Array(t).fill(1);
  const edge = (d: number) => (d < context ? 0 : d < context + ramp ? (d - context + 0.5) / ramp : 1);
  for (let i = 0; i < t; i++) {
    if (origin > 0) w[i] = Math.min(w[i]!, edge(i));
    if (origin + t < n) w[i] = Math.min(w[i]!, edge(t - 1 - i));
  }
  return w;
}

/** The window plan for an image of `height`×`width` (after padding to M). */
export function tilePlan(height: number, width: number, o: TileOptions) {
  const m = o.multiple;
  const py = padPlan(height, m);
  const px = padPlan(width, m);
  const tile = Math.max(m, Math.floor(o.tile / m) * m);
  const th = Math.min(tile, py.size);
  const tw = Math.min(tile, px.size);
  const overlap = Math.max(1, Math.round(o.overlap ?? tile / 4));
  const step = Math.floor((tile - overlap) / m) * m;
  if (step < m && (th < py.size || tw < px.size)) {
    throw new GantryError(
      `--tile ${tile}: leaves no room to advance with an overlap of ${overlap} px at a stride multiple of ${m} (use a larger tile or a smaller overlap)`,
    );
  }
  const context = Math.floor(overlap / 4);
  const ramp = Math.max(1, overlap - 2 * context);
  return {
    py,
    px,
    th,
    tw,
    ys: tileOrigins(py.size, th, step),
    xs: tileOrigins(px.size, tw, step),
    context,
    ramp,
    overlap,
  };
}

/**
 * `fn` on `img` window by window, blended as described above; the result has the image's size. Only one window's
 * tensors exist at a time.
 */
export async function forwardTiled(fn: ImageFn, img: FloatImage, o: TileOptions): Promise<FloatImage> {
  const p = tilePlan(img.height, img.width, o);
  const H = p.py.size;
  const W = p.px.size;
  const padded = H === img.height && W === img.width ? img : reflectPad(img, H, W, p.py.before, p.px.before);
  let acc: Float32Array | undefined;
  let channels = 0;
  const weight = new Float32Array(H * W);
  for (const y0 of p.ys) {
    const wy = axisWeights(y0, p.th, H, p.context, p.ramp);
    for (const x0 of p.xs) {
      const wx = axisWeights(x0, p.tw, W, p.context, p.ramp);
      const out = await forwardImage(fn, cropFloatImage(padded, y0, x0, p.th, p.tw));
      if (!acc) {
        channels = out.channels;
        acc = new Float32Array(H * W * channels);
      } else if (out.channels !== channels)
        throw new Error(`the model returned ${out.channels} channels for one tile and ${channels} for another`);
      for (let y = 0; y < p.th; y++) {
        for (let x = 0; x < p.tw; x++) {
          const w = wy[y]! * wx[x]!;
          if (w === 0) continue;
          const i = (y0 + y) * W + x0 + x;
          weight[i]! += w;
          const s = (y * p.tw + x) * channels;
          for (let k = 0; k < channels; k++) acc[i * channels + k]! += w * out.data[s + k]!;
        }
      }
    }
  }
  for (let i = 0; i < H * W; i++) for (let k = 0; k < channels; k++) acc![i * channels + k]! /= weight[i]!;
  const blended: FloatImage = { data: acc!, height: H, width: W, channels };
  return H === img.height && W === img.width
    ? blended
    : cropFloatImage(blended, p.py.before, p.px.before, img.height, img.width);
}

/**
 * Tensor bytes per input pixel of one pass of `fn`, measured (tf.profile's peak, less what was allocated before) on a
 * `side`×`side` probe (default: the smallest multiple of `multiple` that is at least 64). Activations grow with the
 * pixel count, so this times the padded pixel count estimates a pass at any size; it leaves out the kernels' own
 * scratch memory and the allocator's slack, which the default budget leaves room for.
 */
export async function measureBytesPerPixel(
  fn: ImageFn,
  multiple: number,
  channels: number,
  side?: number,
): Promise<number> {
  const s = side ?? Math.ceil(64 / multiple) * multiple;
  const x = tf.zeros([1, s, s, channels]) as tf.Tensor4D;
  const before = tf.memory().numBytes;
  try {
    const info = await tf.profile(async () => {
      const y = await fn(x);
      await y.data();
      y.dispose();
    });
    return Math.max(1, info.peakBytes - before) / (s * s);
  } finally {
    x.dispose();
  }
}
