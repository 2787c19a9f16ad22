/**
 * DCGAN (Radford et al. 2015) on MNIST or a folder of images: all-convolutional G and D, batch norm, ReLU in G
 * and LeakyReLU in D, N(0, 0.02) weights, Adam 2e-4 / β1 0.5. 28×28 (two ×2 upsamplings from 7×7); 32, 64 or
 * 128 (three, four or five from 4×4: at 64×64 the paper's four stride-2 stages). Width doubles per level towards
 * the 4×4 end, in both networks.
 */

import { convBlock, deconvBlock, denseBlock, flag, MAX_LATENT_DIM } from '@gantry/core';
import { IMAGE_FOLDER_FLAGS, type MnistGanConfig, mnistVariant } from '@gantry/mnist';
import * as tf from '@tensorflow/tfjs';

export interface DcganConfig extends MnistGanConfig {
  /** Generator width: filters of its last hidden layer (doubled per level towards z). */
  ngf: number;
  /** Discriminator width: filters of its first layer (doubled per level). */
  ndf: number;
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

export function buildDiscriminator(c: DcganConfig): tf.LayersModel {
  const image = tf.input({ shape: [c.imageSize, c.imageSize, c.channels ?? 1] });
  // No batch norm on D's first layer, as in the paper.
  let x = convBlock(image, { filters: c.ndf, act: 'leaky' });
  for (let level = 1; level < levels(c.imageSize); level++)
    x = convBlock(x, { filters: c.ndf * 2 ** level, norm: 'batch', act: 'leaky' });
  x = tf.layers.flatten().apply(x) as tf.SymbolicTensor;
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
  },
  // Sized for at most 15 minutes on a 2-core machine (docs/results/2026-12-01-shared-step.md): TTUR (G
  // twice as fast as D) and the R1 penalty, as in the cGAN; batches of 32, which made more steps of the same
  // epochs and beat 64; samples from the weight average of G (--ema 0.999).
  presets: {
    default: {
      describe: '10 epochs (on a folder of images at least 2,500 steps), batch 32, G 4e-4 / D 2e-4, R1 γ 1',
      constantEpochs: 10,
      decayEpochs: 0,
      // 10 epochs of a 900-image folder would be 280 steps; MNIST's 10 epochs are 18,750.
      minSteps: 2500,
      batchSize: 32,
      lr: 4e-4,
      dLr: 2e-4,
      r1: 1,
      loss: 'bce',
      sampleEvery: 200,
      checkpointEvery: 500,
    },
  },
  config: (v): DcganConfig => ({ latentDim: v.latentDim, imageSize: v.imageSize ?? 28, ngf: v.ngf, ndf: v.ndf }),
  mustMatch: ['latentDim', 'imageSize', 'ngf', 'ndf'],
  buildGenerator,
  buildDiscriminator,
  imageFolders: true,
});
