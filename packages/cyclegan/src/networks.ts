/**
 * CycleGAN's networks (Zhu et al. 2017), all from core's blocks: two generators G_A: A→B and G_B: B→A
 * (ResNet with reflection padding and instance norm, or a U-Net) and two PatchGAN discriminators, D_A judging
 * domain B (real B vs G_A's fakes) and D_B judging domain A — the reference implementation's naming.
 */

import {
  checkImageSizes,
  GantryError,
  type Norm,
  patchDiscriminator,
  referenceLoadSize,
  resnetGenerator,
  type TorchImport,
  unetDowns,
  unetGenerator,
} from '@gantry/core';
import type * as tf from '@tensorflow/tfjs';

export type GeneratorKind = 'resnet' | 'unet';

export interface CycleGanConfig {
  /** Square training/inference resolution (crop size). */
  cropSize: number;
  /** Images are resized to this before the random crop (reference: 286 for 256). */
  loadSize: number;
  channels: 1 | 3;
  /** The generator by the reference's name (`resnet_9blocks`, `unet_256`, …): `generator` and `blocks` in one. */
  netG?: string;
  generator: GeneratorKind;
  /** Residual blocks of the ResNet generator (6 or 9 in the paper). */
  blocks: number;
  ngf: number;
  ndf: number;
  /** Strided PatchGAN layers: 3 gives the 70×70 receptive field. */
  dLayers: number;
  norm: Norm;
  /** Cycle weight λ (10), the same in both directions. */
  lambdaCycle: number;
  /** Identity weight as a fraction of λ (0.5; 0 turns the identity loss off). */
  lambdaIdentity: number;
  /** Generated-image history per discriminator (50; 0: off). */
  poolSize: number;
  /** What domains A and B are (day and night for the generated scenes). */
  domains: { A: string; B: string };
}

/** Config keys a checkpoint must share with the networks it is restored into. */
export const MUST_MATCH: readonly (keyof CycleGanConfig)[] = [
  'cropSize',
  'channels',
  'generator',
  'blocks',
  'ngf',
  'ndf',
  'dLayers',
  'norm',
];

/** The reference's load size for a crop size (core's rule). */
export const defaultLoadSize = referenceLoadSize;
export { unetDowns };

/**
 * The generator by the reference's name (`--net-g`): `resnet_<N>blocks` (the reference has 6 and 9; fewer for
 * quick runs) or `unet_<size>` (the U-Net that brings a crop of that size to 1×1, as CycleGAN's U-Net at that
 * crop size). Returns the config's `generator` and `blocks`; a one-line GantryError for another name.
 */
export function parseNetG(netG: string, cropSize: number): { generator: GeneratorKind; blocks?: number } {
  const resnet = /^resnet_([1-9]\d?)blocks$/.exec(netG);
  if (resnet) return { generator: 'resnet', blocks: Number(resnet[1]) };
  const unet = /^unet_(\d+)$/.exec(netG);
  if (unet) {
    if (Number(unet[1]) !== 2 ** unetDowns(cropSize))
      throw new GantryError(
        `--net-g ${netG}: CycleGAN's U-Net is as deep as the crop size allows (unet_${2 ** unetDowns(cropSize)} at --crop-size ${cropSize}); give --crop-size ${unet[1]}`,
      );
    return { generator: 'unet' };
  }
  throw new GantryError(
    `--net-g ${netG}: expected resnet_9blocks, resnet_6blocks (or resnet_<N>blocks), unet_256 or unet_128`,
  );
}

/** The reference's name of a config's generator (the config's `netG`). */
export const netGName = (c: Pick<CycleGanConfig, 'generator' | 'blocks' | 'cropSize'>): string =>
  c.generator === 'unet' ? `unet_${2 ** unetDowns(c.cropSize)}` : `resnet_${c.blocks}blocks`;

export function checkConfig(c: CycleGanConfig): void {
  const unet = c.generator === 'unet';
  // The ResNet's two stride-2 convolutions need a multiple of 4; the U-Net at least five levels.
  const multiple = unet ? Math.max(32, 2 ** unetDowns(c.cropSize)) : 4;
  checkImageSizes({ ...c, generator: unet ? 'U-Net' : 'ResNet', multiple });
}

export function buildGenerator(c: CycleGanConfig, name: string): tf.LayersModel {
  if (c.generator === 'unet') {
    return unetGenerator({
      size: c.cropSize,
      inChannels: c.channels,
      outChannels: c.channels,
      numDowns: unetDowns(c.cropSize),
      ngf: c.ngf,
      norm: c.norm,
      dropout: false,
      name,
    });
  }
  return resnetGenerator({
    size: c.cropSize,
    inChannels: c.channels,
    outChannels: c.channels,
    ngf: c.ngf,
    blocks: c.blocks,
    norm: c.norm,
    name,
  });
}

export function buildDiscriminator(c: CycleGanConfig, name: string): tf.LayersModel {
  return patchDiscriminator({
    size: c.cropSize,
    inChannels: c.channels,
    ndf: c.ndf,
    layers: c.dLayers,
    norm: c.norm,
    name,
  });
}

/**
 * import-torch: the reference's generators (ResNet or U-Net) become G_A (and G_B with --from-b), with the
 * reference's CycleGAN defaults for everything the files do not hold (PatchGAN of width 64, λ = 10, identity 0.5,
 * pools of 50).
 */
export const torchImport: TorchImport<CycleGanConfig> = {
  nets: { AtoB: 'G_A', BtoA: 'G_B' },
  // The reference's cycle_gan model sets --no_dropout: an imported U-Net matches what train --init-from builds.
  unetDropout: false,
  config(arch) {
    const cropSize = arch.kind === 'unet' ? 2 ** arch.numDowns : 256;
    return {
      cropSize,
      loadSize: referenceLoadSize(cropSize),
      channels: arch.inChannels as 1 | 3,
      netG: arch.netG,
      generator: arch.kind,
      blocks: arch.kind === 'resnet' ? arch.blocks : 9,
      ngf: arch.ngf,
      ndf: 64,
      dLayers: 3,
      norm: arch.norm,
      lambdaCycle: 10,
      lambdaIdentity: 0.5,
      poolSize: 50,
      domains: { A: 'A', B: 'B' },
    };
  },
};
