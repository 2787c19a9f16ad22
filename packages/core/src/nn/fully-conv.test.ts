import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import {
  type FloatImage,
  forwardImage,
  forwardPadded,
  freeSizeModel,
  imageTranslator,
  reflectIndex,
  reflectPad,
  strideMultiple,
} from './fully-conv.js';
import { resnetGenerator, unetGenerator } from './networks.js';
import { forwardTiled, measureBytesPerPixel, tileOrigins, tilePlan } from './tiles.js';

/** Weights large enough that outputs vary (fresh N(0, 0.02) weights give a nearly flat output). */
function randomise(model: tf.LayersModel, seed: number, std = 0.2): void {
  const values = model.weights.map((w, i) =>
    /moving_variance|gamma/.test(w.name)
      ? tf.onesLike(w.read())
      : /moving_mean|beta|bias/.test(w.name)
        ? tf.zerosLike(w.read())
        : tf.randomNormal(w.shape as number[], 0, std, 'float32', seed + i),
  );
  model.setWeights(values);
  tf.dispose(values);
}

/** A photo-like test image in [-1, 1]: a dark-to-bright vertical ramp (per-tile statistics differ) with texture. */
function scene(height: number, width: number, channels = 3, texture = 1): FloatImage {
  const data = new Float32Array(height * width * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let k = 0; k < channels; k++) {
        const v =
          -0.9 +
          (1.6 * y) / height +
          texture * (0.25 * Math.sin(x / 7 + k) * Math.cos(y / 11) + 0.1 * Math.sin((x * y) / 97)) +
          0.2 * Math.sin(x / 40 + y / 60 + k);
        data[(y * width + x) * channels + k] = Math.max(-1, Math.min(1, v));
      }
    }
  }
  return { data, height, width, channels };
}

/**
 * The same network with its input pinned to size×size, as generators were built and saved before translate ran at
 * native resolution (checkpoints of that time load as such models).
 */
async function pinnedInputSize(model: tf.LayersModel, size: number): Promise<tf.LayersModel> {
  const topology = model.toJSON(null, false) as tf.io.ModelJSON['modelTopology'] & {
    config: { layers: { class_name: string; config: { batch_input_shape?: (number | null)[] } }[] };
  };
  for (const layer of topology.config.layers)
    if (layer.class_name === 'InputLayer') layer.config.batch_input_shape = [null, size, size, 3];
  const pinned = await tf.models.modelFromJSON({ modelTopology: topology });
  pinned.setWeights(model.getWeights());
  return pinned;
}

/** A 5-level U-Net at 32 px (ngf 4) with batch norm and dropout: the pix2pix generator, small. */
const smallUnet = () =>
  unetGenerator({ size: 32, inChannels: 3, outChannels: 3, numDowns: 5, ngf: 4, norm: 'batch', dropout: true });

const maxAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

describe('freeSizeModel', () => {
  it('rebuilds a fixed-size (older) U-Net and ResNet generator for any size, sharing its weights, with the same output at the old size', async () => {
    const unet = smallUnet();
    const resnet = resnetGenerator({ size: 16, inChannels: 3, outChannels: 3, ngf: 4, blocks: 1, norm: 'instance' });
    for (const [built, size, multiple] of [
      [unet, 32, 32],
      [resnet, 16, 4],
    ] as const) {
      randomise(built, 3);
      const model = await pinnedInputSize(built, size);
      expect(model.inputs[0]!.shape).toEqual([null, size, size, 3]);
      const buffers = tf.memory().numDataBuffers;
      const free = await freeSizeModel(model);
      expect(free).not.toBe(model);
      // The rebuilt model shares the weight buffers: no new ones.
      expect(tf.memory().numDataBuffers).toBe(buffers);
      const shared = free.weights.every((w, i) => w.read().dataId === model.weights[i]!.read().dataId);
      expect(shared).toBe(true);
      expect(free.inputs[0]!.shape).toEqual([null, null, null, 3]);
      expect(strideMultiple(free)).toBe(multiple);
      const x = tf.randomUniform([1, size, size, 3], -1, 1, 'float32', 5);
      const a = model.predict(x) as tf.Tensor;
      const b = free.predict(x) as tf.Tensor;
      expect(maxAbsDiff(a.dataSync() as Float32Array, b.dataSync() as Float32Array)).toBe(0);
      const big = free.predict(tf.zeros([1, 2 * multiple, 3 * multiple, 3])) as tf.Tensor;
      expect(big.shape).toEqual([1, 2 * multiple, 3 * multiple, 3]);
      tf.dispose([x, a, b, big]);
      // Disposing the rebuilt model leaves the original working.
      free.dispose();
      const y = model.predict(tf.zeros([1, size, size, 3])) as tf.Tensor;
      expect(y.shape).toEqual([1, size, size, 3]);
      y.dispose();
      model.dispose();
      // Networks built today take any size already: they come back as they are.
      expect(await freeSizeModel(built)).toBe(built);
    }
    unet.dispose();
    resnet.dispose();
  });

  it("without --eval uses the image's own batch-norm statistics and dropout, and never changes the running statistics", async () => {
    const unet = smallUnet();
    randomise(unet, 7);
    const stats = () =>
      unet.weights.filter((w) => /moving_mean/.test(w.name)).map((w) => Array.from(w.read().dataSync()));
    const before = stats();
    const train = await imageTranslator(unet, false);
    const evalT = await imageTranslator(unet, true);
    expect(train.multiple).toBe(32);
    expect(train.inChannels).toBe(3);
    const x = tf.randomUniform([1, 64, 32, 3], -1, 1, 'float32', 9) as tf.Tensor4D;
    const yt = train.fn(x) as tf.Tensor;
    const ye = evalT.fn(x) as tf.Tensor;
    // Batch statistics of this image differ from the running ones (0 and 1 here).
    expect(maxAbsDiff(yt.dataSync() as Float32Array, ye.dataSync() as Float32Array)).toBeGreaterThan(1e-3);
    // Deterministic (seeded dropout) and the running statistics stay as they were.
    const yt2 = train.fn(x) as tf.Tensor;
    expect(maxAbsDiff(yt.dataSync() as Float32Array, yt2.dataSync() as Float32Array)).toBe(0);
    expect(stats()).toEqual(before);
    tf.dispose([x, yt, ye, yt2]);
    unet.dispose();
  });
});

