import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  adversarialLoss,
  GantryError,
  initArchitecture,
  initBackend,
  initWeights,
  latestCheckpoint,
  loadModel,
  migrateKeys,
  openInitSource,
  readCheckpointState,
  readImage,
  registerKeyMigrations,
  seedWeights,
  train,
  variantCommands,
  writeRawImage,
} from '@gantry/core';
import { AlignedDataset, ensureSceneDataset } from '@gantry/datasets';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import yargs from 'yargs';
import {
  buildDiscriminator,
  buildGenerator,
  checkConfig,
  MUST_MATCH,
  NET_G,
  type NetG,
  type Pix2pixConfig,
} from './networks.js';
import { Pix2pixTask, type Pix2pixTaskOptions } from './task.js';
import { pix2pix } from './variant.js';

const tmp = mkdtempSync(join(tmpdir(), 'gantry-pix2pix-'));
const runs = join(tmp, 'runs');
const savedRuns = process.env.GANTRY_RUNS;
beforeAll(async () => {
  process.env.GANTRY_RUNS = runs;
  await initBackend({ backend: 'wasm', log: () => {} });
});
afterAll(() => {
  if (savedRuns === undefined) delete process.env.GANTRY_RUNS;
  else process.env.GANTRY_RUNS = savedRuns;
  rmSync(tmp, { recursive: true, force: true });
});

/** A task of config `c` with fresh networks; `o` gives the data and the optimisation settings. */
const newTask = (
  c: Pix2pixConfig,
  o: Omit<Pix2pixTaskOptions, 'nets' | 'config' | 'checkpointConfig' | 'mustMatch' | 'loss' | 'beta1'>,
) =>
  new Pix2pixTask({
    nets: { generator: buildGenerator(c), discriminator: buildDiscriminator(c) },
    config: c,
    checkpointConfig: { ...c },
    mustMatch: [...MUST_MATCH],
    loss: adversarialLoss('bce'),
    beta1: 0.5,
    ...o,
  });

const config = (o: Partial<Pix2pixConfig> = {}): Pix2pixConfig => ({
  netG: 'unet_32',
  ngf: 4,
  ndf: 4,
  dLayers: 3,
  norm: 'batch',
  dropout: true,
  cropSize: 32,
  loadSize: 36,
  direction: 'BtoA',
  channels: 3,
  lambdaL1: 100,
  lambdaGan: 1,
  ...o,
});

/** Runs the pix2pix CLI in-process; resolves with what it printed, rejects with the handler's error. */
async function cli(args: string[]): Promise<string> {
  const out: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => out.push(a.join(' '));
  try {
    await variantCommands(
      pix2pix,
      args,
    )(
      yargs(args)
        .scriptName('pix2pix')
        .option('backend', { type: 'string' })
        .strict()
        .exitProcess(false)
        .fail((msg: string, err?: Error) => {
          throw err ?? new GantryError(msg);
        }),
    ).parseAsync();
  } finally {
    console.log = log;
  }
  return out.join('\n');
}

describe('older checkpoints', () => {
  it('are read under the renamed keys (the definition says which)', () => {
    registerKeyMigrations(pix2pix);
    expect(migrateKeys('pix2pix', { nLayersD: 2, epochsDecay: 1 })).toEqual({ dLayers: 2, decayEpochs: 1 });
  });
});

