#!/usr/bin/env node
/**
 * In-process A/B of a training step with G's forward pass shared between D's update and G's (`trainStep`, what
 * the trainer runs) against the two separate steps (`discriminatorStep` + `generatorStep`, one forward pass of G
 * each), timed in alternating blocks so that the machine's drift hits both alike. Random batches; the default
 * flags' options (TTUR, R1 γ 1, the weight average; the mode-seeking term for gan).
 *
 *   node bench/shared-forward-ab.mjs gan|dcgan|pix2pix [batch]      after `pnpm build`; GANTRY_THREADS as usual
 */
import * as tf from '@tensorflow/tfjs';

const core = await import('../packages/core/dist/index.js');
const which = process.argv[2];
const B = Number(process.argv[3] ?? (which === 'pix2pix' ? 1 : 64));
if (!['gan', 'dcgan', 'pix2pix'].includes(which) || !(B > 0)) {
  console.error('usage: node bench/shared-forward-ab.mjs gan|dcgan|pix2pix [batch]');
  process.exit(2);
}
await core.initBackend({ log: () => {} });
core.seedWeights(1);

let task;
let batch;
if (which === 'pix2pix') {
  const mod = await import('../packages/pix2pix/dist/index.js');
  const config = {
    ...{ netG: 'unet_128', ngf: 32, ndf: 32, dLayers: 3, norm: 'batch', dropout: true, direction: 'AtoB' },
    ...{ cropSize: 128, loadSize: 128, channels: 3, lambdaL1: 100, lambdaGan: 1 },
  };
  const nets = { generator: mod.buildGenerator(config), discriminator: mod.buildDiscriminator(config) };
  task = new mod.Pix2pixTask({
    ...{ nets, config, checkpointConfig: config, mustMatch: [], loss: core.adversarialLoss('bce') },
    ...{ lr: 2e-4, beta1: 0.5, seed: 1, batchSize: B, train: { length: 100 * B } },
  });
  batch = { a: tf.randomUniform([B, 128, 128, 3], -1, 1), b: tf.randomUniform([B, 128, 128, 3], -1, 1) };
} else {
  const mod = await import(`../packages/${which}/dist/index.js`);
  const net = { latentDim: 100, imageSize: 28, ngf: 32, ndf: 32 };
  task = new core.LatentGanTask({
    variant: which,
    generator: mod.buildGenerator(net),
    discriminator: mod.buildDiscriminator(net),
    generatorEma: mod.buildGenerator(net),
    latentDim: net.latentDim,
    loss: core.adversarialLoss('bce'),
    lr: 4e-4,
    discriminatorLr: 2e-4,
    beta1: 0.5,
    seed: 1,
    batchSize: B,
    data: { count: 100 * B, batch: () => ({}) },
    config: net,
    mustMatch: [],
    r1Gamma: 1,
    modeSeekingWeight: which === 'gan' ? 0.1 : 0,
  });
  const labels = () => tf.zeros([B], 'int32');
  batch = { x: tf.randomUniform([B, 28, 28, 1], -1, 1), y: labels(), z: tf.randomNormal([B, 100]), yFake: labels() };
}

/** One step, shared or split, with its losses read back as the trainer does. */
function step(shared, i) {
  const losses = shared
    ? task.trainStep(batch, i)
    : { ...task.discriminatorStep(batch, i), ...task.generatorStep(batch, i) };
  tf.tidy(() => tf.stack(Object.values(losses)).dataSync());
  tf.dispose(Object.values(losses));
}

let i = 0;
for (; i < 10; i++) step(i % 2 === 0, i);
const perBlock = which === 'pix2pix' ? 5 : 20;
const ms = { shared: [], split: [] };
for (let block = 0; block < 8; block++) {
  for (const shared of block % 2 ? [true, false] : [false, true]) {
    const t0 = performance.now();
    for (let k = 0; k < perBlock; k++) step(shared, i++);
    ms[shared ? 'shared' : 'split'].push((performance.now() - t0) / perBlock);
  }
}
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
const [split, shared] = [median(ms.split), median(ms.shared)];
console.log(
  `${which} batch ${B}, ${core.nativeThreadCount()} threads: two steps ${split.toFixed(1)} ms, shared forward ${shared.toFixed(1)} ms (${(split / shared).toFixed(2)}×)`,
);
