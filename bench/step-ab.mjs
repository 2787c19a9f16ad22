#!/usr/bin/env node
/**
 * In-process A/B of one training step, the two sides timed in alternating blocks so that the machine's drift hits
 * both alike. Random batches; the default flags' options (TTUR, R1 γ 1, the weight average; the mode-seeking term
 * for gan). What is compared (--compare):
 *
 *   shared-forward  G's forward pass shared between D's update and G's (`trainStep`, what the trainer runs)
 *                   against the two separate steps (`discriminatorStep` + `generatorStep`)
 *   layers          the networks with Gantry's Conv2D and Dense (conv-dense.ts: only the gradients asked for)
 *                   against the same networks, weights and step with TF.js's own layer classes
 *   batch-groups    D judging the real and the fake images in one pass (BATCH_GROUPS) against one pass each, as
 *                   before (gan, dcgan)
 *   conv-patches    convolutions of 1–4 input channels by oneDNN's convolution primitives (GANTRY_CONV_PATCHES=0)
 *                   against gathered patches and one sgemm (the default)
 *   minibatch-stddev  gan's D without the minibatch standard-deviation feature (--minibatch-stddev 0) against
 *                   with it in groups of 4 (the default): what the feature costs a step
 *
 *   node bench/step-ab.mjs gan|dcgan|pix2pix [--batch N] [--compare shared-forward|layers|batch-groups|conv-patches|minibatch-stddev]
 *                          [--block STEPS] [--blocks N]     steps per block (default 20; pix2pix 5), blocks per side (8)
 *   (after `pnpm build`; GANTRY_THREADS as usual)
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { cpuName } from './cpu.mjs';

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    batch: { type: 'string' },
    compare: { type: 'string', default: 'shared-forward' },
    block: { type: 'string' },
    blocks: { type: 'string', default: '8' },
  },
});
const which = positionals[0];
const B = Number(args.batch ?? (which === 'pix2pix' ? 1 : 64));
const COMPARISONS = ['shared-forward', 'layers', 'batch-groups', 'conv-patches', 'minibatch-stddev'];
if (
  !['gan', 'dcgan', 'pix2pix'].includes(which) ||
  !(B > 0) ||
  !(Number(args.blocks) > 0) ||
  (args.block !== undefined && !(Number(args.block) > 0)) ||
  !COMPARISONS.includes(args.compare) ||
  (args.compare === 'batch-groups' && which === 'pix2pix') ||
  (args.compare === 'minibatch-stddev' && which !== 'gan')
) {
  console.error(
    `usage: node bench/step-ab.mjs gan|dcgan|pix2pix [--batch N] [--compare ${COMPARISONS.join('|')}] [--block STEPS] [--blocks N]`,
  );
  process.exit(2);
}
const core = await import('../packages/core/dist/index.js');
await core.initBackend({ log: () => {} });

// TF.js does not export its layer classes; their constructors are those of instances.
/** @type {any[]} */
const TF_CLASSES = [tf.layers.conv2d({ filters: 1, kernelSize: 1 }), tf.layers.dense({ units: 1 })].map(
  (l) => l.constructor,
);

/** A copy of `model`, weights included, built from TF.js's own Conv2D and Dense classes. */
async function withTfLayers(model) {
  for (const c of TF_CLASSES) tf.serialization.registerClass(c);
  try {
    const copy = await tf.models.modelFromJSON({ modelTopology: model.toJSON(null, false) });
    copy.setWeights(model.getWeights());
    return copy;
  } finally {
    for (const c of /** @type {any[]} */ ([core.Conv2D, core.Dense])) tf.serialization.registerClass(c);
  }
}

/** A task of the variant's default networks (the same weights each call), with TF.js's layer classes if asked. */
async function makeTask(tfLayers, minibatchStddev = 4) {
  core.seedWeights(1);
  const nets = async (...models) => (tfLayers ? Promise.all(models.map(withTfLayers)) : models);
  if (which === 'pix2pix') {
    const mod = await import('../packages/pix2pix/dist/index.js');
    /** @type {any} */
    const config = {
      ...{ netG: 'unet_128', ngf: 32, ndf: 32, dLayers: 3, norm: 'batch', dropout: true, direction: 'AtoB' },
      ...{ cropSize: 128, loadSize: 128, channels: 3, lambdaL1: 100, lambdaGan: 1 },
    };
    const [generator, discriminator] = await nets(mod.buildGenerator(config), mod.buildDiscriminator(config));
    return new mod.Pix2pixTask({
      ...{ nets: { generator, discriminator }, config, checkpointConfig: config, mustMatch: [] },
      ...{
        ...{ loss: core.adversarialLoss('bce'), lr: 2e-4, beta1: 0.5, seed: 1, batchSize: B },
        train: /** @type {any} */ ({ length: 100 * B }),
      },
    });
  }
  const mod = await import(`../packages/${which}/dist/index.js`);
  const net = { latentDim: 100, imageSize: 28, ngf: 32, ndf: 32, minibatchStddev };
  const [generator, discriminator, generatorEma] = await nets(
    mod.buildGenerator(net),
    mod.buildDiscriminator(net),
    mod.buildGenerator(net),
  );
  return new core.LatentGanTask({
    ...{ variant: which, generator, discriminator, generatorEma, latentDim: 100, loss: core.adversarialLoss('bce') },
    ...{
      lr: 4e-4,
      discriminatorLr: 2e-4,
      beta1: 0.5,
      seed: 1,
      batchSize: B,
      data: /** @type {any} */ ({ count: 100 * B, batch: () => ({}) }),
    },
    ...{ config: net, mustMatch: [], r1: 1, modeSeekingWeight: which === 'gan' ? 0.1 : 0 },
  });
}

