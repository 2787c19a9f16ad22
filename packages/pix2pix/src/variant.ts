/**
 * pix2pix as a Gantry variant: its flags and presets, its data (aligned pairs), its task and its evaluation.
 *
 * Presets:
 * - cpu (default): 128×128 scenes, resize 143 / crop 128 (the paper's 286/256 ratio), unet_128 with ngf 32, the
 *   70×70 PatchGAN with ndf 32, batch 1, 2 epochs at the full LR then 2 of linear decay.
 * - paper: the paper's facades/maps setup: 256×256, resize 286 / crop 256, unet_256 with ngf 64, ndf 64, batch 1,
 *   100 + 100 epochs.
 * Both: GAN (BCE, non-saturating) + λ·L1 with λ = 100, Adam 2e-4 / β1 0.5, batch norm, dropout 0.5 in the
 * decoder's ngf·8 levels.
 */
import * as path from 'node:path';
import {
  flag,
  GantryError,
  MAX_IMAGE_SIDE,
  NORMS,
  referenceLoadSize,
  userPath,
  type VariantData,
  type VariantDefinition,
} from '@gantry/core';
import { AlignedDataset, ensureSceneDataset, publishedTorchModels } from '@gantry/datasets';
import * as tf from '@tensorflow/tfjs';
import { findBaseline, formatScores, type Model, scoreModels } from './evaluate.js';
import {
  buildDiscriminator,
  buildGenerator,
  checkConfig,
  type Direction,
  MUST_MATCH,
  NET_G,
  type NetG,
  type Pix2pixConfig,
  torchImport,
} from './networks.js';
import { Pix2pixTask } from './task.js';

const DIRECTIONS = ['AtoB', 'BtoA'] as const;

const flags = {
  netG: flag.choice(Object.keys(NET_G) as NetG[], 'U-Net depth: unet_N brings an N×N crop down to 1×1', {
    aliases: ['netG'],
  }),
  ngf: flag.positiveInt('generator width'),
  ndf: flag.positiveInt('discriminator width'),
  dLayers: flag.positiveInt('PatchGAN depth: 3 = 70×70 patches (1: 16×16, 2: 34×34, 4: 142×142)', {
    default: 3,
    deprecated: ['n-layers-d'],
  }),
  norm: flag.choice(NORMS, 'normalisation layers', { default: 'batch' }),
  flip: flag.boolean('random horizontal flips', { default: true }),
  dropout: flag.boolean('dropout 0.5 in the decoder (--no-dropout to disable)', { default: true }),
  loadSize: flag.positiveIntUpTo(
    'resize to this size before the random crop (default: crop size × 286/256)',
    MAX_IMAGE_SIDE,
    'memory',
  ),
  cropSize: flag.positiveIntUpTo("random crop size = the networks' resolution", MAX_IMAGE_SIDE, 'memory'),
  direction: flag.choice(
    DIRECTIONS,
    'AtoB: left/A → right/B (default: BtoA, day → night, on the generated scenes; AtoB with --data)',
  ),
  data: flag.string(
    'pix2pix dataset: <root>/{train,val,test}/*.jpg (A|B side by side) or A/ and B/ folders; default: generated day/night scenes',
  ),
  sceneCount: flag.positiveInt('generated scene pairs (80/10/10 train/val/test)', { default: 1000 }),
  lambdaL1: flag.nonNegativeNumber('weight λ of the L1 term', { default: 100 }),
  lambdaGan: flag.nonNegativeNumber('weight of the adversarial term (0: the L1-only baseline, D untrained)', {
    default: 1,
  }),
};

interface Pix2pixData extends VariantData {
  train: AlignedDataset;
  samples: AlignedDataset;
}

const evaluateFlags = {
  baseline: flag.string(
    'L1-only generator (a run/checkpoint trained with --lambda-gan 0); default: the latest such run with the same crop size and direction',
  ),
  data: flag.string('dataset root (default: the one the checkpoint was trained on)'),
  split: flag.string('held-out split', { default: 'test' }),
  direction: flag.choice(DIRECTIONS, "default: the checkpoint's"),
  limit: flag.positiveInt('evaluate the first N pairs only'),
};

const inference =
  (g: tf.LayersModel): Model =>
  (x) =>
    tf.tidy(() => g.apply(x, { training: false }) as tf.Tensor4D);

