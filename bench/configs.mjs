// @ts-check
/**
 * The benchmark rows. One object per row is handed, as JSON, to both the Gantry child (bench/gantry-step.mjs)
 * and the PyTorch reference (bench/reference/<variant>.py), so both build the same networks at the same sizes.
 *
 * Iterations: `warmup` untimed steps, then timed steps until `budgetS` seconds have been spent, but at least
 * `minSteps` and at most `maxSteps` (`--steps N` fixes the count). The big paper-size rows get few timed steps.
 */

import { resolveTrainValues } from '../packages/core/dist/index.js';

/**
 * A row's networks, batch and optimisation settings, from the variant's definition and preset as `train` resolves
 * them (`given`: flags on top of the preset). `net` is the config the task is built from (the PyTorch reference
 * reads its networks from it), plus the loss, the learning rates and, for pix2pix, the U-Net depth.
 * @param {'dcgan'|'cgan'|'pix2pix'|'cyclegan'} variant
 * @param {string} preset
 * @param {Record<string, unknown>} [given]
 * @returns {Promise<{ batch: number, net: Record<string, unknown> }>}
 */
async function fromDefinition(variant, preset, given = {}) {
  const mod = await import(`../packages/${variant}/dist/index.js`);
  const resolved = resolveTrainValues(mod[variant], { preset, ...given });
  const train = resolved.train;
  /** @type {Record<string, any>} */
  const config = resolved.config;
  /** @type {Record<string, unknown>} */
  const net = { ...config, loss: train.loss, lr: train.lr, beta1: train.beta1 };
  if (variant === 'pix2pix') net.numDowns = mod.NET_G[config.netG];
  if (variant === 'dcgan' || variant === 'cgan') net.channels = config.channels ?? 1;
  return { batch: /** @type {number} */ (train.batchSize), net };
}

/**
 * @typedef {{ id: string, variant: 'dcgan'|'cgan'|'pix2pix'|'cyclegan', label: string, preset: string, batch: number,
 *   net: Record<string, unknown>, warmup: number, minSteps: number, maxSteps: number, budgetS: number,
 *   timeoutS: number }} Row
 * @typedef {Omit<Row, 'batch' | 'net'> & { presetName: string, given?: Record<string, unknown> }} RowSpec
 */

/** @param {RowSpec[]} specs @returns {Promise<Row[]>} */
async function rows(specs) {
  return Promise.all(
    specs.map(async ({ presetName, given, ...r }) => ({
      ...r,
      ...(await fromDefinition(r.variant, presetName, given)),
    })),
  );
}

/** What `pnpm --filter <variant> train` runs: each variant's presets, as its definition resolves them. */
/** @type {Row[]} */
export const FULL_ROWS = await rows([
  {
    id: 'dcgan',
    variant: 'dcgan',
    label: 'DCGAN 28×28',
    preset: 'app default (ngf/ndf 32, batch 32, R1, EMA, D lr)',
    presetName: 'default',
    warmup: 3,
    minSteps: 10,
    maxSteps: 30,
    budgetS: 25,
    timeoutS: 600,
  },
  {
    id: 'cgan',
    variant: 'cgan',
    label: 'cGAN 28×28 (projection)',
    preset: 'app default (ngf 96, ndf 16)',
    presetName: 'default',
    warmup: 3,
    minSteps: 10,
    maxSteps: 30,
    budgetS: 25,
    timeoutS: 600,
  },
  {
    id: 'pix2pix-128',
    variant: 'pix2pix',
    label: 'pix2pix unet_128 128×128',
    preset: 'cpu preset (ngf/ndf 32)',
    presetName: 'cpu',
    warmup: 2,
    minSteps: 5,
    maxSteps: 30,
    budgetS: 25,
    timeoutS: 600,
  },
  {
    id: 'pix2pix-256',
    variant: 'pix2pix',
    label: 'pix2pix unet_256 256×256',
    preset: 'paper preset (ngf/ndf 64)',
    presetName: 'paper',
    warmup: 1,
    minSteps: 3,
    maxSteps: 10,
    budgetS: 45,
    timeoutS: 900,
  },
  {
    id: 'cyclegan-128',
    variant: 'cyclegan',
    label: 'CycleGAN ResNet-6 128×128',
    preset: 'cpu preset (ngf/ndf 16)',
    presetName: 'cpu',
    warmup: 2,
    minSteps: 5,
    maxSteps: 20,
    budgetS: 30,
    timeoutS: 600,
  },
  {
    id: 'cyclegan-256',
    variant: 'cyclegan',
    label: 'CycleGAN ResNet-9 256×256',
    preset: 'paper preset (ngf/ndf 64)',
    presetName: 'paper',
    warmup: 1,
    minSteps: 2,
    maxSteps: 5,
    budgetS: 60,
    timeoutS: 1800,
  },
]);

const quick = { warmup: 1, minSteps: 3, maxSteps: 3, budgetS: 5, timeoutS: 120 };

