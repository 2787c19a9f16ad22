// One paper-size CycleGAN step (256×256, ResNet-9, ngf/ndf 64) on synthetic data: time and memory.
import * as tf from '@tensorflow/tfjs';
import * as core from '@gantry/core';
import { CycleGanTask, buildGenerator, buildDiscriminator, PRESETS } from '@gantry/cyclegan';
const backend = await core.initBackend({});
const p = PRESETS.paper;
const config = { size: p.size, loadSize: 286, channels: 3, generator: 'resnet', blocks: p.blocks, ngf: p.ngf, ndf: p.ndf, dLayers: 3, norm: 'instance' };
core.seedWeights(1);
const nets = { G_A: buildGenerator(config, 'G_A'), G_B: buildGenerator(config, 'G_B'), D_A: buildDiscriminator(config, 'D_A'), D_B: buildDiscriminator(config, 'D_B') };
const fakeData = { length: 10, batch: async () => ({ a: tf.randomUniform([1, 256, 256, 3], -1, 1), b: tf.randomUniform([1, 256, 256, 3], -1, 1) }) };
const task = new CycleGanTask({ config, nets, data: fakeData, samples: { a: tf.zeros([1, 256, 256, 3]), b: tf.zeros([1, 256, 256, 3]) }, loss: core.adversarialLoss('lsgan'), lambdaCycle: 10, lambdaIdentity: 0.5, poolSize: 50, lr: 2e-4, beta1: 0.5, seed: 1, batchSize: 1, checkpointConfig: {}, mustMatch: [] });
let peak = 0;
const timer = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 200);
for (let s = 0; s < Number(process.argv[2] ?? 2); s++) {
  const t0 = Date.now();
  const batch = await task.nextBatch(s);
  const l = { ...task.discriminatorStep(batch, s), ...task.generatorStep(batch, s) };
  const v = Object.fromEntries(Object.entries(l).map(([k, t]) => [k, t.dataSync()[0].toFixed(3)]));
  tf.dispose([batch, Object.values(l)]);
  peak = Math.max(peak, process.memoryUsage().rss);
  console.log(`step ${s}: ${((Date.now() - t0) / 1000).toFixed(1)} s, tensors ${tf.memory().numTensors}, tf bytes ${(tf.memory().numBytes / 2 ** 20).toFixed(0)} MiB, peak RSS ${(peak / 2 ** 20).toFixed(0)} MiB`, JSON.stringify(v));
}
clearInterval(timer);
console.log('backend', backend.name, 'params G', core.countParams(nets.G_A), 'D', core.countParams(nets.D_A));
