/**
 * The noise-to-image GAN step shared by the vanilla GAN, DCGAN and the conditional GAN: G maps z (and a class
 * label, when conditional) to an image; D scores images (with the label). Variants supply only the networks.
 */
import * as tf from '@tensorflow/tfjs';
import { flag } from '../cli/flags.js';
import { BATCH_GROUPS } from '../nn/batch-norm.js';
import { type AdversarialLoss, gradientPenalty, modeSeekingLoss, r1Penalty } from './losses.js';
import { adam, lerp, optimize, optimizeSharingForward } from './optim.js';
import { EpochSampler, mixSeed, mulberry32 } from './rng.js';
import type { GanTask, Losses, SampleGrid } from './trainer.js';

/** Labelled images in memory, as MNIST is: `batch` returns images in [-1, 1] and int32 labels. */
export interface LabelledImages {
  readonly count: number;
  batch(indices: Int32Array): { x: tf.Tensor4D; y: tf.Tensor1D };
}

export interface LatentGanOptions {
  variant: string;
  /** Inputs: z [B, latentDim], plus labels [B] (int32) when `numClasses` is set. Output: images in [-1, 1]. */
  generator: tf.LayersModel;
  /**
   * Inputs: images, plus labels when conditional. Output: one score (logit) per image; with
   * `auxClassifierWeight`, a second output of class logits [B, numClasses].
   */
  discriminator: tf.LayersModel;
  latentDim: number;
  /** Set for a conditional G: it takes a class label beside z. */
  numClasses?: number;
  /**
   * Whether D takes the label as its second input (default: true for a conditional G, as in cGAN). False for a D
   * that predicts the class instead (ACGAN, Odena et al. 2017: D gets only the image and has class logits).
   */
  labelToDiscriminator?: boolean;
  loss: AdversarialLoss;
  lr: number;
  /** D's learning rate, when it differs from G's (the two time-scale update rule, Heusel et al. 2017); default `lr`. */
  discriminatorLr?: number;
  beta1: number;
  seed: number;
  batchSize: number;
  data: LabelledImages;
  config: Record<string, unknown>;
  mustMatch: string[];
  /**
   * A second generator of the same architecture that keeps an exponential moving average of G's weights
   * (Yazıcı et al. 2019); samples, `generate` and `export` use it. Omit to sample from G itself.
   */
  generatorEma?: tf.LayersModel;
  /** The average's decay per step (default 0.999), warmed up as min(decay, (1 + step) / (10 + step)). */
  ema?: number;
  /**
   * Weight of an auxiliary classification loss (ACGAN, Odena et al. 2017), for a D with class logits: D learns to
   * classify real digits, G to make fakes that D classifies as the requested class. Only reals train D's
   * classifier, so it never learns the classes from G's early, wrong fakes.
   */
  auxClassifierWeight?: number;
  /** γ of the R1 penalty on D's gradient at real samples (0 or omitted: none). */
  r1?: number;
  /**
   * Weight of the mode-seeking term (MSGAN, Mao et al. 2019) in G's loss (0 or omitted: none). G's batch is then
   * drawn as pairs: the second half repeats the first half's labels with other noise.
   */
  modeSeekingWeight?: number;
}

const R1_EVERY = 16;

/** Flags of the options above that every noise → image variant offers (its presets set their defaults). */
export const LATENT_GAN_FLAGS = {
  ema: flag.number(
    "decay of the generator's weight average used for sampling (0: sample from G itself)",
    (n) => n >= 0 && n < 1,
    'a decay in [0, 1)',
    {
      default: 0.999,
    },
  ),
  dLr: flag.positiveNumber("D's learning rate (default: --lr; TTUR, Heusel et al. 2017)"),
  r1: flag.nonNegativeNumber("γ of the R1 penalty on D's gradient at real images (Mescheder et al. 2018; 0: none)", {
    default: 0,
  }),
  modeSeeking: flag.nonNegativeNumber("weight of the mode-seeking term in G's loss (MSGAN, Mao et al. 2019; 0: none)", {
    default: 0,
  }),
};

