import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  adversarialLoss,
  GantryError,
  initBackend,
  initWeights,
  listCheckpoints,
  loadModel,
  migrateKeys,
  openInitSource,
  optimize,
  readCheckpointState,
  registerKeyMigrations,
  resolveTrainValues,
  runVariant,
  seedWeights,
  train,
} from '@gantry/core';
import { UnalignedDataset, writeUnalignedDataset } from '@gantry/datasets';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadImageFiles, loadTestSplit } from './data.js';
import { evaluateCycleGan } from './evaluate.js';
import { SCENE_STAT_DIM, sceneStatistics } from './features.js';
import { cycleLoss, identityLoss } from './losses.js';
import { buildDiscriminator, buildGenerator, type CycleGanConfig, MUST_MATCH, unetDowns } from './networks.js';
import { CycleGanTask } from './task.js';
import { cyclegan } from './variant.js';

const tmp = fs.mkdtempSync(path.join(tmpdir(), 'gantry-cyclegan-'));
const data = path.join(tmp, 'scenes');
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
beforeAll(async () => {
  // WebAssembly: the short training run below is several times faster there than on the pure-JS backend.
  await initBackend({ backend: 'wasm', log: () => {} });
  // 10 day (A) and 8 night (B) scenes of 32×32: 9/7 for training, 1/1 for test.
  await writeUnalignedDataset(data, { count: 10, countB: 8, size: 32, seed: 3, testFraction: 0.1 });
});

const config: CycleGanConfig = {
  cropSize: 32,
  loadSize: 36,
  channels: 3,
  generator: 'resnet',
  blocks: 1,
  ngf: 4,
  ndf: 4,
  dLayers: 2,
  norm: 'instance',
  lambdaCycle: 10,
  lambdaIdentity: 0.5,
  poolSize: 2,
  domains: { A: 'A', B: 'B' },
};

describe('cycle and identity losses', () => {
  it('are λ·L1 and λ·λ_idt·L1 on known inputs', () => {
    const real = tf.tensor4d([0, 0.5, -1, 1], [1, 2, 2, 1]);
    const rec = tf.tensor4d([0.5, 0.5, -0.5, 0], [1, 2, 2, 1]);
    // mean |rec − real| = (0.5 + 0 + 0.5 + 1) / 4 = 0.5
    expect(cycleLoss(real, rec, 10).dataSync()[0]).toBeCloseTo(5, 6);
    expect(identityLoss(real, rec, 10, 0.5).dataSync()[0]).toBeCloseTo(2.5, 6);
    expect(cycleLoss(real, real, 10).dataSync()[0]).toBe(0);
    expect(identityLoss(real, rec, 10, 0).dataSync()[0]).toBe(0);
  });

  it('have the L1 gradient sign(rec − real)·λ/N', () => {
    const real = tf.tensor1d([0, 0, 0, 0]);
    const g = tf.grad((r: tf.Tensor) => cycleLoss(real, r, 10))(tf.tensor1d([1, -2, 3, -4]));
    expect(Array.from(g.dataSync())).toEqual([2.5, -2.5, 2.5, -2.5]);
  });
});

