/**
 * DCGAN and the cGAN on a folder of the user's own images (here: procedural day and night scenes written as PNG
 * and JPEG files of mixed sizes): the decoded cache, training, generate (by class name), evaluate and export,
 * and the networks' sizes.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cgan, buildDiscriminator as cganD, buildGenerator as cganG } from '@gantry/cgan';
import { adversarialLoss, initBackend, resolveTrainValues, train } from '@gantry/core';
import { imageSource, openImageCache, renderScene } from '@gantry/datasets';
import { buildDiscriminator as dcganD, buildGenerator as dcganG } from '@gantry/dcgan';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { runApp } from './run-app.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-folder-'));
const at = (...p: string[]) => path.join(tmp, ...p);
const env = { GANTRY_RUNS: at('runs'), GANTRY_DATA_CACHE: at('cache'), INIT_CWD: tmp };
const app = (name: string, args: string[]) => runApp(name, args, env);
const quiet = () => {};

/** Scene `seed` in `mode`, written as `file` at width×height (PNG or JPEG by extension). */
async function scene(file: string, seed: number, mode: 'day' | 'night', width = 40, height = 40) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  await sharp(Buffer.from(renderScene(seed, 40, mode)), { raw: { width: 40, height: 40, channels: 3 } })
    .resize(width, height, { fit: 'fill' })
    .toFile(file);
}

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: quiet });
  // A plain folder (with a sub-folder, a non-image file and non-square images) and one with a sub-folder per class.
  for (let i = 0; i < 16; i++)
    await scene(at('flat', i < 8 ? '' : 'more', `${i}.${i % 3 ? 'png' : 'jpg'}`), i, 'day', 40 + (i % 4) * 8, 40);
  fs.writeFileSync(at('flat', 'notes.txt'), 'not an image');
  for (const mode of ['day', 'night'] as const)
    for (let i = 0; i < 8; i++) await scene(at('classes', mode, `${i}.png`), i, mode);
}, 120_000);

const bytesOf = (file: string) => fs.statSync(file);

describe('image cache', () => {
  it('decodes once, reads batches from the file, and decodes again when a file changes', async () => {
    const root = at('cache-unit');
    const src = imageSource(at('flat'), false);
    const first = await openImageCache(src, { imageSize: 16, channels: 3, cacheRoot: root, log: quiet });
    expect(first.decoded).toBe(true);
    expect(first.count).toBe(16);
    const file = path.join(first.dir, 'images.u8');
    expect(bytesOf(file).size).toBe(16 * 16 * 16 * 3);
    const mtime = bytesOf(file).mtimeMs;
    const again = await openImageCache(src, { imageSize: 16, channels: 3, cacheRoot: root, log: quiet });
    expect(again.decoded).toBe(false);
    expect(bytesOf(file).mtimeMs).toBe(mtime);
    // Image 3 from the file equals the 4th slice of a read of everything.
    const all = again.read(Array.from({ length: 16 }, (_, i) => i));
    expect(Array.from(again.read([3]))).toEqual(Array.from(all.subarray(3 * 768, 4 * 768)));
    // A changed file (other size) invalidates the cache.
    await scene(at('flat', '1.png'), 99, 'night', 40, 48);
    const changed = await openImageCache(src, { imageSize: 16, channels: 3, cacheRoot: root, log: quiet });
    expect(changed.decoded).toBe(true);
    expect(Array.from(changed.read([1]))).not.toEqual(Array.from(all.subarray(768, 1536)));
    // Grey, and one class per sub-folder.
    const grey = await openImageCache(imageSource(at('classes'), true), {
      imageSize: 8,
      channels: 1,
      cacheRoot: root,
      log: quiet,
    });
    expect(grey.classNames).toEqual(['day', 'night']);
    expect(Array.from(grey.labels)).toEqual([...Array(8).fill(0), ...Array(8).fill(1)]);
    expect(grey.read([0]).length).toBe(64);
  });
});

