/**
 * One training step of each variant on TF.js's WebGPU backend against the same step on the pure-JS cpu backend, from
 * the same seeded weights and batch; and an imported PyTorch generator's output on both. On a machine without a GPU
 * WebGPU runs on SwiftShader; where there is no adapter at all the tests are skipped and say why. Tiny networks:
 * SwiftShader runs on the CPU.
 *
 * Tolerances: each loss within 1e-3 relative; each weight after the step within 2·lr + 1e-5 of the cpu step's (Adam's
 * first step moves a weight by about lr·sign(gradient), so a gradient that is zero up to float32 rounding may point
 * either way on two backends; anything beyond one such flip is a real difference).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as core from '@gantry/core';
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { relErr, webgpuForTests } from '../packages/core/src/backend/webgpu-testing.js';
import { networkFromStateDict } from '../packages/core/src/torch/mapping.js';
import { readStateDict } from '../packages/core/src/torch/reader.js';

const LR = 2e-4;
const LOSS_TOL = 1e-3;
const WEIGHT_TOL = 2 * LR + 1e-5;

const gpu = await webgpuForTests();
if (!gpu.ok) console.warn(gpu.reason);

afterAll(async () => {
  await tf.setBackend('cpu');
});

type Built = { task: core.GanTask<tf.TensorContainer>; batch: tf.TensorContainer; nets: tf.LayersModel[] };

const uniform = (shape: number[], seed: number) => tf.randomUniform(shape, -1, 1, 'float32', seed);
const labels = (n: number, k: number) =>
  tf.tensor1d(
    Array.from({ length: n }, (_, i) => i % k),
    'int32',
  );

async function latent(variant: 'gan' | 'dcgan' | 'cgan', extra: Record<string, unknown>): Promise<Built> {
  const mod = await import(`@gantry/${variant}`);
  const conditional = variant === 'cgan';
  const net = {
    latentDim: 8,
    imageSize: 28,
    ngf: 8,
    ndf: 8,
    numClasses: 10,
    conditioning: 'projection',
    embeddingDim: 4,
    auxWeight: 0.3,
    conditionalBn: true,
    ...extra,
  };
  const B = 4;
  const generator = mod.buildGenerator(net) as tf.LayersModel;
  const discriminator = mod.buildDiscriminator(net) as tf.LayersModel;
  const task = new core.LatentGanTask({
    variant,
    generator,
    discriminator,
    latentDim: net.latentDim,
    numClasses: conditional ? net.numClasses : undefined,
    loss: core.adversarialLoss(String(extra.loss ?? 'bce')),
    lr: LR,
    beta1: 0.5,
    seed: 1,
    batchSize: B,
    data: { count: B * 10, batch: () => Promise.reject(new Error('batches are made by the test')) },
    config: net,
    mustMatch: [],
    auxClassifierWeight: conditional ? net.auxWeight : undefined,
    r1Gamma: extra.r1 as number | undefined,
  } as unknown as ConstructorParameters<typeof core.LatentGanTask>[0]);
  const k = conditional ? net.numClasses : 1;
  const batch = {
    x: uniform([B, 28, 28, 1], 1),
    y: labels(B, k),
    z: tf.randomNormal([B, 8], 0, 1, 'float32', 2),
    yFake: labels(B, k),
  };
  return { task: task as never, batch, nets: [generator, discriminator] };
}

async function pix2pix(): Promise<Built> {
  const mod = await import('@gantry/pix2pix');
  const config = {
    netG: 'unet_32',
    ngf: 4,
    ndf: 4,
    dLayers: 2,
    norm: 'batch',
    dropout: false,
    cropSize: 32,
    loadSize: 32,
    direction: 'AtoB',
    channels: 3,
    lambdaL1: 100,
    lambdaGan: 1,
  };
  const nets = {
    generator: mod.buildGenerator(config as never),
    discriminator: mod.buildDiscriminator(config as never),
  };
  const task = new mod.Pix2pixTask({
    nets,
    config,
    checkpointConfig: config,
    mustMatch: [],
    loss: core.adversarialLoss('bce'),
    lr: LR,
    beta1: 0.5,
    seed: 1,
    batchSize: 1,
    train: { length: 10, batch: () => Promise.reject(new Error('batches are made by the test')) },
  } as never);
  return {
    task: task as never,
    batch: { a: uniform([1, 32, 32, 3], 3), b: uniform([1, 32, 32, 3], 4) },
    nets: [nets.generator, nets.discriminator],
  };
}

async function cyclegan(): Promise<Built> {
  const mod = await import('@gantry/cyclegan');
  const s = 16;
  const config = {
    cropSize: s,
    loadSize: s,
    channels: 3,
    generator: 'resnet',
    blocks: 1,
    ngf: 4,
    ndf: 4,
    dLayers: 2,
    norm: 'instance',
    lambdaCycle: 10,
    lambdaIdentity: 0.5,
    poolSize: 50,
  };
  const nets = {
    G_A: mod.buildGenerator(config as never, 'G_A'),
    G_B: mod.buildGenerator(config as never, 'G_B'),
    D_A: mod.buildDiscriminator(config as never, 'D_A'),
    D_B: mod.buildDiscriminator(config as never, 'D_B'),
  };
  const task = new mod.CycleGanTask({
    config,
    nets,
    data: { length: 10, batch: () => Promise.reject(new Error('batches are made by the test')) },
    samples: { a: tf.zeros([1, s, s, 3]), b: tf.zeros([1, s, s, 3]) },
    loss: core.adversarialLoss('lsgan'),
    lr: LR,
    beta1: 0.5,
    seed: 1,
    batchSize: 1,
    checkpointConfig: config,
    mustMatch: [],
  } as never);
  return {
    task: task as never,
    batch: { a: uniform([1, s, s, 3], 5), b: uniform([1, s, s, 3], 6) },
    nets: Object.values(nets),
  };
}

/** One step on `backend` from seeded weights: the losses (by name) and every weight of every network after it. */
async function oneStep(backend: 'cpu' | 'webgpu', build: () => Promise<Built>) {
  await tf.setBackend(backend);
  core.seedWeights(1);
  const { task, batch, nets } = await build();
  const scalars = core.trainStep(task, batch, 0);
  const names = Object.keys(scalars).sort();
  const losses = await Promise.all(names.map(async (n) => (await scalars[n]!.data())[0]!));
  tf.dispose(Object.values(scalars));
  const flat = tf.tidy(() => tf.concat(nets.flatMap((m) => m.weights.map((w) => tf.reshape(w.read(), [-1])))));
  const weights = Float32Array.from(await flat.data());
  flat.dispose();
  (task as { dispose?: () => void }).dispose?.();
  tf.dispose(batch);
  for (const m of nets) m.dispose();
  return { names, losses, weights };
}