describe('schedule and settings', () => {
  it('takes explicit flags over a resumed run, and that over the preset', () => {
    const cpu = resolveTrainValues(cyclegan, { preset: 'cpu' });
    expect(cpu.config).toMatchObject({
      cropSize: 128,
      ngf: 16,
      ndf: 16,
      blocks: 6,
      generator: 'resnet',
      dLayers: 3,
      norm: 'instance',
      loadSize: 143,
    });
    expect([cpu.config.lambdaCycle, cpu.config.lambdaIdentity, cpu.config.poolSize]).toEqual([10, 0.5, 50]);
    const paper = resolveTrainValues(cyclegan, { preset: 'paper' });
    expect(paper.config).toMatchObject({ cropSize: 256, ngf: 64, ndf: 64, blocks: 9, loadSize: 286 });
    expect(paper.preset.constantEpochs + paper.preset.decayEpochs).toBe(200);
    const resumed = resolveTrainValues(
      cyclegan,
      { preset: 'cpu', ngf: 8 },
      { cropSize: 64, ngf: 32, blocks: 9, loadSize: 70, epochs: 3 },
    );
    expect(resumed.config).toMatchObject({ cropSize: 64, ngf: 8, blocks: 9, loadSize: 70 });
    expect(resumed.train.epochs).toBe(3);
  });

  it('reads older checkpoints and runs under the renamed keys (the definition says which)', () => {
    registerKeyMigrations(cyclegan);
    expect(migrateKeys('cyclegan', { size: 64 })).toEqual({ cropSize: 64 });
  });

  it("names the generator by the reference's --net-g; --generator and --blocks still work; old checkpoints get netG", () => {
    const nine = resolveTrainValues(cyclegan, { netG: 'resnet_9blocks' }).config;
    expect(nine).toMatchObject({ netG: 'resnet_9blocks', generator: 'resnet', blocks: 9 });
    expect(resolveTrainValues(cyclegan, { blocks: 2 }).config).toMatchObject({ netG: 'resnet_2blocks', blocks: 2 });
    expect(resolveTrainValues(cyclegan, { netG: 'unet_128' }).config).toMatchObject({
      netG: 'unet_128',
      generator: 'unet',
    });
    expect(() => resolveTrainValues(cyclegan, { netG: 'unet_256' })).toThrow(/give --crop-size 256/);
    expect(() => resolveTrainValues(cyclegan, { netG: 'vgg' })).toThrow(/--net-g vgg: expected resnet_9blocks/);
    const dir = path.join(tmp, 'old-checkpoint');
    fs.mkdirSync(dir, { recursive: true });
    const old = { cropSize: 128, generator: 'resnet', blocks: 6, ngf: 16 };
    fs.writeFileSync(path.join(dir, 'state.json'), JSON.stringify({ variant: 'cyclegan', step: 1, config: old }));
    expect(readCheckpointState(dir).config).toEqual({ ...old, netG: 'resnet_6blocks' });
  });

  it('rejects sizes the networks cannot take', () => {
    expect(() => resolveTrainValues(cyclegan, { cropSize: 30 })).toThrow(/multiple of 4/);
    expect(() => resolveTrainValues(cyclegan, { cropSize: 48, generator: 'unet' })).toThrow(/multiple of 32/);
    expect(() => resolveTrainValues(cyclegan, { cropSize: 64, loadSize: 32 })).toThrow(GantryError);
    expect(unetDowns(128)).toBe(7);
    const unet = buildGenerator({ ...config, generator: 'unet' }, 'G_A');
    expect(tf.tidy(() => (unet.predict(tf.zeros([1, 32, 32, 3])) as tf.Tensor).shape)).toEqual([1, 32, 32, 3]);
    unet.dispose();
    expect(unetDowns(256)).toBe(8);
  });
});

describe('scene statistics', () => {
  it('has 25 documented features that tell dark from bright images', () => {
    const black = tf.fill([1, 16, 16, 3], -1) as tf.Tensor4D;
    const warm = tf.tidy(() =>
      tf.concat([tf.fill([1, 16, 16, 1], 1), tf.fill([1, 16, 16, 1], 0.6), tf.fill([1, 16, 16, 1], -0.6)], 3),
    ) as tf.Tensor4D;
    const f = sceneStatistics(tf.concat([black, warm]) as tf.Tensor4D);
    expect(f.length).toBe(2 * SCENE_STAT_DIM);
    const [b, w] = [f.slice(0, SCENE_STAT_DIM), f.slice(SCENE_STAT_DIM)];
    expect(b[0]).toBeCloseTo(0); // top-left luminance
    expect(b[23]).toBeCloseTo(1); // dark fraction
    expect(w[22]).toBeCloseTo(1); // warm bright fraction
    expect(w[16]).toBeCloseTo(1); // mean R
    expect(b[24]).toBeCloseTo(0); // edges
  });
});

