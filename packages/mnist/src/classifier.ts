/**
 * The project's own MNIST classifier, used to judge generated digits: the share recognised as the requested
 * class, and a Fréchet distance in its 128-d feature space (an FID for MNIST). Trained once, then cached.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  adam,
  atomicWrite,
  convBlock,
  denseBlock,
  dropout,
  loadModel,
  mixSeed,
  mulberry32,
  optimize,
  permutation,
  runsRoot,
  saveModel,
  seedWeights,
} from '@gantry/core';
import type { MnistData } from '@gantry/datasets';
import { mnistBatch } from '@gantry/datasets';
import * as tf from '@tensorflow/tfjs';

export const FEATURE_DIM = 128;
const CLASSIFIER_EPOCHS = 3;

export function buildClassifier(): tf.LayersModel {
  const image = tf.input({ shape: [28, 28, 1] });
  // Small on purpose (5.6M multiply-adds per digit), so that it trains once on a CPU before the first evaluate.
  let x = convBlock(image, { filters: 32, kernel: 3, stride: 1, act: 'relu' });
  x = convBlock(x, { filters: 64, kernel: 3, stride: 2, act: 'relu' });
  x = convBlock(x, { filters: 64, kernel: 3, stride: 2, act: 'relu' });
  x = tf.layers.flatten().apply(x) as tf.SymbolicTensor;
  const features = denseBlock(x, FEATURE_DIM, 'relu');
  const logits = denseBlock(dropout(features, 0.3), 10, 'none');
  return tf.model({ inputs: image, outputs: [features, logits], name: 'mnist_classifier' });
}

export interface ClassifierInfo {
  testAccuracy: number;
  epochs: number;
}

export function classifierDir(): string {
  // Versioned: a changed architecture or recipe gets a fresh cache.
  return path.join(runsRoot(), '.classifier', 'mnist-cnn-v2');
}

/** Trains the classifier on the training split (cross-entropy, Adam 1e-3). */
export function trainClassifier(
  train: MnistData,
  o: { epochs: number; batchSize?: number; seed?: number; log?: (l: string) => void },
): tf.LayersModel {
  const seed = o.seed ?? 1;
  seedWeights(seed);
  const model = buildClassifier();
  const opt = adam(1e-3, 0.9);
  const batchSize = o.batchSize ?? 128;
  const steps = Math.floor(train.count / batchSize);
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    // The last epoch at a tenth of the rate settles the weights (≈ +0.5% test accuracy).
    if (o.epochs > 1 && epoch === o.epochs - 1) (opt as unknown as { learningRate: number }).learningRate = 1e-4;
    const perm = permutation(train.count, mulberry32(mixSeed(seed, epoch)));
    for (let s = 0; s < steps; s++) {
      const { x, y } = mnistBatch(train, perm.subarray(s * batchSize, (s + 1) * batchSize));
      const losses = optimize(
        opt,
        [model],
        () => {
          const [, logits] = model.apply(x, { training: true }) as tf.Tensor[];
          return { loss: tf.losses.softmaxCrossEntropy(tf.oneHot(y, 10), logits!) as tf.Scalar };
        },
        'loss',
      );
      if (s % 100 === 0)
        o.log?.(`classifier: epoch ${epoch + 1} step ${s}/${steps} loss ${losses.loss!.dataSync()[0]!.toFixed(4)}`);
      tf.dispose([x, y, losses]);
    }
  }
  opt.dispose();
  return model;
}

/** Features [N, 128] and predicted classes [N] of images in [-1, 1], in batches. */
export function classify(
  model: tf.LayersModel,
  images: tf.Tensor4D,
  batchSize = 500,
): { features: Float32Array; predictions: Int32Array } {
  const n = images.shape[0];
  const features = new Float32Array(n * FEATURE_DIM);
  const predictions = new Int32Array(n);
  for (let i = 0; i < n; i += batchSize) {
    const size = Math.min(batchSize, n - i);
    const [f, p] = tf.tidy(() => {
      const [feat, logits] = model.predict(tf.slice(images, i, size)) as tf.Tensor[];
      return [feat!.dataSync(), tf.argMax(logits!, 1).dataSync()];
    });
    features.set(f as Float32Array, i * FEATURE_DIM);
    predictions.set(p as Int32Array, i);
  }
  return { features, predictions };
}

export function accuracy(predictions: Int32Array, labels: ArrayLike<number>): number {
  let ok = 0;
  for (let i = 0; i < predictions.length; i++) if (predictions[i] === labels[i]) ok++;
  return ok / Math.max(1, predictions.length);
}

/** The cached classifier, trained (about a minute or two on 2 cores) the first time it is needed. */
export async function loadOrTrainClassifier(
  data: { train: () => Promise<MnistData>; test: MnistData },
  log: (l: string) => void = (l) => console.error(l),
): Promise<{ model: tf.LayersModel; info: ClassifierInfo }> {
  const dir = classifierDir();
  const infoFile = path.join(dir, 'info.json');
  if (fs.existsSync(infoFile) && fs.existsSync(path.join(dir, 'model.json'))) {
    return { model: await loadModel(dir), info: JSON.parse(fs.readFileSync(infoFile, 'utf8')) as ClassifierInfo };
  }
  log('training the MNIST evaluation classifier (once; cached in runs/.classifier)');
  const model = trainClassifier(await data.train(), { epochs: CLASSIFIER_EPOCHS, log });
  const { x, y } = mnistBatch(
    data.test,
    Int32Array.from({ length: data.test.count }, (_, i) => i),
  );
  const { predictions } = classify(model, x);
  const info: ClassifierInfo = { testAccuracy: accuracy(predictions, y.dataSync()), epochs: CLASSIFIER_EPOCHS };
  tf.dispose([x, y]);
  const tmp = `${dir}.tmp-${process.pid}`;
  await saveModel(model, tmp);
  atomicWrite(path.join(tmp, 'info.json'), JSON.stringify(info, null, 2));
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  fs.renameSync(tmp, dir);
  log(`classifier test accuracy: ${(info.testAccuracy * 100).toFixed(2)}%`);
  return { model, info };
}
