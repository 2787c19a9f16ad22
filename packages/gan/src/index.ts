/**
 * The original GAN (Goodfellow et al. 2014) as a multilayer perceptron on 28×28 MNIST digits,
 * with the non-saturating G loss and the layer sizes of the PyTorch-GAN re-implementation.
 */

import { activation, denseBlock, flag, MAX_LATENT_DIM, MinibatchStddev } from '@gantry/core';
import { type MnistGanConfig, mnistVariant } from '@gantry/mnist';
import * as tf from '@tensorflow/tfjs';

export interface GanConfig extends MnistGanConfig {
  imageSize: 28;
  /** Group size of D's minibatch standard-deviation feature (default 4); 0 (and runs from before it): none. */
  minibatchStddev?: number;
}

export function buildGenerator(c: GanConfig): tf.LayersModel {
  const z = tf.input({ shape: [c.latentDim] });
  let x = denseBlock(z, 128, 'leaky');
  // As PyTorch-GAN's gan.py (Linear with bias, BatchNorm1d, LeakyReLU 0.2), but with batch norm's usual epsilon
  // 1e-5 where gan.py passes 0.8: under N(0, 0.02) weights 0.8 normalises nothing (why and what it did:
  // docs/results/2026-12-08-tuning-notes-from-code.md).
  for (const units of [256, 512, 1024]) x = denseBlock(x, units, 'leaky', 'batch', true);
  x = denseBlock(x, 28 * 28, 'tanh');
  const image = tf.layers.reshape({ targetShape: [28, 28, 1] }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: z, outputs: image, name: 'gan_generator' });
}

export function buildDiscriminator(c: GanConfig): tf.LayersModel {
  const image = tf.input({ shape: [28, 28, 1] });
  let x = tf.layers.flatten().apply(image) as tf.SymbolicTensor;
  x = denseBlock(x, 512, 'leaky');
  x = denseBlock(x, 256, 'leaky');
  if (c.minibatchStddev) x = new MinibatchStddev({ groupSize: c.minibatchStddev }).apply(x) as tf.SymbolicTensor;
  const score = activation(denseBlock(x, 1, 'none'), 'none');
  return tf.model({ inputs: image, outputs: score, name: 'gan_discriminator' });
}

// Sized for at most 15 minutes on a 2-core machine (the measurements: docs/results/2026-12-08-tuning-notes-from-code.md).
// TTUR, the R1 penalty and the mode-seeking term, as in the cGAN; samples from G's weight average.
const defaultPreset = {
  describe: '34 epochs, batch 64, G 4e-4 / D 2e-4, R1 γ 1, mode-seeking 0.1',
  constantEpochs: 34,
  decayEpochs: 0,
  batchSize: 64,
  lr: 4e-4,
  dLr: 2e-4,
  r1: 1,
  modeSeeking: 0.1,
  loss: 'bce' as const,
  sampleEvery: 200,
  checkpointEvery: 500,
};

export const gan = mnistVariant({
  name: 'gan',
  title: 'the original MLP GAN (Goodfellow et al. 2014)',
  flags: {
    latentDim: flag.positiveIntUpTo('size of the noise vector z', MAX_LATENT_DIM, 'memory', { default: 100 }),
    // Groups of 4 even the classes and lower the Fréchet distance, for a little more time per step
    // (docs/results/2026-12-08-tuning-notes-from-code.md).
    minibatchStddev: flag.nonNegativeInt(
      "group size of D's minibatch standard-deviation feature (Karras et al. 2018; 0: none, 4 evens the classes)",
      { default: 4 },
    ),
  },
  presets: {
    default: defaultPreset,
    // Fewer epochs than the default: enough for the GAN paper's Parzen-window figure, in less time.
    paper: {
      ...defaultPreset,
      describe: "25 epochs, otherwise the default (enough for the paper's Parzen figure)",
      constantEpochs: 25,
    },
  },
  config: (v): GanConfig => ({ latentDim: v.latentDim, imageSize: 28, minibatchStddev: v.minibatchStddev }),
  mustMatch: ['latentDim', 'minibatchStddev'],
  // Older checkpoints' D had no minibatch standard-deviation feature.
  addedKeys: { minibatchStddev: () => 0 },
  buildGenerator,
  buildDiscriminator,
});