describe('training', () => {
  it('trains, checkpoints all four networks with optimizer state, resumes, keeps memory flat, evaluates', async () => {
    const trainSet = await UnalignedDataset.open(data, { cropSize: 32, loadSize: 36 });
    expect([trainSet.sizeA, trainSet.sizeB, trainSet.length]).toEqual([9, 7, 9]);
    const makeTask = async () => {
      seedWeights(1);
      return new CycleGanTask({
        config,
        nets: {
          G_A: buildGenerator(config, 'G_A'),
          G_B: buildGenerator(config, 'G_B'),
          D_A: buildDiscriminator(config, 'D_A'),
          D_B: buildDiscriminator(config, 'D_B'),
        },
        data: trainSet,
        samples: {
          a: await loadImageFiles(trainSet.filesA.slice(0, 2), 32),
          b: await loadImageFiles(trainSet.filesB.slice(0, 2), 32),
        },
        loss: adversarialLoss('lsgan'),
        lr: 2e-4,
        beta1: 0.5,
        seed: 1,
        batchSize: 1,
        checkpointConfig: { ...config },
        mustMatch: [...MUST_MATCH],
      });
    };
    const runDir = path.join(tmp, 'run');
    const task = await makeTask();
    const tensors: number[] = [];
    const seen: Record<string, number>[] = [];
    const r1 = await train(task, {
      runDir,
      steps: 8,
      stopAfter: 6,
      sampleEvery: 3,
      checkpointEvery: 3,
      log: () => {},
      onStep: (_s, l) => {
        seen.push(l);
        tensors.push(tf.memory().numTensors);
      },
    });
    expect(r1.step).toBe(6);
    for (const l of seen) {
      for (const k of ['D', 'D_A', 'D_B', 'G', 'G_A', 'G_B', 'cycle', 'idt']) expect(Number.isFinite(l[k])).toBe(true);
      expect(l.G).toBeCloseTo(l.G_A! + l.G_B! + l.cycle! + l.idt!, 3);
    }
    // The pools (2 images each) are full after two steps; from then on the tensor count must not grow.
    expect(new Set(tensors.slice(2)).size).toBe(1);
    const ckpt = listCheckpoints(runDir).at(-1)!;
    for (const f of [
      'G_A/model.json',
      'G_B/weights.bin',
      'D_A/model.json',
      'D_B/weights.bin',
      'optim-G.bin',
      'optim-D.bin',
    ])
      expect(fs.existsSync(path.join(ckpt, f))).toBe(true);
    expect(readCheckpointState(ckpt)).toMatchObject({ variant: 'cyclegan', step: 6 });
    expect(fs.readdirSync(path.join(runDir, 'samples'))).toEqual(['step-00000003.png', 'step-00000006.png']);
    const grid = task.sampleGrid();
    expect(grid.shape).toEqual([12, 32, 32, 3]); // 2 rows of real A, fake B, rec A, real B, fake A, rec B
    grid.dispose();
    task.dispose();

    const resumed = await makeTask();
    const r2 = await train(resumed, { runDir, steps: 8, resume: true, log: () => {} });
    expect(r2.step).toBe(8);
    expect(fs.existsSync(path.join(runDir, 'samples', 'final.png'))).toBe(true);

    const test = await loadTestSplit(data, 32);
    const e = evaluateCycleGan(resumed.nets.G_A, resumed.nets.G_B, test.a, test.b);
    expect(e.images).toEqual({ A: 1, B: 1 });
    for (const d of [e.AtoB, e.BtoA]) for (const v of Object.values(d)) expect(Number.isFinite(v)).toBe(true);
    tf.dispose([test.a, test.b]);
    resumed.dispose();
  }, 300_000);
});

