/**
 * ONNX export of every variant's generator, run in ONNX Runtime (onnxruntime-node, CPU) against what Gantry computes
 * (generate's predict; translate's function in both modes), and the Python-free converter of the README
 * (import-torch, then export --format onnx) against the PyTorch outputs of the reference fixtures.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildDiscriminator as cganDiscriminator, buildGenerator as cganGenerator } from '@gantry/cgan';
import { decodeModel, exportOnnxModels, imageTranslator, initBackend, layersModelToOnnx } from '@gantry/core';
import { type CycleGanConfig, buildGenerator as cycleGenerator } from '@gantry/cyclegan';
import { buildGenerator as dcganGenerator } from '@gantry/dcgan';
import { buildGenerator as ganGenerator } from '@gantry/gan';
import { type Pix2pixConfig, buildGenerator as pix2pixGenerator } from '@gantry/pix2pix';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runApp } from './run-app.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-onnx-'));
beforeAll(() => initBackend({ backend: 'wasm', log: () => {} }));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Batch-norm running statistics away from 0 and 1 (a fresh network's), so a mode mix-up shows. */
function moveStatistics(model: tf.LayersModel): void {
  for (const layer of model.layers)
    for (const w of layer.weights)
      if (/moving_(mean|variance)$/.test(w.originalName)) w.write(tf.randomUniform(w.shape as number[], 0.5, 1.5));
}

async function session(file: string) {
  return ort.InferenceSession.create(fs.readFileSync(file));
}

const props = (file: string) =>
  Object.fromEntries(decodeModel(fs.readFileSync(file)).metadataProps.map((p) => [p.key, p.value]));

async function maxDiffNchw(got: ort.Tensor, want: tf.Tensor): Promise<number> {
  const nhwc = tf.tidy(() =>
    tf.transpose(tf.tensor4d(got.data as Float32Array, got.dims as [number, number, number, number]), [0, 2, 3, 1]),
  );
  expect(nhwc.shape).toEqual(want.shape);
  const d = tf.tidy(() => tf.max(tf.abs(tf.sub(nhwc, want))));
  const v = (await d.data())[0]!;
  tf.dispose([nhwc, d]);
  return v;
}

const nchw = (x: tf.Tensor4D) =>
  tf.tidy(() => {
    const t = tf.transpose(x, [0, 3, 1, 2]);
    return new ort.Tensor('float32', t.dataSync() as Float32Array, t.shape);
  });

describe('noise → image generators: ONNX equals generate (eval mode) within 1e-4', () => {
  const mnist = { latentDim: 8, imageSize: 28 as const };
  const cases: [string, () => tf.LayersModel, Record<string, unknown>][] = [
    ['gan', () => ganGenerator({ ...mnist }), {}],
    ['dcgan', () => dcganGenerator({ ...mnist, imageSize: 32, channels: 3, ngf: 4, ndf: 4 }), {}],
    [
      'cgan (conditional batch norm)',
      () =>
        cganGenerator({
          ...mnist,
          numClasses: 10,
          ngf: 4,
          ndf: 4,
          conditioning: 'projection',
          embeddingDim: 5,
          auxWeight: 0,
          conditionalBn: true,
        }),
      { labels: [...'0123456789'] },
    ],
    [
      'cgan (shared batch norm, final conv)',
      () =>
        cganGenerator({
          ...mnist,
          numClasses: 10,
          ngf: 4,
          ndf: 4,
          conditioning: 'concat',
          embeddingDim: 5,
          auxWeight: 0,
          conditionalBn: false,
          finalConv: true,
        }),
      { labels: [...'0123456789'] },
    ],
  ];
  for (const [name, build, extra] of cases) {
    it(name, async () => {
      const model = build();
      moveStatistics(model);
      const variant = name.split(' ')[0]!;
      const file = path.join(tmp, `${variant}-${cases.findIndex((c) => c[0] === name)}.onnx`);
      const written = await exportOnnxModels(file, { '': model }, { variant, kind: 'latent', latentDim: 8, ...extra });
      expect(written).toEqual([file]);
      const s = await session(file);
      const labelled = model.inputs.length === 2;
      expect(s.inputNames).toEqual(labelled ? ['z', 'label'] : ['z']);
      const z = tf.randomNormal([4, 8], 0, 1, 'float32', 3);
      // Several labels in one batch: 0, 3, 7 and 9.
      const labels = tf.tensor2d([0, 3, 7, 9], [4, 1], 'int32');
      const want = model.predict(labelled ? [z, labels] : z) as tf.Tensor;
      const feeds: Record<string, ort.Tensor> = { z: new ort.Tensor('float32', z.dataSync() as Float32Array, [4, 8]) };
      if (labelled) feeds.label = new ort.Tensor('int32', labels.dataSync() as Int32Array, [4, 1]);
      const got = (await s.run(feeds)).output!;
      expect(await maxDiffNchw(got, want)).toBeLessThan(1e-4);
      expect(props(file)).toMatchObject({ variant, kind: 'latent', layout: 'NCHW' });
      if (labelled) expect(JSON.parse(props(file).labels!)).toEqual([...'0123456789']);
      await s.release();
      tf.dispose([z, labels, want]);
      model.dispose();
    });
  }
});