type Batch = { x: tf.Tensor4D; y: tf.Tensor1D; z: tf.Tensor2D; yFake: tf.Tensor1D };
/** D's score of a batch, and its class logits when it has an auxiliary classifier. */
type Judgement = { score: tf.Tensor; logits?: tf.Tensor };

/** Noise for `count` samples, reproducible from `seed`. */
export function latentNoise(count: number, latentDim: number, seed: number): tf.Tensor2D {
  return tf.randomNormal([count, latentDim], 0, 1, 'float32', seed);
}

/** `labels` with entries pairs … 2·pairs−1 overwritten by copies of entries 0 … pairs−1: each of the first `pairs` gets a twin. */
function pairedLabels(labels: tf.Tensor1D, pairs: number): tf.Tensor1D {
  const first = tf.slice(labels, 0, pairs);
  return tf.concat([first, first, tf.slice(labels, 2 * pairs)]);
}

export class LatentGanTask implements GanTask<Batch> {
  readonly variant: string;
  readonly config: Record<string, unknown>;
  readonly mustMatch: string[];
  readonly nets: { generator: tf.LayersModel; discriminator: tf.LayersModel; generator_ema?: tf.LayersModel };
  readonly optimizers: { G: tf.Optimizer; D: tf.Optimizer };
  readonly stepsPerEpoch: number;
  readonly lossName: string;
  private readonly fixedNoise: tf.Tensor2D;
  private readonly fixedLabels?: tf.Tensor1D;
  private readonly sampler: EpochSampler;

  constructor(private readonly o: LatentGanOptions) {
    this.variant = o.variant;
    this.config = o.config;
    this.mustMatch = o.mustMatch;
    this.lossName = o.loss.name;
    this.nets = { generator: o.generator, discriminator: o.discriminator };
    if (o.generatorEma) {
      o.generatorEma.setWeights(o.generator.getWeights());
      this.nets.generator_ema = o.generatorEma;
    }
    this.optimizers = { G: adam(o.lr, o.beta1), D: adam(o.discriminatorLr ?? o.lr, o.beta1) };
    this.sampler = new EpochSampler(o.data.count, o.batchSize, o.seed);
    this.stepsPerEpoch = this.sampler.stepsPerEpoch;
    // Samples use the same noise all run long, so the grids show training progress rather than new draws.
    if (o.numClasses) {
      const k = o.numClasses;
      // One row per class, one column per noise vector: each column shows one "style" across classes.
      this.fixedNoise = tf.tidy(() => tf.tile(latentNoise(k, o.latentDim, mixSeed(o.seed, 7)), [k, 1]) as tf.Tensor2D);
      this.fixedLabels = tf.tensor1d(
        Array.from({ length: k * k }, (_, i) => Math.floor(i / k)),
        'int32',
      );
    } else {
      this.fixedNoise = latentNoise(64, o.latentDim, mixSeed(o.seed, 7));
    }
  }

  private get conditional(): boolean {
    return this.o.numClasses !== undefined;
  }

  /** Whether D takes the label as an input. */
  private get discriminatorConditional(): boolean {
    return this.conditional && this.o.labelToDiscriminator !== false;
  }

  nextBatch(step: number): Batch {
    const { x, y } = this.o.data.batch(this.sampler.indices(step));
    const z = latentNoise(this.o.batchSize, this.o.latentDim, mixSeed(this.o.seed, step, 1));
    const rng = mulberry32(mixSeed(this.o.seed, step, 2));
    const k = this.o.numClasses ?? 1;
    const yFake = tf.tensor1d(
      Array.from({ length: this.o.batchSize }, () => Math.floor(rng() * k)),
      'int32',
    );
    return { x, y, z, yFake };
  }

  // Label inputs are [B, 1] int32 (a Keras-style Input of shape [1]).
  private generate(z: tf.Tensor, labels: tf.Tensor, training: boolean, g = this.nets.generator): tf.Tensor4D {
    const inputs = this.conditional ? [z, tf.reshape(labels, [-1, 1])] : z;
    return g.apply(inputs, { training }) as tf.Tensor4D;
  }

