import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { GantryError } from '../errors.js';
import { MinibatchStddev, resnetGenerator, unetGenerator } from '../nn/networks.js';
import { type ArchFlags, networkFromStateDict } from '../torch/mapping.js';
import { readStateDict } from '../torch/reader.js';
import { layersModelToOnnx, OnnxMappingError, transposeData } from './convert.js';
import { exportOnnxModels } from './export.js';
import { decodeModel, OPSET } from './graph.js';

const FIXTURES = path.join(import.meta.dirname, '..', 'torch', 'fixtures');
const read = (file: string) => readStateDict(fs.readFileSync(path.join(FIXTURES, file)));

/** The input of the fixtures' script (torch/fixtures), NHWC (as torch-import.test.ts builds it). */
function formulaInput(shape: number[], phase: number): tf.Tensor4D {
  const [, c, h, w] = shape as [number, number, number, number];
  const out = new Float32Array(h * w * c);
  for (let i = 0; i < h; i++)
    for (let j = 0; j < w; j++)
      for (let k = 0; k < c; k++)
        out[(i * w + j) * c + k] =
          Math.sin(0.37 * i + 0.23 * j + 1.7 * k + phase) * Math.cos((0.11 * i * j) / (h + w) + k);
  return tf.tensor4d(out, [1, h, w, c]);
}

/** Runs an ONNX model on NHWC `x` (transposed to the model's NCHW); returns the output as NHWC. */
async function runOnnx(bytes: Uint8Array, feeds: Record<string, tf.Tensor>): Promise<tf.Tensor> {
  const session = await ort.InferenceSession.create(bytes);
  const inputs: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(feeds)) {
    const x = t.rank === 4 ? tf.transpose(t, [0, 3, 1, 2]) : t;
    inputs[name] =
      t.dtype === 'int32'
        ? new ort.Tensor('int32', x.dataSync() as Int32Array, x.shape)
        : new ort.Tensor('float32', x.dataSync() as Float32Array, x.shape);
    if (x !== t) x.dispose();
  }
  const out = (await session.run(inputs))[session.outputNames[0]!]!;
  await session.release();
  const data = out.data as Float32Array;
  const dims = out.dims as number[];
  return dims.length === 4
    ? tf.tidy(() => tf.transpose(tf.tensor4d(data, dims as [number, number, number, number]), [0, 2, 3, 1]))
    : tf.tensor(data, dims);
}

async function maxDiff(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  expect(a.shape).toEqual(b.shape);
  const d = tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))));
  const v = (await d.data())[0]!;
  d.dispose();
  return v;
}

describe('translators: ONNX Runtime computes what Gantry computes', () => {
  const nets = {
    'U-Net, batch norm, dropout': () =>
      unetGenerator({ size: 64, inChannels: 3, outChannels: 3, numDowns: 6, ngf: 2, norm: 'batch', dropout: true }),
    'U-Net, batch norm, no dropout': () =>
      unetGenerator({ size: 32, inChannels: 1, outChannels: 2, numDowns: 5, ngf: 2, norm: 'batch', dropout: false }),
    'ResNet, instance norm': () =>
      resnetGenerator({ size: 32, inChannels: 3, outChannels: 3, ngf: 2, blocks: 2, norm: 'instance' }),
    'ResNet, batch norm, dropout': () =>
      resnetGenerator({ size: 32, inChannels: 3, outChannels: 3, ngf: 2, blocks: 1, norm: 'batch', dropout: true }),
  };
  for (const [label, build] of Object.entries(nets)) {
    for (const batchStatistics of [false, true]) {
      const hasDropout = label.endsWith(' dropout');
      // Test mode draws dropout masks; those nets are compared in eval mode only (the dropout test below covers it).
      if (batchStatistics && hasDropout) continue;
      it(`${label}, ${batchStatistics ? 'batch statistics' : 'eval mode'}: within 1e-4 at two sizes, batch 2`, async () => {
        const model = build();
        // Running statistics away from 0 and 1, so eval mode and batch statistics differ.
        for (const layer of model.layers)
          if (layer.getClassName() === 'BatchNormalization')
            for (const w of layer.weights)
              if (/moving_(mean|variance)$/.test(w.originalName))
                w.write(tf.randomUniform(w.shape as number[], 0.5, 1.5));
        const bytes = layersModelToOnnx(model, { dynamicSize: true, batchStatistics });
        const before = tf.memory().numTensors;
        const cin = model.inputs[0]!.shape[3] as number;
        // Two sizes the strides divide (a U-Net 2^levels, the ResNet 4, with a bottleneck ≥ 2 to reflect-pad).
        const m = 2 ** (label.startsWith('U-Net') ? (label.includes('no dropout') ? 5 : 6) : 3);
        for (const [h, w] of [
          [m, 2 * m],
          [3 * m, m],
        ]) {
          const x = tf.randomNormal([2, h!, w!, cin], 0, 1, 'float32', 7);
          const want = model.apply(x, { training: batchStatistics }) as tf.Tensor;
          const got = await runOnnx(bytes, { [model.inputs[0]!.name.split('/')[0]!]: x });
          expect(await maxDiff(got, want)).toBeLessThan(1e-4);
          tf.dispose([x, want, got]);
        }
        expect(tf.memory().numTensors).toBe(before);
        model.dispose();
      });
    }
  }
});

