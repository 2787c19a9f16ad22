/**
 * CycleGAN's networks (Zhu et al. 2017), all from core's blocks: two generators G_A: A→B and G_B: B→A
 * (ResNet with reflection padding and instance norm, or a U-Net) and two PatchGAN discriminators, D_A judging
 * domain B (real B vs G_A's fakes) and D_B judging domain A — the reference implementation's naming.
 */
import type * as tf from '@tensorflow/tfjs';
import { GantryError, type Norm, patchDiscriminator, resnetGenerator, unetGenerator } from '@gantry/core';

export type GeneratorKind = 'resnet' | 'unet';

export interface CycleGanConfig {
  /** Square training/inference resolution (crop size). */
  size: number;
  /** Images are resized to this before the random crop (reference: 286 for 256). */
  loadSize: number;
  channels: 1 | 3;
  generator: GeneratorKind;
  /** Residual blocks of the ResNet generator (6 or 9 in the paper). */
  blocks: number;
  ngf: number;
  ndf: number;
  /** Strided PatchGAN layers: 3 gives the 70×70 receptive field. */
  dLayers: number;
  norm: Norm;
  [k: string]: unknown;
}

/** Config keys a checkpoint must share with the networks it is restored into. */
export const MUST_MATCH = ['size', 'channels', 'generator', 'blocks', 'ngf', 'ndf', 'dLayers', 'norm'];

export type PresetName = 'cpu' | 'paper';

export interface Preset {
  size: number;
  ngf: number;
  ndf: number;
  blocks: number;
  /** Epochs at the base learning rate, then epochs of linear decay to 0. */
  epochs: number;
  decayEpochs: number;
  /** Scene images per domain for the default dataset (10% held out for test). */
  sceneCount: number;
  describe: string;
}

/**
 * `cpu` fits the default `train` into the 45-minute budget of a 2-core machine (29 min measured: 1.2 s per step at
 * 128×128 on the wasm backend with the oneDNN kernels); `paper` is the paper's setting (256×256, ngf/ndf 64,
 * ResNet-9, 100 + 100 epochs: 35 s per step on that machine, 2.8 GB peak).
 */
export const PRESETS: Record<PresetName, Preset> = {
  cpu: { size: 128, ngf: 16, ndf: 16, blocks: 6, epochs: 2, decayEpochs: 2, sceneCount: 400, describe: '128×128, ngf/ndf 16, ResNet-6, 4 epochs of 360 scenes (2 at the base LR, 2 decaying)' },
  paper: { size: 256, ngf: 64, ndf: 64, blocks: 9, epochs: 100, decayEpochs: 100, sceneCount: 1000, describe: '256×256, ngf/ndf 64, ResNet-9, 100 + 100 epochs' },
};

/** The reference's load size for a crop size: 286 for 256, scaled for other sizes. */
export function defaultLoadSize(size: number): number {
  return Math.round((size * 286) / 256);
}

/** U-Net depth for a size: the largest number of ×2 downsamplings (at most 8) that divides it. */
export function unetDowns(size: number): number {
  let n = 0;
  while (n < 8 && size % 2 ** (n + 1) === 0) n++;
  return n;
}

export function checkConfig(c: CycleGanConfig): void {
  if (c.generator === 'resnet' && c.size % 4 !== 0) throw new GantryError(`--size ${c.size}: the ResNet generator needs a multiple of 4`);
  if (c.generator === 'unet' && unetDowns(c.size) < 5) throw new GantryError(`--size ${c.size}: the U-Net generator needs a multiple of 32`);
  if (c.size < 2 ** (c.dLayers + 1)) throw new GantryError(`--size ${c.size}: too small for a ${c.dLayers}-layer PatchGAN`);
  if (c.loadSize < c.size) throw new GantryError(`--load-size ${c.loadSize}: smaller than --size ${c.size}`);
}

export function buildGenerator(c: CycleGanConfig, name: string): tf.LayersModel {
  if (c.generator === 'unet') {
    return unetGenerator({ size: c.size, inChannels: c.channels, outChannels: c.channels, numDowns: unetDowns(c.size), ngf: c.ngf, norm: c.norm, dropout: false, name });
  }
  return resnetGenerator({ size: c.size, inChannels: c.channels, outChannels: c.channels, ngf: c.ngf, blocks: c.blocks, norm: c.norm, name });
}

export function buildDiscriminator(c: CycleGanConfig, name: string): tf.LayersModel {
  return patchDiscriminator({ size: c.size, inChannels: c.channels, ndf: c.ndf, layers: c.dLayers, norm: c.norm, name });
}