describe('padding to the stride multiple', () => {
  it('reflects indices for any pad width, as mirrorPad does for small ones', () => {
    expect(Array.from({ length: 11 }, (_, i) => reflectIndex(i - 4, 3))).toEqual([0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2]);
    expect(reflectIndex(5, 1)).toBe(0);
    const img = scene(5, 7, 2);
    const mine = reflectPad(img, 9, 12, 2, 3);
    const ref = tf.tidy(() =>
      tf
        .mirrorPad(
          tf.tensor3d(img.data, [5, 7, 2]),
          [
            [2, 2],
            [3, 2],
            [0, 0],
          ],
          'reflect',
        )
        .dataSync(),
    );
    expect(Array.from(mine.data)).toEqual(Array.from(ref));
  });

  it('runs a network on the padded image and crops the output back', async () => {
    const seen: number[][] = [];
    const fn = (x: tf.Tensor4D) => {
      seen.push(x.shape);
      return tf.tidy(() => tf.neg(x));
    };
    const img = scene(21, 30);
    const out = await forwardPadded(fn, img, 8);
    expect(seen).toEqual([[1, 24, 32, 3]]);
    expect([out.height, out.width, out.channels]).toEqual([21, 30, 3]);
    expect(
      maxAbsDiff(
        out.data,
        img.data.map((v) => -v),
      ),
    ).toBe(0);
  });
});

