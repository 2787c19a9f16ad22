/**
 * The cyclegan app's commands: train, translate, evaluate, export. The app is
 * `runCli('cyclegan', (y) => cycleganCommands(y))`.
 */
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
  decayOverLast,
  loadModel,
  nonNegativeInt,
  nonNegativeNumber,
  positiveInt,
  positiveNumber,
  readCheckpointState,
  resolveCheckpoint,
  withResumedArgs,
  runTraining,
  seedWeights,
  translateFromArgs,
  translateOptions,
  trainOptions,
  userPath,
} from '@gantry/core';
import type { Argv } from 'yargs';
import { UnalignedDataset } from '@gantry/datasets';
import { defaultSceneDataset, loadImageFiles, loadTestSplit } from './data.js';
import { evaluateCycleGan, formatEvaluation } from './evaluate.js';
import { buildDiscriminator, buildGenerator, type CycleGanConfig, checkConfig, defaultLoadSize, MUST_MATCH, PRESETS, type PresetName } from './model.js';
import { CycleGanTask } from './task.js';

const VARIANT = 'cyclegan';
const SCENE_NAMES = { A: 'day', B: 'night' };

const common = trainOptions({ epochs: 4, batchSize: 1, lr: 2e-4, loss: 'lsgan', sampleEvery: 50, checkpointEvery: 120 });

/** Train flags; network sizes have no yargs default so that --preset and a resumed run's config can fill them. */
const trainFlags = {
  ...common,
  epochs: { coerce: positiveNumber('epochs'), describe: 'training epochs, the last --decay-epochs with linear LR decay (default: the preset\'s)' },
  preset: { type: 'string', default: 'cpu', choices: ['cpu', 'paper'], describe: `defaults: cpu = ${PRESETS.cpu.describe}; paper = ${PRESETS.paper.describe}` },
  'decay-epochs': { coerce: nonNegativeNumber('decay-epochs'), describe: 'epochs of linear LR decay to 0 at the end (default: half the training)' },
  data: { type: 'string', describe: 'unaligned dataset folder with trainA/ trainB/ (testA/ testB/ for samples and evaluate); default: procedural day (A) / night (B) scenes, generated once into <repo>/data' },
  size: { coerce: positiveInt('size'), describe: 'image size the networks work at (crop size)' },
  'load-size': { coerce: positiveInt('load-size'), describe: 'resize to this before the random crop (default size·286/256)' },
  flip: { type: 'boolean', default: true, describe: 'random horizontal flips' },
  generator: { type: 'string', choices: ['resnet', 'unet'], describe: 'generator architecture (default resnet)' },
  blocks: { coerce: positiveInt('blocks'), describe: 'residual blocks of the ResNet generator (paper: 6 at 128, 9 at 256)' },
  ngf: { coerce: positiveInt('ngf'), describe: "generators' base filters" },
  ndf: { coerce: positiveInt('ndf'), describe: "discriminators' base filters" },
  'd-layers': { coerce: positiveInt('d-layers'), describe: 'strided PatchGAN layers (3: 70×70 patches)' },
  norm: { type: 'string', choices: ['instance', 'batch', 'none'], describe: 'normalisation layers (default instance)' },
  'lambda-cycle': { coerce: nonNegativeNumber('lambda-cycle'), describe: 'cycle-consistency weight λ, each direction (default 10)' },
  'lambda-identity': { coerce: nonNegativeNumber('lambda-identity'), describe: 'identity-loss weight as a fraction of λ (default 0.5; 0: off)' },
  'pool-size': { coerce: nonNegativeInt('pool-size'), describe: 'generated-image history per discriminator (default 50; 0: off)' },
  'init-from': { type: 'string', describe: 'fine-tune: start from the networks of a checkpoint, run or imported model (architecture from it; optimizers fresh, step 0)' },
  'scene-count': { coerce: positiveInt('scene-count'), describe: 'images per domain of the default scene dataset (default: the preset\'s)' },
} as const;

interface TrainArgs extends CommonTrainArgs {
  preset: PresetName;
  decayEpochs?: number;
  data?: string;
  size?: number;
  loadSize?: number;
  flip: boolean;
  generator?: 'resnet' | 'unet';
  blocks?: number;
  ngf?: number;
  ndf?: number;
  dLayers?: number;
  norm?: CycleGanConfig['norm'];
  lambdaCycle?: number;
  lambdaIdentity?: number;
  poolSize?: number;
  sceneCount?: number;
  initFrom?: string;
  epochs: number;
}

/** What `--init-from` takes from the source: the generators' architecture, the discriminators' when it holds them. */
const ARCH: ArchKey[] = [
  { key: 'generator', flag: 'generator' },
  { key: 'blocks', flag: 'blocks' },
  { key: 'ngf', flag: 'ngf' },
  { key: 'norm', flag: 'norm' },
  { key: 'channels', flag: 'channels' },
  { key: 'size', flag: 'size', soft: true },
  { key: 'ndf', flag: 'ndf', net: 'D_A' },
  { key: 'dLayers', flag: 'd-layers', net: 'D_A' },
];