export const pix2pix: VariantDefinition<typeof flags, Pix2pixConfig, Pix2pixData, typeof evaluateFlags> = {
  name: 'pix2pix',
  title: 'image-to-image translation with conditional adversarial networks (Isola et al. 2017)',
  trainDescribe: 'aligned pairs; default: generated day/night scenes, day → night',
  flags,
  presets: {
    cpu: {
      describe: '128×128, unet_128, ngf/ndf 32, 2 + 2 epochs of 800 scene pairs',
      netG: 'unet_128',
      ngf: 32,
      ndf: 32,
      cropSize: 128,
      constantEpochs: 2,
      decayEpochs: 2,
      batchSize: 1,
      lr: 2e-4,
      loss: 'bce',
      sampleEvery: 200,
      checkpointEvery: 500,
    },
    paper: {
      describe: 'Isola et al.: 256×256, unet_256, ngf/ndf 64, 100 + 100 epochs',
      netG: 'unet_256',
      ngf: 64,
      ndf: 64,
      cropSize: 256,
      constantEpochs: 100,
      decayEpochs: 100,
      batchSize: 1,
      lr: 2e-4,
      loss: 'bce',
      sampleEvery: 1000,
      checkpointEvery: 5000,
    },
  },
  config(v) {
    const c: Pix2pixConfig = {
      netG: v.netG,
      ngf: v.ngf,
      ndf: v.ndf,
      dLayers: v.dLayers,
      norm: v.norm,
      dropout: v.dropout,
      cropSize: v.cropSize,
      loadSize: v.loadSize ?? referenceLoadSize(v.cropSize),
      direction: v.direction ?? (v.data ? 'AtoB' : 'BtoA'),
      channels: 3,
      lambdaL1: v.lambdaL1,
      lambdaGan: v.lambdaGan,
    };
    checkConfig(c);
    return c;
  },
  mustMatch: MUST_MATCH,
  // Older runs and checkpoints named these keys after the reference's options.
  renamedKeys: { nLayersD: 'dLayers', epochsDecay: 'decayEpochs' },
  // What --init-from takes from the source: the generator's architecture, the discriminator's when it holds one.
  architecture: [
    { key: 'netG' },
    { key: 'ngf' },
    { key: 'norm' },
    { key: 'dropout' },
    { key: 'cropSize', soft: true },
    // The load size follows the crop size the model was made for, not the preset's (143 with a 256 crop).
    { key: 'loadSize', soft: true },
    { key: 'ndf', net: 'discriminator' },
    { key: 'dLayers', net: 'discriminator' },
  ],
  async openData(config, v, log) {
    const root = v.data
      ? userPath(v.data)
      : await ensureSceneDataset({ layout: 'aligned', size: config.cropSize, count: v.sceneCount, log });
    const { cropSize, direction } = config;
    const train = await AlignedDataset.open(root, {
      loadSize: config.loadSize,
      cropSize,
      direction,
      split: 'train',
      flip: v.flip,
    });
    // Sample strips show the first validation pairs (training pairs, uncropped, when there is no val split).
    const samples = await AlignedDataset.open(root, { cropSize, direction, split: 'val' }).catch(() =>
      AlignedDataset.open(root, { cropSize, loadSize: cropSize, flip: false, direction, split: 'train' }),
    );
    return { length: train.length, unit: 'pairs', root, train, samples };
  },
  createTask: (t) =>
    new Pix2pixTask({
      nets: { generator: buildGenerator(t.config), discriminator: buildDiscriminator(t.config) },
      config: t.config,
      checkpointConfig: t.checkpointConfig,
      mustMatch: t.mustMatch,
      loss: t.loss,
      lr: t.lr,
      beta1: t.beta1,
      seed: t.seed,
      batchSize: t.batchSize,
      train: t.data.train,
      samples: t.data.samples,
    }),
  inference: {
    kind: 'translation',
    generators: () => ({ AtoB: 'generator' }),
    cropSize: (c) => c.cropSize,
    channels: (c) => c.channels,
    metadata: (c) => ({ direction: c.direction }),
  },
  // `translate` and `export` default to the latest run trained with the adversarial term, not an L1-only baseline.
  defaultRun: (c) => c.lambdaGan !== 0,
  torch: { ...torchImport, published: publishedTorchModels('pix2pix') },
  evaluate: {
    describe: 'L1, PSNR and SSIM on a held-out split, against the identity mapping and an L1-only baseline',
    flags: evaluateFlags,
    async run(trained, v, tools) {
      const { checkpoint, config } = trained;
      const root = v.data ? userPath(v.data) : config.data;
      if (!root) throw new GantryError(`${checkpoint}: no dataset recorded in the checkpoint; pass --data`);
      const direction: Direction = v.direction ?? config.direction;
      const ds = await AlignedDataset.open(root, {
        split: v.split!,
        cropSize: config.cropSize,
        loadSize: config.cropSize,
        flip: false,
        direction,
      });
      const models: Record<string, Model> = { identity: (x) => tf.clone(x) };
      const baseline = v.baseline
        ? (await tools.loadTrained(v.baseline)).checkpoint
        : config.lambdaGan > 0
          ? findBaseline(config.cropSize, direction, checkpoint)
          : undefined;
      if (baseline) {
        const b = await tools.loadTrained(baseline);
        if (b.config.cropSize !== config.cropSize)
          throw new GantryError(`--baseline ${baseline}: crop size ${b.config.cropSize}, expected ${config.cropSize}`);
        models['L1-only baseline'] = inference(await b.loadGenerator());
      }
      models[config.lambdaGan > 0 ? 'pix2pix (GAN + L1)' : 'L1-only (this checkpoint)'] = inference(
        await trained.loadGenerator(),
      );
      const scores = await scoreModels(ds, models, 8, v.limit ?? Number.POSITIVE_INFINITY);
      const n = Object.values(scores)[0]!.count;
      console.log(
        `pix2pix ${checkpoint}\n${n} pairs of ${path.join(root, v.split!)} (${direction}) at ${config.cropSize}×${config.cropSize}\n`,
      );
      console.log(formatScores(Object.entries(scores)));
      if (!baseline && config.lambdaGan > 0) {
        console.log(
          '\n(no L1-only baseline: train one with `pnpm --filter pix2pix train --lambda-gan 0` or pass --baseline)',
        );
      }
      return { baseline: baseline ?? null, data: root, split: v.split, direction, cropSize: config.cropSize, scores };
    },
  },
};
