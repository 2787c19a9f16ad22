import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { seedWeights } from '../train/rng.js';
import { BATCH_GROUPS, BatchNormalization } from './batch-norm.js';
import {
  ClassConditionalAffine,
  convBlock,
  countParams,
  denseBlock,
  InstanceNormalization,
  MinibatchStddev,
  normLayer,
  patchDiscriminator,
  ReflectionPadding2D,
  resnetGenerator,
} from './networks.js';

beforeAll(async () => {
  // initBackend also registers Gantry's gradient fixes (the exact MirrorPad gradient among them).
  await initBackend({ backend: 'cpu', log: () => {} });
});

const close = (actual: ArrayLike<number>, expected: number[], digits = 5) => {
  expect(actual.length).toBe(expected.length);
  for (const [i, v] of Array.from(actual).entries()) expect(v).toBeCloseTo(expected[i]!, digits);
};

describe('InstanceNormalization', () => {
  // Reference values: numpy (x − mean) / sqrt(var + 1e-5) over H×W per sample and channel, as torch's InstanceNorm2d.
  it('normalises each channel over H×W', () => {
    const layer = new InstanceNormalization();
    const x = tf.tensor4d([1, 2, 3, 4], [1, 2, 2, 1]);
    close(
      (layer.apply(x) as tf.Tensor).dataSync(),
      [-1.3416354199689269, -0.447211806656309, 0.447211806656309, 1.3416354199689269],
    );
  });

  it('keeps channels and samples apart', () => {
    const layer = new InstanceNormalization();
    const one = [1, 10, 2, 20, 3, 30, 4, 50];
    // The second sample is the first scaled and shifted: instance norm must give it the same output.
    const x = tf.tensor4d([...one, ...one.map((v) => 3 * v + 7)], [2, 2, 2, 2]);
    const expected = [
      -1.3416354199689269, -1.183215929574988, -0.447211806656309, -0.5070925412464234, 0.447211806656309,
      0.16903084708214114, 1.3416354199689269, 1.5212776237392702,
    ];
    const y = (layer.apply(x) as tf.Tensor).dataSync();
    close(y.slice(0, 8), expected);
    close(y.slice(8), expected, 4);
  });

  it('maps a constant image to zeros (zero variance, no NaN)', () => {
    const y = (new InstanceNormalization().apply(tf.fill([1, 3, 3, 2], 5)) as tf.Tensor).dataSync();
    expect(Array.from(y).every((v) => v === 0)).toBe(true);
  });

  it('applies gamma and beta when affine, and round-trips its config', () => {
    const input = tf.input({ shape: [2, 2, 1] });
    const layer = new InstanceNormalization({ affine: true, epsilon: 1e-3 });
    const model = tf.model({ inputs: input, outputs: layer.apply(input) as tf.SymbolicTensor });
    layer.setWeights([tf.tensor1d([2]), tf.tensor1d([0.5])]);
    const x = [1, 2, 3, 4];
    const expected = x.map((v) => (2 * (v - 2.5)) / Math.sqrt(1.25 + 1e-3) + 0.5);
    close((model.predict(tf.tensor4d(x, [1, 2, 2, 1])) as tf.Tensor).dataSync(), expected);
    expect(layer.getConfig()).toMatchObject({ affine: true, epsilon: 1e-3 });
  });
});

