/**
 * The pix2pix commands: train, translate, evaluate, export. The app is `runCli('pix2pix', (y) => pix2pixCommands(y))`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import {
  adversarialLoss,
  type ArchKey,
  initArchitecture,
  initWeights,
  openInitSource,
  exportModels,
  exportOptions,
  saveEvaluation,
  type CommonTrainArgs,
  GantryError,
  imageTranslator,
  initBackend,
  latestCheckpoint,
  loadModel,
  nonNegativeNumber,
  type Norm,
  positiveInt,
  readCheckpointState,
  readRunInfo,
  resolveCheckpoint,
  runTraining,
  decayOverLast,
  withResumedArgs,
  runsRoot,
  seedWeights,
  trainOptions,
  translateFromArgs,
  translateOptions,
  userPath,
} from '@gantry/core';
import type { Argv } from 'yargs';
import { AlignedDataset, ensureSceneDataset } from '@gantry/datasets';
import { checkConfig, type Direction, MUST_MATCH, NET_G, type NetG, type Pix2pixConfig, PRESETS } from './config.js';
import { findBaseline, formatScores, type Model, scoreModels } from './evaluate.js';
import { Pix2pixTask } from './task.js';

const VARIANT = 'pix2pix';
const cpu = PRESETS.cpu;
const paper = PRESETS.paper;

/** Flags of the networks and data, with defaults from the preset (so they are undefined here). */
const configFlags = {
  preset: { type: 'string', default: 'cpu', choices: ['cpu', 'paper'], describe: 'defaults for the flags below: cpu (fits 30 min on 2 cores) or paper (Isola et al.)' },
  netG: { type: 'string', choices: Object.keys(NET_G), describe: `U-Net depth: unet_N brings an N×N crop down to 1×1 (cpu: ${cpu.netG}, paper: ${paper.netG})` },
  ngf: { coerce: positiveInt('ngf'), describe: `generator width (cpu: ${cpu.ngf}, paper: ${paper.ngf})` },
  ndf: { coerce: positiveInt('ndf'), describe: `discriminator width (cpu: ${cpu.ndf}, paper: ${paper.ndf})` },
  'n-layers-d': { coerce: positiveInt('n-layers-d'), describe: 'PatchGAN depth: 3 = 70×70 patches (1: 16×16, 2: 34×34, 4: 142×142)' },
  norm: { type: 'string', choices: ['batch', 'instance'], describe: 'normalisation layers (default batch)' },
  dropout: { type: 'boolean', describe: 'dropout 0.5 in the decoder (default on; --no-dropout to disable)' },
  'load-size': { coerce: positiveInt('load-size'), describe: `resize to this size before the random crop (cpu: ${cpu.loadSize}, paper: ${paper.loadSize})` },
  'crop-size': { coerce: positiveInt('crop-size'), describe: `random crop size = the networks' resolution (cpu: ${cpu.cropSize}, paper: ${paper.cropSize})` },
  direction: { type: 'string', choices: ['AtoB', 'BtoA'], describe: 'AtoB: left/A → right/B. Default: BtoA (day → night) on the generated scenes, AtoB with --data' },
  data: { type: 'string', describe: 'pix2pix dataset: <root>/{train,val,test}/*.jpg (A|B side by side) or A/ and B/ folders; default: generated day/night scenes' },
  'scene-count': { coerce: positiveInt('scene-count'), describe: `generated scene pairs (80/10/10 train/val/test; default ${cpu.sceneCount})` },
  'lambda-l1': { default: 100, coerce: nonNegativeNumber('lambda-l1'), describe: 'weight λ of the L1 term' },
  'lambda-gan': { default: 1, coerce: nonNegativeNumber('lambda-gan'), describe: 'weight of the adversarial term (0: the L1-only baseline, D untrained)' },
  'init-from': { type: 'string', describe: 'fine-tune: start from the networks of a checkpoint, run or imported model (architecture from it; optimizers fresh, step 0)' },
  'epochs-decay': { coerce: nonNegativeNumber('epochs-decay'), describe: `the last N epochs decay the LR linearly to zero (cpu: ${cpu.epochsDecay}, paper: ${paper.epochsDecay})` },
} as const;

