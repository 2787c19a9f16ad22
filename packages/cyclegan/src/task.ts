/**
 * The CycleGAN training step as a core `GanTask`: four networks, one Adam for both generators and one for both
 * discriminators (as the reference), LSGAN by default, cycle consistency in both directions, identity loss and
 * an image history pool per discriminator.
 *
 * Order within a step: the trainer calls `discriminatorStep` first (with fakes from the generators' current
 * weights, passed through the pools), then `generatorStep` (against the just-updated discriminators). The
 * reference updates G first and then D with the same (pre-update) fakes; either way D learns on fakes of the
 * pre-update generators, and the pool mixes in older fakes anyway.
 */

import {
  type AdversarialLoss,
  adam,
  EpochSampler,
  type GanTask,
  gradientPenalty,
  ImagePool,
  type Losses,
  mixSeed,
  mulberry32,
  optimize,
  saveImageGrid,
  trainableVariables,
} from '@gantry/core';
import type { UnalignedDataset } from '@gantry/datasets';
import * as tf from '@tensorflow/tfjs';
import { cycleLoss, identityLoss } from './losses.js';
import type { CycleGanConfig } from './networks.js';

export interface CycleGanNets {
  /** A → B. */
  G_A: tf.LayersModel;
  /** B → A. */
  G_B: tf.LayersModel;
  /** Judges domain B (real B vs G_A's fakes). */
  D_A: tf.LayersModel;
  /** Judges domain A (real A vs G_B's fakes). */
  D_B: tf.LayersModel;
}

export interface CycleGanTaskOptions {
  config: CycleGanConfig;
  nets: CycleGanNets;
  /** The training split (its transform does the resize, random crop and flip). */
  data: UnalignedDataset;
  /** Fixed images shown in the sample grids, [K, S, S, C] each; the task owns and disposes them. */
  samples: { a: tf.Tensor4D; b: tf.Tensor4D };
  loss: AdversarialLoss;
  lr: number;
  beta1: number;
  seed: number;
  batchSize: number;
  /** Everything stored in checkpoints as the run's configuration. */
  checkpointConfig: Record<string, unknown>;
  mustMatch: string[];
}

type Batch = { a: tf.Tensor4D; b: tf.Tensor4D };

export class CycleGanTask implements GanTask<Batch> {
  readonly variant = 'cyclegan';
  readonly config: Record<string, unknown>;
  readonly mustMatch: string[];
  readonly nets: CycleGanNets & Record<string, tf.LayersModel>;
  readonly optimizers: { G: tf.Optimizer; D: tf.Optimizer };
  readonly stepsPerEpoch: number;
  readonly lossName: string;
  /** Fake-B history for D_A and fake-A history for D_B. */
  readonly poolB: ImagePool;
  readonly poolA: ImagePool;
  private readonly sampler: EpochSampler;

  constructor(private readonly o: CycleGanTaskOptions) {
    this.config = o.checkpointConfig;
    this.mustMatch = o.mustMatch;
    this.nets = { ...o.nets };
    this.lossName = o.loss.name;
    this.optimizers = { G: adam(o.lr, o.beta1), D: adam(o.lr, o.beta1) };
    this.sampler = new EpochSampler(o.data.length, o.batchSize, o.seed);
    this.stepsPerEpoch = this.sampler.stepsPerEpoch;
    this.poolB = new ImagePool(o.config.poolSize, mixSeed(o.seed, 21));
    this.poolA = new ImagePool(o.config.poolSize, mixSeed(o.seed, 22));
  }

  /** A shuffled pass over A per epoch; B is drawn at random per example (UnalignedDataset), seeded by step. */
  async nextBatch(step: number): Promise<Batch> {
    const { a, b } = await this.o.data.batch(this.sampler.indices(step), mulberry32(mixSeed(this.o.seed, step, 12)));
    return { a: a as tf.Tensor4D, b: b as tf.Tensor4D };
  }

  private g(net: tf.LayersModel, x: tf.Tensor): tf.Tensor4D {
    return net.apply(x, { training: true }) as tf.Tensor4D;
  }

  discriminatorStep(batch: Batch, step: number): Losses {
    const { G_A, G_B, D_A, D_B } = this.nets;
    const [fakeB, fakeA] = tf.tidy(() => [this.g(G_A, batch.a), this.g(G_B, batch.b)]);
    const pooledB = this.poolB.query(fakeB!);
    const pooledA = this.poolA.query(fakeA!);
    tf.dispose([fakeA!, fakeB!]);
    try {
      return optimize(
        this.optimizers.D,
        [D_A, D_B],
        () => {
          const score = (d: tf.LayersModel) => (x: tf.Tensor) => d.apply(x, { training: true }) as tf.Tensor;
          let dA = this.o.loss.discriminator(score(D_A)(batch.b), score(D_A)(pooledB));
          let dB = this.o.loss.discriminator(score(D_B)(batch.a), score(D_B)(pooledA));
          if (this.o.loss.needsGradientPenalty) {
            dA = tf.add(dA, gradientPenalty(score(D_A), batch.b, pooledB, 10, mixSeed(this.o.seed, step, 13)));
            dB = tf.add(dB, gradientPenalty(score(D_B), batch.a, pooledA, 10, mixSeed(this.o.seed, step, 14)));
          }
          return { D: tf.add(dA, dB) as tf.Scalar, D_A: dA, D_B: dB };
        },
        'D',
      );
    } finally {
      tf.dispose([pooledA, pooledB]);
    }
  }

