/**
 * CycleGAN as a Gantry variant (Zhu et al. 2017): its flags and presets, its data (two unaligned image folders),
 * its task and its evaluation.
 *
 * Paper ↔ code names, as in the reference implementation: G (A → B) is G_A, F (B → A) is G_B; D_Y, judging
 * domain B, is D_A; D_X, judging domain A, is D_B.
 */

import {
  flag,
  GantryError,
  MAX_IMAGE_SIDE,
  NORMS,
  userPath,
  type VariantData,
  type VariantDefinition,
} from '@gantry/core';
import { publishedTorchModels, UnalignedDataset } from '@gantry/datasets';
import * as tf from '@tensorflow/tfjs';
import { defaultSceneDataset, loadImageFiles, loadTestSplit } from './data.js';
import { evaluateCycleGan, formatEvaluation } from './evaluate.js';
import {
  buildDiscriminator,
  buildGenerator,
  type CycleGanConfig,
  checkConfig,
  defaultLoadSize,
  MUST_MATCH,
  netGName,
  parseNetG,
  torchImport,
} from './networks.js';
import { CycleGanTask } from './task.js';

const flags = {
  cropSize: flag.positiveIntUpTo(
    'image size the networks work at (random crops of the loaded images)',
    MAX_IMAGE_SIDE,
    'memory',
    { deprecated: ['size'] },
  ),
  loadSize: flag.positiveIntUpTo(
    'resize to this before the random crop (default: crop size × 286/256)',
    MAX_IMAGE_SIDE,
    'memory',
  ),
  flip: flag.boolean('random horizontal flips', { default: true }),
  netG: flag.string(
    "generator, by the reference's names: resnet_9blocks, resnet_6blocks (or resnet_<N>blocks), unet_256, unet_128 (default: the preset's)",
    { aliases: ['netG'] },
  ),
  generator: flag.choice(['resnet', 'unet'] as const, 'generator architecture (deprecated: --net-g)', {
    default: 'resnet',
    replacedBy: 'net-g',
  }),
  blocks: flag.positiveInt('residual blocks of the ResNet generator (deprecated: --net-g resnet_<N>blocks)', {
    replacedBy: 'net-g',
  }),
  ngf: flag.positiveInt("generators' base filters"),
  ndf: flag.positiveInt("discriminators' base filters"),
  dLayers: flag.positiveInt('strided PatchGAN layers (3: 70×70 patches)', { default: 3 }),
  norm: flag.choice(NORMS, 'normalisation layers', { default: 'instance' }),
  lambdaCycle: flag.nonNegativeNumber('cycle-consistency weight λ, each direction', { default: 10 }),
  lambdaIdentity: flag.nonNegativeNumber('identity-loss weight as a fraction of λ (0: off)', { default: 0.5 }),
  poolSize: flag.nonNegativeInt('generated-image history per discriminator (0: off)', { default: 50 }),
  data: flag.string(
    'unaligned dataset folder with trainA/ trainB/ (testA/ testB/ for samples and evaluate); default: procedural day (A) / night (B) scenes, generated once into <repo>/data',
  ),
  sceneCount: flag.positiveInt('images per domain of the default scene dataset'),
};

interface CycleGanData extends VariantData {
  train: UnalignedDataset;
  /** Fixed test images for the sample grids, [K, S, S, C] each (the task owns them). */
  samples: { a: tf.Tensor4D; b: tf.Tensor4D };
}

const evaluateFlags = {
  data: flag.string('unaligned dataset with testA/ and testB/ (default: the one the model was trained on)'),
  limit: flag.positiveInt('at most N test images per domain'),
};