describe('generator step', () => {
  it('equals one Adam step on the whole objective (the A and B sides are differentiated apart)', async () => {
    const trainSet = await UnalignedDataset.open(data, { cropSize: 32, loadSize: 36 });
    const make = async () => {
      seedWeights(5);
      const nets = {
        G_A: buildGenerator(config, 'G_A'),
        G_B: buildGenerator(config, 'G_B'),
        D_A: buildDiscriminator(config, 'D_A'),
        D_B: buildDiscriminator(config, 'D_B'),
      };
      const samples = { a: tf.zeros([1, 32, 32, 3]) as tf.Tensor4D, b: tf.zeros([1, 32, 32, 3]) as tf.Tensor4D };
      const o = { loss: adversarialLoss('lsgan'), lr: 1e-3, beta1: 0.5, seed: 1, batchSize: 1 };
      return new CycleGanTask({
        config: { ...config, poolSize: 0 },
        nets,
        data: trainSet,
        samples,
        ...o,
        checkpointConfig: {},
        mustMatch: [],
      });
    };
    const split = await make();
    const whole = await make();
    const batch = await split.nextBatch(0);
    const { a, b } = batch;
    const before = split.nets.G_A.getWeights().map((w) => w.clone());
    const l = split.generatorStep(batch);
    const { G_A, G_B, D_A, D_B } = whole.nets;
    const ref = optimize(
      whole.optimizers.G,
      [G_A, G_B],
      () => {
        const fakeB = G_A.apply(a) as tf.Tensor;
        const fakeA = G_B.apply(b) as tf.Tensor;
        const lsgan = adversarialLoss('lsgan');
        const G = tf.addN([
          lsgan.generator(D_A.apply(fakeB) as tf.Tensor),
          lsgan.generator(D_B.apply(fakeA) as tf.Tensor),
          cycleLoss(a, G_B.apply(fakeB) as tf.Tensor, 10),
          cycleLoss(b, G_A.apply(fakeA) as tf.Tensor, 10),
          identityLoss(b, G_A.apply(b) as tf.Tensor, 10, 0.5),
          identityLoss(a, G_B.apply(a) as tf.Tensor, 10, 0.5),
        ]) as tf.Scalar;
        return { G };
      },
      'G',
    );
    expect(l.G!.dataSync()[0]).toBeCloseTo(ref.G!.dataSync()[0]!, 4);
    for (const name of ['G_A', 'G_B'] as const) {
      const ws = split.nets[name].getWeights();
      const wr = whole.nets[name].getWeights();
      for (const [i, w] of ws.entries()) expect(tf.max(tf.abs(tf.sub(w, wr[i]!))).dataSync()[0]).toBeLessThan(1e-5);
    }
    // And the weights did move.
    expect(tf.max(tf.abs(tf.sub(before[0]!, split.nets.G_A.getWeights()[0]!))).dataSync()[0]).toBeGreaterThan(1e-5);
    tf.dispose(before);
    tf.dispose([batch.a, batch.b, Object.values(l), Object.values(ref)]);
    split.dispose();
    whole.dispose();
  }, 300_000);
});

describe('train --init-from', () => {
  it('starts from a checkpoint or a generator-only model: its architecture and weights, fresh optimizers, step 0', async () => {
    const quiet = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      const src = path.join(tmp, 'init-src');
      const tiny = [
        '--data',
        data,
        '--crop-size',
        '32',
        '--no-progress',
        '--backend',
        'wasm',
        '--lambda-identity',
        '0',
      ];
      await runVariant(cyclegan, [
        'train',
        ...tiny,
        '--ngf',
        '4',
        '--ndf',
        '4',
        '--blocks',
        '1',
        '--d-layers',
        '2',
        '--steps',
        '1',
        '--out',
        src,
      ]);
      // An imported published model holds one generator: G_A alone, in the checkpoint layout.
      const ckpt = listCheckpoints(src).at(-1)!;
      const imported = path.join(tmp, 'imported');
      fs.mkdirSync(imported);
      fs.cpSync(path.join(ckpt, 'G_A'), path.join(imported, 'G_A'), { recursive: true });
      fs.copyFileSync(path.join(ckpt, 'state.json'), path.join(imported, 'state.json'));
      const source = openInitSource('cyclegan', imported);
      expect(source.nets).toEqual(['G_A']);
      seedWeights(9);
      const nets = { G_A: buildGenerator(config, 'G_A'), G_B: buildGenerator(config, 'G_B') };
      const saved = await loadModel(path.join(imported, 'G_A'));
      const same = (m: tf.LayersModel) =>
        m.getWeights().every((w, i) => tf.tidy(() => tf.all(tf.equal(w, saved.getWeights()[i]!)).dataSync()[0] === 1));
      expect(same(nets.G_A)).toBe(false);
      expect(initWeights(source, nets, () => {})).toEqual(['G_A']);
      expect(same(nets.G_A)).toBe(true);
      expect(same(nets.G_B)).toBe(false);
      for (const m of [...Object.values(nets), saved]) m.dispose();

      // The command takes the architecture from the source (no network flags) and trains a few steps from step 0.
      const out = path.join(tmp, 'init-run');
      await runVariant(cyclegan, ['train', ...tiny, '--init-from', imported, '--steps', '2', '--out', out]);
      const state = readCheckpointState(listCheckpoints(out).at(-1)!);
      expect(state.step).toBe(2);
      expect(state.config).toMatchObject({ ngf: 4, blocks: 1, norm: 'instance', cropSize: 32 });
      // The discriminators were not in the source: their flags are free (the cpu preset's ndf 16 here).
      expect(state.config.ndf).toBe(16);
    } finally {
      quiet.mockRestore();
    }
  }, 300_000);
});