/** The training setup: explicit flags, then (when resuming) the run's saved config, then the preset. */
export interface TrainSetup {
  config: CycleGanConfig;
  epochs?: number;
  decayEpochs?: number;
  data?: string;
  sceneCount: number;
  lambdaCycle: number;
  lambdaIdentity: number;
  poolSize: number;
}

export function resolveTrainSetup(args: Partial<TrainArgs>, saved: Record<string, unknown> = {}): TrainSetup {
  const p = PRESETS[(args.preset ?? 'cpu') as PresetName];
  if (!p) throw new GantryError(`--preset: unknown preset '${args.preset}' (expected cpu or paper)`);
  const pick = <T>(flag: T | undefined, key: string, fallback: T): T => (flag !== undefined ? flag : saved[key] !== undefined ? (saved[key] as T) : fallback);
  const size = pick(args.size, 'size', p.size);
  const config: CycleGanConfig = {
    size,
    loadSize: args.loadSize ?? (args.size === undefined && saved.loadSize !== undefined ? (saved.loadSize as number) : defaultLoadSize(size)),
    channels: 3,
    generator: pick(args.generator, 'generator', 'resnet'),
    blocks: pick(args.blocks, 'blocks', p.blocks),
    ngf: pick(args.ngf, 'ngf', p.ngf),
    ndf: pick(args.ndf, 'ndf', p.ndf),
    dLayers: pick(args.dLayers, 'dLayers', 3),
    norm: pick(args.norm, 'norm', 'instance'),
  };
  checkConfig(config);
  const epochs = pick(args.epochs, 'epochs', args.steps !== undefined ? undefined : p.epochs + p.decayEpochs);
  return {
    config,
    epochs,
    decayEpochs: pick(args.decayEpochs, 'decayEpochs', undefined),
    data: args.data !== undefined ? userPath(args.data) : (saved.data as string | undefined),
    sceneCount: pick(args.sceneCount, 'sceneCount', p.sceneCount),
    lambdaCycle: pick(args.lambdaCycle, 'lambdaCycle', 10),
    lambdaIdentity: pick(args.lambdaIdentity, 'lambdaIdentity', 0.5),
    poolSize: pick(args.poolSize, 'poolSize', 50),
  };
}

/** Loads G_A or G_B of a checkpoint with its config. */
export async function loadGenerator(checkpointArg: string | undefined, which: 'G_A' | 'G_B') {
  const checkpoint = resolveCheckpoint(VARIANT, checkpointArg);
  const state = readCheckpointState(checkpoint);
  if (state.variant !== VARIANT) throw new GantryError(`--checkpoint ${checkpoint}: a ${state.variant} checkpoint, expected ${VARIANT}`);
  const generator = await loadModel(path.join(checkpoint, which));
  return { checkpoint, config: state.config as CycleGanConfig & Record<string, unknown>, generator };
}

async function train(given: TrainArgs): Promise<void> {
  // A resumed run keeps the options it was started with (its length included) unless flags say otherwise.
  const args = withResumedArgs(VARIANT, given);
  // --init-from: the source's architecture under the flags (a resumed run has its weights already).
  const init = args.initFrom && args.resume === undefined ? openInitSource(VARIANT, args.initFrom) : undefined;
  const setup = resolveTrainSetup(init ? { ...args, ...initArchitecture(init, ARCH, args as unknown as Record<string, unknown>) } : args);
  const { config } = setup;
  const loss = adversarialLoss(args.loss);
  let totalEpochs = setup.epochs ?? 1;
  await runTraining(
    VARIANT,
    { ...args, epochs: totalEpochs },
    async () => {
      const root = setup.data ?? (await defaultSceneDataset(config.size, setup.sceneCount));
      const data = await UnalignedDataset.open(root, { cropSize: config.size, loadSize: config.loadSize, flip: args.flip, channels: config.channels });
      if (args.batchSize > data.length) throw new GantryError(`--batch-size ${args.batchSize}: larger than the dataset (${data.length} images)`);
      // Sample grids show the first test images (train images when there is no test split).
      const sampleSet = await UnalignedDataset.open(root, { split: 'test', cropSize: config.size }).catch(() => data);
      const k = Math.min(4, sampleSet.sizeA, sampleSet.sizeB);
      const samples = {
        a: await loadImageFiles(sampleSet.filesA.slice(0, k), config.size, config.channels),
        b: await loadImageFiles(sampleSet.filesB.slice(0, k), config.size, config.channels),
      };
      if (args.steps !== undefined) totalEpochs = args.steps / Math.max(1, Math.floor(data.length / args.batchSize));
      seedWeights(args.seed);
      const nets = { G_A: buildGenerator(config, 'G_A'), G_B: buildGenerator(config, 'G_B'), D_A: buildDiscriminator(config, 'D_A'), D_B: buildDiscriminator(config, 'D_B') };
      if (init) initWeights(init, nets);
      return new CycleGanTask({
        config,
        nets,
        data,
        samples,
        loss,
        lambdaCycle: setup.lambdaCycle,
        lambdaIdentity: setup.lambdaIdentity,
        poolSize: setup.poolSize,
        lr: args.lr,
        beta1: args.beta1,
        seed: args.seed,
        batchSize: args.batchSize,
        checkpointConfig: {
          ...config,
          data: root,
          domains: setup.data ? { A: 'A', B: 'B' } : SCENE_NAMES,
          loss: args.loss,
          batchSize: args.batchSize,
          epochs: args.steps === undefined ? setup.epochs : undefined,
          steps: args.steps,
          decayEpochs: setup.decayEpochs,
          sceneCount: setup.data ? undefined : setup.sceneCount,
          lambdaCycle: setup.lambdaCycle,
          lambdaIdentity: setup.lambdaIdentity,
          poolSize: setup.poolSize,
        },
        mustMatch: MUST_MATCH,
      });
    },
    {
      schedule: () => decayOverLast(totalEpochs, setup.decayEpochs ?? totalEpochs / 2),
    },
  );
}