export const cyclegan: VariantDefinition<typeof flags, CycleGanConfig, CycleGanData, typeof evaluateFlags> = {
  name: 'cyclegan',
  title: 'unpaired image-to-image translation (CycleGAN, Zhu et al. 2017)',
  trainDescribe: 'two unaligned image folders; default: procedural day → night scenes',
  flags,
  presets: {
    cpu: {
      describe: '128×128, ngf/ndf 16, ResNet-6, 2 + 2 epochs of 360 scenes',
      cropSize: 128,
      ngf: 16,
      ndf: 16,
      blocks: 6,
      sceneCount: 400,
      constantEpochs: 2,
      decayEpochs: 2,
      batchSize: 1,
      lr: 2e-4,
      loss: 'lsgan',
      sampleEvery: 50,
      checkpointEvery: 120,
    },
    paper: {
      describe: 'Zhu et al.: 256×256, ngf/ndf 64, ResNet-9, 100 + 100 epochs',
      cropSize: 256,
      ngf: 64,
      ndf: 64,
      blocks: 9,
      sceneCount: 1000,
      constantEpochs: 100,
      decayEpochs: 100,
      batchSize: 1,
      lr: 2e-4,
      loss: 'lsgan',
      sampleEvery: 1000,
      checkpointEvery: 5000,
    },
  },
  config(v) {
    // --net-g names both; the older --generator and --blocks (and the presets' blocks) when it is not given.
    const arch = v.netG !== undefined ? parseNetG(v.netG, v.cropSize) : { generator: v.generator };
    const blocks = arch.blocks ?? v.blocks;
    const c: CycleGanConfig = {
      cropSize: v.cropSize,
      loadSize: v.loadSize ?? defaultLoadSize(v.cropSize),
      channels: 3,
      netG: netGName({ generator: arch.generator, blocks, cropSize: v.cropSize }),
      generator: arch.generator,
      blocks,
      ngf: v.ngf,
      ndf: v.ndf,
      dLayers: v.dLayers,
      norm: v.norm,
      lambdaCycle: v.lambdaCycle,
      lambdaIdentity: v.lambdaIdentity,
      poolSize: v.poolSize,
      domains: v.data ? { A: 'A', B: 'B' } : { A: 'day', B: 'night' },
    };
    checkConfig(c);
    return c;
  },
  mustMatch: MUST_MATCH,
  renamedKeys: { size: 'cropSize' },
  // Older checkpoints named the generator by `generator` and `blocks` only.
  addedKeys: {
    netG: (c) =>
      typeof c.cropSize === 'number' && (c.generator === 'unet' || typeof c.blocks === 'number')
        ? netGName(c as Pick<CycleGanConfig, 'generator' | 'blocks' | 'cropSize'>)
        : undefined,
  },
  // What --init-from takes from the source: the generators' architecture, the discriminators' when it holds them.
  architecture: [
    { key: 'generator' },
    { key: 'blocks' },
    { key: 'ngf' },
    { key: 'norm' },
    { key: 'cropSize', soft: true },
    { key: 'loadSize', soft: true },
    { key: 'ndf', net: 'D_A' },
    { key: 'dLayers', net: 'D_A' },
  ],
  async openData(config, v, log) {
    const root = v.data ? userPath(v.data) : await defaultSceneDataset(config.cropSize, v.sceneCount, log);
    const { cropSize, channels } = config;
    const train = await UnalignedDataset.open(root, { cropSize, loadSize: config.loadSize, flip: v.flip, channels });
    // Sample grids show the first test images (train images when there is no test split).
    const sampleSet = await UnalignedDataset.open(root, { split: 'test', cropSize }).catch(() => train);
    const k = Math.min(4, sampleSet.sizeA, sampleSet.sizeB);
    const samples = {
      a: await loadImageFiles(sampleSet.filesA.slice(0, k), cropSize, channels),
      b: await loadImageFiles(sampleSet.filesB.slice(0, k), cropSize, channels),
    };
    return { length: train.length, unit: 'images', root, train, samples };
  },
  createTask: (t) =>
    new CycleGanTask({
      config: t.config,
      nets: {
        G_A: buildGenerator(t.config, 'G_A'),
        G_B: buildGenerator(t.config, 'G_B'),
        D_A: buildDiscriminator(t.config, 'D_A'),
        D_B: buildDiscriminator(t.config, 'D_B'),
      },
      data: t.data.train,
      samples: t.data.samples,
      loss: t.loss,
      lr: t.lr,
      beta1: t.beta1,
      seed: t.seed,
      batchSize: t.batchSize,
      checkpointConfig: t.checkpointConfig,
      mustMatch: t.mustMatch,
    }),
  inference: {
    kind: 'translation',
    generators: () => ({ AtoB: 'G_A', BtoA: 'G_B' }),
    twoWay: true,
    cropSize: (c) => c.cropSize,
    channels: (c) => c.channels,
    metadata: (c) => ({ domains: c.domains ?? { A: 'A', B: 'B' } }),
  },
  torch: { ...torchImport, published: publishedTorchModels('cyclegan') },
  evaluate: {
    describe: 'cycle-reconstruction error and distribution distance to the target domain on the test split',
    flags: evaluateFlags,
    async run(trained, v) {
      const { checkpoint, config } = trained;
      const root = v.data ? userPath(v.data) : config.data;
      if (!root) throw new GantryError(`${checkpoint}: the training data is not recorded; pass --data`);
      const G_A = await trained.load('G_A');
      const G_B = await trained.load('G_B');
      const test = await loadTestSplit(root, config.cropSize, config.channels, v.limit ?? Number.POSITIVE_INFINITY);
      const figures = evaluateCycleGan(G_A, G_B, test.a, test.b);
      tf.dispose([test.a, test.b]);
      console.log(
        `cyclegan ${checkpoint}\ndata: ${root}\n${formatEvaluation(figures, config.domains ?? { A: 'A', B: 'B' })}`,
      );
      return { data: root, ...figures };
    },
  },
};
