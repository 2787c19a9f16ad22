/**
 * DCGAN's networks against the paper's description (Radford et al. 2015, as the PyTorch DCGAN example builds it
 * at 64×64 with ngf = ndf = 64), its 28×28 networks and older checkpoints' keys; the toy-distribution step is in
 * tests/toy-distribution.test.ts.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { countParams, initBackend, readCheckpointState, registerKeyMigrations } from '@gantry/core';
import type * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDiscriminator, buildGenerator, type DcganConfig, dcgan } from './index.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-dcgan-'));
beforeAll(() => initBackend({ backend: 'wasm', log: () => {} }));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Weights of the convolution and dense kernels (biases and batch norms left out). */
const kernelWeights = (m: tf.LayersModel) =>
  m.trainableWeights
    .filter((w) => w.shape.length >= 2)
    .reduce((n, w) => n + w.shape.reduce<number>((a, b) => a * (b ?? 1), 1), 0);

/** The feature map shapes of a model's layers that change the spatial size or width. */
const shapes = (m: tf.LayersModel) =>
  m.layers
    .map((l) => l.outputShape as (number | null)[])
    .filter((s) => s.length === 4)
    .map((s) => s.slice(1).join('×'));

const paper: DcganConfig = { latentDim: 100, imageSize: 64, channels: 3, ngf: 64, ndf: 64, dLayers: 4, dHidden: 0 };

describe('dcgan networks', () => {
  it("G at 64×64: z → 4×4×512 → 8×8×256 → 16×16×128 → 32×32×64 → 64×64×3, the paper's 4×4 kernels", () => {
    const g = buildGenerator(paper);
    expect(g.outputs[0]!.shape).toEqual([null, 64, 64, 3]);
    expect([...new Set(shapes(g))]).toEqual(
      expect.arrayContaining(['4×4×512', '8×8×256', '16×16×128', '32×32×64', '64×64×3']),
    );
    // The projection of z and four 4×4 transposed convolutions: 3,574,784 kernel weights, as the PyTorch example.
    expect(kernelWeights(g)).toBe(100 * 4 * 4 * 512 + 16 * (512 * 256 + 256 * 128 + 128 * 64 + 64 * 3));
    g.dispose();
  });

  it('D at 64×64: four stride-2 4×4 convolutions 64 → 128 → 256 → 512 down to 4×4, then one logit', () => {
    const d = buildDiscriminator(paper);
    expect(d.outputs[0]!.shape).toEqual([null, 1]);
    expect([...new Set(shapes(d))]).toEqual(expect.arrayContaining(['32×32×64', '16×16×128', '8×8×256', '4×4×512']));
    // 2,763,776 kernel weights: the PyTorch example's D (its last 4×4 convolution is this dense layer).
    expect(kernelWeights(d)).toBe(16 * (3 * 64 + 64 * 128 + 128 * 256 + 256 * 512) + 4 * 4 * 512);
    d.dispose();
  });

  it("at 28×28 (MNIST): G from 7×7, D down to 3×3 and a hidden layer of 512; the default's size", () => {
    const c: DcganConfig = { latentDim: 100, imageSize: 28, ngf: 32, ndf: 32, dLayers: 3, dHidden: 512 };
    const g = buildGenerator(c);
    const d = buildDiscriminator(c);
    expect(g.outputs[0]!.shape).toEqual([null, 28, 28, 1]);
    expect(shapes(g)).toEqual(expect.arrayContaining(['7×7×64', '14×14×32', '28×28×1']));
    expect(shapes(d)).toEqual(expect.arrayContaining(['14×14×32', '7×7×64', '3×3×128']));
    expect(kernelWeights(d)).toBe(16 * (1 * 32 + 32 * 64) + 9 * 64 * 128 + 3 * 3 * 128 * 512 + 512);
    expect(countParams(g)).toBeGreaterThan(kernelWeights(g));
    g.dispose();
    d.dispose();
  });
});

describe('dcgan checkpoints', () => {
  it("an older checkpoint's config gets the keys added since, with the values that rebuild its networks", () => {
    registerKeyMigrations(dcgan);
    const state = (dir: string, config: Record<string, unknown>) => {
      fs.mkdirSync(path.join(tmp, dir), { recursive: true });
      fs.writeFileSync(path.join(tmp, dir, 'state.json'), JSON.stringify({ variant: 'dcgan', step: 1, config }));
      return readCheckpointState(path.join(tmp, dir)).config;
    };
    expect(state('old-28', { imageSize: 28 })).toMatchObject({ dLayers: 2, dHidden: 0 });
    expect(state('old-64', { imageSize: 64 })).toMatchObject({ dLayers: 4, dHidden: 0 });
    expect(state('new-28', { imageSize: 28, dLayers: 3, dHidden: 512 })).toMatchObject({ dLayers: 3, dHidden: 512 });
  });
});