describe('tiles', () => {
  it('plans windows at multiples of the stride that cover the image with the overlap asked for', () => {
    expect(tileOrigins(100, 40, 24)).toEqual([0, 24, 48, 60]);
    expect(tileOrigins(30, 40, 24)).toEqual([0]);
    const p = tilePlan(260, 400, { multiple: 4, tile: 192, overlap: 128 });
    expect(p.ys).toEqual([0, 64, 68]);
    expect(p.xs).toEqual([0, 64, 128, 192, 208]);
    for (const o of [...p.ys, ...p.xs]) expect(o % 4).toBe(0);
    expect(() => tilePlan(260, 400, { multiple: 32, tile: 64, overlap: 48 })).toThrow(/--tile 64: leaves no room/);
  });

  it('equals the whole-image output for a network without normalisation (receptive field within the context)', async () => {
    const g = resnetGenerator({ size: 16, inChannels: 3, outChannels: 3, ngf: 4, blocks: 1, norm: 'none' });
    randomise(g, 11, 0.25);
    const { fn, multiple } = await imageTranslator(g, true);
    const img = scene(258, 397);
    const before = tf.memory().numTensors;
    const whole = await forwardPadded(fn, img, multiple);
    const tiled = await forwardTiled(fn, img, { multiple, tile: 192, overlap: 128 });
    expect(tf.memory().numTensors).toBe(before);
    expect([tiled.height, tiled.width, tiled.channels]).toEqual([258, 397, 3]);
    // The output is not flat (the comparison means something) …
    const mean = whole.data.reduce((s, v) => s + v, 0) / whole.data.length;
    const std = Math.sqrt(whole.data.reduce((s, v) => s + (v - mean) ** 2, 0) / whole.data.length);
    expect(std).toBeGreaterThan(0.05);
    // … and the tiles reproduce it.
    expect(maxAbsDiff(tiled.data, whole.data)).toBeLessThan(1e-5);
    g.dispose();
  });

  it('leaves no step at tile borders for an instance-normalised network (a hard cut between the same tiles does)', async () => {
    const g = resnetGenerator({ size: 16, inChannels: 3, outChannels: 3, ngf: 4, blocks: 1, norm: 'instance' });
    randomise(g, 13, 0.25);
    const { fn, multiple } = await imageTranslator(g, true);
    // A smooth scene (ramp and slow waves), so the output's own row-to-row variation is small.
    const img = scene(256, 256, 3, 0);
    const o = { multiple, tile: 128, overlap: 64 };
    const blended = await forwardTiled(fn, img, o);
    // The same windows cut hard at the middle of each overlap, for comparison.
    const p = tilePlan(256, 256, o);
    const hard = new Float32Array(256 * 256 * 3);
    const cutsY = p.ys.slice(1).map((s, i) => (s + p.ys[i]! + p.th) / 2);
    for (const [iy, y0] of p.ys.entries()) {
      for (const [ix, x0] of p.xs.entries()) {
        const out = await forwardImage(fn, cropWindow(img, y0, x0, p.th, p.tw));
        const [ya, yb] = [iy === 0 ? 0 : cutsY[iy - 1]!, iy === p.ys.length - 1 ? 256 : cutsY[iy]!];
        const cutsX = p.xs.slice(1).map((s, i) => (s + p.xs[i]! + p.tw) / 2);
        const [xa, xb] = [ix === 0 ? 0 : cutsX[ix - 1]!, ix === p.xs.length - 1 ? 256 : cutsX[ix]!];
        for (let y = ya; y < yb; y++)
          for (let x = xa; x < xb; x++)
            for (let k = 0; k < 3; k++) hard[(y * 256 + x) * 3 + k] = out.data[((y - y0) * p.tw + x - x0) * 3 + k]!;
      }
    }
    // Mean |change| between rows 4 apart (the random network's transposed convolutions print a period-4 pattern,
    // which rows 4 apart do not see); the rows straddling a hard cut are where a seam would be.
    const rowSteps = (d: Float32Array) =>
      Array.from({ length: 252 }, (_, y) => {
        let s = 0;
        for (let i = 0; i < 256 * 3; i++) s += Math.abs(d[(y + 4) * 256 * 3 + i]! - d[y * 256 * 3 + i]!);
        return s / (256 * 3);
      });
    const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
    const hardSteps = rowSteps(hard);
    const blendSteps = rowSteps(blended.data);
    expect(cutsY.length).toBeGreaterThan(0);
    // Instance norm per tile: hard cuts show a step well above the image's own variation …
    for (const c of cutsY) expect(hardSteps[c - 2]!).toBeGreaterThan(2 * median(hardSteps));
    // … the blend shows none anywhere across the overlaps (the hard cut's row and the blend ramps around it).
    for (const c of cutsY) {
      const zone = blendSteps.slice(c - 2 - p.overlap / 2, c - 2 + p.overlap / 2);
      expect(Math.max(...zone)).toBeLessThan(1.5 * median(blendSteps));
    }
    g.dispose();
  });

  it('measures the tensor bytes per pixel of a pass', async () => {
    const g = resnetGenerator({ size: 16, inChannels: 3, outChannels: 3, ngf: 4, blocks: 1, norm: 'instance' });
    const { fn, multiple } = await imageTranslator(g, true);
    const before = tf.memory().numTensors;
    const bpp = await measureBytesPerPixel(fn, multiple, 3);
    expect(tf.memory().numTensors).toBe(before);
    // At least the output (3 floats) and the first layer's 4 channels per pixel; well below a megabyte.
    expect(bpp).toBeGreaterThan(4 * 7);
    expect(bpp).toBeLessThan(4 * 1000);
    g.dispose();
  });
});

function cropWindow(img: FloatImage, y0: number, x0: number, h: number, w: number): FloatImage {
  const c = img.channels;
  const out = new Float32Array(h * w * c);
  for (let y = 0; y < h; y++)
    out.set(img.data.subarray(((y0 + y) * img.width + x0) * c, ((y0 + y) * img.width + x0 + w) * c), y * w * c);
  return { data: out, height: h, width: w, channels: c };
}