describe('networks scale with the image size', () => {
  const count = (m: tf.LayersModel, cls: string) => m.layers.filter((l) => l.getClassName() === cls).length;
  it.each([
    [32, 3],
    [64, 4],
    [128, 5],
  ])('%i pixels: %i stride-2 stages in G and D', (size, stages) => {
    const c = { latentDim: 8, imageSize: size as 32 | 64 | 128, channels: 3 as const, ngf: 2, ndf: 2 };
    const g = dcganG(c);
    const d = dcganD(c);
    expect(g.outputs[0]!.shape).toEqual([null, size, size, 3]);
    expect(count(g, 'Conv2DTranspose')).toBe(stages);
    expect(count(d, 'Conv2D')).toBe(stages);
    expect(d.inputs[0]!.shape).toEqual([null, size, size, 3]);
    const cc = {
      ...c,
      numClasses: 3,
      conditioning: 'projection' as const,
      embeddingDim: 4,
      auxWeight: 0.3,
      conditionalBn: true,
    };
    const cg = cganG(cc);
    const cd = cganD(cc);
    expect(cg.outputs[0]!.shape).toEqual([null, size, size, 3]);
    expect(count(cg, 'Conv2DTranspose')).toBe(stages);
    expect(count(cd, 'Conv2D')).toBe(stages);
    for (const m of [g, d, cg, cd]) m.dispose();
  });
});

describe("DCGAN's discriminator", () => {
  it('at 28×28: three stride-2 stages (14, 7, 3), one more than G has, and a hidden dense layer', () => {
    const c = { latentDim: 8, imageSize: 28 as const, ngf: 2, ndf: 2 };
    const [g, d, older] = [dcganG(c), dcganD(c), dcganD({ ...c, dLayers: 2, dHidden: 0 })];
    expect(g.layers.filter((l) => l.getClassName() === 'Conv2DTranspose')).toHaveLength(2);
    const shapes = (m: tf.LayersModel, cls: string) =>
      m.layers.filter((l) => l.getClassName() === cls).map((l) => (l.outputShape as number[]).slice(1));
    expect(shapes(d, 'Conv2D')).toEqual([
      [14, 14, 2],
      [7, 7, 4],
      [3, 3, 8],
    ]);
    expect(shapes(d, 'Dense')).toEqual([[512], [1]]);
    expect(shapes(older, 'Conv2D').map((s) => s[0])).toEqual([14, 7]);
    expect(shapes(older, 'Dense')).toEqual([[1]]);
    for (const m of [g, d, older]) m.dispose();
  });
});

