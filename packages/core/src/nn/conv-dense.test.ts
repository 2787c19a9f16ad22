import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { Conv2D, conv2d, Dense, dense } from './conv-dense.js';

beforeAll(async () => {
  await initBackend({ backend: 'cpu', log: () => {} });
});

/** Largest |a − b| over two tensors' values. */
const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);

/** The kernels a function runs, by name. */
async function kernelsOf(f: () => tf.TensorContainer): Promise<string[]> {
  const info = await tf.profile(() => {
    f();
  });
  return info.kernels.map((k) => k.name);
}

type LayerPair = { ours: tf.layers.Layer; theirs: tf.layers.Layer; input: number[] };

/** Gantry's layer and TF.js's own with the same arguments and weights. */
function pair(kind: 'conv' | 'dense', useBias: boolean, padding: 'same' | 'valid' = 'same', strides = 2): LayerPair {
  const input = kind === 'conv' ? [3, 7, 7, 4] : [3, 12];
  const ours =
    kind === 'conv' ? conv2d({ filters: 5, kernelSize: 3, strides, padding, useBias }) : dense({ units: 5, useBias });
  const theirs =
    kind === 'conv'
      ? tf.layers.conv2d({ filters: 5, kernelSize: 3, strides, padding, useBias })
      : tf.layers.dense({ units: 5, useBias });
  ours.build(input);
  theirs.build(input);
  // A non-zero bias, so that its gradient and its addition are both checked.
  theirs.setWeights(ours.getWeights().map((w, i) => (i === 1 ? tf.randomNormal(w.shape, 0, 1, 'float32', 3) : w)));
  ours.setWeights(theirs.getWeights());
  return { ours, theirs, input };
}

describe("Gantry's Conv2D and Dense", () => {
  const cases = [
    ['conv', true, 'same', 2],
    ['conv', false, 'same', 2],
    ['conv', true, 'valid', 2],
    ['conv', true, 'same', 1],
    ['dense', true],
    ['dense', false],
  ] as const;

  for (const [kind, useBias, padding, strides] of cases) {
    it(`${kind}${useBias ? ' with bias' : ''} ${padding ?? ''} ${strides ?? ''}: TF.js's outputs and gradients`, () => {
      const { ours, theirs, input } = pair(kind, useBias, padding, strides);
      const x = tf.randomNormal(input, 0, 1, 'float32', 1);
      const dy = tf.randomNormal(ours.computeOutputShape(input) as number[], 0, 1, 'float32', 2);
      const grads = (layer: tf.layers.Layer) => {
        const vars = layer.trainableWeights.map((w) => w.read() as tf.Variable);
        const loss = (t: tf.Tensor) => tf.sum(tf.mul(layer.apply(t, { training: true }) as tf.Tensor, dy));
        const { grads: g } = tf.variableGrads(() => loss(x) as tf.Scalar, vars);
        return [layer.apply(x) as tf.Tensor, tf.grad(loss)(x), ...vars.map((v) => g[v.name]!)];
      };
      const [a, b] = [grads(ours), grads(theirs)];
      expect(a.length).toBe(useBias ? 4 : 3);
      for (const [i, t] of a.entries()) expect(maxDiff(t, b[i]!), `tensor ${i}`).toBeLessThan(1e-4);
    });
  }

  it("computes only the gradients asked for: none of its weights' when only the input's is", async () => {
    const x = tf.randomNormal([3, 7, 7, 4]);
    const inputGrad = (layer: tf.layers.Layer) => () => tf.grad((t) => tf.sum(layer.apply(t) as tf.Tensor))(x);
    for (const useBias of [true, false]) {
      const { ours, theirs } = pair('conv', useBias);
      expect(await kernelsOf(inputGrad(theirs))).toContain('Conv2DBackpropFilter');
      expect(await kernelsOf(inputGrad(ours))).not.toContain('Conv2DBackpropFilter');
    }
    const { ours, theirs } = pair('dense', true);
    const xd = tf.randomNormal([3, 12]);
    const matMuls = async (layer: tf.layers.Layer) =>
      (await kernelsOf(() => tf.grad((t) => tf.sum(layer.apply(t) as tf.Tensor))(xd))).filter((k) =>
        ['BatchMatMul', '_FusedMatMul'].includes(k),
      ).length;
    // Forward and the input's gradient; TF.js's fused op also multiplies out the kernel's gradient.
    expect(await matMuls(ours)).toBe(2);
    expect(await matMuls(theirs)).toBe(3);
  });

  it("saves under TF.js's class names and loads as Gantry's classes", async () => {
    const x = tf.input({ shape: [6, 6, 2] });
    const h = conv2d({ filters: 3, kernelSize: 3, padding: 'same' }).apply(x) as tf.SymbolicTensor;
    const flat = tf.layers.flatten().apply(h) as tf.SymbolicTensor;
    const model = tf.model({ inputs: x, outputs: dense({ units: 2 }).apply(flat) as tf.SymbolicTensor });
    const xs = tf.randomNormal([2, 6, 6, 2]);
    const expected = model.predict(xs) as tf.Tensor;
    const saved: tf.io.ModelArtifacts[] = [];
    await model.save(
      tf.io.withSaveHandler(async (artifacts) => {
        saved.push(artifacts);
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
    const topology = JSON.stringify(saved[0]!.modelTopology);
    expect(topology).toContain('"class_name":"Conv2D"');
    expect(topology).toContain('"class_name":"Dense"');
    const loaded = await tf.loadLayersModel(tf.io.fromMemory(saved[0]!));
    expect(loaded.layers[1]).toBeInstanceOf(Conv2D);
    expect(loaded.layers[3]).toBeInstanceOf(Dense);
    expect(maxDiff(loaded.predict(xs) as tf.Tensor, expected)).toBeLessThan(1e-6);
  });
});