type Args = Record<string, unknown>;

/** What `--init-from` takes from the source: the generator's architecture, the discriminator's when it holds one. */
const ARCH: ArchKey[] = [
  { key: 'netG', flag: 'netG' },
  { key: 'ngf', flag: 'ngf' },
  { key: 'norm', flag: 'norm' },
  { key: 'dropout', flag: 'dropout' },
  { key: 'channels', flag: 'channels' },
  { key: 'cropSize', flag: 'crop-size', soft: true },
  { key: 'ndf', flag: 'ndf', net: 'discriminator' },
  { key: 'nLayersD', flag: 'n-layers-d', net: 'discriminator' },
];

/** A train option without its default, so the preset can fill it when the flag is not given. */
function noDefault<T extends { default?: unknown }>(o: T): Omit<T, 'default'> {
  const { default: _, ...rest } = o;
  return rest;
}

interface DataChoice {
  root: string;
  direction: Direction;
  generated: boolean;
}

async function resolveData(a: Args, preset: typeof cpu, log = (l: string) => console.error(l)): Promise<DataChoice> {
  if (a.data) {
    const root = userPath(a.data as string);
    return { root, direction: (a.direction as Direction | undefined) ?? 'AtoB', generated: false };
  }
  const size = preset.sceneSize;
  const count = (a.sceneCount as number | undefined) ?? preset.sceneCount;
  const root = await ensureSceneDataset({ layout: 'aligned', size, count, log });
  return { root, direction: (a.direction as Direction | undefined) ?? 'BtoA', generated: true };
}

function buildConfig(a: Args, preset: typeof cpu, data: DataChoice): Pix2pixConfig {
  const c: Pix2pixConfig = {
    netG: ((a.netG as string | undefined) ?? preset.netG) as NetG,
    ngf: (a.ngf as number | undefined) ?? preset.ngf,
    ndf: (a.ndf as number | undefined) ?? preset.ndf,
    nLayersD: (a.nLayersD as number | undefined) ?? preset.nLayersD,
    norm: (a.norm as Norm | undefined) ?? 'batch',
    dropout: (a.dropout as boolean | undefined) ?? true,
    cropSize: (a.cropSize as number | undefined) ?? preset.cropSize,
    loadSize: (a.loadSize as number | undefined) ?? (a.cropSize !== undefined ? Math.round(((a.cropSize as number) * 286) / 256) : preset.loadSize),
    direction: data.direction,
    channels: 3,
    lambdaL1: a.lambdaL1 as number,
    lambdaGan: a.lambdaGan as number,
    loss: a.loss as string,
    data: data.root,
  };
  checkConfig(c);
  return c;
}

/** `--checkpoint`, else the latest run trained with the adversarial term (not an L1-only baseline), else the latest run. */
function defaultCheckpoint(checkpointArg: string | undefined): string {
  if (checkpointArg) return resolveCheckpoint(VARIANT, checkpointArg);
  const base = path.join(runsRoot(), VARIANT);
  const runs = fs.existsSync(base) ? fs.readdirSync(base).map((n) => path.join(base, n)) : [];
  const gan = runs
    .filter((r) => {
      try {
        return (readRunInfo(r).options as Record<string, unknown>).lambdaGan !== 0 && latestCheckpoint(r) !== undefined;
      } catch {
        return false;
      }
    })
    .sort((x, y) => fs.statSync(x).mtimeMs - fs.statSync(y).mtimeMs)
    .at(-1);
  return gan ? latestCheckpoint(gan)! : resolveCheckpoint(VARIANT, undefined);
}

async function loadGenerator(checkpointArg: string | undefined) {
  const checkpoint = defaultCheckpoint(checkpointArg);
  const state = readCheckpointState(checkpoint);
  if (state.variant !== VARIANT) throw new GantryError(`--checkpoint ${checkpoint}: a ${state.variant} checkpoint, expected ${VARIANT}`);
  const generator = await loadModel(path.join(checkpoint, 'generator'));
  return { checkpoint, config: state.config as Pix2pixConfig, generator };
}

const inference =
  (g: tf.LayersModel): Model =>
  (x) =>
    tf.tidy(() => g.apply(x, { training: false }) as tf.Tensor4D);

