/**
 * pix2pix's options (Isola et al. 2017, "Image-to-Image Translation with Conditional Adversarial Networks"):
 * networks, presets and how flags become a `Pix2pixConfig`.
 *
 * Two presets:
 * - 'cpu' (default): sized so that `train` finishes within 30 minutes on 2 CPU cores (wasm backend with the
 *   oneDNN kernels) — 128×128 scenes, resize 143 / crop 128 (the paper's 286/256 ratio), unet_128 with ngf 32,
 *   70×70 PatchGAN (3 layers) with ndf 32, batch 1, 3200 steps (4 epochs of 800 pairs: 2 at the full LR, then
 *   linear decay to zero over 2).
 * - 'paper': the paper's facades/maps setup — 256×256, resize 286 / crop 256, unet_256 with ngf 64, ndf 64,
 *   batch 1, 200 epochs (100 constant + 100 decay).
 * Both: loss = GAN (BCE, non-saturating) + λ·L1 with λ = 100, Adam 2e-4 / β1 0.5, batch norm (instance norm
 * selectable), dropout 0.5 in the decoder's ngf·8 levels.
 */
import type * as tf from '@tensorflow/tfjs';
import { GantryError, type Norm, patchDiscriminator, unetGenerator } from '@gantry/core';

/** U-Net generators by the crop size they bring down to 1×1: numDowns = log2(size). */
export const NET_G = { unet_256: 8, unet_128: 7, unet_64: 6, unet_32: 5 } as const;
export type NetG = keyof typeof NET_G;

export type Direction = 'AtoB' | 'BtoA';

export interface Pix2pixConfig {
  netG: NetG;
  ngf: number;
  ndf: number;
  /** Strided layers of the PatchGAN: 3 = the paper's 70×70 receptive field (1 = 16×16, 2 = 34×34, 4 = 142×142). */
  nLayersD: number;
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
  loss: string;
  [k: string]: unknown;
}

export interface Preset {
  netG: NetG;
  ngf: number;
  ndf: number;
  nLayersD: number;
  cropSize: number;
  loadSize: number;
  /** Scene size and count for the generated dataset. */
  sceneSize: number;
  sceneCount: number;
  epochs: number;
  epochsDecay: number;
  sampleEvery: number;
  checkpointEvery: number;
}

export const PRESETS: Record<'cpu' | 'paper', Preset> = {
  cpu: {
    netG: 'unet_128',
    ngf: 32,
    ndf: 32,
    nLayersD: 3,
    cropSize: 128,
    loadSize: 143,
    sceneSize: 128,
    sceneCount: 1000,
    epochs: 4,
    epochsDecay: 2,
    sampleEvery: 200,
    checkpointEvery: 500,
  },
  paper: {
    netG: 'unet_256',
    ngf: 64,
    ndf: 64,
    nLayersD: 3,
    cropSize: 256,
    loadSize: 286,
    sceneSize: 256,
    sceneCount: 1000,
    epochs: 200,
    epochsDecay: 100,
    sampleEvery: 1000,
    checkpointEvery: 5000,
  },
};

/** Config keys a checkpoint must share with the networks it is restored into. */
export const MUST_MATCH = ['netG', 'ngf', 'ndf', 'nLayersD', 'norm', 'cropSize', 'channels'];

/** Checks that the U-Net fits the crop size (its bottleneck must be 1×1 or larger). */
export function checkConfig(c: Pix2pixConfig): void {
  const downs = NET_G[c.netG];
  if (downs === undefined) throw new GantryError(`--netG: unknown generator '${c.netG}' (expected ${Object.keys(NET_G).join(', ')})`);
  if (c.cropSize % 2 ** downs !== 0) {
    throw new GantryError(`--crop-size ${c.cropSize}: ${c.netG} halves the image ${downs} times, so the crop size must be a multiple of ${2 ** downs} (e.g. ${2 ** downs})`);
  }
  if (c.loadSize < c.cropSize) throw new GantryError(`--load-size ${c.loadSize}: smaller than --crop-size ${c.cropSize}`);
  if (c.cropSize < 2 ** (c.nLayersD + 1)) throw new GantryError(`--n-layers-d ${c.nLayersD}: too deep for --crop-size ${c.cropSize}`);
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
  return patchDiscriminator({ size: c.cropSize, inChannels: 2 * c.channels, ndf: c.ndf, layers: c.nLayersD, norm: c.norm, name: 'discriminator' });
}
