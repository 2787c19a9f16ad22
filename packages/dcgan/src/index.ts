/**
 * DCGAN (Radford et al. 2015) on MNIST or a folder of images: convolutional G and D, batch norm, ReLU in G and
 * LeakyReLU in D, N(0, 0.02) weights, Adam 2e-4 / β1 0.5. 28×28 (G: two ×2 upsamplings from 7×7; D: three
 * stride-2 stages to 3×3 and a hidden dense layer); 32, 64 or 128 (three, four or five stages from 4×4 in both: at
 * 64×64 the paper's four). Width doubles per level towards the small end, in both networks.
 */

import { flag, GantryError, MAX_LATENT_DIM } from '@gantry/core';
import { IMAGE_FOLDER_FLAGS, mnistVariant } from '@gantry/mnist';
import { buildDiscriminator, buildGenerator, type DcganConfig, discriminatorDefaults } from './networks.js';

export * from './networks.js';

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
