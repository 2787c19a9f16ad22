/**
 * Listing image folders and the shared pix2pix/CycleGAN preprocessing (resize, random crop, random flip).
 *
 * Non-image files policy: entries whose extension is not an image extension (.png .jpg .jpeg .webp .gif .tif
 * .tiff .avif), hidden files (".DS_Store"), sub-folders and names that could escape the root ("..", absolute,
 * with separators, or symlinks pointing outside the root) are skipped silently and counted in `skipped`.
 * A file WITH an image extension that cannot be decoded is an error naming the file when it is loaded.
 */
import { readdir, realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import {
  check,
  cropImage,
  flipImage,
  GantryError,
  isImageFile,
  type RawImage,
  type Rng,
  randInt,
  readImage,
  resizeImage,
} from '@gantry/core';

export interface ImageList {
  /** Absolute paths, sorted by name (natural order: 2.png before 10.png). */
  files: string[];
  /** Entries that were not taken (not images, hidden, folders, unsafe names). */
  skipped: number;
}

const collator = new Intl.Collator('en', { numeric: true });

/** Whether `dir` is an existing folder. */
export async function isDir(dir: string): Promise<boolean> {
  return stat(dir).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

function isSafeName(name: string): boolean {
  return (
    name !== '' &&
    name !== '.' &&
    name !== '..' &&
    !name.includes('/') &&
    !name.includes('\\') &&
    !isAbsolute(name) &&
    !name.includes('\0')
  );
}

/** Whether `p` lies inside `root` (both resolved). */
export function isInside(root: string, p: string): boolean {
  const rel = relative(resolve(root), resolve(p));
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

/**
 * Lists the images directly inside `dir` (see the policy above). `root` is the dataset root that symlinks
 * must not leave. `what` describes the folder for error messages.
 */
export async function listImages(dir: string, root: string, what: string): Promise<ImageList> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new GantryError(`${dir}: folder not found (expected ${what})`);
    if (code === 'ENOTDIR') throw new GantryError(`${dir}: is a file (expected a folder: ${what})`);
    throw new GantryError(`${dir}: cannot read folder (${code ?? (e as Error).message})`);
  }
  const realRoot = await realpath(root).catch(() => resolve(root));
  const files: string[] = [];
  let skipped = 0;
  for (const e of entries) {
    const name = e.name;
    if (!isSafeName(name) || name.startsWith('.') || !isImageFile(name)) {
      skipped++;
      continue;
    }
    const full = join(dir, name);
    if (e.isSymbolicLink()) {
      const target = await realpath(full).catch(() => undefined);
      const st = target ? await stat(target).catch(() => undefined) : undefined;
      if (!target || !st?.isFile() || !isInside(realRoot, target)) {
        skipped++;
        continue;
      }
    } else if (!e.isFile()) {
      skipped++;
      continue;
    }
    files.push(resolve(full));
  }
  files.sort((a, b) => collator.compare(a, b));
  if (files.length === 0) {
    throw new GantryError(
      `${dir}: no images (expected ${what}; .png/.jpg/.jpeg/.webp files${skipped ? `, ${skipped} other entr${skipped === 1 ? 'y' : 'ies'} skipped` : ''})`,
    );
  }
  return { files, skipped };
}

/** The reference implementation's --preprocess modes that Gantry supports. */
export type Preprocess = 'resize_and_crop' | 'crop' | 'none';

export interface TransformOptions {
  /** Default 'resize_and_crop': resize to loadSize x loadSize (bicubic), then crop cropSize x cropSize. */
  preprocess?: Preprocess;
  /** Default 286 for the train split, cropSize otherwise (like the reference's test options). */
  loadSize?: number;
  /** Default 256. */
  cropSize?: number;
  /** Random horizontal flip; default true for the train split, false otherwise. */
  flip?: boolean;
  /** 3 = RGB (default) or 1 = grayscale. */
  channels?: 1 | 3;
}

export interface Transform {
  preprocess: Preprocess;
  loadSize: number;
  cropSize: number;
  flip: boolean;
  channels: 1 | 3;
}

/** Fills defaults the way the reference's train/test options do, and validates. */
export function resolveTransform(opts: TransformOptions, split: string): Transform {
  const train = split === 'train';
  const preprocess = opts.preprocess ?? 'resize_and_crop';
  check(
    preprocess === 'resize_and_crop' || preprocess === 'crop' || preprocess === 'none',
    `preprocess must be 'resize_and_crop', 'crop' or 'none', got '${preprocess}'`,
  );
  const cropSize = opts.cropSize ?? 256;
  const loadSize = opts.loadSize ?? (train ? Math.max(286, cropSize) : cropSize);
  check(Number.isInteger(cropSize) && cropSize >= 1, `cropSize must be a positive integer, got ${cropSize}`);
  check(Number.isInteger(loadSize) && loadSize >= 1, `loadSize must be a positive integer, got ${loadSize}`);
  if (preprocess === 'resize_and_crop') {
    check(
      loadSize >= cropSize,
      `loadSize ${loadSize} is smaller than cropSize ${cropSize} (images are resized to loadSize, then cropped to cropSize)`,
    );
  }
  const channels = opts.channels ?? 3;
  check(channels === 1 || channels === 3, `channels must be 1 or 3, got ${channels}`);
  return { preprocess, loadSize, cropSize, flip: opts.flip ?? train, channels };
}

/** Random parameters shared by images that must be transformed identically (pix2pix A and B). */
export interface TransformParams {
  x: number;
  y: number;
  flip: boolean;
}

/** Draws crop offsets and flip for an image of `width` x `height` (before resizing), like the reference's get_params. */
export function drawParams(t: Transform, width: number, height: number, rng: Rng): TransformParams {
  const [w, h] = t.preprocess === 'resize_and_crop' ? [t.loadSize, t.loadSize] : [width, height];
  const crop = t.preprocess !== 'none';
  const x = crop ? randInt(rng, 0, Math.max(0, w - t.cropSize)) : 0;
  const y = crop ? randInt(rng, 0, Math.max(0, h - t.cropSize)) : 0;
  const flip = rng() > 0.5; // always drawn, so streams do not depend on the flip option
  return { x, y, flip: t.flip && flip };
}

/** Applies resize / crop / flip with the given parameters. `file` names the image in errors. */
export async function applyTransform(img: RawImage, t: Transform, p: TransformParams, file: string): Promise<RawImage> {
  let out = img;
  if (t.preprocess === 'resize_and_crop') out = await resizeImage(out, t.loadSize, t.loadSize);
  if (t.preprocess !== 'none') {
    if (out.width < t.cropSize || out.height < t.cropSize) {
      throw new GantryError(
        `${file}: ${out.width}x${out.height} image${t.preprocess === 'crop' ? '' : ' after resizing'} is smaller than cropSize ${t.cropSize}`,
      );
    }
    out = cropImage(out, p.x, p.y, t.cropSize, t.cropSize);
  }
  if (p.flip) out = flipImage(out);
  return out;
}

/** Reads an image with the transform's channel count. */
export function loadImage(file: string, t: Transform): Promise<RawImage> {
  return readImage(file, { channels: t.channels });
}

/** Checks that a batch's images all have one size (only an issue with preprocess 'none'). */
export function checkSameSize(imgs: RawImage[], files: string[]): void {
  const first = imgs[0]!;
  imgs.forEach((im, i) => {
    check(
      im.width === first.width && im.height === first.height,
      () =>
        `${files[i]}: ${im.width}x${im.height} differs from ${files[0]} (${first.width}x${first.height}); with preprocess 'none' a batch needs equal sizes`,
    );
  });
}

/** Validates batch indices against a dataset length. */
export function checkIndices(indices: ArrayLike<number>, length: number, what: string): void {
  check(indices.length > 0, `${what}: empty batch`);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k]!;
    check(Number.isInteger(i) && i >= 0 && i < length, `${what}: index ${i} out of range 0..${length - 1}`);
  }
}