const CASES: Array<[string, () => Promise<Built>]> = [
  ['gan (bce, minibatch stddev)', () => latent('gan', { loss: 'bce' })],
  ['dcgan (wgan-gp: a gradient of a gradient)', () => latent('dcgan', { loss: 'wgan-gp' })],
  ['dcgan (bce + R1: a gradient of a gradient)', () => latent('dcgan', { loss: 'bce', r1: 1 })],
  ['cgan (projection, conditional batch norm, auxiliary classifier, hinge)', () => latent('cgan', { loss: 'hinge' })],
  ['pix2pix (unet_32, batch norm)', pix2pix],
  ['cyclegan (ResNet-1, instance norm, reflection padding)', cyclegan],
];

describe.skipIf(!gpu.ok)('one training step on WebGPU vs cpu', () => {
  it.each(CASES)('%s', async (_name, build) => {
    const want = await oneStep('cpu', build);
    const got = await oneStep('webgpu', build);
    expect(got.names).toEqual(want.names);
    for (let i = 0; i < want.losses.length; i++)
      expect(relErr([got.losses[i]!], [want.losses[i]!]), `loss ${want.names[i]}`).toBeLessThan(LOSS_TOL);
    expect(got.weights.length).toBe(want.weights.length);
    let worst = 0;
    for (let i = 0; i < want.weights.length; i++) worst = Math.max(worst, Math.abs(got.weights[i]! - want.weights[i]!));
    expect(worst).toBeLessThan(WEIGHT_TOL);
  });
});

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '../packages/core/src/torch/fixtures');

/** The fixture script's input (bench/torch-fixtures.py), NHWC. */
function formulaInput(h: number, w: number, c: number, phase: number): tf.Tensor4D {
  const out = new Float32Array(h * w * c);
  for (let i = 0; i < h; i++)
    for (let j = 0; j < w; j++)
      for (let k = 0; k < c; k++)
        out[(i * w + j) * c + k] =
          Math.sin(0.37 * i + 0.23 * j + 1.7 * k + phase) * Math.cos((0.11 * i * j) / (h + w) + k);
  return tf.tensor4d(out, [1, h, w, c]);
}

describe.skipIf(!gpu.ok)('an imported PyTorch generator on WebGPU', () => {
  it('resnet_9blocks (instance norm, reflection padding) gives the cpu output, and PyTorch’s', async () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'manifest.json'), 'utf8'));
    const c = manifest.cases.find((x: { name: string }) => x.name === 'resnet_9blocks_instance');
    const [, ch, h, w] = c.input as number[];
    const run = async (backend: 'cpu' | 'webgpu') => {
      await tf.setBackend(backend);
      const { model } = networkFromStateDict(readStateDict(fs.readFileSync(path.join(FIXTURES, c.files.zip))));
      const y = tf.tidy(() => model.apply(formulaInput(h!, w!, ch!, c.phase), { training: false }) as tf.Tensor);
      const out = Float32Array.from(await y.data());
      y.dispose();
      model.dispose();
      return out;
    };
    const cpu = await run('cpu');
    const webgpu = await run('webgpu');
    const b = Buffer.from(c.outputs.eval.data, 'base64');
    const torch = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    expect(relErr(webgpu, cpu)).toBeLessThan(1e-4);
    expect(relErr(webgpu, torch)).toBeLessThan(1e-3);
  });
});

describe.skipIf(gpu.ok)('WebGPU unavailable', () => {
  it('says why (printed above)', () => {
    expect(gpu.ok ? '' : gpu.reason).toMatch(/WebGPU tests skipped: /);
  });
});