/** @type {any} */
const batch =
  which === 'pix2pix'
    ? { a: tf.randomUniform([B, 128, 128, 3], -1, 1), b: tf.randomUniform([B, 128, 128, 3], -1, 1) }
    : {
        x: tf.randomUniform([B, 28, 28, 1], -1, 1),
        y: tf.zeros([B], 'int32'),
        z: tf.randomNormal([B, 100]),
        yFake: tf.zeros([B], 'int32'),
      };

// Side A (before) and side B (now): each a step function.
const runStep = (task, i) => task.trainStep(batch, i);
let sides;
if (args.compare === 'shared-forward') {
  const task = await makeTask(false);
  sides = {
    'two steps': (i) => ({ ...task.discriminatorStep(batch, i), ...task.generatorStep(batch, i) }),
    'shared forward': (i) => runStep(task, i),
  };
} else if (args.compare === 'layers') {
  const [theirs, ours] = [await makeTask(true), await makeTask(false)];
  sides = { "TF.js's layers": (i) => runStep(theirs, i), "Gantry's layers": (i) => runStep(ours, i) };
} else if (args.compare === 'conv-patches') {
  const task = await makeTask(false);
  const withPatches = (on, i) => {
    process.env.GANTRY_CONV_PATCHES = on ? '1' : '0'; // read by the addon at every convolution
    return runStep(task, i);
  };
  sides = { "oneDNN's convolutions": (i) => withPatches(false, i), 'patches + sgemm': (i) => withPatches(true, i) };
} else if (args.compare === 'minibatch-stddev') {
  const [without, withFeature] = [await makeTask(false, 0), await makeTask(false, 4)];
  sides = { 'no stddev feature': (i) => runStep(without, i), 'stddev, groups of 4': (i) => runStep(withFeature, i) };
} else {
  /** @type {any} */
  const apart = await makeTask(false);
  const together = await makeTask(false);
  // The step as it was: D judges the real images, then the fake ones, in passes of their own.
  apart.judgeRealAndFake = function (real, realLabels, fake, fakeLabels) {
    return [this.judge(real, realLabels), this.judge(fake, fakeLabels)];
  };
  sides = { 'a pass each': (i) => runStep(apart, i), 'one pass': (i) => runStep(together, i) };
}

/**
 * One step of `side` with its losses read back, as the trainer does. Each side counts its own steps, so that
 * steps that come every so often (the lazy R1 penalty, every 16th) fall alike on both sides however they alternate.
 */
const stepsDone = {};
function step(side) {
  const losses = sides[side](stepsDone[side]);
  stepsDone[side] += 1;
  tf.tidy(() => tf.stack(Object.values(losses)).dataSync());
  tf.dispose(Object.values(losses));
}

const names = Object.keys(sides);
for (const n of names) stepsDone[n] = 1;
for (let i = 0; i < 10; i++) step(names[i % 2]);
const perBlock = Number(args.block ?? (which === 'pix2pix' ? 5 : 20));
const ms = Object.fromEntries(names.map((n) => [n, []]));
for (let block = 0; block < Number(args.blocks); block++) {
  for (const side of block % 2 ? [...names].reverse() : names) {
    const t0 = performance.now();
    for (let k = 0; k < perBlock; k++) step(side);
    ms[side].push((performance.now() - t0) / perBlock);
  }
}
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
const mean = (a) => a.reduce((p, q) => p + q, 0) / a.length;
const [a, b] = names.map((n) => median(ms[n]));
const [meanA, meanB] = names.map((n) => mean(ms[n]));
console.log(
  `${cpuName()}: ${which} batch ${B}, ${core.nativeThreadCount()} threads, median (mean) of ${ms[names[0]].length} blocks of ${perBlock}: ` +
    `${names[0]} ${a.toFixed(1)} ms (${meanA.toFixed(1)}), ${names[1]} ${b.toFixed(1)} ms (${meanB.toFixed(1)}): ` +
    `${(a / b).toFixed(2)}× (${(meanA / meanB).toFixed(2)}×)`,
);
