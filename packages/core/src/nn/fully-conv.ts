/**
 * Running an image-to-image generator at any input size, in Node and in the browser (this module imports only
 * TF.js, so the web demo uses it too).
 *
 * A TF.js layers model saved with a fixed input shape ([null, 256, 256, 3]) is still a fully convolutional network:
 * only its InputLayer pins the size. `freeSizeModel` rebuilds it from its own config with the spatial dimensions
 * left open ([null, null, null, C]) and points the new model's variables at the old model's weight tensors (no copy).
 * Every size then works that the network's strides divide: `strideMultiple` reads that multiple off the layers
 * (2^numDowns for a U-Net, 4 for the ResNet generator), and `forwardPadded` reflect-pads an image up to it, runs the
 * network and crops the result back, as the reference implementation's `--preprocess none` runs a network on a
 * photo's own size (it resizes to a multiple of 4 instead, which a U-Net deeper than two levels cannot take).
 */
import * as tf from '@tensorflow/tfjs';
import { BatchNormalization } from './batch-norm.js';

type Json = Record<string, unknown>;

type LayerClass = new (config: Json) => tf.layers.Layer;
type CallKwargs = Record<string, unknown>;
// TF.js does not export its Dropout class; its constructor is that of an instance.
const Dropout = tf.layers.dropout({ rate: 0.5 }).constructor as LayerClass;

/**
 * Batch norm that always normalises with the batch's own statistics (what training mode does), also under
 * `predict`. `predict` runs the graph with training off, which is what lets TF.js free each layer's output as
 * soon as the layers after it have read it; with training on it keeps every activation until the pass ends.
 */
export class BatchStatsNormalization extends BatchNormalization {
  static override className = 'GantryBatchStatsNormalization';
  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: CallKwargs): tf.Tensor | tf.Tensor[] {
    return super.call(inputs, { ...kwargs, training: true });
  }
}
tf.serialization.registerClass(
  BatchStatsNormalization as unknown as tf.serialization.SerializableConstructor<tf.serialization.Serializable>,
);

/** Dropout that is on also under `predict` (see BatchStatsNormalization). */
export class ActiveDropout extends Dropout {
  static className = 'GantryActiveDropout';
  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: CallKwargs): tf.Tensor | tf.Tensor[] {
    return super.call(inputs, { ...kwargs, training: true });
  }
}
tf.serialization.registerClass(
  ActiveDropout as unknown as tf.serialization.SerializableConstructor<tf.serialization.Serializable>,
);

export interface FreeSizeOptions {
  /**
   * Batch norm on the batch's own statistics and dropout on, under `predict` too (the reference's default test
   * mode), with the running statistics left as they are. Default false: the layers as saved (running statistics
   * and no dropout under `predict`).
   */
  batchStatistics?: boolean;
}

function layersOf(topology: Json): Json[] {
  const config = topology.config as Json | undefined;
  const layers = config?.layers;
  if (!Array.isArray(layers)) throw new Error('not a functional TF.js layers model (no config.layers)');
  return layers as Json[];
}

/**
 * The model with open spatial input dimensions, sharing `model`'s weight buffers. A model that already takes any size is returned as it is unless statistics
 * must be frozen.
 */
export async function freeSizeModel(model: tf.LayersModel, o: FreeSizeOptions = {}): Promise<tf.LayersModel> {
  const batchStats = o.batchStatistics ?? false;
  const shape = model.inputs[0]?.shape;
  if (shape?.length !== 4 || model.inputs.length !== 1)
    throw new Error(
      `expected an image model with one [batch, H, W, C] input, got ${JSON.stringify(model.inputs.map((i) => i.shape))}`,
    );
  const topology = model.toJSON(null, false) as unknown as Json;
  let changed = false;
  for (const layer of layersOf(topology)) {
    const config = layer.config as Json;
    if (layer.class_name === 'InputLayer') {
      const s = config.batch_input_shape as (number | null)[];
      if (s[1] !== null || s[2] !== null) {
        config.batch_input_shape = [null, null, null, s[3] ?? null];
        changed = true;
      }
    } else if (batchStats && layer.class_name === 'BatchNormalization') {
      layer.class_name = BatchStatsNormalization.className;
      // Keras' moving = moving·momentum + batch·(1 − momentum): momentum 1 leaves the statistics as they are.
      config.momentum = 1;
      changed = true;
    } else if (batchStats && layer.class_name === 'Dropout') {
      layer.class_name = ActiveDropout.className;
      changed = true;
    }
  }
  if (!changed) return model;
  const rebuilt = await tf.models.modelFromJSON({ modelTopology: topology } as unknown as tf.io.ModelJSON);
  // Variable.assign frees the fresh initial values and shares the assigned tensor's data (reference-counted): the
  // rebuilt model uses the same weight buffers, and either model can be disposed without breaking the other.
  rebuilt.setWeights(model.getWeights());
  return rebuilt;
}

/**
 * The multiple of which an input's height and width must be: the product of the strides of the model's
 * (non-transposed) 2-D convolutions. Exact for encoder–decoder generators whose strided convolutions form one
 * chain (the U-Net, the ResNet generator); at least 1.
 */
