/**
 * DCGAN (Radford et al. 2015) on MNIST or a folder of images: convolutional G and D, batch norm, ReLU in G and
 * LeakyReLU in D, N(0, 0.02) weights, Adam 2e-4 / β1 0.5. 28×28 (G: two ×2 upsamplings from 7×7; D: three
 * stride-2 stages to 3×3 and a hidden dense layer); 32, 64 or 128 (three, four or five stages from 4×4 in both: at
 * 64×64 the paper's four). Width doubles per level towards the small end, in both networks.
 */

import { convBlock, deconvBlock, denseBlock, flag, GantryError, MAX_LATENT_DIM } from '@gantry/core';
import { IMAGE_FOLDER_FLAGS, type MnistGanConfig, mnistVariant } from '@gantry/mnist';
import * as tf from '@tensorflow/tfjs';

export interface DcganConfig extends MnistGanConfig {
  /** Generator width: filters of its last hidden layer (doubled per level towards z). */
  ngf: number;
  /** Discriminator width: filters of its first layer (doubled per level). */
  ndf: number;
  /** Stride-2 convolutions in D (default: `discriminatorDefaults(imageSize)`). */
  dLayers?: number;
  /** Units of a hidden dense layer before D's score; 0: none (default: `discriminatorDefaults(imageSize)`). */
  dHidden?: number;
}

/** Number of ×2 levels between the smallest feature map (7×7 for 28, else 4×4) and the image. */
export const levels = (size: number) => (size === 28 ? 2 : Math.round(Math.log2(size / 4)));

export function buildGenerator(c: DcganConfig): tf.LayersModel {
  const n = levels(c.imageSize);
  const base = c.imageSize / 2 ** n;
  const z = tf.input({ shape: [c.latentDim] });
  let x = denseBlock(z, base * base * c.ngf * 2 ** (n - 1), 'relu', 'batch');
  x = tf.layers.reshape({ targetShape: [base, base, c.ngf * 2 ** (n - 1)] }).apply(x) as tf.SymbolicTensor;
  for (let level = n - 2; level >= 0; level--)
    x = deconvBlock(x, { filters: c.ngf * 2 ** level, norm: 'batch', act: 'relu' });
  const image = deconvBlock(x, { filters: c.channels ?? 1, bias: true, act: 'tanh' });
  return tf.model({ inputs: z, outputs: image, name: 'dcgan_generator' });
}

/**
 * D's depth by default. Stride-2 convolutions down to a map of 4×4 or less, as the paper's D ends (64×64: 32, 16,
 * 8, 4; 28×28: 14, 7, 3), and at 28×28 a hidden dense layer before the score. With one stage fewer and no hidden
 * layer (ending at 7×7), D judged a digit only by a linear sum over 10×10-pixel patches, and G drew strokes that
 * did not make whole digits (docs/results/2026-12-01-dcgan-discriminator.md). Larger sizes keep the measured
 * folder-of-images networks: no hidden layer.
 */
export const discriminatorDefaults = (size: number) =>
  size === 28 ? { dLayers: 3, dHidden: 512 } : { dLayers: levels(size), dHidden: 0 };

export function buildDiscriminator(c: DcganConfig): tf.LayersModel {
  const image = tf.input({ shape: [c.imageSize, c.imageSize, c.channels ?? 1] });
  const d = discriminatorDefaults(c.imageSize);
  const [dLayers, dHidden] = [c.dLayers ?? d.dLayers, c.dHidden ?? d.dHidden];
  let x: tf.SymbolicTensor = image;
  let map: number = c.imageSize;
  for (let level = 0; level < dLayers; level++) {
    // An odd map (28×28's 7×7) halves by a 3×3 conv without padding, an even one by a 4×4 'same' conv.
    const shape = map % 2 ? ({ kernel: 3, padding: 'valid' } as const) : {};
    // No batch norm on D's first layer, as in the paper.
    x = convBlock(x, { filters: c.ndf * 2 ** level, ...shape, norm: level ? 'batch' : 'none', act: 'leaky' });
    map = Math.floor(map / 2);
  }
  x = tf.layers.flatten().apply(x) as tf.SymbolicTensor;
  if (dHidden > 0) x = denseBlock(x, dHidden, 'leaky');
  const score = denseBlock(x, 1, 'none');
  return tf.model({ inputs: image, outputs: score, name: 'dcgan_discriminator' });
}

export const dcgan = mnistVariant({
  name: 'dcgan',
  title: 'deep convolutional GAN (Radford et al. 2015)',
  flags: {
    latentDim: flag.positiveIntUpTo('size of the noise vector z', MAX_LATENT_DIM, 'memory', { default: 100 }),
    ...IMAGE_FOLDER_FLAGS,
    // Half the paper's width by default, for a CPU; --ngf 64 --ndf 64 for the paper's.
    ngf: flag.positiveInt('generator width (paper: 64)', { default: 32 }),
    ndf: flag.positiveInt('discriminator width (paper: 64)', { default: 32 }),
    dLayers: flag.positiveInt('stride-2 convolutions in D (default: down to a map of 4×4 or less; 3 at 28×28)'),
    dHidden: flag.nonNegativeInt(
      "units of a hidden dense layer before D's score, 0: none (default: 512 at 28×28, else 0)",
    ),
  },
  // Sized for at most 15 minutes on a 2-core machine: TTUR and the R1 penalty, as in the cGAN; batches of 32; samples
  // from a long weight average of G (the measurements behind each: docs/results/2026-12-08-tuning-notes-from-code.md).
  presets: {
    default: {
      describe: '10 epochs (on a folder of images at least 2,500 steps), batch 32, G 4e-4 / D 2e-4, R1 γ 1, EMA 0.9995',
      constantEpochs: 10,
      decayEpochs: 0,
      // 10 epochs of a 900-image folder would be 280 steps; MNIST's 10 epochs are 18,750.
      minSteps: 2500,
      batchSize: 32,
      lr: 4e-4,
      dLr: 2e-4,
      r1: 1,
      ema: 0.9995,
      loss: 'bce',
      sampleEvery: 200,
      checkpointEvery: 500,
    },
  },
  config: (v): DcganConfig => {
    const imageSize = v.imageSize ?? 28;
    const d = discriminatorDefaults(imageSize);
    if (v.dLayers !== undefined && v.dLayers > d.dLayers)
      throw new GantryError(`--d-layers ${v.dLayers}: at most ${d.dLayers} at ${imageSize}×${imageSize} pixels`);
    const { latentDim, ngf, ndf } = v;
    return { latentDim, imageSize, ngf, ndf, dLayers: v.dLayers ?? d.dLayers, dHidden: v.dHidden ?? d.dHidden };
  },
  mustMatch: ['latentDim', 'imageSize', 'ngf', 'ndf', 'dLayers', 'dHidden'],
  // Older checkpoints' D had as many stride-2 convs as G has ×2 levels (2 at 28×28, log2(size / 4) otherwise) and
  // no hidden layer.
  addedKeys: {
    dLayers: (c) =>
      c.imageSize === 28 ? 2 : typeof c.imageSize === 'number' ? Math.round(Math.log2(c.imageSize / 4)) : undefined,
    dHidden: () => 0,
  },
  buildGenerator,
  buildDiscriminator,
  imageFolders: true,
});
