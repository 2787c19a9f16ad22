import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend/index.js';
import { adam } from '../train/optim.js';
import { checkpointFiles, restoreFromFiles } from './checkpoint-data.js';

function model() {
  const x = tf.input({ shape: [3] });
  const y = tf.layers.dense({ units: 2 }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: x, outputs: y });
}

const values = (m: tf.LayersModel) => m.getWeights().map((w) => Array.from(w.dataSync()));

beforeAll(async () => {
  await initBackend({ backend: 'cpu', log: () => {} });
});

describe('checkpoints in memory (the part the browser shares)', () => {
  async function trained() {
    const m = model();
    const opt = adam(0.01);
    opt.minimize(
      () => tf.sum(tf.square(m.apply(tf.ones([1, 3])) as tf.Tensor)) as tf.Scalar,
      false,
      m.trainableWeights.map((w) => w.read() as tf.Variable),
    );
    const files = await checkpointFiles({
      state: { variant: 'v', step: 7, epoch: 0, config: { a: 1 } },
      nets: { m },
      optimizers: { opt },
    });
    return { m, opt, files };
  }
  const target = (m: tf.LayersModel, opt: tf.Optimizer) => ({
    variant: 'v',
    nets: { m },
    optimizers: { opt },
    config: { a: 1 },
    mustMatch: ['a'],
  });

  it('holds the files of a Node checkpoint and restores weights, Adam state and counters', async () => {
    const { m, opt, files } = await trained();
    expect([...files.keys()].sort()).toEqual(['m/model.json', 'm/weights.bin', 'optim-opt.bin', 'state.json']);
    const m2 = model();
    const opt2 = adam(0.01);
    const state = await restoreFromFiles(files, 'upload', target(m2, opt2));
    expect(state.step).toBe(7);
    expect(values(m2)).toEqual(values(m));
    const [s1, s2] = [await opt.getWeights(), await opt2.getWeights()];
    expect(s2.map((w) => Array.from(w.tensor.dataSync()))).toEqual(s1.map((w) => Array.from(w.tensor.dataSync())));
  });

  it('refuses tampered files with a one-line message and leaves the networks as they were', async () => {
    const { files } = await trained();
    const m2 = model();
    const before = values(m2);
    const cases: [string, (f: Map<string, Uint8Array>) => void, RegExp][] = [
      ['NaN weight', (f) => new Float32Array(f.get('m/weights.bin')!.buffer).fill(Number.NaN, 0, 1), /contains NaN/],
      [
        'truncated',
        (f) => f.set('m/weights.bin', f.get('m/weights.bin')!.slice(0, 8)),
        /upload\/m\/weights\.bin: truncated/,
      ],
      ['no optimizer state', (f) => f.delete('optim-opt.bin'), /optimizer state 'opt' missing/],
      ['not JSON', (f) => f.set('state.json', new TextEncoder().encode('{')), /state\.json is unreadable/],
      [
        'weight path out',
        (f) => {
          const j = JSON.parse(new TextDecoder().decode(f.get('m/model.json')));
          j.weightsManifest[0].paths = ['../optim-opt.bin'];
          f.set('m/model.json', new TextEncoder().encode(JSON.stringify(j)));
        },
        /weight path '\.\.\/optim-opt\.bin' points outside the model folder/,
      ],
    ];
    for (const [, tamper, message] of cases) {
      const copy = new Map([...files].map(([k, v]) => [k, v.slice()]));
      tamper(copy);
      await expect(restoreFromFiles(copy, 'upload', target(m2, adam(0.01)))).rejects.toThrow(message);
      expect(values(m2)).toEqual(before);
    }
    await expect(restoreFromFiles(files, 'upload', { ...target(m2, adam(0.01)), variant: 'w' })).rejects.toThrow(
      /a v checkpoint, expected w/,
    );
  });
});