describe('the ONNX graph', () => {
  it('dropout in test mode keeps each value with probability 1 − rate, scaled by 1 / (1 − rate), a new mask per run', async () => {
    const input = tf.input({ shape: [null, null, 4] });
    const output = tf.layers.dropout({ rate: 0.5 }).apply(input) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: output });
    const bytes = layersModelToOnnx(model, { dynamicSize: true, batchStatistics: true, inputNames: ['image'] });
    const session = await ort.InferenceSession.create(bytes);
    const ones = new ort.Tensor('float32', new Float32Array(4 * 32 * 32).fill(1), [1, 4, 32, 32]);
    const a = (await session.run({ image: ones })).output!.data as Float32Array;
    const b = (await session.run({ image: ones })).output!.data as Float32Array;
    await session.release();
    expect(new Set(a)).toEqual(new Set([0, 2]));
    const kept = a.filter((v) => v === 2).length / a.length;
    expect(kept).toBeGreaterThan(0.4);
    expect(kept).toBeLessThan(0.6);
    expect(a.some((v, i) => v !== b[i])).toBe(true);
    // Eval mode: the identity.
    const evalBytes = layersModelToOnnx(model, { dynamicSize: true, inputNames: ['image'] });
    const e = await ort.InferenceSession.create(evalBytes);
    expect(new Set((await e.run({ image: ones })).output!.data as Float32Array)).toEqual(new Set([1]));
    await e.release();
    model.dispose();
  });

  it('states the opset, dynamic batch, height and width, and carries metadata_props', () => {
    const model = resnetGenerator({ size: 32, inChannels: 3, outChannels: 3, ngf: 1, blocks: 1, norm: 'instance' });
    const before = tf.memory().numTensors;
    const bytes = layersModelToOnnx(model, {
      dynamicSize: true,
      inputNames: ['image'],
      metadata: { variant: 'cyclegan', imageSize: '32' },
    });
    expect(tf.memory().numTensors).toBe(before); // reads the weights, creates no tensors
    const m = decodeModel(bytes);
    expect(m.opsetImport.map((o) => Number(o.version))).toEqual([OPSET]);
    expect(OPSET).toBeGreaterThanOrEqual(13);
    const dims = m.graph!.input![0]!.type!.tensorType!.shape!.dim!.map((d) => d.dimParam || Number(d.dimValue));
    expect(dims).toEqual(['batch', 3, 'height', 'width']);
    expect(Object.fromEntries(m.metadataProps.map((p) => [p.key, p.value]))).toEqual({
      variant: 'cyclegan',
      imageSize: '32',
    });
    model.dispose();
  });

  it('a layer without a mapping: a one-line GantryError naming it, exit code 2, no file written', async () => {
    const input = tf.input({ shape: [8] });
    const hidden = tf.layers.dense({ units: 8 }).apply(input) as tf.SymbolicTensor;
    const output = new MinibatchStddev({ groupSize: 2, name: 'stddev_feature' }).apply(hidden) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: output, name: 'critic' });
    expect(() => layersModelToOnnx(model)).toThrow(OnnxMappingError);
    expect(() => layersModelToOnnx(model)).toThrow(
      'cannot export critic to ONNX: layer stddev_feature (MinibatchStddev) has no ONNX mapping',
    );
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-onnx-'));
    const err = await exportOnnxModels(path.join(dir, 'g.onnx'), { '': model }, { kind: 'latent' }).catch((e) => e);
    expect(err).toBeInstanceOf(GantryError);
    expect((err as GantryError).exitCode).toBe(2);
    expect((err as Error).message).not.toContain('\n');
    expect(fs.readdirSync(dir)).toEqual([]);
    const badName = await exportOnnxModels(path.join(dir, 'g.bin'), { '': model }, {}).catch((e) => e);
    expect((badName as Error).message).toMatch(/--out .*g\.bin: expected a file name ending in \.onnx/);
    fs.rmSync(dir, { recursive: true });
    model.dispose();
  });

  it('transposes weights as an N-d transpose does', () => {
    const t = tf.range(0, 24).reshape([2, 3, 4]);
    const want = tf.transpose(t, [2, 0, 1]);
    expect([...transposeData(t.dataSync() as Float32Array, [2, 3, 4], [2, 0, 1])]).toEqual([...want.dataSync()]);
    tf.dispose([t, want]);
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

describe('reference PyTorch generators: .pth → Gantry → ONNX equals PyTorch', () => {
  const manifest = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'manifest.json'), 'utf8')) as { cases: Case[] };
  for (const name of ['unet_256_batch', 'resnet_9blocks_instance', 'resnet_9blocks_batch']) {
    const c = manifest.cases.find((k) => k.name === name)!;
    for (const mode of ['eval', 'train'] as const) {
      const want = c.outputs[mode];
      if (!want) continue;
      it(`${name}, ${mode === 'eval' ? 'eval mode' : 'batch statistics'}: within 1e-4 of PyTorch`, async () => {
        // Batch statistics are compared with dropout off (PyTorch's dropout draws cannot be replayed).
        const flags: ArchFlags = mode === 'train' ? { dropout: false } : {};
        const { model } = networkFromStateDict(read(c.files.zip), flags);
        const bytes = layersModelToOnnx(model, { dynamicSize: true, batchStatistics: mode === 'train' });
        model.dispose();
        const x = formulaInput(c.input, c.phase);
        const y = await runOnnx(bytes, { [decodeModel(bytes).graph!.input![0]!.name!]: x });
        const got = tf.tidy(() => tf.stridedSlice(y, [0, 0, 0, 0], y.shape, [1, c.stride, c.stride, 1]));
        const b = Buffer.from(want.data, 'base64');
        const w = tf.tensor(new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)), want.shape);
        expect(await maxDiff(got, w)).toBeLessThan(1e-4);
        tf.dispose([x, y, got, w]);
      });
    }
  }
});