  /** D's score, and its class logits when it has an auxiliary classifier. */
  private judge(x: tf.Tensor, labels: tf.Tensor, groups = 1): Judgement {
    const inputs = this.discriminatorConditional ? [x, tf.reshape(labels, [-1, 1])] : x;
    const kwargs = { training: true, ...(groups > 1 ? { [BATCH_GROUPS]: groups } : {}) };
    const out = this.nets.discriminator.apply(inputs, kwargs) as tf.Tensor | tf.Tensor[];
    return Array.isArray(out) ? { score: out[0]!, logits: out[1] } : { score: out };
  }

  /**
   * D on the real and the fake images in one pass, batch norm keeping their statistics apart (BATCH_GROUPS): what
   * judging each alone gives (real first, as the running averages see them), with half the kernel calls.
   */
  private judgeRealAndFake(
    real: tf.Tensor,
    realLabels: tf.Tensor,
    fake: tf.Tensor,
    fakeLabels: tf.Tensor,
  ): [Judgement, Judgement] {
    if (real.shape[0] !== fake.shape[0]) return [this.judge(real, realLabels), this.judge(fake, fakeLabels)];
    const both = this.judge(tf.concat([real, fake]), tf.concat([realLabels, fakeLabels]), 2);
    const [score, logits] = [tf.split(both.score, 2), both.logits && tf.split(both.logits, 2)];
    const half = (i: number): Judgement => ({ score: score[i]!, logits: logits?.[i] });
    return [half(0), half(1)];
  }

  private score(x: tf.Tensor, labels: tf.Tensor): tf.Tensor {
    return this.judge(x, labels).score;
  }

  /** The weighted auxiliary classification loss of `logits` for `labels`; undefined without a classifier. */
  private classLoss(logits: tf.Tensor | undefined, labels: tf.Tensor1D): tf.Scalar | undefined {
    const w = this.o.auxClassifierWeight ?? 0;
    if (!logits || w === 0) return undefined;
    const k = logits.shape[1]!;
    return tf.mul(w, tf.losses.softmaxCrossEntropy(tf.oneHot(labels, k), logits)) as tf.Scalar;
  }

  /** D's losses for a batch and G's `fake` images of `fakeLabels`. */
  private discriminatorLosses(b: Batch, step: number, fake: tf.Tensor, fakeLabels: tf.Tensor): Losses {
    const [onReal, onFake] = this.judgeRealAndFake(b.x, b.y, fake, fakeLabels);
    const { score: real, logits } = onReal;
    let d = this.o.loss.discriminator(real, onFake.score);
    const cls = this.classLoss(logits, b.y);
    if (cls) d = tf.add(d, cls);
    // Lazy regularisation (Karras et al. 2020): the penalty every R1_EVERY steps, scaled up to match; the
    // logged D loss includes it on those steps.
    if (this.o.r1 && step % R1_EVERY === 0)
      d = tf.add(
        d,
        r1Penalty((x) => this.score(x, b.y), b.x, this.o.r1 * R1_EVERY),
      );
    if (this.o.loss.needsGradientPenalty) {
      // Interpolates get the real images' labels (as in conditional WGAN-GP); fakes are re-drawn for them.
      const fakeForReal = this.generate(b.z, b.y, true);
      d = tf.add(
        d,
        gradientPenalty((x) => this.score(x, b.y), b.x, fakeForReal, 10, mixSeed(this.o.seed, step, 3)),
      );
    }
    return { D: d, D_real: tf.mean(tf.sigmoid(real)) as tf.Scalar, ...(cls ? { D_cls: cls } : {}) };
  }

  /** Pairs of G's batch that share a label (the mode-seeking term), 0 without the term. */
  private get pairs(): number {
    return (this.o.modeSeekingWeight ?? 0) > 0 ? Math.floor(this.o.batchSize / 2) : 0;
  }

  /** Whether G's batch has other labels than D's: a conditional G with the mode-seeking term pairs them. */
  private get generatorLabelsDiffer(): boolean {
    return this.pairs > 0 && this.conditional;
  }