describe('CLI errors', () => {
  /** Runs the cyclegan CLI in-process; returns the first error line and exit code. */
  async function cli(...argv: string[]): Promise<{ code?: number; error?: string }> {
    const result: { code?: number; error?: string } = {};
    const exit = vi.spyOn(process, 'exit').mockImplementation(((code?: number) => {
      result.code ??= code;
      throw new Error('exit');
    }) as never);
    const err = vi.spyOn(console, 'error').mockImplementation((line: unknown) => {
      result.error ??= String(line);
    });
    const prev = process.env.GANTRY_RUNS;
    process.env.GANTRY_RUNS = path.join(tmp, 'no-runs');
    try {
      await runVariant(cyclegan, [...argv, '--backend', 'wasm']).catch(() => {});
    } finally {
      exit.mockRestore();
      err.mockRestore();
      if (prev === undefined) delete process.env.GANTRY_RUNS;
      else process.env.GANTRY_RUNS = prev;
    }
    return result;
  }

  it('reports bad flags in one line with exit code 2', async () => {
    expect(await cli('train', '--bogus', '1')).toMatchObject({
      code: 2,
      error: expect.stringMatching(/^cyclegan: error: .*bogus/),
    });
    expect(await cli('train', '--ngf', '0')).toMatchObject({
      code: 2,
      error: expect.stringContaining('--ngf: expected a positive integer'),
    });
    expect(await cli('train', '--crop-size', '30', '--data', data)).toMatchObject({
      code: 2,
      error: expect.stringContaining('multiple of 4'),
    });
    expect(await cli('translate', '--direction', 'sideways', '-i', 'x', '-o', 'y')).toMatchObject({
      code: 2,
      error: expect.stringContaining('direction'),
    });
  });

  it('names a missing dataset, input or model', async () => {
    expect(await cli('train', '--data', path.join(tmp, 'nope'), '--crop-size', '32')).toMatchObject({
      code: 2,
      error: expect.stringContaining('dataset folder not found'),
    });
    expect(await cli('train', '--data', path.join(data, 'trainA'), '--crop-size', '32')).toMatchObject({
      code: 2,
      error: expect.stringContaining('folder not found'),
    });
    expect(await cli('translate', '-i', path.join(tmp, 'missing.png'), '-o', path.join(tmp, 'out.png'))).toMatchObject({
      code: 2,
      error: expect.stringContaining('no such file or folder'),
    });
    const img = fs.readdirSync(path.join(data, 'testA'))[0]!;
    expect(await cli('translate', '-i', path.join(data, 'testA', img), '-o', path.join(tmp, 'out.png'))).toMatchObject({
      code: 2,
      error: expect.stringContaining('no trained cyclegan model found'),
    });
    expect(await cli('evaluate')).toMatchObject({
      code: 2,
      error: expect.stringContaining('no trained cyclegan model found'),
    });
    expect(await cli('train', '--resume', 'latest')).toMatchObject({
      code: 2,
      error: expect.stringMatching(/--resume latest: no such run/),
    });
    expect(
      await cli('train', '--data', data, '--init-from', path.join(tmp, 'init-src'), '--ngf', '8', '--steps', '1'),
    ).toMatchObject({
      code: 2,
      error: expect.stringMatching(/--ngf 8: contradicts --init-from .*whose ngf is 4/),
    });
  });
});
