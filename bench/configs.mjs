/**
 * The benchmark rows. One object per row is handed, as JSON, to both the Gantry child (bench/gantry-step.mjs)
 * and the PyTorch reference (bench/reference/<variant>.py), so both build the same networks at the same sizes.
 *
 * Iterations: `warmup` untimed steps, then timed steps until `budgetS` seconds have been spent, but at least
 * `minSteps` and at most `maxSteps` (`--steps N` fixes the count). The big paper-size rows get few timed steps.
 */

/** Networks as the apps' defaults build them (`pnpm --filter <variant> train`). */
const DCGAN = { latentDim: 100, imageSize: 28, ngf: 32, ndf: 32, loss: 'bce' };
const CGAN = {
  latentDim: 100,
  imageSize: 28,
  numClasses: 10,
  ngf: 96,
  ndf: 16,
  conditioning: 'projection',
  embeddingDim: 50,
  auxWeight: 0.3,
  conditionalBn: true,
  loss: 'bce',
};
const PIX2PIX_CPU = {
  netG: 'unet_128',
  numDowns: 7,
  ngf: 32,
  ndf: 32,
  dLayers: 3,
  norm: 'batch',
  dropout: true,
  cropSize: 128,
  channels: 3,
  lambdaL1: 100,
  lambdaGan: 1,
  loss: 'bce',
};
const PIX2PIX_PAPER = { ...PIX2PIX_CPU, netG: 'unet_256', numDowns: 8, ngf: 64, ndf: 64, cropSize: 256 };
const CYCLEGAN_CPU = {
  cropSize: 128,
  channels: 3,
  generator: 'resnet',
  blocks: 6,
  ngf: 16,
  ndf: 16,
  dLayers: 3,
  norm: 'instance',
  lambdaCycle: 10,
  lambdaIdentity: 0.5,
  poolSize: 50,
  loss: 'lsgan',
};
const CYCLEGAN_PAPER = { ...CYCLEGAN_CPU, cropSize: 256, blocks: 9, ngf: 64, ndf: 64 };

/** @typedef {{ id: string, variant: 'dcgan'|'cgan'|'pix2pix'|'cyclegan', label: string, preset: string, batch: number, net: Record<string, unknown>, warmup: number, minSteps: number, maxSteps: number, budgetS: number, timeoutS: number }} Row */

/** @type {Row[]} */
export const FULL_ROWS = [
  {
    id: 'dcgan',
    variant: 'dcgan',
    label: 'DCGAN 28×28',
    preset: 'app default (ngf/ndf 32)',
    batch: 64,
    net: DCGAN,
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
    batch: 64,
    net: CGAN,
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
    batch: 1,
    net: PIX2PIX_CPU,
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
    batch: 1,
    net: PIX2PIX_PAPER,
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
    batch: 1,
    net: CYCLEGAN_CPU,
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
    batch: 1,
    net: CYCLEGAN_PAPER,
    warmup: 1,
    minSteps: 2,
    maxSteps: 5,
    budgetS: 60,
    timeoutS: 1800,
  },
];

/** `--quick`: small sizes and a few steps, for the smoke test and a fast look. */
/** @type {Row[]} */
export const QUICK_ROWS = [
  {
    id: 'dcgan',
    variant: 'dcgan',
    label: 'DCGAN 28×28 (quick)',
    preset: 'ngf/ndf 16',
    batch: 16,
    net: { ...DCGAN, ngf: 16, ndf: 16 },
    warmup: 1,
    minSteps: 3,
    maxSteps: 3,
    budgetS: 5,
    timeoutS: 120,
  },
  {
    id: 'cgan',
    variant: 'cgan',
    label: 'cGAN 28×28 (quick)',
    preset: 'ngf/ndf 16',
    batch: 16,
    net: { ...CGAN, ngf: 16, ndf: 16 },
    warmup: 1,
    minSteps: 3,
    maxSteps: 3,
    budgetS: 5,
    timeoutS: 120,
  },
  {
    id: 'pix2pix-128',
    variant: 'pix2pix',
    label: 'pix2pix unet_32 32×32 (quick)',
    preset: 'ngf 8, ndf 8',
    batch: 1,
    net: { ...PIX2PIX_CPU, netG: 'unet_32', numDowns: 5, ngf: 8, ndf: 8, cropSize: 32 },
    warmup: 1,
    minSteps: 3,
    maxSteps: 3,
    budgetS: 5,
    timeoutS: 120,
  },
  {
    id: 'pix2pix-256',
    variant: 'pix2pix',
    label: 'pix2pix unet_64 64×64 (quick)',
    preset: 'ngf 8, ndf 8',
    batch: 1,
    net: { ...PIX2PIX_CPU, netG: 'unet_64', numDowns: 6, ngf: 8, ndf: 8, cropSize: 64 },
    warmup: 1,
    minSteps: 3,
    maxSteps: 3,
    budgetS: 5,
    timeoutS: 120,
  },
  {
    id: 'cyclegan-128',
    variant: 'cyclegan',
    label: 'CycleGAN ResNet-2 32×32 (quick)',
    preset: 'ngf/ndf 8',
    batch: 1,
    net: { ...CYCLEGAN_CPU, cropSize: 32, blocks: 2, ngf: 8, ndf: 8 },
    warmup: 1,
    minSteps: 3,
    maxSteps: 3,
    budgetS: 5,
    timeoutS: 120,
  },
  {
    id: 'cyclegan-256',
    variant: 'cyclegan',
    label: 'CycleGAN ResNet-3 64×64 (quick)',
    preset: 'ngf/ndf 8',
    batch: 1,
    net: { ...CYCLEGAN_CPU, cropSize: 64, blocks: 3, ngf: 8, ndf: 8 },
    warmup: 1,
    minSteps: 3,
    maxSteps: 3,
    budgetS: 5,
    timeoutS: 120,
  },
];

/** `--soak`: one small config, many steps (default DCGAN at batch 16). */
export function soakRow(id = 'dcgan') {
  const quick = QUICK_ROWS.find((r) => r.id === id);
  if (!quick) return undefined;
  const full = FULL_ROWS.find((r) => r.id === id);
  // The MNIST rows at their real widths with a smaller batch; the image rows at their quick sizes.
  if (id === 'dcgan' || id === 'cgan') return { ...full, label: `${full.label} (soak)`, batch: 16, timeoutS: 7200 };
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
export function stepMacs(row, fwd) {
  const { G, D } = fwd;
  if (row.variant === 'cyclegan') {
    const gPasses = row.net.lambdaIdentity > 0 ? 20 : 14;
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