  /** The labels of G's batch: D's, or with the mode-seeking term pairs of D's (the same for an unconditional G). */
  private generatorLabels(b: Batch): tf.Tensor1D {
    return this.generatorLabelsDiffer ? pairedLabels(b.yFake, this.pairs) : b.yFake;
  }

  /** G's losses for its `fake` images of `labels` (made from the batch's noise). */
  private generatorLosses(b: Batch, fake: tf.Tensor, labels: tf.Tensor1D): Losses {
    const { score, logits } = this.judge(fake, labels);
    const cls = this.classLoss(logits, labels);
    let g = this.o.loss.generator(score);
    if (cls) g = tf.add(g, cls);
    // The logged G loss includes the weighted term; G_ms shows it alone.
    const ms = this.o.modeSeekingWeight ?? 0;
    const diverse = this.pairs ? (tf.mul(ms, modeSeekingLoss(fake, b.z, this.pairs)) as tf.Scalar) : undefined;
    if (diverse) g = tf.add(g, diverse);
    return { G: g, ...(cls ? { G_cls: cls } : {}), ...(diverse ? { G_ms: diverse } : {}) };
  }

  discriminatorStep(b: Batch, step: number): Losses {
    return optimize(
      this.optimizers.D,
      [this.nets.discriminator],
      () => this.discriminatorLosses(b, step, this.generate(b.z, b.yFake, true), b.yFake),
      'D',
    );
  }

  generatorStep(b: Batch, step: number): Losses {
    const losses = optimize(
      this.optimizers.G,
      [this.nets.generator],
      () => {
        const labels = this.generatorLabels(b);
        return this.generatorLosses(b, this.generate(b.z, labels, true), labels);
      },
      'G',
    );
    this.updateEma(step);
    return losses;
  }

  /**
   * D's update, then G's, on one forward pass of G where D's fakes and G's are the same images (G's batch has
   * D's labels): the step the reference loops run, with one pass of G less than the two steps above.
   */
  trainStep(b: Batch, step: number): Losses {
    if (this.generatorLabelsDiffer) return { ...this.discriminatorStep(b, step), ...this.generatorStep(b, step) };
    const losses = optimizeSharingForward(
      {
        D: { optimizer: this.optimizers.D, models: [this.nets.discriminator] },
        G: { optimizer: this.optimizers.G, models: [this.nets.generator] },
      },
      () => this.generate(b.z, b.yFake, true),
      (fake) => this.discriminatorLosses(b, step, fake, b.yFake),
      (fake) => this.generatorLosses(b, fake, b.yFake),
    );
    this.updateEma(step);
    return losses;
  }

  /** ema ← β·ema + (1 − β)·G for every weight, batch-norm statistics included. */
  private updateEma(step: number): void {
    const ema = this.nets.generator_ema;
    if (!ema) return;
    const beta = Math.min(this.o.ema ?? 0.999, (1 + step) / (10 + step));
    const source = this.nets.generator.weights;
    tf.tidy(() => {
      ema.weights.forEach((w, i) => {
        w.write(lerp(w.read(), source[i]!.read(), beta));
      });
    });
  }

  /** Images for noise `z` (and labels), in inference mode, from the averaged generator when there is one. */
  sample(z: tf.Tensor2D, labels?: tf.Tensor1D): tf.Tensor4D {
    const g = this.nets.generator_ema ?? this.nets.generator;
    return tf.tidy(() => this.generate(z, labels ?? tf.zeros([z.shape[0]], 'int32'), false, g));
  }

  /** The fixed noise's samples (a row per class when conditional), for the run's sample images. */
  sampleImages(): SampleGrid {
    return { images: this.sample(this.fixedNoise, this.fixedLabels), cols: this.o.numClasses ?? 8 };
  }

  dispose(): void {
    tf.dispose([this.fixedNoise, this.fixedLabels ?? []]);
    for (const opt of Object.values(this.optimizers)) opt.dispose();
  }
}