  /**
   * One update of both generators on the full objective
   *   L = L_adv(G_A) + L_adv(G_B) + λ·(cycle A + cycle B) + λ·λ_idt·(identity A + identity B).
   * L is a sum of four parts that share no forward pass: per domain, the adversarial + cycle terms of x
   * (G(x) judged by D, F(G(x)) ≈ x) and the identity term (F(x) ≈ x). Each part is differentiated on its own
   * and the gradients are summed before one Adam update: the same update as one gradient of L, with at most two
   * generator passes' activations recorded at a time instead of six (what lets a 256×256 ResNet-9 step fit).
   */
  generatorStep(batch: Batch): Losses {
    const { G_A, G_B, D_A, D_B } = this.nets;
    const lambda = this.o.config.lambdaCycle;
    const idtWeight = this.o.config.lambdaIdentity;
    const logged: Record<string, tf.Scalar[]> = { G_A: [], G_B: [], cycle: [], idt: [] };
    let grads: tf.NamedTensorMap = {};
    const part = (models: tf.LayersModel[], f: () => Record<string, tf.Scalar>) => {
      const r = tf.variableGrads(() => {
        const terms = f();
        for (const [k, v] of Object.entries(terms)) logged[k]!.push(tf.keep(v));
        return tf.addN(Object.values(terms)) as tf.Scalar;
      }, trainableVariables(models));
      r.value.dispose();
      const sum: tf.NamedTensorMap = { ...grads };
      for (const [k, g] of Object.entries(r.grads)) {
        if (grads[k]) {
          sum[k] = tf.add(grads[k]!, g);
          tf.dispose([grads[k]!, g]);
        } else sum[k] = g;
      }
      grads = sum;
    };
    for (const [x, G, F, D, adv] of [
      [batch.a, G_A, G_B, D_A, 'G_A'],
      [batch.b, G_B, G_A, D_B, 'G_B'],
    ] as const) {
      part([G, F], () => {
        const fake = this.g(G, x);
        return {
          [adv]: this.o.loss.generator(D.apply(fake, { training: true }) as tf.Tensor),
          cycle: cycleLoss(x, this.g(F, fake), lambda),
        };
      });
      // F maps into x's domain, so F(x) should leave x unchanged.
      if (idtWeight > 0) part([F], () => ({ idt: identityLoss(x, this.g(F, x), lambda, idtWeight) }));
    }
    this.optimizers.G.applyGradients(grads);
    tf.dispose(Object.values(grads));
    const out: Losses = {};
    for (const [k, v] of Object.entries(logged)) {
      if (v.length === 0) continue;
      out[k] = v.length === 1 ? v[0]! : (tf.addN(v) as tf.Scalar);
      if (v.length > 1) tf.dispose(v);
    }
    out.G = tf.tidy(() => tf.addN(Object.values(out)) as tf.Scalar);
    return out;
  }

  /**
   * Rows of [real A, fake B, reconstructed A, real B, fake A, reconstructed B] for the fixed sample images, in
   * inference mode; the caller disposes the result.
   */
  sampleGrid(): tf.Tensor4D {
    const { G_A, G_B } = this.nets;
    const { a, b } = this.o.samples;
    return tf.tidy(() => {
      const fakeB = G_A.predict(a) as tf.Tensor4D;
      const recA = G_B.predict(fakeB) as tf.Tensor4D;
      const fakeA = G_B.predict(b) as tf.Tensor4D;
      const recB = G_A.predict(fakeA) as tf.Tensor4D;
      const k = Math.min(a.shape[0], b.shape[0]);
      const cut = (t: tf.Tensor4D) => tf.slice(t, 0, k);
      const rows = tf.stack([a, fakeB, recA, b, fakeA, recB].map(cut), 1);
      const [, , h, w, c] = rows.shape;
      return tf.reshape(rows, [k * 6, h!, w!, c!]) as tf.Tensor4D;
    });
  }

  async writeSamples(file: string): Promise<void> {
    const grid = this.sampleGrid();
    try {
      await saveImageGrid(grid, file, { cols: 6 });
    } finally {
      grid.dispose();
    }
  }

  dispose(): void {
    this.poolA.dispose();
    this.poolB.dispose();
    tf.dispose([this.o.samples.a, this.o.samples.b]);
    for (const opt of Object.values(this.optimizers)) opt.dispose();
  }
}
