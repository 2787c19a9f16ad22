import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import {
  type ArchFlags,
  buildTorchNetwork,
  checkStateDict,
  networkFromStateDict,
  setTorchWeights,
  stripModulePrefix,
  type TorchArch,
} from './mapping.js';
import { readStateDict, TorchFormatError } from './reader.js';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');

interface Output {
  shape: number[];
  data: string;
}
interface Case {
  name: string;
  files: { zip: string; legacy?: string };
  arch: Record<string, unknown>;
  input: number[];
  phase: number;
  stride: number;
  outputs: Record<'eval' | 'train', Output>;
  values?: Record<string, string>;
}
const manifest = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'manifest.json'), 'utf8')) as { cases: Case[] };
const caseNamed = (n: string) => manifest.cases.find((c) => c.name === n)!;
const floats = (b64: string) => {
  const b = Buffer.from(b64, 'base64');
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};
export const read = (file: string) => readStateDict(fs.readFileSync(path.join(FIXTURES, file)));

/** The fixture script's input formula, NHWC. */
export function formulaInput(shape: number[], phase: number): tf.Tensor4D {
  const [, c, h, w] = shape as [number, number, number, number];
  const out = new Float32Array(h * w * c);
  for (let i = 0; i < h; i++)
    for (let j = 0; j < w; j++)
      for (let k = 0; k < c; k++)
        out[(i * w + j) * c + k] =
          Math.sin(0.37 * i + 0.23 * j + 1.7 * k + phase) * Math.cos((0.11 * i * j) / (h + w) + k);
  return tf.tensor4d(out, [1, h, w, c]);
}

function maxError(model: tf.LayersModel, c: Case, mode: 'eval' | 'train'): number {
  const want = c.outputs[mode];
  const got = tf.tidy(() => {
    const x = formulaInput(c.input, c.phase);
    const y = model.apply(x, { training: mode === 'train' }) as tf.Tensor4D;
    return tf.stridedSlice(y, [0, 0, 0, 0], y.shape, [1, c.stride, c.stride, 1]) as tf.Tensor4D;
  });
  expect(got.shape).toEqual(want.shape);
  const g = got.dataSync();
  got.dispose();
  const w = floats(want.data);
  let max = 0;
  for (let i = 0; i < w.length; i++) max = Math.max(max, Math.abs(g[i]! - w[i]!));
  return max;
}

function patchArch(c: Case): TorchArch {
  return {
    kind: 'patchgan',
    ndf: c.arch.ndf as number,
    nLayers: c.arch.nLayers as number,
    norm: c.arch.norm as 'batch',
    inChannels: c.input[1]!,
  };
}

describe('weight-exact networks: imported state dicts compute what PyTorch computed', () => {
  const generators = manifest.cases.filter((c) => c.outputs && c.arch.netG);
  for (const c of generators) {
    for (const format of Object.keys(c.files) as ('zip' | 'legacy')[]) {
      for (const mode of Object.keys(c.outputs) as ('eval' | 'train')[]) {
        it(`${c.name} (${format} file, ${mode}-mode norm) within 1e-4`, () => {
          const before = tf.memory().numTensors;
          // Train mode compares batch statistics with dropout off (PyTorch's dropout draws cannot be replayed).
          const flags: ArchFlags = mode === 'train' ? { dropout: false } : {};
          const { arch, model } = networkFromStateDict(read(c.files[format]!), flags);
          expect(arch.kind === 'patchgan' ? '' : arch.netG).toBe(c.arch.netG);
          expect(arch.kind !== 'patchgan' && arch.ngf).toBe(c.arch.ngf);
          expect(arch.kind !== 'patchgan' && arch.norm).toBe(c.arch.norm);
          const err = maxError(model, c, mode);
          model.dispose();
          expect(err).toBeLessThan(1e-4);
          expect(tf.memory().numTensors).toBe(before);
        });
      }
    }
  }

  for (const name of ['patchgan_batch', 'patchgan_256']) {
    const c = caseNamed(name);
    for (const mode of Object.keys(c.outputs) as ('eval' | 'train')[]) {
      it(`PatchGAN ${name} (${mode}-mode norm) within 1e-4, map ${c.outputs[mode].shape.slice(1, 3).join('×')}`, () => {
        const arch = patchArch(c);
        const model = buildTorchNetwork(arch);
        setTorchWeights(model, arch, checkStateDict(stripModulePrefix(read(c.files.zip)), arch));
        expect(maxError(model, c, mode)).toBeLessThan(1e-4);
        model.dispose();
      });
    }
  }

  it('the PatchGAN gives the reference 30×30 map at 256 px', () => {
    expect(caseNamed('patchgan_256').outputs.eval.shape).toEqual([1, 30, 30, 1]);
  });
});

