import {
  adversarialLoss,
  ClassConditionalAffine,
  initBackend,
  type LabelledImages,
  type LatentGanOptions,
  LatentGanTask,
  modeSeekingLoss,
  seedWeights,
} from '@gantry/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildDiscriminator, buildGenerator, type CganConfig } from './index.js';

const config = (conditioning: CganConfig['conditioning'], auxWeight = 0, g: Partial<CganConfig> = {}): CganConfig => ({
  latentDim: 16,
  imageSize: 28,
  numClasses: 10,
  ngf: 8,
  ndf: 8,
  conditioning,
  embeddingDim: 10,
  auxWeight,
  conditionalBn: false,
  ...g,
});

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: () => {} });
});

describe.each(['projection', 'concat'] as const)('cgan networks (%s)', (conditioning) => {
  it.each([{}, { conditionalBn: true }, { conditionalBn: true, finalConv: true }])(
    'G maps (z, label) to 28×28 images in [-1, 1]; the label alone changes the image (%o)',
    (options) => {
      seedWeights(1);
      const g = buildGenerator(config(conditioning, 0, options));
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
    },
  );

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
      return [buildGenerator(config(conditioning)), buildDiscriminator(config(conditioning))].flatMap((m) =>
        m.getWeights().map((w) => Array.from(w.dataSync())),
      );
    };
    expect(weights()).toEqual(weights());
  });
});

/** 40 "digits": class c is a bright horizontal bar at row 2c + 4, so the class is learnable from the image. */
const bars: LabelledImages = {
  count: 40,
  batch(indices) {
    return tf.tidy(() => {
      const labels = Array.from(indices, (i) => i % 10);
      const x = tf.stack(
        labels.map((c) =>
          tf
            .pad(tf.ones([2, 28, 1]), [
              [2 * c + 4, 22 - 2 * c],
              [0, 0],
              [0, 0],
            ])
            .mul(2)
            .sub(1),
        ),
      ) as tf.Tensor4D;
      return { x, y: tf.tensor1d(labels, 'int32') };
    });
  },
};

/** A cGAN training task on the bars; `o` sets what each test varies (networks not given are built from `c`, G first). */
const barsTask = (c: CganConfig, o: Partial<LatentGanOptions> & Pick<LatentGanOptions, 'lr' | 'batchSize'>) =>
  new LatentGanTask({
    variant: 'cgan',
    generator: o.generator ?? buildGenerator(c),
    discriminator: o.discriminator ?? buildDiscriminator(c),
    latentDim: 16,
    numClasses: 10,
    loss: adversarialLoss('bce'),
    beta1: 0.5,
    seed: 1,
    data: bars,
    config: { ...c },
    mustMatch: [],
    ...o,
  });

describe('auxiliary classifier (--aux-weight)', () => {
  it('D gets class logits and learns to classify real images; D and G losses carry the class term', () => {
    seedWeights(3);
    const c = config('projection', 1);
    const d = buildDiscriminator(c);
    expect(d.outputs.map((o) => o.shape)).toEqual([
      [null, 1],
      [null, 10],
    ]);
    const task = barsTask(c, { discriminator: d, lr: 2e-3, batchSize: 10, auxClassifierWeight: 1 });
    const clsLoss: number[] = [];
    for (let step = 0; step < 40; step++) {
      const batch = task.nextBatch(step);
      const losses = { ...task.discriminatorStep(batch, step), ...task.generatorStep(batch, step) };
      expect(Object.keys(losses)).toEqual(expect.arrayContaining(['D', 'D_cls', 'G', 'G_cls']));
      clsLoss.push(losses.D_cls!.dataSync()[0]!);
      tf.dispose([...Object.values(losses), ...Object.values(batch)]);
    }
    // Cross-entropy of 10 classes starts near ln 10 ≈ 2.3; the bars are easy to tell apart.
    expect(clsLoss[0]).toBeGreaterThan(1.5);
    expect(Math.max(...clsLoss.slice(-5))).toBeLessThan(0.5 * clsLoss[0]!);
    task.dispose();
  });

  it('without it D has one output (the default)', () => {
    expect(buildDiscriminator(config('projection')).outputs).toHaveLength(1);
  });
});

describe('conditional batch norm in G (--conditional-bn)', () => {
  it('a G step moves the per-class scale and shift of the classes it drew and no other', () => {
    seedWeights(4);
    const c = config('projection', 0, { conditionalBn: true });
    const generator = buildGenerator(c);
    const affine = generator.layers.filter((l) => l instanceof ClassConditionalAffine);
    expect(affine).toHaveLength(2); // after the dense layer and after the first deconv
    const task = barsTask(c, { generator, lr: 1e-2, batchSize: 4 });
    const gammas = () => affine.map((l) => l.getWeights()[0]!.arraySync() as number[][]);
    const before = gammas();
    const batch = task.nextBatch(0);
    const drawn = new Set(batch.yFake.arraySync() as number[]);
    tf.dispose([...Object.values(task.discriminatorStep(batch, 0)), ...Object.values(task.generatorStep(batch, 0))]);
    const after = gammas();
    for (const [l, rows] of after.entries()) {
      for (let k = 0; k < 10; k++) {
        if (drawn.has(k)) expect(rows[k], `layer ${l} class ${k}`).not.toEqual(before[l]![k]);
        else expect(rows[k], `layer ${l} class ${k}`).toEqual(before[l]![k]);
      }
    }
    expect(drawn.size).toBeLessThan(10);
    tf.dispose(Object.values(batch));
    task.dispose();
  });
});

describe('mode-seeking term (--mode-seeking)', () => {
  it("adds λ·modeSeekingLoss to G's loss over pairs that share a label: the batch's second half repeats the first half's labels", () => {
    seedWeights(5);
    const c = config('projection', 0, { conditionalBn: true });
    const task = barsTask(c, { lr: 2e-3, batchSize: 5, modeSeekingWeight: 0.5 });
    const batch = task.nextBatch(0);
    const y = batch.yFake.arraySync() as number[];
    // Two pairs (samples 0–2 and 1–3), the odd fifth sample keeps its own label and is not compared.
    const term = (labels: number[]) =>
      tf.tidy(() => {
        const images = task.nets.generator.apply([batch.z, tf.tensor2d(labels, [5, 1], 'int32')], {
          training: true,
        }) as tf.Tensor;
        return 0.5 * modeSeekingLoss(images, batch.z, 2).dataSync()[0]!;
      });
    const paired = term([y[0]!, y[1]!, y[0]!, y[1]!, y[4]!]);
    expect(term(y)).not.toBeCloseTo(paired, 3); // the drawn labels do not pair up by chance, so the test can tell
    const losses = task.generatorStep(batch, 0);
    expect(losses.G_ms!.dataSync()[0]).toBeCloseTo(paired, 4);
    tf.dispose([...Object.values(losses), ...Object.values(batch)]);
    task.dispose();
  });
});
