/**
 * The image sizes of the image-to-image variants (pix2pix, CycleGAN) and import-torch: one load-size rule and one
 * set of checks, so the variants word them alike.
 */
import { GantryError } from '../errors.js';

/** The reference's load size for a crop size: its --load_size 286 for --crop_size 256, scaled to other sizes. */
export function referenceLoadSize(cropSize: number): number {
  return Math.round((cropSize * 286) / 256);
}

/** U-Net depth for a size: the largest number of ×2 downsamplings (at most 8) that divides it. */
export function unetDowns(size: number): number {
  let n = 0;
  while (n < 8 && size % 2 ** (n + 1) === 0) n++;
  return n;
}

/**
 * Checks a crop size against the generator (its name and the multiple its strides need), a PatchGAN of `dLayers`
 * strided layers, and the load size; a one-line GantryError naming the flag otherwise.
 */
export function checkImageSizes(o: {
  cropSize: number;
  loadSize: number;
  dLayers: number;
  /** The generator, as the error names it ('ResNet', 'unet_128'). */
  generator: string;
  /** The multiple the generator's strides need (4 for the ResNet, 2^downs for a U-Net). */
  multiple: number;
}): void {
  if (o.cropSize % o.multiple !== 0)
    throw new GantryError(
      `--crop-size ${o.cropSize}: the ${o.generator} generator needs a multiple of ${o.multiple} (e.g. ${Math.max(o.multiple, Math.round(o.cropSize / o.multiple) * o.multiple)})`,
    );
  if (o.cropSize < 2 ** (o.dLayers + 1))
    throw new GantryError(`--crop-size ${o.cropSize}: too small for a ${o.dLayers}-layer PatchGAN (--d-layers)`);
  if (o.loadSize < o.cropSize)
    throw new GantryError(`--load-size ${o.loadSize}: smaller than --crop-size ${o.cropSize}`);
}