it("cgan's projection discriminator (label embedding, Dot, Flatten, Dense, batch norm) within 1e-4", async () => {
  const d = cganDiscriminator({
    latentDim: 8,
    imageSize: 28,
    numClasses: 10,
    ngf: 4,
    ndf: 4,
    conditioning: 'projection',
    embeddingDim: 5,
    auxWeight: 0,
    conditionalBn: true,
  });
  moveStatistics(d);
  const s = await ort.InferenceSession.create(layersModelToOnnx(d, { inputNames: ['image', 'label'] }));
  const image = tf.randomUniform([3, 28, 28, 1], -1, 1, 'float32', 4) as tf.Tensor4D;
  const labels = tf.tensor2d([1, 5, 8], [3, 1], 'int32');
  const want = d.predict([image, labels]) as tf.Tensor;
  const label = new ort.Tensor('int32', labels.dataSync() as Int32Array, [3, 1]);
  const got = (await s.run({ image: nchw(image), label })).output!;
  expect(got.dims).toEqual([3, 1]);
  const w = want.dataSync();
  const g = got.data as Float32Array;
  expect(Math.max(...[...w].map((v, i) => Math.abs(v - g[i]!)))).toBeLessThan(1e-4);
  await s.release();
  tf.dispose([image, labels, want]);
  d.dispose();
});

describe('image → image generators: ONNX equals translate within 1e-4, at two sizes, in both modes', () => {
  const pix2pix: Pix2pixConfig = {
    netG: 'unet_128',
    ngf: 2,
    ndf: 2,
    dLayers: 3,
    norm: 'batch',
    dropout: false,
    cropSize: 128,
    loadSize: 128,
    direction: 'AtoB',
    channels: 3,
    lambdaL1: 100,
    lambdaGan: 1,
  };
  const cyclegan = {
    cropSize: 32,
    loadSize: 32,
    channels: 3,
    generator: 'resnet',
    blocks: 2,
    ngf: 2,
    ndf: 2,
    dLayers: 3,
    norm: 'instance',
    lambdaCycle: 10,
    lambdaIdentity: 0.5,
    poolSize: 0,
  } as unknown as CycleGanConfig;

  for (const evalMode of [false, true]) {
    it(`pix2pix (U-Net, batch norm), ${evalMode ? '--eval' : "the image's own statistics"}`, async () => {
      const model = pix2pixGenerator(pix2pix);
      moveStatistics(model);
      const file = path.join(tmp, `pix2pix-${evalMode}.onnx`);
      await exportOnnxModels(file, { '': model }, { variant: 'pix2pix', kind: 'image-to-image' }, { evalMode });
      const t = await imageTranslator(model, evalMode);
      const s = await session(file);
      for (const [h, w] of [
        [128, 128],
        [256, 128],
      ]) {
        const x = tf.randomUniform([1, h!, w!, 3], -1, 1, 'float32', 5) as tf.Tensor4D;
        const want = await t.fn(x);
        expect(await maxDiffNchw((await s.run({ image: nchw(x) })).output!, want)).toBeLessThan(1e-4);
        tf.dispose([x, want]);
      }
      expect(props(file)).toMatchObject({ variant: 'pix2pix', multiple: '128' });
      await s.release();
      model.dispose();
    });
  }

  it('cyclegan: both directions, one file each', async () => {
    const G_A = cycleGenerator(cyclegan, 'G_A');
    const G_B = cycleGenerator(cyclegan, 'G_B');
    const out = path.join(tmp, 'day2night.onnx');
    const written = await exportOnnxModels(
      out,
      { G_A, G_B },
      { variant: 'cyclegan', kind: 'image-to-image', generators: { G_A: 'A → B', G_B: 'B → A' } },
    );
    expect(written).toEqual([path.join(tmp, 'day2night.G_A.onnx'), path.join(tmp, 'day2night.G_B.onnx')]);
    for (const [net, model] of [
      ['G_A', G_A],
      ['G_B', G_B],
    ] as const) {
      const file = path.join(tmp, `day2night.${net}.onnx`);
      expect(props(file)).toMatchObject({ net, direction: net === 'G_A' ? 'A → B' : 'B → A' });
      const t = await imageTranslator(model, false);
      const s = await session(file);
      for (const [h, w] of [
        [32, 32],
        [24, 40],
      ]) {
        const x = tf.randomUniform([1, h!, w!, 3], -1, 1, 'float32', 9) as tf.Tensor4D;
        const want = await t.fn(x);
        expect(await maxDiffNchw((await s.run({ image: nchw(x) })).output!, want)).toBeLessThan(1e-4);
        tf.dispose([x, want]);
      }
      await s.release();
    }
    G_A.dispose();
    G_B.dispose();
  });
});

