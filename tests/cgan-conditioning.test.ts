/**
 * Label conditioning end to end: a briefly trained cGAN, given the same noise and only a different label,
 * draws digits that an independently trained classifier assigns to that label.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildDiscriminator, buildGenerator, cgan } from '@gantry/cgan';
import {
  adversarialLoss,
  initBackend,
  LatentGanTask,
  latentNoise,
  resolveTrainValues,
  seedWeights,
  train,
} from '@gantry/core';
import { loadMnist } from '@gantry/datasets';
import { accuracy, classify, mnistImages, trainClassifier } from '@gantry/mnist';
import * as tf from '@tensorflow/tfjs';
import { expect, it } from 'vitest';

it('changing only the label changes the class of the digit', async () => {
  await initBackend({ backend: 'wasm', log: () => {} });
  const data = await loadMnist({ split: 'train', limit: 8000 });
  const { config } = resolveTrainValues(cgan, {
    latentDim: 32,
    ngf: 16,
    ndf: 16,
    conditioning: 'projection',
    embeddingDim: 16,
  });
  seedWeights(3);
  const task = new LatentGanTask({
    variant: 'cgan',
    generator: buildGenerator(config),
    discriminator: buildDiscriminator(config),
    latentDim: config.latentDim,
    numClasses: 10,
    loss: adversarialLoss('bce'),
    lr: 5e-4,
    beta1: 0.5,
    seed: 3,
    batchSize: 32,
    data: mnistImages(data),
    config: { ...config },
    mustMatch: [],
  });
  await train(task, { runDir: fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-cond-')), steps: 400 });
  const classifier = trainClassifier(data, { epochs: 1, batchSize: 64 });

  // 20 noise vectors, each drawn as every class: only the label varies within a column.
  const perClass = 20;
  const z = tf.tile(latentNoise(perClass, config.latentDim, 11), [10, 1]) as tf.Tensor2D;
  const labels = Int32Array.from({ length: 10 * perClass }, (_, i) => Math.floor(i / perClass));
  const labelTensor = tf.tensor1d(labels, 'int32');
  const images = task.sample(z, labelTensor);
  const { predictions } = classify(classifier, images);
  const acc = accuracy(predictions, labels);
  console.log(`conditioning: ${(acc * 100).toFixed(1)}% of samples classified as the requested label after 400 steps`);
  // Chance is 10%; a model that ignored the label would score about that.
  expect(acc).toBeGreaterThan(0.6);
  tf.dispose([z, labelTensor, images]);
  task.dispose();
}, 600_000);
