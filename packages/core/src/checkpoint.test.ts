import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { initBackend } from './backend/index.js';
import { listCheckpoints, restoreCheckpoint, saveCheckpoint } from './checkpoint.js';
import { convBlock } from './networks.js';
import { adam } from './optim.js';

// A disk that fills up on demand: writes into a checkpoint being assembled fail with ENOSPC.
const disk = vi.hoisted(() => ({ full: false }));
vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>();
  const writeFileSync: typeof real.writeFileSync = (file, ...rest) => {
    if (disk.full && String(file).includes('.partial')) {
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    }
    return real.writeFileSync(file, ...rest);
  };
  return { ...real, default: { ...real, writeFileSync }, writeFileSync };
});

function model() {
  const x = tf.input({ shape: [3] });
  const y = tf.layers.dense({ units: 2 }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: x, outputs: y });
}

beforeAll(async () => {
  await initBackend({ backend: 'cpu', log: () => {} });
});

describe('saveCheckpoint', () => {
  it('round-trips weights and Adam state', async () => {
    const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-ckpt-'));
    const m = model();
    const opt = adam(0.01);
    opt.minimize(() => tf.sum(tf.square(m.apply(tf.ones([1, 3])) as tf.Tensor)) as tf.Scalar, false, m.trainableWeights.map((w) => w.read() as tf.Variable));
    const dir = await saveCheckpoint(runDir, { state: { variant: 'v', step: 1, epoch: 0, config: { a: 1 } }, nets: { m }, optimizers: { opt } });
    const m2 = model();
    const opt2 = adam(0.01);
    await restoreCheckpoint(dir, { variant: 'v', nets: { m: m2 }, optimizers: { opt: opt2 }, config: { a: 1 }, mustMatch: ['a'] });
    expect(m2.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(m.getWeights().map((w) => Array.from(w.dataSync())));
    const [s1, s2] = [await opt.getWeights(), await opt2.getWeights()];
    expect(s2.map((w) => Array.from(w.tensor.dataSync()))).toEqual(s1.map((w) => Array.from(w.tensor.dataSync())));
  });

  it('on a full disk: a one-line error naming the checkpoint, the previous checkpoint kept, no partial files', async () => {
    const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-full-'));
    const m = model();
    const opt = adam();
    const save = (step: number) => saveCheckpoint(runDir, { state: { variant: 'v', step, epoch: 0, config: {} }, nets: { m }, optimizers: { opt } });
    await save(1);
    disk.full = true;
    try {
      await expect(save(2)).rejects.toThrow(/^cannot write .*step-00000002: the disk is full$/);
    } finally {
      disk.full = false;
    }
    expect(listCheckpoints(runDir).map((p) => path.basename(p))).toEqual(['step-00000001']);
    expect(fs.readdirSync(path.join(runDir, 'checkpoints'))).toEqual(['step-00000001']);
  });

  it('refuses a checkpoint of another variant or configuration', async () => {
    const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-other-'));
    const m = model();
    const dir = await saveCheckpoint(runDir, { state: { variant: 'dcgan', step: 1, epoch: 0, config: { size: 28 } }, nets: { m }, optimizers: {} });
    await expect(restoreCheckpoint(dir, { variant: 'cgan', nets: { m }, optimizers: {}, config: {}, mustMatch: [] })).rejects.toThrow(/a dcgan checkpoint, expected cgan/);
    await expect(restoreCheckpoint(dir, { variant: 'dcgan', nets: { m }, optimizers: {}, config: { size: 32 }, mustMatch: ['size'] })).rejects.toThrow(/size=28, not 32/);
    const bigger = (() => {
      const x = tf.input({ shape: [4] });
      return tf.model({ inputs: x, outputs: tf.layers.dense({ units: 2 }).apply(x) as tf.SymbolicTensor });
    })();
    await expect(restoreCheckpoint(dir, { variant: 'dcgan', nets: { m: bigger }, optimizers: {}, config: {}, mustMatch: [] })).rejects.toThrow(/does not fit this model/);
  });
});

describe('checkpoints of an older layer structure', () => {
  it('are refused on restore with a clear message even when every weight shape fits', async () => {
    const net = (pad?: number) => {
      const x = tf.input({ shape: [null, null, 2] });
      return tf.model({ inputs: x, outputs: convBlock(x, { filters: 2, stride: 1, pad, norm: 'batch' }) });
    };
    // 'same' padding (before #23) against PyTorch's symmetric padding: the same weights, another network.
    const old = net();
    const dir = await saveCheckpoint(fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-structure-')), { state: { variant: 'v', step: 1, epoch: 0, config: {} }, nets: { m: old }, optimizers: {} });
    const now = net(1);
    expect(now.weights.map((w) => w.shape)).toEqual(old.weights.map((w) => w.shape));
    await expect(restoreCheckpoint(dir, { variant: 'v', nets: { m: now }, optimizers: {}, config: {}, mustMatch: [] })).rejects.toThrow(
      /has an older layer structure than this version's networks .*cannot resume training; start a new run$/,
    );
    const same = net();
    await restoreCheckpoint(dir, { variant: 'v', nets: { m: same }, optimizers: {}, config: {}, mustMatch: [] });
    for (const m of [old, now, same]) m.dispose();
  });
});