describe('networks', () => {
  for (const [name, downs] of Object.entries(NET_G)) {
    it(`${name}: ${2 ** downs}×${2 ** downs} in, same out, 1×1 bottleneck, skip connections, decoder dropout`, () => {
      const size = 2 ** downs;
      const c = config({ netG: name as NetG, cropSize: size, loadSize: size, ngf: 2, ndf: 2 });
      checkConfig(c);
      const g = buildGenerator(c);
      // Fully convolutional: any multiple of 2^downs goes in; `downs` stride-2 convs bring the crop size to 1×1.
      expect(g.inputs[0]!.shape).toEqual([null, null, null, 3]);
      expect(g.layers.filter((l) => l.getClassName() === 'Conv2D')).toHaveLength(downs);
      expect(g.layers.filter((l) => l.getClassName() === 'Concatenate')).toHaveLength(downs - 1);
      expect(g.layers.filter((l) => l.getClassName() === 'Dropout')).toHaveLength(Math.max(0, downs - 5));
      const d = buildDiscriminator(c);
      expect(d.inputs[0]!.shape).toEqual([null, null, null, 6]);
      // 3 strided layers to size/8, then 2 stride-1 4×4 convs padded 1 each side: size/8 − 2 logits per side
      // (the reference's 30×30 at 256).
      const map = tf.tidy(() => (d.predict(tf.zeros([1, size, size, 6])) as tf.Tensor).shape);
      expect(map).toEqual([1, size / 8 - 2, size / 8 - 2, 1]);
      if (size <= 64) {
        const y = tf.tidy(() => g.predict(tf.zeros([2, size, size, 3])) as tf.Tensor);
        expect(y.shape).toEqual([2, size, size, 3]);
        expect(Math.max(...y.dataSync().map(Math.abs))).toBeLessThanOrEqual(1);
        y.dispose();
      }
      g.dispose();
      d.dispose();
    });
  }

  it('selectable PatchGAN depth and norm; bad sizes are one-line errors', () => {
    const d1 = buildDiscriminator(config({ dLayers: 1 }));
    const size = config({}).cropSize;
    expect(tf.tidy(() => (d1.predict(tf.zeros([1, size, size, 6])) as tf.Tensor).shape)).toEqual([
      1,
      size / 2 - 2,
      size / 2 - 2,
      1,
    ]);
    d1.dispose();
    const inst = buildGenerator(config({ norm: 'instance' }));
    expect(inst.layers.some((l) => l.getClassName() === 'InstanceNormalization')).toBe(true);
    expect(() => checkConfig(config({ netG: 'unet_128', cropSize: 96, loadSize: 100 }))).toThrow(/multiple of 128/);
    expect(() => checkConfig(config({ loadSize: 30 }))).toThrow(/smaller than --crop-size/);
  });
});

