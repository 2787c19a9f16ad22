/**
 * Conditional GAN (Mirza & Osindero 2014) on MNIST: the class label enters both networks. G concatenates a
 * learned label embedding with z; D is convolutional and conditions either by concatenation (the paper's way:
 * a label map stacked onto the image) or by projection (Miyato & Koyama 2018: the score gets an inner product of
 * a label embedding with D's features). Projection is the default: it ties the score to the class directly,
 * which is what makes samples recognisable as the requested digit early in training. On top of it D has an
 * ACGAN auxiliary classifier head (Odena et al. 2017) by default, at weight 0.3: it lifted the hardest class from
 * 96–97% recognised to ≥ 98.6% without changing the Fréchet distance (docs/results/2026-11-23-cgan-quality.md). G's batch norms
 * are class-conditional by default (Dumoulin et al. 2017, the generator of Miyato & Koyama 2018): the label also
 * picks each norm's scale and shift, so it shapes every layer rather than only the input.
 */

import {
  activation,
  concat,
  conditionalBatchNorm,
  convBlock,
  deconvBlock,
  denseBlock,
  flag,
  MAX_LATENT_DIM,
  nextInitSeed,
  normLayer,
} from '@gantry/core';
import { IMAGE_FOLDER_FLAGS, type MnistGanConfig, mnistVariant } from '@gantry/mnist';
import * as tf from '@tensorflow/tfjs';

export type Conditioning = 'projection' | 'concat';

export interface CganConfig extends MnistGanConfig {
  numClasses: number;
  ngf: number;
  ndf: number;
  conditioning: Conditioning;
  embeddingDim: number;
  /** Weight of the ACGAN auxiliary classifier loss; 0 builds D without class logits. */
  auxWeight: number;
  /** G's batch norms take a per-class scale and shift (conditional batch norm) instead of one for all. */
  conditionalBn: boolean;
  /** G ends in a full-size feature stage and a 3×3 conv instead of one deconv straight to the image. */
  finalConv?: boolean;
}

type Sym = tf.SymbolicTensor;

/**
 * The ×2 levels between the smallest feature map and the image, and that map's size: 7×7 and two levels for
 * MNIST's 28×28; 4×4 and three, four or five levels for 32, 64 or 128 (as DCGAN scales).
 */
export function cganLevels(size: number): { levels: number; base: number } {
  return size === 28 ? { levels: 2, base: 7 } : { levels: Math.round(Math.log2(size / 4)), base: 4 };
}

function labelEmbedding(label: Sym, c: CganConfig, dim: number): Sym {
  // Seeded like every other weight, so the same --seed builds the same networks.
  const init = tf.initializers.randomNormal({ mean: 0, stddev: 0.05, seed: nextInitSeed() });
  const e = tf.layers
    .embedding({ inputDim: c.numClasses, outputDim: dim, embeddingsInitializer: init })
    .apply(label) as Sym;
  return tf.layers.flatten().apply(e) as Sym;
}

export function buildGenerator(c: CganConfig): tf.LayersModel {
  const z = tf.input({ shape: [c.latentDim], name: 'z' });
  const label = tf.input({ shape: [1], dtype: 'int32', name: 'label' });
  const zy = concat([z, labelEmbedding(label, c, c.embeddingDim)]);
  // batch norm → ReLU; with --conditional-bn the norm's scale and shift are the label's own.
  const normRelu = (x: Sym) =>
    activation(c.conditionalBn ? conditionalBatchNorm(x, label, c.numClasses) : normLayer(x, 'batch'), 'relu');
  // The width doubles per level towards the smallest map: ngf·2 at 7×7 for MNIST (ngf·2^(levels−1) in general).
  const { levels, base } = cganLevels(c.imageSize);
  const top = c.ngf * 2 ** (levels - 1);
  let x = normRelu(denseBlock(zy, base * base * top, 'none', 'none', false));
  x = tf.layers.reshape({ targetShape: [base, base, top] }).apply(x) as Sym;
  for (let level = levels - 2; level >= 0; level--)
    x = normRelu(deconvBlock(x, { filters: c.ngf * 2 ** level, bias: false }));
  // With --final-conv, a full-size stage of ngf/2 channels and a 3×3 conv make the image; else one deconv does.
  if (c.finalConv) x = normRelu(deconvBlock(x, { filters: Math.max(1, c.ngf >> 1), bias: false }));
  const out = { filters: c.channels ?? 1, bias: true, act: 'tanh' } as const;
  const image = c.finalConv ? convBlock(x, { ...out, kernel: 3, stride: 1 }) : deconvBlock(x, out);
  return tf.model({ inputs: [z, label], outputs: image, name: 'cgan_generator' });
}