export function cycleganCommands(y: Argv): Argv {
  return y
    .usage('Gantry cyclegan: unpaired image-to-image translation (CycleGAN, Zhu et al. 2017).\n\nUsage: pnpm --filter cyclegan <command> [options]')
    .command(
      'train',
      'train both generators and discriminators (default data: procedural day → night scenes)',
      (c) => c.options(trainFlags),
      async (a) => train(a as unknown as TrainArgs),
    )
    .command(
      'translate',
      "translate an image file or a folder of images with a trained generator, at the photo's own resolution (--resolution model: resized to the model's size and back)",
      (c) =>
        c.options({
          ...translateOptions,
          direction: { type: 'string', default: 'AtoB', choices: ['AtoB', 'BtoA'], describe: 'AtoB uses G_A (day → night for the scenes), BtoA uses G_B' },
          checkpoint: { type: 'string', describe: 'run or checkpoint directory (default: the latest cyclegan run)' },
        }),
      async (a) => {
        await translateFromArgs(a, async ({ evalMode }) => {
          const { config, generator } = await loadGenerator(a.checkpoint as string | undefined, a.direction === 'BtoA' ? 'G_B' : 'G_A');
          const t = await imageTranslator(generator, evalMode);
          return { fn: t.fn, multiple: t.multiple, modelSize: config.size, inChannels: config.channels };
        });
      },
    )
    .command(
      'evaluate',
      'cycle-reconstruction error and distribution distance to the target domain on the test split',
      (c) =>
        c.options({
          checkpoint: { type: 'string', describe: 'run or checkpoint directory (default: the latest cyclegan run)' },
          data: { type: 'string', describe: 'unaligned dataset with testA/ and testB/ (default: the one the model was trained on)' },
          limit: { coerce: positiveInt('limit'), describe: 'at most N test images per domain' },
          json: { type: 'string', describe: 'also write the figures as JSON to this file' },
        }),
      async (a) => {
        await initBackend({ backend: a.backend as string | undefined });
        const { checkpoint, config, generator: G_A } = await loadGenerator(a.checkpoint as string | undefined, 'G_A');
        const G_B = await loadModel(path.join(checkpoint, 'G_B'));
        const root = a.data ? userPath(a.data as string) : (config.data as string | undefined);
        if (!root) throw new GantryError(`${checkpoint}: the training data is not recorded; pass --data`);
        const test = await loadTestSplit(root, config.size, config.channels, (a.limit as number | undefined) ?? Number.POSITIVE_INFINITY);
        const figures = evaluateCycleGan(G_A, G_B, test.a, test.b);
        tf.dispose([test.a, test.b]);
        const names = (config.domains as { A: string; B: string } | undefined) ?? { A: 'A', B: 'B' };
        console.log(`cyclegan ${checkpoint}\ndata: ${root}\n${formatEvaluation(figures, names)}`);
        saveEvaluation(checkpoint, { checkpoint, data: root, ...figures }, a.json);
      },
    )
    .command(
      'export',
      'write both generators (TF.js layers format: <out>/G_A, <out>/G_B) and metadata.json for the browser',
      (c) => c.options(exportOptions(VARIANT)),
      async (a) => {
        const out = userPath(a.out as string);
        await initBackend({ backend: a.backend as string | undefined });
        const { checkpoint, config, generator: G_A } = await loadGenerator(a.checkpoint as string | undefined, 'G_A');
        const G_B = await loadModel(path.join(checkpoint, 'G_B'));
        await exportModels(out, { G_A, G_B }, {
          variant: VARIANT,
          kind: 'image-to-image',
          imageSize: config.size,
          channels: config.channels,
          generators: { G_A: 'A → B', G_B: 'B → A' },
          domains: config.domains ?? { A: 'A', B: 'B' },
          normalisation: 'input: value / 127.5 - 1; output: (value + 1) * 127.5',
          checkpoint,
        });
        console.log(`exported cyclegan generators to ${out} (G_A/, G_B/, metadata.json)`);
      },
    );
}
