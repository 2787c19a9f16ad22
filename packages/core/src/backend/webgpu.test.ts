/**
 * Gantry's kernels and gradients on TF.js's WebGPU backend against the pure-JS `cpu` backend (the reference). On a
 * machine without a GPU they run on SwiftShader (webgpu-testing.ts); where no adapter exists at all they are skipped
 * with the reason printed. Shapes are tiny: SwiftShader is a CPU, and these run in CI.
 * Error measure: relErr(a, ref) = max|a − ref| / max|ref|.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { batchNormalization } from '../nn/batch-norm.js';
import { conv2d } from '../nn/conv-dense.js';
import { adam } from '../train/optim.js';
import { instanceNorm, minibatchStddev } from './index.js';
import { relErr, runOn, webgpuForTests } from './webgpu-testing.js';

/** float32 on a GPU sums in another order than the cpu backend: observed ≤ 2e-5 on SwiftShader. */
const TOL = 1e-4;
/** Gradients of gradients and a whole optimiser step compound the rounding (observed ≤ 1e-4). */
const TOL_SECOND = 1e-3;

const gpu = await webgpuForTests();
if (!gpu.ok) console.warn(gpu.reason);
else console.error(`WebGPU tests on ${gpu.adapter}`);

afterAll(async () => {
  await tf.setBackend('cpu');
});

/** Deterministic values in [-1, 1). */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sin(12.9898 * (i + 1) + 78.233 * seed) * 0.999;
  return out;
}
const t4 = (shape: [number, number, number, number], seed: number) =>
  tf.tensor4d(
    values(
      shape.reduce((a, b) => a * b),
      seed,
    ),
    shape,
  );

/** `f` on cpu and on webgpu; each output of the webgpu run within `tol` of the cpu run's. */
async function agree(f: () => tf.Tensor | tf.Tensor[], tol = TOL): Promise<number> {
  const want = await runOn('cpu', f);
  const got = await runOn('webgpu', f);
  expect(got.length).toBe(want.length);
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, relErr(got[i]!, want[i]!));
  expect(worst).toBeLessThan(tol);
  return worst;
}