interface Case {
  name: string;
  files: { zip: string };
  input: number[];
  phase: number;
  stride: number;
  outputs: Record<'eval' | 'train', { shape: number[]; data: string } | undefined>;
}

describe("the converter: the reference's .pth → ONNX without Python (import-torch, export --format onnx)", () => {
  const fixtures = path.join(import.meta.dirname, '..', 'packages/core/src/torch/fixtures');
  const manifest = JSON.parse(fs.readFileSync(path.join(fixtures, 'manifest.json'), 'utf8')) as { cases: Case[] };
  const app = (name: string, args: string[]) =>
    runApp(name, args, { GANTRY_RUNS: path.join(tmp, 'runs'), INIT_CWD: tmp });

  /** The fixture script's input (torch/fixtures), NCHW. */
  function formulaInput([, c, h, w]: number[], phase: number): ort.Tensor {
    const out = new Float32Array(c! * h! * w!);
    for (let k = 0; k < c!; k++)
      for (let i = 0; i < h!; i++)
        for (let j = 0; j < w!; j++)
          out[(k * h! + i) * w! + j] =
            Math.sin(0.37 * i + 0.23 * j + 1.7 * k + phase) * Math.cos((0.11 * i * j) / (h! + w!) + k);
    return new ort.Tensor('float32', out, [1, c!, h!, w!]);
  }

  /** Largest difference between the ONNX model's output at the fixture's input and PyTorch's (strided, NHWC). */
  async function errorVsPytorch(file: string, c: Case, mode: 'eval' | 'train'): Promise<number> {
    const s = await session(file);
    const y = (await s.run({ image: formulaInput(c.input, c.phase) })).output!;
    await s.release();
    const [, ch, h, w] = y.dims as number[];
    const want = c.outputs[mode]!;
    const b = Buffer.from(want.data, 'base64');
    const ref = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    const data = y.data as Float32Array;
    const [, oh, ow, oc] = want.shape as number[];
    expect([oh, ow, oc]).toEqual([Math.ceil(h! / c.stride), Math.ceil(w! / c.stride), ch]);
    let max = 0;
    for (let i = 0; i < oh!; i++)
      for (let j = 0; j < ow!; j++)
        for (let k = 0; k < oc!; k++) {
          const got = data[(k * h! + i * c.stride) * w! + j * c.stride]!;
          max = Math.max(max, Math.abs(got - ref[(i * ow! + j) * oc! + k]!));
        }
    return max;
  }

  it('pix2pix: the README example as written, then --eval and --no-dropout against PyTorch within 1e-4', async () => {
    const c = manifest.cases.find((k) => k.name === 'unet_256_batch')!;
    const from = path.join(fixtures, c.files.zip);
    // As in the README: import, then export (test mode: the image's own statistics, dropout on).
    expect((await app('pix2pix', ['import-torch', '--from', from, '--out', 'm'])).code).toBe(0);
    const r = await app('pix2pix', ['export', '--checkpoint', 'm', '--format', 'onnx', '--out', 'day2night.onnx']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain(path.join(tmp, 'day2night.onnx'));
    expect(props(path.join(tmp, 'day2night.onnx'))).toMatchObject({ variant: 'pix2pix', kind: 'image-to-image' });
    expect(props(path.join(tmp, 'day2night.onnx')).mode).toMatch(/^test/);
    const s = await session(path.join(tmp, 'day2night.onnx'));
    const y = (await s.run({ image: formulaInput(c.input, c.phase) })).output!;
    expect(y.dims).toEqual(c.input);
    expect((y.data as Float32Array).every((v) => Math.abs(v) <= 1)).toBe(true);
    await s.release();
    // Eval mode: the running statistics, no dropout.
    const e = await app('pix2pix', ['export', '--checkpoint', 'm', '--format', 'onnx', '--eval', '--out', 'eval.onnx']);
    expect(e.code, e.err).toBe(0);
    expect(await errorVsPytorch(path.join(tmp, 'eval.onnx'), c, 'eval')).toBeLessThan(1e-4);
    // Batch statistics, compared with dropout off (PyTorch's dropout draws cannot be replayed).
    const nd = ['import-torch', '--from', from, '--out', 'm-nd', '--no-dropout'];
    expect((await app('pix2pix', nd)).code).toBe(0);
    const t = await app('pix2pix', ['export', '--checkpoint', 'm-nd', '--format', 'onnx', '--out', 'train.onnx']);
    expect(t.code, t.err).toBe(0);
    expect(await errorVsPytorch(path.join(tmp, 'train.onnx'), c, 'train')).toBeLessThan(1e-4);
  });

  it('cyclegan: a reference ResNet .pth → ONNX equals PyTorch within 1e-4', async () => {
    const c = manifest.cases.find((k) => k.name === 'resnet_9blocks_instance')!;
    const from = path.join(fixtures, c.files.zip);
    const imp = await app('cyclegan', ['import-torch', '--from', from, '--from-b', from, '--out', 'cg']);
    expect(imp.code, imp.err).toBe(0);
    const r = await app('cyclegan', ['export', '--checkpoint', 'cg', '--format', 'onnx', '--out', 'cg.onnx']);
    expect(r.code, r.err).toBe(0);
    for (const net of ['G_A', 'G_B'])
      expect(await errorVsPytorch(path.join(tmp, `cg.${net}.onnx`), c, 'eval')).toBeLessThan(1e-4);
    // Imported from one file (G_A only): one ONNX file, A → B.
    expect((await app('cyclegan', ['import-torch', '--from', from, '--out', 'cg1'])).code).toBe(0);
    const one = await app('cyclegan', ['export', '--checkpoint', 'cg1', '--format', 'onnx', '--out', 'cg1.onnx']);
    expect(one.code, one.err).toBe(0);
    expect(fs.readdirSync(tmp).filter((f) => f.startsWith('cg1.'))).toEqual(['cg1.onnx']);
    expect(await errorVsPytorch(path.join(tmp, 'cg1.onnx'), c, 'eval')).toBeLessThan(1e-4);
  });

  it('--eval without --format onnx: a one-line error, exit 2', async () => {
    const r = await app('pix2pix', ['export', '--checkpoint', 'm', '--eval', '--out', 'tfjs-eval']);
    expect(r.code).toBe(2);
    expect(r.err.trim()).toBe('pix2pix: error: --eval: only with --format onnx');
    expect(fs.existsSync(path.join(tmp, 'tfjs-eval'))).toBe(false);
  });

  it('--out without .onnx: a one-line error, exit 2, nothing written', async () => {
    const before = fs.readdirSync(tmp).sort();
    const r = await app('pix2pix', ['export', '--checkpoint', 'm', '--format', 'onnx', '--out', 'model.bin']);
    expect(r.code).toBe(2);
    expect(r.err.trim()).toMatch(/--out .*model\.bin: expected a file name ending in \.onnx/);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(fs.readdirSync(tmp).sort()).toEqual(before);
  });
});