describe('training and the CLI', () => {
  let data: string;
  beforeAll(async () => {
    data = await ensureSceneDataset({ layout: 'aligned', size: 32, count: 20, root: join(tmp, 'data'), log: () => {} });
  });

  it('a short training run learns (L1 falls), writes strips and checkpoints, and resumes', async () => {
    const c = config();
    const open = async () => ({
      train: await AlignedDataset.open(data, { split: 'train', cropSize: 32, loadSize: 36, direction: 'BtoA' }),
      samples: await AlignedDataset.open(data, { split: 'val', cropSize: 32, direction: 'BtoA' }),
    });
    seedWeights(1);
    const task = newTask(c, { lr: 2e-3, seed: 1, batchSize: 4, ...(await open()) });
    const runDir = join(tmp, 'run-a');
    const l1: number[] = [];
    const r = await train(task, {
      runDir,
      steps: 24,
      sampleEvery: 12,
      checkpointEvery: 12,
      log: () => {},
      onStep: (_, l) => l1.push(l.L1!),
    });
    expect(r.step).toBe(24);
    for (const k of ['D', 'G', 'G_GAN', 'L1']) expect(Number.isFinite(r.losses[k])).toBe(true);
    const first = l1.slice(0, 4).reduce((a, b) => a + b) / 4;
    const last = l1.slice(-4).reduce((a, b) => a + b) / 4;
    expect(last).toBeLessThan(first * 0.8);
    expect(readdirSync(join(runDir, 'samples')).sort()).toEqual([
      'final.png',
      'step-00000012.png',
      'step-00000024.png',
    ]);
    const strip = await readImage(join(runDir, 'samples', 'final.png'));
    expect(strip.width).toBe(3 * 32 + 4 * 2); // input | output | target
    expect(latestCheckpoint(runDir)).toMatch(/step-00000024$/);
    task.dispose();

    seedWeights(1);
    const again = newTask(c, { lr: 2e-3, seed: 1, batchSize: 4, ...(await open()) });
    const r2 = await train(again, { runDir, steps: 30, resume: true, log: () => {} });
    expect(r2.step).toBe(30);
    again.dispose();
  });

  it("a training step shares G's forward pass: the same updates as a D step then a G step, without dropout", async () => {
    // Without dropout G's output is the same in both steps, so sharing it changes no update.
    const c = config({ dropout: false });
    const make = async () => {
      seedWeights(4);
      const train = await AlignedDataset.open(data, { split: 'train', cropSize: 32, loadSize: 36, direction: 'BtoA' });
      return newTask(c, { lr: 2e-3, seed: 4, batchSize: 2, train });
    };
    const [shared, split] = [await make(), await make()];
    for (let step = 0; step < 3; step++) {
      const batch = await shared.nextBatch(step);
      const a = shared.trainStep(batch);
      const b = { ...split.discriminatorStep(batch), ...split.generatorStep(batch) };
      for (const k of ['D', 'G', 'G_GAN', 'L1']) expect(a[k]!.dataSync()[0]).toBeCloseTo(b[k]!.dataSync()[0]!, 4);
      tf.dispose([...Object.values(a), ...Object.values(b), batch.a, batch.b]);
    }
    const weights = (t: Pix2pixTask) =>
      Object.values(t.nets).flatMap((m) => m.trainableWeights.flatMap((w) => Array.from(w.read().dataSync())));
    const [wa, wb] = [weights(shared), weights(split)];
    expect(Math.max(...wa.map((v, i) => Math.abs(v - wb[i]!)))).toBeLessThan(1e-4);
    shared.dispose();
    split.dispose();
  });

  it('L1-only baseline (--lambda-gan 0) trains G alone', async () => {
    const c = config({ lambdaGan: 0 });
    seedWeights(2);
    const task = newTask(c, {
      lr: 2e-4,
      seed: 2,
      batchSize: 2,
      train: await AlignedDataset.open(data, { cropSize: 32, loadSize: 36, direction: 'BtoA' }),
    });
    const dBefore = task.nets.discriminator.getWeights()[0]!.dataSync().slice();
    const r = await train(task, { runDir: join(tmp, 'run-l1'), steps: 2, log: () => {} });
    expect(Object.keys(r.losses).sort()).toEqual(['G', 'L1']);
    expect(task.nets.discriminator.getWeights()[0]!.dataSync()).toEqual(dBefore);
    task.dispose();
  });

  it('CLI: train, translate (files, folders, errors), evaluate against identity and the L1-only baseline', async () => {
    const common = [
      '--data',
      data,
      '--direction',
      'BtoA',
      '--netG',
      'unet_32',
      '--ngf',
      '4',
      '--ndf',
      '4',
      '--crop-size',
      '32',
      '--load-size',
      '36',
      '--no-progress',
      '--backend',
      'wasm',
    ];
    await cli(['train', ...common, '--steps', '3', '--lambda-gan', '0', '--out', join(runs, 'pix2pix', 'l1')]);
    await cli(['train', ...common, '--steps', '3', '--out', join(runs, 'pix2pix', 'gan')]);
    const ckpt = join(runs, 'pix2pix', 'gan');

    // Single files of any size/format; the output keeps the input's size.
    const photo = join(tmp, 'photo.jpg');
    await writeRawImage({ data: new Uint8Array(90 * 50 * 3).fill(180), width: 90, height: 50, channels: 3 }, photo);
    await cli(['translate', '--checkpoint', ckpt, '--input', photo, '--output', join(tmp, 'night.png')]);
    const night = await readImage(join(tmp, 'night.png'));
    expect([night.width, night.height]).toEqual([90, 50]);
    // The other resolution and test mode, tiles, and bad native-resolution flags.
    await cli([
      'translate',
      '--checkpoint',
      ckpt,
      '--input',
      photo,
      '--output',
      join(tmp, 'night-model.png'),
      '--resolution',
      'model',
      '--eval',
    ]);
    expect((await readImage(join(tmp, 'night-model.png'))).width).toBe(90);
    await cli([
      'translate',
      '--checkpoint',
      ckpt,
      '--input',
      photo,
      '--output',
      join(tmp, 'night-tiles.png'),
      '--tile',
      '64',
      '--tile-overlap',
      '16',
    ]);
    expect((await readImage(join(tmp, 'night-tiles.png'))).height).toBe(50);
    await expect(
      cli(['translate', '--checkpoint', ckpt, '--input', photo, '--output', join(tmp, 'z.png'), '--tile', 'big']),
    ).rejects.toThrow(/--tile: expected auto, 0 or a tile side/);
    await expect(
      cli([
        'translate',
        '--checkpoint',
        ckpt,
        '--input',
        photo,
        '--output',
        join(tmp, 'z.png'),
        '--resolution',
        'huge',
      ]),
    ).rejects.toThrow(/resolution/);

    // Errors: a non-image and a corrupt image, alone and in a folder with good files.
    const bad = join(tmp, 'bad');
    mkdirSync(bad);
    writeFileSync(join(bad, 'notes.txt'), 'not an image');
    writeFileSync(join(bad, 'broken.png'), Buffer.from('\x89PNG\r\n\x1a\nbroken'));
    await writeRawImage(
      { data: new Uint8Array(40 * 30 * 3).fill(200), width: 40, height: 30, channels: 3 },
      join(bad, 'good.png'),
    );
    const errs: string[] = [];
    const warn = console.error;
    console.error = (...a: unknown[]) => errs.push(a.join(' '));
    try {
      await expect(
        cli(['translate', '--checkpoint', ckpt, '--input', join(bad, 'notes.txt'), '--output', join(tmp, 'x.png')]),
      ).rejects.toThrow(/notes\.txt: not a readable image/);
      await expect(
        cli(['translate', '--checkpoint', ckpt, '--input', bad, '--output', join(tmp, 'bad-out')]),
      ).rejects.toThrow('2 of 3 files failed: broken.png, notes.txt');
    } finally {
      console.error = warn;
    }
    expect(errs.some((l) => l.includes(join(bad, 'broken.png')) && l.includes('not a readable image'))).toBe(true);
    expect(readdirSync(join(tmp, 'bad-out'))).toEqual(['good.png']);
    expect(existsSync(join(tmp, 'x.png'))).toBe(false);
    await expect(
      cli(['translate', '--checkpoint', join(tmp, 'nope'), '--input', photo, '--output', join(tmp, 'y.png')]),
    ).rejects.toThrow(/no such run/);
    await expect(
      cli(['translate', '--checkpoint', ckpt, '--input', join(tmp, 'missing.jpg'), '--output', join(tmp, 'y.png')]),
    ).rejects.toThrow(/no such file or folder/);

    const report = await cli(['evaluate', '--checkpoint', ckpt, '--limit', '4']);
    expect(report).toMatch(/identity\s+[\d.]+\s+[\d.]+\s+[\d.]+/);
    expect(report).toMatch(/L1-only baseline\s+[\d.]+/);
    expect(report).toMatch(/pix2pix \(GAN \+ L1\)\s+[\d.]+/);
  });

  it('train --init-from: the architecture and weights of a checkpoint, fresh optimizers, step 0; contradicting flags refused', async () => {
    const src = join(runs, 'pix2pix', 'init-src');
    const base = ['--data', data, '--direction', 'BtoA', '--load-size', '36', '--no-progress', '--backend', 'wasm'];
    await cli([
      'train',
      ...base,
      '--netG',
      'unet_32',
      '--ngf',
      '4',
      '--ndf',
      '4',
      '--crop-size',
      '32',
      '--norm',
      'instance',
      '--steps',
      '2',
      '--out',
      src,
    ]);
    const source = openInitSource('pix2pix', src);
    expect(source.nets).toEqual(['discriminator', 'generator']);

    // The core steps the command runs: architecture from the source (no network flags given), then its weights.
    const arch = initArchitecture(source, [{ key: 'netG' }, { key: 'ngf' }, { key: 'norm' }], {});
    expect(arch).toEqual({ netG: 'unet_32', ngf: 4, norm: 'instance' });
    const c = config({ norm: 'instance' });
    seedWeights(5);
    const task = newTask(c, {
      lr: 2e-4,
      seed: 5,
      batchSize: 1,
      train: await AlignedDataset.open(data, { cropSize: 32, loadSize: 36, direction: 'BtoA' }),
    });
    const saved = await loadModel(join(source.checkpoint, 'generator'));
    const differs = () =>
      task.nets.generator
        .getWeights()
        .some((w, i) => tf.tidy(() => tf.any(tf.notEqual(w, saved.getWeights()[i]!)).dataSync()[0] === 1));
    expect(differs()).toBe(true);
    expect(initWeights(source, task.nets, () => {})).toEqual(['generator', 'discriminator']);
    expect(differs()).toBe(false);
    const r = await train(task, { runDir: join(tmp, 'run-init'), steps: 3, log: () => {} });
    expect(r.step).toBe(3);
    expect(Number.isFinite(r.losses.G)).toBe(true);
    expect(differs()).toBe(true);
    task.dispose();
    saved.dispose();

    // The command: no network flags, so the source's architecture; a new run that starts at step 0.
    const out = join(runs, 'pix2pix', 'init-run');
    await cli(['train', ...base, '--init-from', src, '--steps', '2', '--out', out]);
    const state = readCheckpointState(latestCheckpoint(out)!);
    expect(state.step).toBe(2);
    expect(state.config).toMatchObject({ netG: 'unet_32', ngf: 4, ndf: 4, norm: 'instance', cropSize: 32 });
    await expect(
      cli(['train', ...base, '--init-from', src, '--ngf', '8', '--steps', '1', '--out', join(tmp, 'x')]),
    ).rejects.toThrow(/--ngf 8: contradicts --init-from .*init-src.*whose ngf is 4/);
    await expect(
      cli(['train', ...base, '--init-from', join(tmp, 'nope'), '--steps', '1', '--out', join(tmp, 'x')]),
    ).rejects.toThrow(/--init-from .*nope: no such run/);
  });

  it('CLI --help lists the commands and the train flags', async () => {
    const help = async (args: string[]) =>
      new Promise<string>((resolve) => {
        variantCommands(
          pix2pix,
          args,
        )(yargs(args).scriptName('pix2pix').exitProcess(false)).parse(
          args,
          {},
          (_err: unknown, _argv: unknown, output: string) => resolve(output),
        );
      });
    const top = await help(['--help']);
    for (const cmd of ['train', 'translate', 'evaluate', 'export']) expect(top).toContain(`pix2pix ${cmd}`);
    const t = await help(['train', '--help']);
    for (const flag of [
      '--preset',
      '--netG',
      '--ngf',
      '--ndf',
      '--n-layers-d',
      '--norm',
      '--load-size',
      '--crop-size',
      '--direction',
      '--lambda-l1',
      '--lambda-gan',
      '--resume',
      '--data',
      '--init-from',
    ])
      expect(t).toContain(flag);
    const tr = await help(['translate', '--help']);
    for (const flag of ['--input', '--output', '--checkpoint', '--resolution', '--tile', '--max-memory', '--eval'])
      expect(tr).toContain(flag);
  });
});