/** `--quick`: small sizes and a few steps, for the smoke test and a fast look (the default preset, narrower). */
/** @type {Row[]} */
export const QUICK_ROWS = await rows([
  {
    id: 'dcgan',
    variant: 'dcgan',
    label: 'DCGAN 28×28 (quick)',
    preset: 'ngf/ndf 16, batch 16',
    presetName: 'default',
    given: { ngf: 16, ndf: 16, batchSize: 16 },
    ...quick,
  },
  {
    id: 'cgan',
    variant: 'cgan',
    label: 'cGAN 28×28 (quick)',
    preset: 'ngf/ndf 16, batch 16',
    presetName: 'default',
    given: { ngf: 16, ndf: 16, batchSize: 16 },
    ...quick,
  },
  {
    id: 'pix2pix-128',
    variant: 'pix2pix',
    label: 'pix2pix unet_32 32×32 (quick)',
    preset: 'ngf 8, ndf 8',
    presetName: 'cpu',
    given: { netG: 'unet_32', ngf: 8, ndf: 8, cropSize: 32 },
    ...quick,
  },
  {
    id: 'pix2pix-256',
    variant: 'pix2pix',
    label: 'pix2pix unet_64 64×64 (quick)',
    preset: 'ngf 8, ndf 8',
    presetName: 'cpu',
    given: { netG: 'unet_64', ngf: 8, ndf: 8, cropSize: 64 },
    ...quick,
  },
  {
    id: 'cyclegan-128',
    variant: 'cyclegan',
    label: 'CycleGAN ResNet-2 32×32 (quick)',
    preset: 'ngf/ndf 8',
    presetName: 'cpu',
    given: { cropSize: 32, blocks: 2, ngf: 8, ndf: 8 },
    ...quick,
  },
  {
    id: 'cyclegan-256',
    variant: 'cyclegan',
    label: 'CycleGAN ResNet-3 64×64 (quick)',
    preset: 'ngf/ndf 8',
    presetName: 'cpu',
    given: { cropSize: 64, blocks: 3, ngf: 8, ndf: 8 },
    ...quick,
  },
]);

/**
 * `--soak`: one small config, many steps (default DCGAN at batch 16).
 * @param {string} [id]
 * @returns {Row | undefined}
 */
export function soakRow(id = 'dcgan') {
  const quick = QUICK_ROWS.find((r) => r.id === id);
  if (!quick) return undefined;
  const full = FULL_ROWS.find((r) => r.id === id);
  // The MNIST rows at their real widths with a smaller batch; the image rows at their quick sizes.
  if (full && (id === 'dcgan' || id === 'cgan'))
    return { ...full, label: `${full.label} (soak)`, batch: 16, timeoutS: 7200 };
  return { ...quick, label: quick.label.replace('(quick)', '(soak)'), timeoutS: 7200 };
}

/**
 * Multiply-adds of one full training step in units of each network's forward pass (F_G, F_D), as the Gantry
 * tasks compute the step (and the PyTorch references mirror it). Convention: a backward pass costs 2× its
 * forward (input gradient + weight gradient); a network that is only differentiated through (D in the G step)
 * costs 2× (forward + input gradient); elementwise ops, norms and Adam are not counted.
 *
 *   DCGAN/cGAN/pix2pix: D step = G fwd (F_G) + D on real and on fake (2 × 3F_D);
 *                       G step = G fwd+bwd (3F_G) + D fwd + input grad (2F_D)     → 4F_G + 8F_D
 *   CycleGAN:           D step = G_A, G_B fwd (2F_G) + 4 D passes (12F_D);
 *                       G step per side: G(x), F(G(x)), F(x) fwd+bwd (9F_G) + D (2F_D), two sides → 20F_G + 16F_D
 *                       (without the identity loss: 14F_G + 16F_D)
 */
/**
 * @param {Row} row
 * @param {{ G: number, D: number }} fwd
 */
export function stepMacs(row, fwd) {
  const { G, D } = fwd;
  if (row.variant === 'cyclegan') {
    const gPasses = Number(row.net.lambdaIdentity) > 0 ? 20 : 14;
    return gPasses * G + 16 * D;
  }
  return 4 * G + 8 * D;
}

/**
 * Issue #23's full-size checks, each a script of its own run as a child: the PyTorch import at ngf 64 (max error
 * against PyTorch's outputs, import time) and native-resolution translate of a 2560×1600 photo (time and peak RSS
 * beside PyTorch's forward pass). Not step rows: they print their own tables, which go into latest.md as they are.
 */
export const PHOTO_ROWS = [
  { id: 'torch-import', script: 'torch-import.mjs', needsTorch: true, timeoutS: 1800 },
  { id: 'translate-photo', script: 'translate-native.mjs', needsTorch: false, timeoutS: 3600 },
  // Not of issue #23: the same generators' translate time in ONNX Runtime after export --format onnx (a figure).
  { id: 'onnx-translate', script: 'onnx-translate.mjs', needsTorch: false, timeoutS: 1800 },
];
