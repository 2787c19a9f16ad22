/**
 * pix2pix's networks and config (Isola et al. 2017, "Image-to-Image Translation with Conditional Adversarial
 * Networks"): a U-Net generator and a conditional PatchGAN, and the checks on how their sizes fit together.
 */

import type { TorchImport } from '@gantry/core';
import {
  checkImageSizes,
  GantryError,
  type Norm,
  patchDiscriminator,
  referenceLoadSize,
  unetGenerator,
} from '@gantry/core/browser';

import type * as tf from '@tensorflow/tfjs';

/** U-Net generators by the crop size they bring down to 1×1: numDowns = log2(size). */
export const NET_G = { unet_256: 8, unet_128: 7, unet_64: 6, unet_32: 5 } as const;
export type NetG = keyof typeof NET_G;

export type Direction = 'AtoB' | 'BtoA';

export interface Pix2pixConfig {
  netG: NetG;
  ngf: number;
  ndf: number;
  /** Strided layers of the PatchGAN: 3 = the paper's 70×70 receptive field (1 = 16×16, 2 = 34×34, 4 = 142×142). */
  dLayers: number;
  norm: Norm;
  dropout: boolean;
  /** Square size the networks work at (random crops while training). */
  cropSize: number;
  /** Images are resized to loadSize×loadSize before the random crop. */
  loadSize: number;
  direction: Direction;
  /** 3 (RGB) or 1 (grayscale), for input and output. */
  channels: 1 | 3;
  lambdaL1: number;
  /** Weight of the adversarial term: 1 for pix2pix, 0 for the L1-only baseline (D is then not trained). */
  lambdaGan: number;
}

/** Config keys a checkpoint must share with the networks it is restored into. */
export const MUST_MATCH: readonly (keyof Pix2pixConfig)[] = [
  'netG',
  'ngf',
  'ndf',
  'dLayers',
  'norm',
  'cropSize',
  'channels',
];

/** Checks that the U-Net fits the crop size (its bottleneck must be 1×1 or larger), as core checks sizes. */
export function checkConfig(c: Pix2pixConfig): void {
  // Own names only: a config's netG of 'constructor' must not find Object's.
  const downs = Object.hasOwn(NET_G, c.netG) ? NET_G[c.netG] : undefined;
  if (downs === undefined)
    throw new GantryError(`--netG: unknown generator '${c.netG}' (expected ${Object.keys(NET_G).join(', ')})`);
  checkImageSizes({ ...c, generator: c.netG, multiple: 2 ** downs });
}

export function buildGenerator(c: Pix2pixConfig): tf.LayersModel {
  return unetGenerator({
    size: c.cropSize,
    inChannels: c.channels,
    outChannels: c.channels,
    numDowns: NET_G[c.netG],
    ngf: c.ngf,
    norm: c.norm,
    dropout: c.dropout,
    name: 'generator',
  });
}

/** The conditional PatchGAN: it sees the input and the (real or generated) output stacked on channels. */
export function buildDiscriminator(c: Pix2pixConfig): tf.LayersModel {
  return patchDiscriminator({
    size: c.cropSize,
    inChannels: 2 * c.channels,
    ndf: c.ndf,
    layers: c.dLayers,
    norm: c.norm,
    name: 'discriminator',
  });
}

/**
 * import-torch: the reference's U-Net generators become pix2pix's generator, with the reference's pix2pix defaults
 * for everything the file does not hold (a 70×70 PatchGAN of width 64, λ = 100, BCE).
 */
export const torchImport: TorchImport<Pix2pixConfig & { loss: string }> = {
  nets: { AtoB: 'generator' },
  config(arch, file) {
    if (arch.kind !== 'unet')
      throw new GantryError(
        `${file}: a ${arch.netG} generator; Gantry's pix2pix runs U-Nets (import it with cyclegan's import-torch)`,
      );
    const cropSize = 2 ** arch.numDowns;
    return {
      netG: arch.netG as NetG,
      ngf: arch.ngf,
      ndf: 64,
      dLayers: 3,
      norm: arch.norm,
      dropout: arch.dropout,
      cropSize,
      loadSize: referenceLoadSize(cropSize),
      direction: 'AtoB',
      channels: arch.inChannels as 1 | 3,
      lambdaL1: 100,
      lambdaGan: 1,
      loss: 'bce',
    };
  },
};