export function buildDiscriminator(c: CganConfig): tf.LayersModel {
  const size = c.imageSize;
  const image = tf.input({ shape: [size, size, c.channels ?? 1], name: 'image' });
  const label = tf.input({ shape: [1], dtype: 'int32', name: 'label' });
  let x: Sym = image;
  if (c.conditioning === 'concat') {
    const map = tf.layers
      .reshape({ targetShape: [size, size, 1] })
      .apply(denseBlock(labelEmbedding(label, c, c.embeddingDim), size * size, 'none')) as Sym;
    x = concat([image, map]);
  }
  x = convBlock(x, { filters: c.ndf, act: 'leaky' });
  for (let level = 1; level < cganLevels(size).levels; level++)
    x = convBlock(x, { filters: c.ndf * 2 ** level, norm: 'batch', act: 'leaky' });
  const features = tf.layers.flatten().apply(x) as Sym;
  let score = denseBlock(features, 1, 'none');
  if (c.conditioning === 'projection') {
    const h = denseBlock(features, 256, 'leaky');
    const projection = tf.layers.dot({ axes: 1 }).apply([h, labelEmbedding(label, c, 256)]) as Sym;
    score = tf.layers.add().apply([score, projection]) as Sym;
  }
  // ACGAN's auxiliary classifier: class logits from the same features.
  const outputs = c.auxWeight > 0 ? [score, denseBlock(features, c.numClasses, 'none')] : score;
  return tf.model({ inputs: [image, label], outputs, name: 'cgan_discriminator' });
}

export const cgan = mnistVariant({
  name: 'cgan',
  title: 'conditional GAN (Mirza & Osindero 2014): images of a chosen class',
  flags: {
    latentDim: flag.positiveIntUpTo('size of the noise vector z', MAX_LATENT_DIM, 'memory', { default: 100 }),
    ngf: flag.positiveInt('generator width', { default: 96 }),
    ndf: flag.positiveInt('discriminator width', { default: 16 }),
    conditioning: flag.choice(['projection', 'concat'] as const, 'how D sees the label', { default: 'projection' }),
    embeddingDim: flag.positiveInt("size of G's label embedding", { default: 50 }),
    conditionalBn: flag.boolean("per-class scale and shift in G's batch norms (Dumoulin et al. 2017)", {
      default: true,
    }),
    finalConv: flag.boolean('end G with a full-size stage of ngf/2 channels and a 3×3 conv', { default: false }),
    auxWeight: flag.nonNegativeNumber('weight of the ACGAN auxiliary classifier loss in D and G (0: none)', {
      default: 0.3,
    }),
    ...IMAGE_FOLDER_FLAGS,
  },
  // What lowered the Fréchet distance most of what was tried (docs/results): a wide G against a D held back by
  // the R1 penalty, G learning twice as fast as D (TTUR), class-conditional batch norm in G and a light
  // mode-seeking term, which keeps every class as varied as real digits.
  presets: {
    default: {
      describe:
        '3 epochs (on a folder of images at least 2,500 steps), batch 64, G 4e-4 / D 2e-4, R1 γ 1, mode-seeking 0.1',
      constantEpochs: 3,
      decayEpochs: 0,
      // 3 epochs of a 900-image folder would be 42 steps; MNIST's 3 epochs are 2,811.
      minSteps: 2500,
      batchSize: 64,
      lr: 4e-4,
      dLr: 2e-4,
      r1: 1,
      modeSeeking: 0.1,
      loss: 'bce',
      sampleEvery: 100,
      checkpointEvery: 200,
    },
  },
  config: (v): CganConfig => ({
    latentDim: v.latentDim,
    imageSize: v.imageSize ?? 28,
    numClasses: 10,
    ngf: v.ngf,
    ndf: v.ndf,
    conditioning: v.conditioning,
    embeddingDim: v.embeddingDim,
    auxWeight: v.auxWeight,
    conditionalBn: v.conditionalBn,
    finalConv: v.finalConv,
  }),
  mustMatch: [
    'latentDim',
    'numClasses',
    'ngf',
    'ndf',
    'conditioning',
    'embeddingDim',
    'auxWeight',
    'conditionalBn',
    'finalConv',
  ],
  buildGenerator,
  buildDiscriminator,
  imageFolders: true,
  conditional: true,
});
