import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { initBackend } from '../backend/index.js';
import { listCheckpoints, loadModel, readCheckpointState, restoreCheckpoint, saveCheckpoint } from './checkpoint.js';
import { convBlock } from '../nn/networks.js';
import { adam } from '../train/optim.js';

/** The fields of model.json and state.json that these tests tamper with. */
type SavedJson = {
  weightsManifest: { paths: string[]; weights: { shape: unknown; dtype: unknown }[] }[];
  step: unknown;
};

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
    opt.minimize(
      () => tf.sum(tf.square(m.apply(tf.ones([1, 3])) as tf.Tensor)) as tf.Scalar,
      false,
      m.trainableWeights.map((w) => w.read() as tf.Variable),
    );
    const dir = await saveCheckpoint(runDir, {
      state: { variant: 'v', step: 1, epoch: 0, config: { a: 1 } },
      nets: { m },
      optimizers: { opt },
    });
    const m2 = model();
    const opt2 = adam(0.01);
    await restoreCheckpoint(dir, {
      variant: 'v',
      nets: { m: m2 },
      optimizers: { opt: opt2 },
      config: { a: 1 },
      mustMatch: ['a'],
    });
    expect(m2.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(
      m.getWeights().map((w) => Array.from(w.dataSync())),
    );
    const [s1, s2] = [await opt.getWeights(), await opt2.getWeights()];
    expect(s2.map((w) => Array.from(w.tensor.dataSync()))).toEqual(s1.map((w) => Array.from(w.tensor.dataSync())));
  });

  it('on a full disk: a one-line error naming the checkpoint, the previous checkpoint kept, no partial files', async () => {
    const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-full-'));
    const m = model();
    const opt = adam();
    const save = (step: number) =>
      saveCheckpoint(runDir, { state: { variant: 'v', step, epoch: 0, config: {} }, nets: { m }, optimizers: { opt } });
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
    const dir = await saveCheckpoint(runDir, {
      state: { variant: 'dcgan', step: 1, epoch: 0, config: { size: 28 } },
      nets: { m },
      optimizers: {},
    });
    await expect(
      restoreCheckpoint(dir, { variant: 'cgan', nets: { m }, optimizers: {}, config: {}, mustMatch: [] }),
    ).rejects.toThrow(/a dcgan checkpoint, expected cgan/);
    await expect(
      restoreCheckpoint(dir, {
        variant: 'dcgan',
        nets: { m },
        optimizers: {},
        config: { size: 32 },
        mustMatch: ['size'],
      }),
    ).rejects.toThrow(/size=28, not 32/);
    const bigger = (() => {
      const x = tf.input({ shape: [4] });
      return tf.model({ inputs: x, outputs: tf.layers.dense({ units: 2 }).apply(x) as tf.SymbolicTensor });
    })();
    await expect(
      restoreCheckpoint(dir, { variant: 'dcgan', nets: { m: bigger }, optimizers: {}, config: {}, mustMatch: [] }),
    ).rejects.toThrow(/does not fit this model/);
  });
});

