/**
 * Memory of a training step on the wasm backend: the two changes that let a 256×256 CycleGAN step fit the 4 GB
 * wasm heap. (1) Identity and same-dtype Cast share their input's buffer (TF.js saves every tensor a gradient
 * needs through an Identity, which wasm copied). (2) The patched tfjs-core backward (patches/) frees each node's
 * saved activations and output gradients once the node has run, when the backward itself is not taped. (3) The
 * patched Adam frees each variable's temporaries before it updates the next.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { resnetGenerator } from '../nn/networks.js';
import { trainableVariables } from '../train/optim.js';
import { seedWeights } from '../train/rng.js';
import { registerGradientFixes, registerNativeKernels, registerWasmKernels } from './index.js';

registerGradientFixes();
registerWasmKernels();
registerNativeKernels();

beforeAll(async () => {
  expect(await tf.setBackend('wasm')).toBe(true);
});

describe('Identity and Cast on wasm', () => {
  it('clone and a same-dtype cast share the buffer; the data outlives the original', () => {
    const x = tf.tensor([1.5, -2, 3]);
    const buffers = tf.memory().numDataBuffers;
    const y = tf.clone(x);
    const z = tf.cast(x, 'float32');
    expect(tf.memory().numDataBuffers).toBe(buffers);
    x.dispose();
    expect(Array.from(y.dataSync())).toEqual([1.5, -2, 3]);
    y.dispose();
    expect(Array.from(z.dataSync())).toEqual([1.5, -2, 3]);
    z.dispose();
    expect(tf.memory().numDataBuffers).toBe(buffers - 1);
  });

  it('a cast to another dtype still converts into its own buffer', () => {
    const x = tf.tensor([1.7, -2.2, 3]);
    const i = tf.cast(x, 'int32');
    expect(i.dtype).toBe('int32');
    expect(Array.from(i.dataSync())).toEqual([1, -2, 3]);
    tf.dispose([x, i]);
  });
});

describe('backward pass that frees as it goes', () => {
  it('gives the gradients of the ordinary (taped) backward', () => {
    // Core's CycleGAN generator, small: reflection pad, convs, instance norm, ReLU, a residual block, deconvs, tanh.
    seedWeights(1);
    const model = resnetGenerator({ size: 12, inChannels: 3, outChannels: 3, ngf: 4, blocks: 1, norm: 'instance' });
    const vars = trainableVariables([model]);
    const x = tf.randomNormal([2, 12, 12, 3], 0, 1, 'float32', 7);
    const loss = () => tf.mean(tf.square(model.apply(x, { training: true }) as tf.Tensor)) as tf.Scalar;
    const lean = tf.variableGrads(loss, vars);
    // Inside another gradient's forward the backward is taped (gradient depth 1), so nothing is freed early.
    let taped: tf.NamedTensorMap = {};
    tf.variableGrads(() => {
      taped = tf.variableGrads(loss, vars).grads;
      for (const g of Object.values(taped)) tf.keep(g);
      return tf.sum(vars[0]!) as tf.Scalar;
    }, [vars[0]!]);
    expect(Object.keys(lean.grads).sort()).toEqual(Object.keys(taped).sort());
    // The taped backward runs TF.js's composed gradients where the lean one may run the native one-kernel
    // gradients (instance norm, reflection padding, ReLU): equal up to float32 rounding, bit for bit without them.
    // Measured against the largest gradient: a bias before instance norm has a true gradient of 0 (rounding only).
    const flat = (m: tf.NamedTensorMap) => Object.keys(lean.grads).map((k) => Array.from(m[k]!.dataSync()));
    const [a, b] = [flat(lean.grads), flat(taped)];
    const scale = Math.max(...b.flat().map(Math.abs));
    expect(scale).toBeGreaterThan(0);
    for (const [k, name] of Object.keys(lean.grads).entries()) {
      const diff = Math.max(...a[k]!.map((v, i) => Math.abs(v - b[k]![i]!)));
      expect(diff / scale, name).toBeLessThan(1e-5);
    }
    model.dispose();
  });

  it('holds the forward tape but not the gradients of every node at once', async () => {
    // 40 element-wise ops on a 1 MiB tensor: the tape keeps ~40 MiB of activations. Freed as it goes, the
    // backward adds a few tensors to that; held to the end, it adds a gradient per op (another ~40 MiB).
    const x = tf.variable(tf.randomNormal([256, 1024], 0, 1, 'float32', 3));
    const chain = () => {
      let h: tf.Tensor = x;
      for (let i = 0; i < 40; i++) h = tf.tanh(tf.mul(h, 1.01));
      return tf.sum(h) as tf.Scalar;
    };
    const MiB = 2 ** 20;
    // (tf.profile returns one profile object that the next call overwrites: read each peak at once.)
    const lean = (await tf.profile(() => tf.dispose(tf.variableGrads(chain, [x]).grads))).peakBytes / MiB;
    const taped =
      (
        await tf.profile(() => {
          tf.variableGrads(() => {
            tf.dispose(tf.variableGrads(chain, [x]).grads);
            return tf.sum(x) as tf.Scalar;
          }, [x]);
        })
      ).peakBytes / MiB;
    // Measured: 163 MiB (the forward's peak) vs 366 MiB.
    expect(taped).toBeGreaterThan(300);
    expect(lean).toBeLessThan(0.6 * taped);
    x.dispose();
  });
});

describe('Adam update (patched: one tidy per variable)', () => {
  it("holds one variable's temporaries at a time, not every variable's", async () => {
    const vars = Array.from({ length: 10 }, (_, i) => tf.variable(tf.fill([256, 1024], i / 10)));
    const grads = vars.map((v, i) => ({ name: v.name, tensor: tf.fill([256, 1024], 0.1 * (i + 1)) }));
    const opt = tf.train.adam(1e-3);
    opt.applyGradients(grads); // creates the moment slots
    const MiB = 2 ** 20;
    const before = tf.memory().numBytes / MiB;
    const peak = (await tf.profile(() => opt.applyGradients(grads))).peakBytes / MiB;
    // ~14 temporaries of 1 MiB per variable: 140 MiB above the start if held for all 10 variables at once.
    expect(peak - before).toBeLessThan(30);
    tf.dispose([...vars, ...grads.map((g) => g.tensor)]);
    opt.dispose();
  });

  it('computes the same update as the textbook formula', () => {
    const v = tf.variable(tf.tensor1d([1, -2, 0.5]));
    const opt = tf.train.adam(0.1, 0.5, 0.9, 1e-8);
    const g = [
      [0.3, -1, 2],
      [0.1, 0.5, -1],
    ];
    const x = [1, -2, 0.5];
    const m = [0, 0, 0];
    const s = [0, 0, 0];
    for (let t = 1; t <= g.length; t++) {
      const grad = tf.tensor1d(g[t - 1]!);
      opt.applyGradients([{ name: v.name, tensor: grad }]);
      grad.dispose();
      for (let k = 0; k < 3; k++) {
        m[k] = 0.5 * m[k]! + 0.5 * g[t - 1]![k]!;
        s[k] = 0.9 * s[k]! + 0.1 * g[t - 1]![k]! ** 2;
        x[k] = x[k]! - (0.1 * (m[k]! / (1 - 0.5 ** t))) / (Math.sqrt(s[k]! / (1 - 0.9 ** t)) + 1e-8);
      }
    }
    const got = Array.from(v.dataSync());
    for (let k = 0; k < 3; k++) expect(got[k]).toBeCloseTo(x[k]!, 5);
    v.dispose();
    opt.dispose();
  });
});