export function strideMultiple(model: tf.LayersModel): number {
  let m = 1;
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'Conv2D') continue;
    const strides = (layer.getConfig().strides as number[] | number | undefined) ?? 1;
    const s = Array.isArray(strides) ? Math.max(...strides) : strides;
    m *= s;
  }
  return m;
}

/** Index `i` of a padded axis mapped into [0, n) by reflection (period 2(n − 1)), for any pad width. */
export function reflectIndex(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  const j = (((i % period) + period) % period) + 0; // + 0 turns -0 into 0
  return j < n ? j : period - j;
}

/** An image as HWC floats (one image, no batch axis). */
export interface FloatImage {
  data: Float32Array;
  height: number;
  width: number;
  channels: number;
}

/** Pads `img` by reflection to `height`×`width`, `top` rows above and `left` columns to the left. */
export function reflectPad(img: FloatImage, height: number, width: number, top: number, left: number): FloatImage {
  const { data, height: h, width: w, channels: c } = img;
  const out = new Float32Array(height * width * c);
  const cols = Int32Array.from({ length: width }, (_, x) => reflectIndex(x - left, w));
  for (let y = 0; y < height; y++) {
    const sy = reflectIndex(y - top, h);
    const srcRow = sy * w * c;
    const dstRow = y * width * c;
    for (let x = 0; x < width; x++) {
      const s = srcRow + cols[x]! * c;
      const d = dstRow + x * c;
      for (let k = 0; k < c; k++) out[d + k] = data[s + k]!;
    }
  }
  return { data: out, height, width, channels: c };
}

/** Rows [y0, y0 + h) and columns [x0, x0 + w) of `img`. */
export function cropFloatImage(img: FloatImage, y0: number, x0: number, h: number, w: number): FloatImage {
  const c = img.channels;
  const out = new Float32Array(h * w * c);
  for (let y = 0; y < h; y++)
    out.set(img.data.subarray(((y0 + y) * img.width + x0) * c, ((y0 + y) * img.width + x0 + w) * c), y * w * c);
  return { data: out, height: h, width: w, channels: c };
}

/** A generator on a [1, H, W, C] batch; it owns nothing: the caller disposes input and output. */
export type ImageFn = (x: tf.Tensor4D) => tf.Tensor4D | Promise<tf.Tensor4D>;

/** Runs `fn` on one HWC image already of a size it takes; returns the output as HWC floats. */
export async function forwardImage(fn: ImageFn, img: FloatImage): Promise<FloatImage> {
  const x = tf.tensor4d(img.data, [1, img.height, img.width, img.channels]);
  let y: tf.Tensor4D | undefined;
  try {
    y = await fn(x);
    if (y.rank !== 4 || y.shape[0] !== 1 || y.shape[1] !== img.height || y.shape[2] !== img.width) {
      throw new Error(`the model returned shape [${y.shape}] for input [${x.shape}]`);
    }
    return { data: (await y.data()) as Float32Array, height: img.height, width: img.width, channels: y.shape[3] };
  } finally {
    tf.dispose([x, y ?? []]);
  }
}

/** Padded size of `n` up to a multiple of `m`, and the padding before it (the rest goes after). */
export function padPlan(n: number, m: number): { size: number; before: number } {
  const size = Math.ceil(n / m) * m;
  return { size, before: Math.floor((size - n) / 2) };
}

/**
 * `fn` at the image's own size: reflect-padded to multiples of `multiple` (centred), run whole, cropped back.
 */
export async function forwardPadded(fn: ImageFn, img: FloatImage, multiple: number): Promise<FloatImage> {
  const py = padPlan(img.height, multiple);
  const px = padPlan(img.width, multiple);
  const padded =
    py.size === img.height && px.size === img.width ? img : reflectPad(img, py.size, px.size, py.before, px.before);
  const out = await forwardImage(fn, padded);
  return padded === img ? out : cropFloatImage(out, py.before, px.before, img.height, img.width);
}

/** A generator ready for `translate` at any size: the function, its stride multiple and its input channels. */
export interface ImageTranslator {
  fn: ImageFn;
  multiple: number;
  inChannels: number;
}

/**
 * `model` (a saved generator, any fixed input size) as a function of any [1, H, W, C] input that `multiple` divides.
 * `evalMode` true: batch norm with its running statistics, dropout off (`model.predict`; the reference's `--eval`).
 * false: batch norm on the input's own statistics and dropout on (as in training, with the running statistics kept
 * as they are): the reference's default test mode and the pix2pix paper's. Instance norm behaves the same either way.
 */
export async function imageTranslator(model: tf.LayersModel, evalMode: boolean): Promise<ImageTranslator> {
  const free = await freeSizeModel(model, { batchStatistics: !evalMode });
  const inChannels = free.inputs[0]!.shape[3] as number;
  return {
    // predict frees each activation once the layers after it have read it (apply would keep them all).
    fn: (x) => free.predict(x) as tf.Tensor4D,
    multiple: strideMultiple(free),
    inChannels,
  };
}