describe('checkpoint files are untrusted input', () => {
  const trained = async () => {
    const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-untrusted-'));
    const m = model();
    const opt = adam(0.01);
    opt.minimize(
      () => tf.sum(tf.square(m.apply(tf.ones([1, 3])) as tf.Tensor)) as tf.Scalar,
      false,
      m.trainableWeights.map((w) => w.read() as tf.Variable),
    );
    const dir = await saveCheckpoint(runDir, {
      state: { variant: 'v', step: 3, epoch: 0, config: {} },
      nets: { m },
      optimizers: { opt },
    });
    return {
      runDir,
      dir,
      restore: () =>
        restoreCheckpoint(dir, {
          variant: 'v',
          nets: { m: model() },
          optimizers: { opt: adam(0.01) },
          config: {},
          mustMatch: [],
        }),
    };
  };
  const editJson = (file: string, edit: (j: SavedJson) => void) => {
    const j = JSON.parse(fs.readFileSync(file, 'utf8')) as SavedJson;
    edit(j);
    fs.writeFileSync(file, JSON.stringify(j));
  };

  it('refuses weight paths outside the model folder (.., absolute, a link out)', async () => {
    const { dir } = await trained();
    const json = path.join(dir, 'm', 'model.json');
    for (const p of ['../../../../../../etc/passwd', '/etc/passwd', '../state.json']) {
      editJson(json, (j) => {
        j.weightsManifest[0].paths = [p];
      });
      await expect(loadModel(path.join(dir, 'm'))).rejects.toThrow(
        /model\.json: weight path '.*' points outside the model folder/,
      );
    }
    fs.symlinkSync('/etc/hostname', path.join(dir, 'm', 'link.bin'));
    editJson(json, (j) => {
      j.weightsManifest[0].paths = ['link.bin'];
    });
    await expect(loadModel(path.join(dir, 'm'))).rejects.toThrow(
      /weight path 'link\.bin' links outside the model folder/,
    );
  });

  it('refuses truncated or padded weights and optimizer files, naming the file', async () => {
    const { dir, restore } = await trained();
    const weights = path.join(dir, 'm', 'weights.bin');
    const full = fs.readFileSync(weights);
    fs.writeFileSync(weights, full.subarray(0, full.length - 5));
    await expect(loadModel(path.join(dir, 'm'))).rejects.toThrow(
      /m\/weights\.bin: truncated \(27 bytes, the weight list needs at least 32\)/,
    );
    await expect(restore()).rejects.toThrow(/weights\.bin: truncated/);
    fs.writeFileSync(weights, Buffer.concat([full, Buffer.alloc(4)]));
    await expect(loadModel(path.join(dir, 'm'))).rejects.toThrow(
      /weights\.bin: 36 bytes, but the weight list describes 32/,
    );
    fs.writeFileSync(weights, full);
    const optim = path.join(dir, 'optim-opt.bin');
    fs.writeFileSync(optim, fs.readFileSync(optim).subarray(0, 10));
    await expect(restore()).rejects.toThrow(/optim-opt\.bin: truncated/);
  });

  it('refuses NaN/Inf weights, bad shapes and dtypes, naming the file', async () => {
    const { dir } = await trained();
    const weights = path.join(dir, 'm', 'weights.bin');
    const full = fs.readFileSync(weights);
    const bad = Buffer.from(full);
    bad.writeFloatLE(Number.NaN, 8);
    fs.writeFileSync(weights, bad);
    await expect(loadModel(path.join(dir, 'm'))).rejects.toThrow(
      /m\/weights\.bin: weight .* contains NaN \(refusing NaN\/Inf weights\)/,
    );
    bad.writeFloatLE(Number.POSITIVE_INFINITY, 8);
    fs.writeFileSync(weights, bad);
    await expect(loadModel(path.join(dir, 'm'))).rejects.toThrow(/contains Infinity/);
    fs.writeFileSync(weights, full);
    const json = path.join(dir, 'm', 'model.json');
    const original = fs.readFileSync(json, 'utf8');
    editJson(json, (j) => {
      j.weightsManifest[0].weights[0].shape = [3, -2];
    });
    await expect(loadModel(path.join(dir, 'm'))).rejects.toThrow(/has shape \[3,-2\], expected non-negative integers/);
    fs.writeFileSync(json, original);
    editJson(json, (j) => {
      j.weightsManifest[0].weights[0].dtype = 'complex64';
    });
    await expect(loadModel(path.join(dir, 'm'))).rejects.toThrow(
      /has dtype complex64, expected float32, int32 or bool/,
    );
    fs.writeFileSync(json, original);
    expect((await loadModel(path.join(dir, 'm'))).countParams()).toBe(8);
  });

  it("checks state.json's fields: types, ranges and the step in the checkpoint's name", async () => {
    const { dir } = await trained();
    const file = path.join(dir, 'state.json');
    const original = fs.readFileSync(file, 'utf8');
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ step: 'abc' }, /'step' is "abc", expected an integer in 0\.\.99999999/],
      [{ step: 1e9 }, /'step' is 1000000000, expected an integer/],
      [{ step: 4 }, /'step' is 4, expected 3, the step in the checkpoint's name/],
      [{ epoch: -1 }, /'epoch' is -1, expected a non-negative number/],
      [{ lrScale: 5 }, /'lrScale' is 5, expected a number in \(0, 1\]/],
      [{ config: 'x' }, /'config' is "x", expected an object/],
      [{ variant: '../x' }, /'variant' is "\.\.\/x", expected a variant name/],
    ];
    for (const [patch, message] of cases) {
      fs.writeFileSync(file, JSON.stringify({ ...JSON.parse(original), ...patch }));
      expect(() => readCheckpointState(dir)).toThrow(message);
    }
    fs.writeFileSync(file, original);
    expect(readCheckpointState(dir).step).toBe(3);
  });

  it('restoring again and again (rollbacks) keeps the tensor count flat', async () => {
    const { dir } = await trained();
    const m = model();
    const opt = adam(0.01);
    const restore = () =>
      restoreCheckpoint(dir, { variant: 'v', nets: { m }, optimizers: { opt }, config: {}, mustMatch: [] });
    await restore();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) await restore();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('never prunes the checkpoint just written, even with later steps in the folder', async () => {
    const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-prune-'));
    const m = model();
    const save = (step: number) =>
      saveCheckpoint(runDir, {
        state: { variant: 'v', step, epoch: 0, config: {} },
        nets: { m },
        optimizers: {},
        keep: 2,
      });
    for (const step of [50, 60]) await save(step);
    for (const step of [5, 10, 15]) await save(step);
    expect(listCheckpoints(runDir).map((d) => path.basename(d))).toEqual([
      'step-00000010',
      'step-00000015',
      'step-00000050',
      'step-00000060',
    ]);
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
    const dir = await saveCheckpoint(fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-structure-')), {
      state: { variant: 'v', step: 1, epoch: 0, config: {} },
      nets: { m: old },
      optimizers: {},
    });
    const now = net(1);
    expect(now.weights.map((w) => w.shape)).toEqual(old.weights.map((w) => w.shape));
    await expect(
      restoreCheckpoint(dir, { variant: 'v', nets: { m: now }, optimizers: {}, config: {}, mustMatch: [] }),
    ).rejects.toThrow(
      /has an older layer structure than this version's networks .*cannot resume training; start a new run$/,
    );
    const same = net();
    await restoreCheckpoint(dir, { variant: 'v', nets: { m: same }, optimizers: {}, config: {}, mustMatch: [] });
    for (const m of [old, now, same]) m.dispose();
  });
});