describe('ClassConditionalAffine', () => {
  it("scales and shifts each sample's channels by its own class's parameters, and survives a save and load", async () => {
    const x = tf.input({ shape: [1, 2, 2] });
    const label = tf.input({ shape: [1], dtype: 'int32' });
    const layer = new ClassConditionalAffine({ numClasses: 3 });
    const model = tf.model({ inputs: [x, label], outputs: layer.apply([x, label]) as tf.SymbolicTensor });
    // γ, β: [classes, channels].
    layer.setWeights([tf.tensor2d([1, 1, 2, 3, -1, 0.5], [3, 2]), tf.tensor2d([0, 0, 10, 20, 1, 2], [3, 2])]);
    const xs = [1, 2, 3, 4, 1, 2, 3, 4];
    const labels = tf.tensor2d([1, 2], [2, 1], 'int32');
    // Sample 0 is class 1 (γ 2, 3; β 10, 20), sample 1 class 2 (γ −1, 0.5; β 1, 2); channels alternate.
    const expected = [12, 26, 16, 32, 0, 3, -2, 4];
    close((model.predict([tf.tensor4d(xs, [2, 1, 2, 2]), labels]) as tf.Tensor).dataSync(), expected);
    const saved: tf.io.ModelArtifacts[] = [];
    await model.save(
      tf.io.withSaveHandler(async (artifacts) => {
        saved.push(artifacts);
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
    const loaded = await tf.loadLayersModel(tf.io.fromMemory(saved[0]!));
    close((loaded.predict([tf.tensor4d(xs, [2, 1, 2, 2]), labels]) as tf.Tensor).dataSync(), expected);
  });
});

describe('BatchNormalization', () => {
  it("saves as TF.js's own BatchNormalization and loads as Gantry's, with the same weights and outputs", async () => {
    const x = tf.input({ shape: [2, 2, 3] });
    const model = tf.model({ inputs: x, outputs: normLayer(x, 'batch') as tf.SymbolicTensor });
    const layer = model.layers[1]!;
    expect(layer).toBeInstanceOf(BatchNormalization);
    layer.setWeights(
      [
        [2, 1, 0.5],
        [0, 1, -1],
        [1, 0, 2],
        [4, 1, 0.25],
      ].map((w) => tf.tensor1d(w)),
    );
    const xs = tf.tensor4d(
      Array.from({ length: 12 }, (_, i) => i),
      [1, 2, 2, 3],
    );
    const expected = Array.from((model.predict(xs) as tf.Tensor).dataSync());
    const saved: tf.io.ModelArtifacts[] = [];
    await model.save(
      tf.io.withSaveHandler(async (artifacts) => {
        saved.push(artifacts);
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
    expect(JSON.stringify(saved[0]!.modelTopology)).toContain('"class_name":"BatchNormalization"');
    const loaded = await tf.loadLayersModel(tf.io.fromMemory(saved[0]!));
    expect(loaded.layers[1]).toBeInstanceOf(BatchNormalization);
    // Inference with the running statistics: (x − mean) / √(var + ε) · γ + β for channel 0 of pixel 0.
    expect(expected[0]).toBeCloseTo(((0 - 1) / Math.sqrt(4 + 1e-5)) * 2 + 0, 5);
    close((loaded.predict(xs) as tf.Tensor).dataSync(), expected);
  });
});

describe('a batch of stacked groups (BATCH_GROUPS)', () => {
  it("reaches a model's batch norm: one pass gives what each group alone gives, running averages included", () => {
    const build = () => {
      seedWeights(5);
      const x = tf.input({ shape: [6, 6, 2] });
      let h = convBlock(x, { filters: 4, norm: 'batch', act: 'leaky' });
      h = tf.layers.flatten().apply(h) as tf.SymbolicTensor;
      return tf.model({ inputs: x, outputs: denseBlock(h, 1, 'none') });
    };
    const [one, two] = [build(), build()];
    const real = tf.randomNormal([3, 6, 6, 2], 0, 1, 'float32', 1);
    const fake = tf.randomNormal([3, 6, 6, 2], 0.5, 2, 'float32', 2);
    const lossOf = (scores: tf.Tensor[]) => tf.add(tf.sum(tf.square(scores[0]!)), tf.sum(scores[1]!)) as tf.Scalar;
    const run = (model: tf.LayersModel, grouped: boolean) => {
      const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
      const { value, grads } = tf.variableGrads(() => {
        if (!grouped) return lossOf([real, fake].map((x) => model.apply(x, { training: true }) as tf.Tensor));
        const both = model.apply(tf.concat([real, fake]), { training: true, [BATCH_GROUPS]: 2 }) as tf.Tensor;
        return lossOf(tf.split(both, 2));
      }, vars);
      return [value, ...vars.map((v) => grads[v.name]!), ...model.getWeights()];
    };
    const [separate, grouped] = [run(one, false), run(two, true)];
    // The loss, 5 gradients (conv kernel, γ, β, dense kernel and bias), then 7 weights with the running averages.
    expect(separate.length).toBe(1 + 5 + 7);
    const moving = two.weights.findIndex((w) => /moving_mean/.test(w.name));
    expect(moving).toBeGreaterThan(0);
    expect(Array.from(grouped[6 + moving]!.dataSync()).some((v) => v !== 0)).toBe(true);
    for (const [i, t] of separate.entries()) {
      const diff = tf.max(tf.abs(tf.sub(t, grouped[i]!))).dataSync()[0]!;
      expect(diff, `tensor ${i}`).toBeLessThan(1e-5);
    }
    // One joint batch norm over both groups would differ.
    const joint = tf.split(one.apply(tf.concat([real, fake]), { training: true }) as tf.Tensor, 2);
    const alone = one.apply(real, { training: true }) as tf.Tensor;
    expect(tf.max(tf.abs(tf.sub(joint[0]!, alone))).dataSync()[0]!).toBeGreaterThan(1e-2);
  });

  it('must divide the batch', () => {
    const x = tf.input({ shape: [4] });
    const model = tf.model({ inputs: x, outputs: normLayer(x, 'batch') as tf.SymbolicTensor });
    expect(() => model.apply(tf.ones([3, 4]), { training: true, [BATCH_GROUPS]: 2 })).toThrow(/divides the batch/);
  });
});

describe('MinibatchStddev', () => {
  // The feature by hand: per group of consecutive rows, the population standard deviation of each column
  // (with the layer's 1e-8 under the root), averaged over the columns.
  const byHand = (rows: number[][], group: number) =>
    rows.map((_, i) => {
      const members = rows.slice(i - (i % group), i - (i % group) + group);
      const stds = rows[0]!.map((__, j) => {
        const col = members.map((r) => r[j]!);
        const mean = col.reduce((a, b) => a + b, 0) / col.length;
        return Math.sqrt(col.reduce((a, b) => a + (b - mean) ** 2, 0) / col.length + 1e-8);
      });
      return stds.reduce((a, b) => a + b, 0) / stds.length;
    });
  const rows = (n: number, seed: number) =>
    Array.from({ length: n }, (_, i) => [Math.sin(seed + i), Math.cos(3 * seed + 2 * i), (i * seed) % 5]);

  it('appends the mean over features of the standard deviation over each group of consecutive samples', () => {
    const x = rows(8, 1);
    const y = new MinibatchStddev({ groupSize: 4 }).apply(tf.tensor2d(x)) as tf.Tensor2D;
    expect(y.shape).toEqual([8, 4]);
    const out = y.arraySync();
    close(
      out.map((r) => r[3]!),
      byHand(x, 4),
    );
    close(
      out.flatMap((r) => r.slice(0, 3)),
      x.flat(),
    ); // the features themselves pass through
  });

  it('keeps stacked batches (BATCH_GROUPS) apart, and takes a whole stack the group size does not divide', () => {
    const [real, fake] = [rows(6, 2), rows(6, 7)];
    const layer = new MinibatchStddev({ groupSize: 4 });
    const y = layer.apply(tf.tensor2d([...real, ...fake]), { [BATCH_GROUPS]: 2 }) as tf.Tensor2D;
    close(
      y.arraySync().map((r) => r[3]!),
      [...byHand(real, 6), ...byHand(fake, 6)],
    );
  });

  it('has the gradient and the gradient of the gradient of the textbook formula (means over reshaped groups)', () => {
    // The layer computes group means as matrix products; the reference broadcasts over a [groups, g, features]
    // reshape. Both under an R1-like penalty, |∂(w·out)/∂x|², differentiated again with respect to x.
    const textbook = (x: tf.Tensor2D, g: number): tf.Tensor2D => {
      const [batch, features] = x.shape;
      const grouped = tf.reshape(x, [batch / g, g, features]);
      const centred = tf.sub(grouped, tf.mean(grouped, 1, true));
      const std = tf.mean(tf.sqrt(tf.add(tf.mean(tf.square(centred), 1), 1e-8)), 1, true); // [groups, 1]
      return tf.concat([x, tf.reshape(tf.tile(tf.expandDims(std, 1), [1, g, 1]), [batch, 1])], 1);
    };
    const layer = new MinibatchStddev({ groupSize: 3 });
    const x = tf.tensor2d(rows(6, 5));
    const w = tf.tensor2d([[0.3], [-1.2], [0.7], [2.5]]);
    type Out = (u: tf.Tensor2D) => tf.Tensor2D;
    const score = (out: Out) => (u: tf.Tensor) => tf.sum(tf.matMul(out(u as tf.Tensor2D), w));
    const penaltyGradient = (out: Out) => tf.grad((v) => tf.sum(tf.square(tf.grad(score(out))(v))))(x);
    const ours: Out = (u) => layer.apply(u) as tf.Tensor2D;
    close(ours(x).dataSync(), Array.from(textbook(x, 3).dataSync()));
    close(
      tf.grad(score(ours))(x).dataSync(),
      Array.from(
        tf
          .grad(score((u) => textbook(u, 3)))(x)
          .dataSync(),
      ),
    );
    close(penaltyGradient(ours).dataSync(), Array.from(penaltyGradient((u) => textbook(u, 3)).dataSync()), 3);
  });

  it('saves and loads with its group size, and has a gradient of its gradient (R1 penalty)', async () => {
    const input = tf.input({ shape: [3] });
    const out = denseBlock(new MinibatchStddev({ groupSize: 2 }).apply(input) as tf.SymbolicTensor, 1, 'none');
    const model = tf.model({ inputs: input, outputs: out });
    const copy = await tf.models.modelFromJSON({ modelTopology: model.toJSON(null, false) });
    copy.setWeights(model.getWeights());
    const x = tf.tensor2d(rows(4, 3));
    close((copy.predict(x) as tf.Tensor).dataSync(), Array.from((model.predict(x) as tf.Tensor).dataSync()));
    const penalty = (v: tf.Tensor) =>
      tf.sum(tf.square(tf.grad((u: tf.Tensor) => tf.sum(model.apply(u) as tf.Tensor))(v)));
    const g = tf.grad(penalty)(x).dataSync();
    expect(g.every(Number.isFinite)).toBe(true);
    expect(g.some((v) => v !== 0)).toBe(true);
  });
});

describe('ReflectionPadding2D', () => {
  it('pads like numpy.pad(mode="reflect")', () => {
    const x = tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 3, 3, 1]);
    const y = new ReflectionPadding2D({ padding: 1 }).apply(x) as tf.Tensor;
    expect(y.shape).toEqual([1, 5, 5, 1]);
    close(y.dataSync(), [5, 4, 5, 6, 5, 2, 1, 2, 3, 2, 5, 4, 5, 6, 5, 8, 7, 8, 9, 8, 5, 4, 5, 6, 5]);
  });

  it('pads non-square images by 2 and reports the output shape', () => {
    const x = tf.tensor4d(
      Array.from({ length: 12 }, (_, i) => i + 1),
      [1, 3, 4, 1],
    );
    const layer = new ReflectionPadding2D({ padding: 2 });
    const y = layer.apply(x) as tf.Tensor;
    // numpy.pad(np.arange(1, 13).reshape(3, 4), 2, mode='reflect')
    const expected = [
      [11, 10, 9, 10, 11, 12, 11, 10],
      [7, 6, 5, 6, 7, 8, 7, 6],
      [3, 2, 1, 2, 3, 4, 3, 2],
      [7, 6, 5, 6, 7, 8, 7, 6],
      [11, 10, 9, 10, 11, 12, 11, 10],
      [7, 6, 5, 6, 7, 8, 7, 6],
      [3, 2, 1, 2, 3, 4, 3, 2],
    ].flat();
    expect(y.shape).toEqual([1, 7, 8, 1]);
    close(y.dataSync(), expected);
    expect(layer.computeOutputShape([null, 3, 4, 5])).toEqual([null, 7, 8, 5]);
    expect(layer.computeOutputShape([null, null, null, 3])).toEqual([null, null, null, 3]);
  });

  it('has the exact gradient: border gradients flow back onto the pixels they copied', () => {
    const x = tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 3, 3, 1]);
    const w = tf.tensor4d(
      Array.from({ length: 25 }, (_, i) => i),
      [1, 5, 5, 1],
    );
    const layer = new ReflectionPadding2D({ padding: 1 });
    const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(layer.apply(t) as tf.Tensor, w)))(x);
    // Scatter-add of w through numpy's reflect-pad index map.
    close(g.dataSync(), [6, 21, 8, 33, 108, 39, 16, 51, 18]);
  });
});

describe('CycleGAN networks from these blocks', () => {
  it('ResNet generator keeps the size; PatchGAN gives a map of patch scores', () => {
    seedWeights(1);
    const g = resnetGenerator({ size: 32, inChannels: 3, outChannels: 3, ngf: 4, blocks: 2, norm: 'instance' });
    const d = patchDiscriminator({ size: 32, inChannels: 3, ndf: 4, layers: 3, norm: 'instance' });
    const x = tf.randomUniform([2, 32, 32, 3], -1, 1, 'float32', 1);
    const y = g.predict(x) as tf.Tensor;
    expect(y.shape).toEqual([2, 32, 32, 3]);
    const v = y.dataSync();
    expect(Math.max(...v.map(Math.abs))).toBeLessThanOrEqual(1);
    // 32 → 16 → 8 → 4, then two stride-1 4×4 convs padded 1 each side: 3, 2 (the reference's 30×30 at 256 px).
    expect((d.predict(x) as tf.Tensor).shape).toEqual([2, 2, 2, 1]);
    expect(countParams(g)).toBeGreaterThan(0);
    tf.dispose([x, y]);
  });
});