describe('the reader and the reference load_networks quirks', () => {
  const ok = caseNamed('ok_resnet6');
  const values = (sd: ReturnType<typeof read>, k: string) => sd.get(k)!.data!;

  it('reads float16, bfloat16 and float64 files (converted), strided tensors (in logical order) and module. prefixes', () => {
    const want = floats(ok.values!['model.1.weight']!);
    expect([...values(read('ok_resnet6.pth'), 'model.1.weight')]).toEqual([...want]);
    expect([...values(read('quirk_strided.pth'), 'model.1.weight')]).toEqual([...want]);
    expect([...values(read('quirk_float64.legacy.pth'), 'model.1.weight')]).toEqual([...want]);
    const half = values(read('quirk_float16.pth'), 'model.1.weight');
    for (let i = 0; i < want.length; i++)
      expect(Math.abs(half[i]! - want[i]!)).toBeLessThan(1e-3 * Math.max(1, Math.abs(want[i]!)));
    // bfloat16 stores 7 mantissa bits (round to nearest): a relative error of at most 2^-8.
    const bf = values(read('quirk_bfloat16.pth'), 'model.1.weight');
    for (let i = 0; i < want.length; i++)
      expect(Math.abs(bf[i]! - want[i]!)).toBeLessThanOrEqual(2 ** -8 * Math.abs(want[i]!));
    const quirky = stripModulePrefix(read('quirk_module_prefix.pth'));
    expect(quirky.has('model.1.weight') && quirky.has('model.2.running_mean')).toBe(true);
  });

  it('drops the instance-norm running statistics of old files and imports the same network', () => {
    const a = networkFromStateDict(read('quirk_module_prefix.pth'));
    const b = networkFromStateDict(read('ok_resnet6.pth'));
    const x = formulaInput([1, 3, 12, 16], 0);
    const [ya, yb] = [a.model.predict(x) as tf.Tensor, b.model.predict(x) as tf.Tensor];
    expect(ya.shape).toEqual([1, 12, 16, 3]);
    expect(tf.max(tf.abs(tf.sub(ya, yb))).dataSync()[0]).toBe(0);
    tf.dispose([x, ya, yb]);
    a.model.dispose();
    b.model.dispose();
  });

  it('infers unet_128 with 1→2 channels and resnet_6blocks with dropout from names and shapes', () => {
    const u = networkFromStateDict(read('unet_128_batch_1ch.pth'));
    expect(u.arch).toMatchObject({
      kind: 'unet',
      netG: 'unet_128',
      ngf: 1,
      norm: 'batch',
      inChannels: 1,
      outChannels: 2,
    });
    const r = networkFromStateDict(read('resnet_6blocks_dropout.pth'));
    expect(r.arch).toMatchObject({ kind: 'resnet', netG: 'resnet_6blocks', ngf: 1, norm: 'instance', dropout: true });
    u.model.dispose();
    r.model.dispose();
  });

  it('a flag that contradicts the file gives the strict-load key or shape error', () => {
    expect(() => networkFromStateDict(read('ok_resnet6.pth'), { netG: 'resnet_9blocks' })).toThrow(
      /does not fit resnet_9blocks .*missing keys model\.16\.conv_block\.1\.weight.*unexpected keys model\.16\.weight/,
    );
    expect(() => networkFromStateDict(read('ok_resnet6.pth'), { norm: 'batch' })).toThrow(
      /missing keys model\.2\.weight, model\.2\.bias, model\.2\.running_mean/,
    );
    expect(() => networkFromStateDict(read('ok_resnet6.pth'), { ngf: 2 })).toThrow(
      /^model\.1\.weight: shape \[1, 3, 7, 7\] in the file, \[2, 3, 7, 7\] expected/,
    );
    expect(() => networkFromStateDict(read('ok_resnet6.pth'), { netG: 'unet_9' })).toThrow(
      /--netG unet_9: expected one of/,
    );
  });
});

describe('untrusted files', () => {
  const zipped = (pickle: number[]) =>
    zipSync(
      { 'archive/data.pkl': new Uint8Array(pickle), 'archive/version': new TextEncoder().encode('3\n') },
      { level: 0 },
    );
  const ascii = (t: string) => [...t].map((c) => c.charCodeAt(0));

  it('never calls a global outside the state-dict allowlist (builtins.eval, os.system)', () => {
    for (const [mod, fn] of [
      ['builtins', 'eval'],
      ['os', 'system'],
    ]) {
      // protocol 2: GLOBAL mod fn, SHORT_BINUNICODE '1+1', TUPLE1, REDUCE, STOP
      const pkl = [0x80, 2, 0x63, ...ascii(`${mod}\n${fn}\n`), 0x8c, 3, ...ascii('1+1'), 0x85, 0x52, 0x2e];
      expect(() => readStateDict(zipped(pkl))).toThrow(
        new TorchFormatError(`refers to ${mod}.${fn}, which a state dict of float tensors does not use`),
      );
    }
  });

  it('refuses a zip without data.pkl and a pickle that is not a dict', () => {
    expect(() => readStateDict(zipSync({ 'a/b.txt': new Uint8Array([1]) }))).toThrow(/without <name>\/data\.pkl/);
    expect(() => readStateDict(zipped([0x80, 2, 0x4b, 7, 0x2e]))).toThrow(/not a state dict/);
  });
});
