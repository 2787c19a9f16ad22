/**
 * pix2pix as a core `GanTask`: a conditional GAN on aligned pairs (A → B).
 *
 *   D step: minimise loss_D(D(A, B), D(A, G(A))) — the PatchGAN scores every patch of the input/output pair;
 *           no gradient reaches G (the reference's fake.detach()).
 *   G step: minimise λ_GAN · loss_G(D(A, G(A))) + λ_L1 · |G(A) − B|₁, λ_L1 = 100, against the updated D.
 *   A training step computes G(A) once for both, as the reference does (`trainStep`).
 *
 * With λ_GAN = 0 (`train --lambda-gan 0`) D is not trained at all and G learns by L1 alone: the L1-only
 * baseline of the paper's Table 1, which `evaluate --baseline` compares against.
 */

import {
  type AdversarialLoss,
  adam,
  EpochSampler,
  type GanTask,
  type Losses,
  l1 as meanAbsoluteError,
  mixSeed,
  mulberry32,
  optimize,
  optimizeSharingForward,
  type SampleGrid,
} from '@gantry/core/browser';
import * as tf from '@tensorflow/tfjs';
import type { Pix2pixConfig } from './networks.js';

type Batch = { a: tf.Tensor4D; b: tf.Tensor4D };

/** What the task reads of a dataset of pairs (Node's AlignedDataset; the page's pairs in memory). */
export interface PairSource {
  readonly length: number;
  batch(indices: ArrayLike<number>, rng: () => number): Promise<{ a: tf.Tensor4D; b: tf.Tensor4D }>;
}

export interface Pix2pixTaskOptions {
  nets: { generator: tf.LayersModel; discriminator: tf.LayersModel };
  config: Pix2pixConfig;
  /** What checkpoints store as the run's configuration, and the keys a resumed checkpoint must share. */
  checkpointConfig: Record<string, unknown>;
  mustMatch: string[];
  loss: AdversarialLoss;
  lr: number;
  beta1: number;
  seed: number;
  batchSize: number;
  /** Training pairs (augmented as the dataset's transform says): Node's AlignedDataset, or pairs in memory. */
  train: PairSource;
  /** Pairs for the sample strips (first `sampleCount`, untransformed apart from resizing); default `train`. */
  samples?: PairSource;
  sampleCount?: number;
}

export class Pix2pixTask implements GanTask<Batch> {
  readonly variant = 'pix2pix';
  readonly config: Record<string, unknown>;
  readonly mustMatch: string[];
  readonly nets: { generator: tf.LayersModel; discriminator: tf.LayersModel };
  readonly optimizers: { G: tf.Optimizer; D: tf.Optimizer };
  readonly stepsPerEpoch: number;
  readonly lossName: string;
  private readonly sampler: EpochSampler;
  private sampleBatch?: Batch;

  constructor(private readonly o: Pix2pixTaskOptions) {
    this.config = o.checkpointConfig;
    this.mustMatch = o.mustMatch;
    this.lossName = o.loss.name;
    this.nets = o.nets;
    this.optimizers = { G: adam(o.lr, o.beta1), D: adam(o.lr, o.beta1) };
    this.sampler = new EpochSampler(o.train.length, o.batchSize, o.seed);
    this.stepsPerEpoch = this.sampler.stepsPerEpoch;
  }

  private get adversarial(): boolean {
    return this.o.config.lambdaGan > 0;
  }

  async nextBatch(step: number): Promise<Batch> {
    const { a, b } = await this.o.train.batch(this.sampler.indices(step), mulberry32(mixSeed(this.o.seed, step, 12)));
    return { a, b };
  }

  /** D's logits for input `a` paired with output `b`. */
  private score(a: tf.Tensor4D, b: tf.Tensor4D): tf.Tensor {
    return this.nets.discriminator.apply(tf.concat([a, b], -1), { training: true }) as tf.Tensor;
  }

  /** D's losses on the real pair and on `fake`, G's output for the batch. */
  private discriminatorLosses(batch: Batch, fake: tf.Tensor4D): Losses {
    const real = this.score(batch.a, batch.b);
    const d = this.o.loss.discriminator(real, this.score(batch.a, fake));
    return { D: d, D_real: tf.mean(tf.sigmoid(real)) as tf.Scalar };
  }

  /** G's losses for its output `fake`: L1 to the target, and the GAN loss when adversarial. */
  private generatorLosses(batch: Batch, fake: tf.Tensor4D): Losses {
    const { lambdaL1, lambdaGan } = this.o.config;
    const l1 = meanAbsoluteError(fake, batch.b);
    if (!this.adversarial) return { G: tf.mul(lambdaL1, l1) as tf.Scalar, L1: l1 };
    const gan = this.o.loss.generator(this.score(batch.a, fake));
    return { G: tf.add(tf.mul(lambdaGan, gan), tf.mul(lambdaL1, l1)) as tf.Scalar, G_GAN: gan, L1: l1 };
  }

  private generate(batch: Batch): tf.Tensor4D {
    return this.nets.generator.apply(batch.a, { training: true }) as tf.Tensor4D;
  }

  discriminatorStep(batch: Batch): Losses {
    if (!this.adversarial) return {};
    const fake = tf.tidy(() => this.generate(batch));
    try {
      return optimize(this.optimizers.D, [this.nets.discriminator], () => this.discriminatorLosses(batch, fake), 'D');
    } finally {
      fake.dispose();
    }
  }

  generatorStep(batch: Batch): Losses {
    return optimize(
      this.optimizers.G,
      [this.nets.generator],
      () => this.generatorLosses(batch, this.generate(batch)),
      'G',
    );
  }

  /**
   * D's update, then G's, on one forward pass of G, as the reference's `optimize_parameters` runs: D and G see
   * the same fake, dropout mask included (the two steps above draw a mask each), and G runs once less.
   */
  trainStep(batch: Batch): Losses {
    if (!this.adversarial) return this.generatorStep(batch);
    return optimizeSharingForward(
      {
        D: { optimizer: this.optimizers.D, models: [this.nets.discriminator] },
        G: { optimizer: this.optimizers.G, models: [this.nets.generator] },
      },
      () => this.generate(batch),
      (fake) => this.discriminatorLosses(batch, fake),
      (fake) => this.generatorLosses(batch, fake),
    );
  }

  /** G in inference mode (moving batch-norm statistics, no dropout); the caller disposes the result. */
  translate(a: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => this.nets.generator.apply(a, { training: false }) as tf.Tensor4D);
  }

  /** Rows of input | output | target for fixed pairs. */
  async sampleImages(): Promise<SampleGrid> {
    if (!this.sampleBatch) {
      const ds = this.o.samples ?? this.o.train;
      const n = Math.min(this.o.sampleCount ?? 4, ds.length);
      const { a, b } = await ds.batch(
        Array.from({ length: n }, (_, i) => i),
        mulberry32(1),
      );
      this.sampleBatch = { a, b };
    }
    const { a, b } = this.sampleBatch;
    const images = tf.tidy(() => {
      const out = this.translate(a);
      const n = a.shape[0];
      const rows: tf.Tensor4D[] = [];
      for (let i = 0; i < n; i++) for (const t of [a, out, b]) rows.push(tf.slice(t, i, 1));
      return tf.concat(rows) as tf.Tensor4D;
    });
    return { images, cols: 3 };
  }

  dispose(): void {
    if (this.sampleBatch) tf.dispose([this.sampleBatch.a, this.sampleBatch.b]);
    for (const opt of Object.values(this.optimizers)) opt.dispose();
  }
}
