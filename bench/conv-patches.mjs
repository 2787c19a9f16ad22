#!/usr/bin/env node
/**
 * Convolution gradients with few input channels, by oneDNN's convolution primitives (GANTRY_CONV_PATCHES=0) and
 * by gathered patches and one sgemm (the default where it applies), alternating call by call in one process so
 * that the machine's drift hits both alike. Median ms per call of each side; the shapes are the first and last
 * layers of the DCGAN default, the DCGAN on 64×64 RGB folders, pix2pix and CycleGAN.
 *
 *   node bench/conv-patches.mjs [--reps 100]      (after pnpm build; GANTRY_THREADS as usual)
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';

const { values: args } = parseArgs({ options: { reps: { type: 'string', default: '100' } } });
const core = await import('../packages/core/dist/index.js');
const backend = await core.initBackend({ backend: 'wasm', log: () => {} });
if (!/native/.test(backend.detail)) throw new Error(`no native kernels: ${backend.detail}`);

/**
 * Each case: its name, the kernel (Conv2DBackpropFilter: the filter gradient of a conv of an input of shape `x`;
 * Conv2DBackpropInput: the input gradient, i.e. a transposed conv's forward pass, onto shape `x`), the shapes of
 * x, dy and the filter, the stride and the padding. Random inputs, made once.
 * @type {[string, 'Filter' | 'Input', number[], number[], number[], number?, ('same' | 'valid')?][]}
 */
const CASES = [
  ['DCGAN 28×28 D, first conv: filter gradient, batch 64', 'Filter', [64, 28, 28, 1], [64, 14, 14, 32], [4, 4, 1, 32]],
  ['DCGAN 28×28 G, last deconv: forward, batch 32', 'Input', [32, 28, 28, 1], [32, 14, 14, 32], [4, 4, 1, 32]],
  ['DCGAN 28×28 G, last deconv: filter gradient, batch 32', 'Filter', [32, 28, 28, 1], [32, 14, 14, 32], [4, 4, 1, 32]],
  ['DCGAN 64×64 RGB D, first conv: filter grad (oneDNN)', 'Filter', [64, 64, 64, 3], [64, 32, 32, 32], [4, 4, 3, 32]],
  ['DCGAN 64×64 RGB G, last deconv: forward, batch 32', 'Input', [32, 64, 64, 3], [32, 32, 32, 32], [4, 4, 3, 32]],
  ['pix2pix 256 G, last deconv: forward', 'Input', [1, 256, 256, 3], [1, 128, 128, 64], [4, 4, 3, 64]],
  ['CycleGAN G, first 7×7 conv: input grad', 'Input', [1, 262, 262, 3], [1, 256, 256, 64], [7, 7, 3, 64], 1, 'valid'],
];
const cases = Object.fromEntries(
  CASES.map(([name, kernel, x, dy, filter, stride = 2, pad = 'same']) => {
    const attrs = { strides: [stride, stride], pad, dataFormat: 'NHWC', dilations: [1, 1] };
    const [inputs, shape] =
      kernel === 'Filter'
        ? [{ x: tf.randomNormal(x), dy: tf.randomNormal(dy) }, { filterShape: filter }]
        : [{ dy: tf.randomNormal(dy), filter: tf.randomNormal(filter) }, { inputShape: x }];
    return [name, () => tf.engine().runKernel(`Conv2DBackprop${kernel}`, inputs, { ...attrs, ...shape })];
  }),
);
const reps = Number(args.reps);
console.log(`${core.nativeThreadCount()} threads; median ms per call (${reps} calls each side)`);
for (const [name, run] of Object.entries(cases)) {
  const ms = { 0: [], 1: [] };
  for (let r = 0; r < 2 * reps + 4; r++) {
    const side = r % 2;
    process.env.GANTRY_CONV_PATCHES = String(side); // read by the addon at every convolution
    const t0 = performance.now();
    tf.dispose(run());
    if (r >= 4) ms[side].push(performance.now() - t0);
  }
  const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
  const [a, b] = [median(ms[0]), median(ms[1])];
  console.log(
    `  ${name.padEnd(62)} oneDNN ${a.toFixed(2).padStart(6)}  patches ${b.toFixed(2).padStart(6)}  ${(a / b).toFixed(2)}×`,
  );
}
