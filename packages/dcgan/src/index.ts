/**
 * DCGAN (Radford et al. 2015) on MNIST: all-convolutional G and D, batch norm, ReLU in G and LeakyReLU in D,
 * N(0, 0.02) weights, Adam 2e-4 / β1 0.5. 28×28 (two ×2 upsamplings from 7×7) or 32×32 (three from 4×4).
 */
import * as tf from '@tensorflow/tfjs';
import { convBlock, deconvBlock, denseBlock, MAX_LATENT_DIM, positiveInt, positiveIntUpTo } from '@gantry/core';
import type { MnistGanConfig, MnistGanVariant } from '@gantry/mnist';

export interface DcganConfig extends MnistGanConfig {
  /** Generator width: filters of its last hidden layer (doubled per level towards z). */
  ngf: number;
  /** Discriminator width: filters of its first layer (doubled per level). */
  ndf: number;
}

/** Number of ×2 levels between the smallest feature map and the image. */
const levels = (size: number) => (size === 32 ? 3 : 2);

export function buildGenerator(c: DcganConfig): tf.LayersModel {
  const n = levels(c.imageSize);
  const base = c.imageSize / 2 ** n;
  const z = tf.input({ shape: [c.latentDim] });
  let x = denseBlock(z, base * base * c.ngf * 2 ** (n - 1), 'relu', 'batch');
  x = tf.layers.reshape({ targetShape: [base, base, c.ngf * 2 ** (n - 1)] }).apply(x) as tf.SymbolicTensor;
  for (let level = n - 2; level >= 0; level--) x = deconvBlock(x, { filters: c.ngf * 2 ** level, norm: 'batch', act: 'relu' });
  const image = deconvBlock(x, { filters: 1, bias: true, act: 'tanh' });
  return tf.model({ inputs: z, outputs: image, name: 'dcgan_generator' });
}

export function buildDiscriminator(c: DcganConfig): tf.LayersModel {
  const image = tf.input({ shape: [c.imageSize, c.imageSize, 1] });
  // No batch norm on D's first layer, as in the paper.
  let x = convBlock(image, { filters: c.ndf, act: 'leaky' });
  for (let level = 1; level < levels(c.imageSize); level++) x = convBlock(x, { filters: c.ndf * 2 ** level, norm: 'batch', act: 'leaky' });
  x = tf.layers.flatten().apply(x) as tf.SymbolicTensor;
  const score = denseBlock(x, 1, 'none');
  return tf.model({ inputs: image, outputs: score, name: 'dcgan_discriminator' });
}

export const dcgan: MnistGanVariant<DcganConfig> = {
  name: 'dcgan',
  description: 'deep convolutional GAN (Radford et al. 2015)',
  defaults: { epochs: 1, batchSize: 64, lr: 2e-4, loss: 'bce', sampleEvery: 100, checkpointEvery: 200 },
  configFlags: {
    'latent-dim': { coerce: positiveIntUpTo('latent-dim', MAX_LATENT_DIM, 'memory'), default: 100, describe: 'size of the noise vector z' },
    'image-size': { type: 'number', default: 28, choices: [28, 32], describe: 'image size (32 pads MNIST by 2 pixels)' },
    // Half the paper's width so the default run fits in minutes on a 2-core CPU; --ngf 64 --ndf 64 for the paper's.
    ngf: { coerce: positiveInt('ngf'), default: 32, describe: 'generator width (paper: 64)' },
    ndf: { coerce: positiveInt('ndf'), default: 32, describe: 'discriminator width (paper: 64)' },
  },
  config: (a) => ({
    latentDim: a['latent-dim'] as number,
    imageSize: a['image-size'] as 28 | 32,
    ngf: a.ngf as number,
    ndf: a.ndf as number,
  }),
  mustMatch: ['latentDim', 'imageSize', 'ngf', 'ndf'],
  buildGenerator,
  buildDiscriminator,
};