export function pix2pixCommands(y: Argv): Argv {
  const baseTrain = trainOptions({ epochs: cpu.epochs, batchSize: 1, lr: 2e-4, loss: 'bce', sampleEvery: cpu.sampleEvery, checkpointEvery: cpu.checkpointEvery });
  return y
    .usage(
      'Gantry pix2pix: image-to-image translation with conditional adversarial networks (Isola et al. 2017).\n\nUsage: pnpm --filter pix2pix <command> [options]',
    )
    .command(
      'train',
      'train on aligned pairs (default: generated day/night scenes, day → night)',
      (c) =>
        c.options({
          ...baseTrain,
          epochs: { ...noDefault(baseTrain.epochs), describe: `training epochs, fractions allowed (cpu: ${cpu.epochs}, paper: ${paper.epochs})` },
          'sample-every': { ...noDefault(baseTrain['sample-every']), describe: `write a sample strip (input | output | target) every N steps (cpu: ${cpu.sampleEvery})` },
          'checkpoint-every': { ...noDefault(baseTrain['checkpoint-every']), describe: `checkpoint every N steps (cpu: ${cpu.checkpointEvery})` },
          ...configFlags,
        }),
      async (given) => {
        const a = withResumedArgs(VARIANT, given as unknown as CommonTrainArgs & Args) as unknown as typeof given;
        const preset = PRESETS[a.preset as 'cpu' | 'paper'];
        const args = {
          ...a,
          epochs: (a.epochs as number | undefined) ?? preset.epochs,
          sampleEvery: (a.sampleEvery as number | undefined) ?? preset.sampleEvery,
          checkpointEvery: (a.checkpointEvery as number | undefined) ?? preset.checkpointEvery,
        } as unknown as CommonTrainArgs & Args;
        let totalEpochs = args.epochs;
        await runTraining(
          VARIANT,
          args,
          async () => {
            const data = await resolveData(a, preset);
            // --init-from: the source's architecture under the flags (a resumed run has its weights already).
            const init = a.initFrom && !a.resume ? openInitSource(VARIANT, a.initFrom as string) : undefined;
            const config = buildConfig(init ? { ...a, ...initArchitecture(init, ARCH, a) } : a, preset, data);
            const transform = { loadSize: config.loadSize, cropSize: config.cropSize, direction: config.direction };
            const train = await AlignedDataset.open(data.root, { ...transform, split: 'train' });
            if (args.batchSize > train.length) throw new GantryError(`--batch-size ${args.batchSize}: larger than the dataset (${train.length} pairs)`);
            const samples = await AlignedDataset.open(data.root, { cropSize: config.cropSize, direction: config.direction, split: 'val' }).catch(() =>
              AlignedDataset.open(data.root, { cropSize: config.cropSize, loadSize: config.cropSize, flip: false, direction: config.direction, split: 'train' }),
            );
            seedWeights(args.seed);
            const task = new Pix2pixTask(
              { config: { ...config, batchSize: args.batchSize }, loss: adversarialLoss(args.loss), lr: args.lr, beta1: args.beta1, seed: args.seed, batchSize: args.batchSize, train, samples },
              MUST_MATCH,
            );
            if (init) initWeights(init, task.nets);
            if (args.steps) totalEpochs = args.steps / task.stepsPerEpoch;
            return task;
          },
          {
            schedule: () => {
              const decay = (a.epochsDecay as number | undefined) ?? (preset === cpu ? totalEpochs / 2 : preset.epochsDecay);
              return decayOverLast(totalEpochs, decay);
            },
          },
        );
      },
    )
    .command(
      'translate',
      "translate an image or a folder with a trained generator, at the photo's own resolution (--resolution model: resized to the model's size and back); the output has the input's size",
      (c) =>
        c.options({
          ...translateOptions,
          checkpoint: { type: 'string', describe: 'run or checkpoint directory (default: the latest pix2pix run)' },
        }),
      async (a) => {
        await translateFromArgs(a, async ({ evalMode }) => {
          const { config, generator } = await loadGenerator(a.checkpoint as string | undefined);
          const t = await imageTranslator(generator, evalMode);
          return { fn: t.fn, multiple: t.multiple, modelSize: config.cropSize, inChannels: config.channels };
        });
      },
    )
    .command(
      'evaluate',
      'L1, PSNR and SSIM on a held-out split, against the identity mapping and an L1-only baseline',
      (c) =>
        c.options({
          checkpoint: { type: 'string', describe: 'run or checkpoint directory (default: the latest pix2pix run)' },
          baseline: {
            type: 'string',
            describe: 'L1-only generator (a run/checkpoint trained with --lambda-gan 0); default: the latest such run with the same crop size and direction',
          },
          data: { type: 'string', describe: 'dataset root (default: the one the checkpoint was trained on)' },
          split: { type: 'string', default: 'test', describe: 'held-out split' },
          direction: { type: 'string', choices: ['AtoB', 'BtoA'], describe: "default: the checkpoint's" },
          limit: { coerce: positiveInt('limit'), describe: 'evaluate the first N pairs only' },
          json: { type: 'string', describe: 'also write the figures as JSON to this file' },
        }),
      async (a) => {
        await initBackend({ backend: a.backend as string | undefined });
        const { checkpoint, config, generator } = await loadGenerator(a.checkpoint as string | undefined);
        const root = a.data ? userPath(a.data as string) : (config.data as string | undefined);
        if (!root) throw new GantryError(`${checkpoint}: no dataset recorded in the checkpoint; pass --data`);
        const direction = (a.direction as Direction | undefined) ?? config.direction;
        const ds = await AlignedDataset.open(root, { split: a.split as string, cropSize: config.cropSize, loadSize: config.cropSize, flip: false, direction });
        const models: Record<string, Model> = { identity: (x) => tf.clone(x) };
        let baseline: string | undefined;
        if (a.baseline) baseline = defaultCheckpoint(a.baseline as string);
        else if (config.lambdaGan > 0) baseline = findBaseline(config.cropSize, direction, checkpoint);
        let baselineGen: tf.LayersModel | undefined;
        if (baseline) {
          const b = await loadGenerator(baseline);
          if (b.config.cropSize !== config.cropSize) throw new GantryError(`--baseline ${baseline}: crop size ${b.config.cropSize}, expected ${config.cropSize}`);
          baselineGen = b.generator;
          models['L1-only baseline'] = inference(b.generator);
        }
        const name = config.lambdaGan > 0 ? 'pix2pix (GAN + L1)' : 'L1-only (this checkpoint)';
        models[name] = inference(generator);
        const scores = await scoreModels(ds, models, 8, (a.limit as number | undefined) ?? Number.POSITIVE_INFINITY);
        const n = Object.values(scores)[0]!.count;
        console.log(`pix2pix ${checkpoint}\n${n} pairs of ${path.join(root, a.split as string)} (${direction}) at ${config.cropSize}×${config.cropSize}\n`);
        console.log(formatScores(Object.entries(scores)));
        if (!baselineGen && config.lambdaGan > 0) {
          console.log('\n(no L1-only baseline: train one with `pnpm --filter pix2pix train --lambda-gan 0` or pass --baseline)');
        }
        saveEvaluation(checkpoint, { checkpoint, baseline: baseline ?? null, data: root, split: a.split, direction, cropSize: config.cropSize, scores }, a.json);
      },
    )
    .command(
      'export',
      'write the generator (TF.js layers format) and metadata.json for the browser',
      (c) => c.options(exportOptions(VARIANT)),
      async (a) => {
        const out = userPath(a.out as string);
        await initBackend({ backend: a.backend as string | undefined });
        const { checkpoint, config, generator } = await loadGenerator(a.checkpoint as string | undefined);
        await exportModels(out, { '': generator }, {
          variant: VARIANT,
          kind: 'image-to-image',
          imageSize: config.cropSize,
          channels: config.channels,
          direction: config.direction,
          normalisation: 'input: pixel / 127.5 - 1; output: pixel = (value + 1) * 127.5',
          inference: 'model.predict (batch-norm moving statistics, no dropout)',
          checkpoint,
        });
        console.log(`exported pix2pix generator to ${out} (model.json, weights.bin, metadata.json)`);
      },
    );
}