describe('training on a folder', () => {
  it('keeps the tensor count flat over steps (cGAN, class sub-folders, flips)', async () => {
    const given = { data: at('classes'), imageSize: 32, ngf: 4, ndf: 4, flip: true, batchSize: 4 };
    const { config, values, train: t } = resolveTrainValues(cgan, given);
    expect(config.classNames).toEqual(['day', 'night']);
    const data = await cgan.openData(config, values, quiet);
    const task = cgan.createTask({
      config,
      data,
      lr: t.lr!,
      beta1: t.beta1,
      loss: adversarialLoss('bce'),
      seed: 1,
      batchSize: 4,
      checkpointConfig: { ...config },
      mustMatch: [],
      log: quiet,
    });
    const counts: number[] = [];
    await train(task, {
      runDir: at('leak-run'),
      steps: 20,
      sampleEvery: 10,
      onStep: (step) => {
        if (step >= 3) counts.push(tf.memory().numTensors);
      },
    });
    expect(counts.length).toBe(18);
    expect(new Set(counts).size).toBe(1);
    task.dispose();
  });

  it('dcgan: trains, reuses the cache, evaluates, generates and exports', async () => {
    const common = [
      '--data',
      at('flat'),
      '--image-size',
      '32',
      '--batch-size',
      '4',
      '--ngf',
      '4',
      '--ndf',
      '4',
      '--flip',
      '--progress',
      'false',
    ];
    const first = await app('dcgan', ['train', ...common, '--steps', '3', '--out', at('runs', 'd1')]);
    expect(first.code, first.err).toBe(0);
    expect(first.err).toMatch(/images: decoding 16 at 32×32×3/);
    const cacheDir = first.err.match(/into the cache (\S+)/)![1]!;
    const mtime = bytesOf(path.join(cacheDir, 'images.u8')).mtimeMs;
    const second = await app('dcgan', ['train', ...common, '--steps', '1', '--out', at('runs', 'd2')]);
    expect(second.code, second.err).toBe(0);
    expect(second.err).not.toMatch(/decoding/);
    expect(second.err).toMatch(/images: 16 from the cache/);
    expect(bytesOf(path.join(cacheDir, 'images.u8')).mtimeMs).toBe(mtime);

    const ev = await app('dcgan', ['evaluate', '--checkpoint', at('runs', 'd1'), '--count', '20']);
    expect(ev.code, ev.err).toBe(0);
    expect(ev.out).toMatch(/Fréchet distance \(random conv features/);
    const figures = JSON.parse(fs.readFileSync(at('runs', 'd1', 'evaluation.json'), 'utf8')).images;
    expect(figures.samples).toBe(20);
    expect(Number.isFinite(figures.frechet)).toBe(true);
    expect(figures.real.frechet).toBeGreaterThanOrEqual(0);
    expect(figures.real.nearestRms).toHaveLength(8);
    expect(figures.nearest).toHaveLength(8);
    for (const n of figures.nearest) expect(n.trainingImage).toBeGreaterThanOrEqual(0);
    const grid = await sharp(at('runs', 'd1', 'evaluation', 'nearest.png')).metadata();
    expect(grid.width).toBeGreaterThan(grid.height!);

    const gen = await app('dcgan', ['generate', '--checkpoint', at('runs', 'd1'), '--count', '3', '--out', at('g1')]);
    expect(gen.code, gen.err).toBe(0);
    expect(await sharp(at('g1', '0000.png')).metadata()).toMatchObject({ width: 32, height: 32, channels: 3 });
    const ex = await app('dcgan', ['export', '--checkpoint', at('runs', 'd1'), '--out', at('e1')]);
    expect(ex.code, ex.err).toBe(0);
    expect(JSON.parse(fs.readFileSync(at('e1', 'metadata.json'), 'utf8'))).toMatchObject({
      imageSize: 32,
      channels: 3,
      labels: null,
    });
  });

  it('cgan: class sub-folders become labels for generate, evaluate and export', async () => {
    const tr = await app('cgan', [
      'train',
      '--data',
      at('classes'),
      '--image-size',
      '32',
      '--channels',
      '1',
      '--batch-size',
      '4',
      '--ngf',
      '4',
      '--ndf',
      '4',
      '--steps',
      '2',
      '--progress',
      'false',
      '--out',
      at('runs', 'c1'),
    ]);
    expect(tr.code, tr.err).toBe(0);
    const gen = await app('cgan', [
      'generate',
      '--checkpoint',
      at('runs', 'c1'),
      '--label',
      'night',
      '--count',
      '2',
      '--out',
      at('g2'),
    ]);
    expect(gen.code, gen.err).toBe(0);
    expect(fs.readdirSync(at('g2')).sort()).toEqual(['grid.png', 'night-0000.png', 'night-0001.png']);
    expect(await sharp(at('g2', 'night-0000.png')).metadata()).toMatchObject({ width: 32, height: 32 });
    const bad = await app('cgan', ['generate', '--checkpoint', at('runs', 'c1'), '--label', 'dusk', '--out', at('g3')]);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--label: 'dusk' is not a class \(expected day, night/);
    const ev = await app('cgan', ['evaluate', '--checkpoint', at('runs', 'c1'), '--count', '5']);
    expect(ev.code, ev.err).toBe(0);
    const figures = JSON.parse(fs.readFileSync(at('runs', 'c1', 'evaluation.json'), 'utf8')).images;
    expect(figures.samples).toBe(10);
    expect(figures.nearest.map((n: { label: string }) => n.label)).toContain('night');
    const ex = await app('cgan', ['export', '--checkpoint', at('runs', 'c1'), '--out', at('e2')]);
    expect(ex.code, ex.err).toBe(0);
    expect(JSON.parse(fs.readFileSync(at('e2', 'metadata.json'), 'utf8'))).toMatchObject({
      imageSize: 32,
      channels: 1,
      labels: ['day', 'night'],
    });
  });
});