describe.skipIf(!gpu.ok)('Gantry kernels and gradients on WebGPU vs cpu', () => {
  it('instance norm and its gradient', async () => {
    await agree(() => {
      const x = t4([2, 5, 4, 3], 1);
      const w = t4([2, 5, 4, 3], 2);
      const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(instanceNorm(v, 1e-5), w)))(x);
      return [instanceNorm(x, 1e-5), g];
    });
  });

  it('batch norm in training: output, running averages and gradients of x, γ, β', async () => {
    const run = () => {
      const layer = batchNormalization({ momentum: 0.9 });
      const x = t4([4, 3, 3, 2], 3);
      const w = t4([4, 3, 3, 2], 4);
      layer.build(x.shape);
      const { value, grads } = tf.variableGrads(
        () => tf.sum(tf.mul(layer.apply(x, { training: true }) as tf.Tensor, w)) as tf.Scalar,
        layer.trainableWeights.map((v) => v.read() as tf.Variable),
      );
      const dx = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(layer.apply(v, { training: true }) as tf.Tensor, w)))(x);
      const out = [value, ...Object.values(grads), dx, ...layer.nonTrainableWeights.map((v) => v.read().clone())];
      for (const v of layer.weights) v.dispose();
      return out;
    };
    await agree(run);
  });

  it('mirror padding (reflect, symmetric) and its exact gradient', async () => {
    for (const mode of ['reflect', 'symmetric'] as const) {
      await agree(() => {
        const x = t4([1, 4, 5, 2], 5);
        const pads: Array<[number, number]> = [
          [0, 0],
          [2, 1],
          [1, 3],
          [0, 0],
        ];
        const y = tf.mirrorPad(x, pads, mode);
        const w = tf.tensor(values(y.size, 6), y.shape);
        return [y, tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.mirrorPad(v, pads, mode), w)))(x)];
      });
    }
  });

  it('minibatch standard deviation and its gradient', async () => {
    await agree(() => {
      const x = tf.tensor2d(values(8 * 6, 7), [8, 6]);
      const w = tf.tensor2d(values(8 * 7, 8), [8, 7]);
      return [
        minibatchStddev(x, 4),
        tf.grad((v: tf.Tensor) => tf.sum(tf.mul(minibatchStddev(v as tf.Tensor2D, 4), w)))(x),
      ];
    });
  });

  it('fused convolution with bias (Conv2D layer): output and gradients of x, filter, bias', async () => {
    for (const [strides, padding] of [
      [1, 'same'],
      [2, 'same'],
      [2, 'valid'],
    ] as const) {
      await agree(() => {
        const layer = conv2d({ filters: 3, kernelSize: 3, strides, padding, kernelInitializer: 'glorotUniform' });
        const x = t4([2, 6, 6, 2], 9);
        layer.build(x.shape);
        layer.setWeights([tf.tensor4d(values(3 * 3 * 2 * 3, 10), [3, 3, 2, 3]), tf.tensor1d(values(3, 11))]);
        const f = (v: tf.Tensor) => {
          const y = layer.apply(v) as tf.Tensor;
          return tf.sum(tf.mul(y, tf.tensor(values(y.size, 12), y.shape))) as tf.Scalar;
        };
        const { grads } = tf.variableGrads(
          () => f(x),
          layer.trainableWeights.map((v) => v.read() as tf.Variable),
        );
        const out = [layer.apply(x) as tf.Tensor, tf.grad(f)(x), ...Object.values(grads)];
        for (const v of layer.weights) v.dispose();
        return out;
      });
    }
  });

  it('transposed convolution: output and gradients of x and filter', async () => {
    await agree(() => {
      const x = t4([1, 3, 3, 4], 13);
      const w = t4([4, 4, 2, 4], 14);
      const f = (a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.square(tf.conv2dTranspose(a as tf.Tensor4D, b as tf.Tensor4D, [1, 6, 6, 2], 2, 'same')));
      const [dx, dw] = tf.grads(f)([x, w]);
      return [tf.conv2dTranspose(x, w, [1, 6, 6, 2], 2, 'same'), dx!, dw!];
    });
  });

  it('a gradient of a gradient through conv and leaky ReLU (R1 / WGAN-GP)', async () => {
    await agree(() => {
      const x = t4([2, 4, 4, 2], 15);
      const w = tf.variable(t4([3, 3, 2, 2], 16));
      const critic = (v: tf.Tensor) => tf.sum(tf.leakyRelu(tf.conv2d(v as tf.Tensor4D, w, 1, 'same'), 0.2));
      const { value, grads } = tf.variableGrads(() => {
        const g = tf.grad(critic)(x);
        return tf.sum(tf.square(g)) as tf.Scalar;
      }, [w]);
      const out = [value, grads[w.name]!];
      w.dispose();
      return out;
    }, TOL_SECOND);
  });

  it('one Adam update', async () => {
    await agree(() => {
      const v = tf.variable(tf.tensor2d(values(12, 17), [3, 4]));
      const opt = adam(1e-2);
      opt.minimize(() => tf.sum(tf.square(tf.sub(v, tf.tensor2d(values(12, 18), [3, 4])))) as tf.Scalar, false, [v]);
      opt.minimize(() => tf.sum(tf.square(tf.sub(v, tf.tensor2d(values(12, 19), [3, 4])))) as tf.Scalar, false, [v]);
      const out = v.clone();
      opt.dispose();
      v.dispose();
      return out;
    }, TOL_SECOND);
  });

  it('no tensor leaks over many gradient steps on WebGPU', async () => {
    await tf.setBackend('webgpu');
    const w = tf.variable(t4([3, 3, 2, 2], 20));
    const opt = adam(1e-3);
    const x = t4([2, 4, 4, 2], 21);
    const step = () =>
      opt.minimize(() => tf.sum(tf.square(instanceNorm(tf.conv2d(x, w, 1, 'same'), 1e-5))) as tf.Scalar, false, [w]);
    step();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 20; i++) step();
    expect(tf.memory().numTensors).toBe(before);
    await w.data();
    tf.dispose([w, x]);
    opt.dispose();
    await tf.setBackend('cpu');
  });
});

describe.skipIf(gpu.ok)('WebGPU unavailable', () => {
  it('says why (printed above)', () => {
    expect(gpu.ok ? '' : gpu.reason).toMatch(/WebGPU tests skipped: /);
  });
});
