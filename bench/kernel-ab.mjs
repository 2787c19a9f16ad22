#!/usr/bin/env node
/**
 * A/B timing of single kernels, native (`@gantry/native`) against Gantry's WebAssembly kernels, interleaved in one
 * process so that other load on the machine hits both alike. Prints the median µs per call of each side (the wasm
 * backend and the native kernels are synchronous: a call has finished when it returns).
 *
 *   node bench/kernel-ab.mjs [--reps 200]      (after pnpm build; GANTRY_THREADS sets the native threads)
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { cpuName } from './cpu.mjs';

const { values: args } = parseArgs({ options: { reps: { type: 'string', default: '200' } } });
const core = await import('../packages/core/dist/index.js');
const backend = await core.initBackend({ backend: 'wasm', log: () => {} });
if (!/native/.test(backend.detail)) throw new Error(`no native kernels: ${backend.detail}`);

const x = tf.randomNormal([1, 128, 128, 16]);
const y = tf.randomNormal([1, 128, 128, 16]);
const c = tf.randomNormal([1, 1, 1, 16]);
const small = tf.randomNormal([1, 32, 32, 64]);
const d = tf.randomNormal([64, 14, 14, 32]);
const cases = {
  'add same shape [1,128,128,16]': () => tf.add(x, y),
  'mul per channel [1,128,128,16]·[1,1,1,16]': () => tf.mul(x, c),
  'relu [1,128,128,16]': () => tf.relu(x),
  'leaky relu [64,14,14,32] (DCGAN D)': () => tf.leakyRelu(d, 0.2),
  'slice [1,128,128,16] → [1,120,120,16]': () => tf.slice(x, [0, 4, 4, 0], [1, 120, 120, 16]),
  'tanh [1,128,128,16]': () => tf.tanh(x),
  'mean over H,W [1,128,128,16]': () => tf.mean(x, [1, 2], true),
  'sum all [1,128,128,16]': () => tf.sum(x),
  'instance norm [1,128,128,16]': () => core.instanceNorm(x, 1e-5),
  'instance norm [1,32,32,64]': () => core.instanceNorm(small, 1e-5),
  'instance norm fwd+grad [1,128,128,16]': () => tf.grad((t) => tf.sum(tf.mul(core.instanceNorm(t, 1e-5), y)))(x),
  'mirror pad 3 fwd+grad [1,128,128,16]': () =>
    tf.grad((t) =>
      tf.sum(
        tf.mirrorPad(
          t,
          [
            [0, 0],
            [3, 3],
            [3, 3],
            [0, 0],
          ],
          'reflect',
        ),
      ),
    )(x),
  'relu fwd+grad [1,128,128,16]': () => tf.grad((t) => tf.sum(tf.mul(tf.relu(t), y)))(x),
};
const reps = Number(args.reps);
const median = (a) => a.sort((p, q) => p - q)[a.length >> 1];
console.log(`${cpuName()}; backend: ${backend.detail}`);
console.log(`${'kernel'.padEnd(44)} ${'native µs'.padStart(10)} ${'wasm µs'.padStart(10)}  speed-up`);
for (const [name, f] of Object.entries(cases)) {
  const t = { native: [], wasm: [] };
  for (let r = 0; r < reps; r++) {
    for (const side of r % 2 ? ['native', 'wasm'] : ['wasm', 'native']) {
      core.setNativeEnabled(side === 'native');
      const t0 = performance.now();
      const out = f();
      t[side].push((performance.now() - t0) * 1000);
      out.dispose();
    }
  }
  core.setNativeEnabled(true);
  const [n, w] = [median(t.native), median(t.wasm)];
  console.log(`${name.padEnd(44)} ${n.toFixed(0).padStart(10)} ${w.toFixed(0).padStart(10)}  ${(w / n).toFixed(2)}×`);
}
