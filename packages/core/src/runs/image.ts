/**
 * Image IO for Gantry, all through sharp: decode any common format into 8-bit HWC bytes, convert between
 * bytes and [-1, 1] float tensors, and encode tensors back to PNG/JPEG/WebP files written atomically.
 *
 * Decisions:
 * - Images with alpha are flattened onto WHITE (the usual convention for transparent PNGs such as logos or
 *   sketches; flattening onto black would turn transparent day-photo regions into night).
 * - Everything is converted to 8-bit sRGB (16-bit, CMYK, palette, grayscale inputs included), then to the
 *   requested channel count (1 = luminance, 3 = RGB). EXIF orientation is applied.
 * - Pixel values map to tensors as v / 127.5 - 1 and back as round((x + 1) * 127.5), clamped to [0, 255].
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname, extname } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { check, GantryError } from '../errors.js';
import { mkdirp } from './fsutil.js';

/** 8-bit interleaved (HWC) pixels. `channels` is 1 (gray), 3 (RGB) or 4 (RGBA, output only). */
export interface RawImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: number;
}

export interface ReadImageOptions {
  /** 1 = grayscale, 3 = RGB (default). */
  channels?: 1 | 3;
  /** The pixel limit, in megapixels (default MAX_IMAGE_MEGAPIXELS); sharp's own limit follows it, up or down. */
  maxMegapixels?: number;
  /** Said after the limit in the error (e.g. ' (--max-megapixels)'). */
  limitHint?: string;
}

/**
 * The one pixel limit for every image Gantry decodes (translate, training folders, checkpoints' samples): above any
 * phone camera, far below a decoding bomb. translate's --max-megapixels changes it for one command; sharp's own cap
 * (268 megapixels) is set to the same value, so raising the limit works above it too.
 */
export const MAX_IMAGE_MEGAPIXELS = 50;

/** sharp's limitInputPixels for a limit in megapixels. */
export const pixelLimit = (megapixels: number) => Math.max(1, Math.ceil(megapixels * 1e6));

/**
 * Refuses an image over the pixel limit from its header (width × height; every frame of an animated image counts
 * toward it as sharp decodes one), before anything is decoded.
 */
export function checkPixels(
  name: string,
  meta: { width?: number; height?: number },
  maxMegapixels = MAX_IMAGE_MEGAPIXELS,
  hint = '',
): void {
  const megapixels = ((meta.width ?? 0) * (meta.height ?? 0)) / 1e6;
  if (megapixels > maxMegapixels)
    throw new GantryError(
      `${name}: ${meta.width}×${meta.height} is ${megapixels.toFixed(1)} megapixels, over the limit of ${maxMegapixels}${hint}`,
    );
}

/** A decoder's failure in words: libvips says "Unknown error" or "read error" for data that ends too soon. */
export function decodeFailure(e: unknown): string {
  const msg = firstLine(e);
  return /unknown error|read error|premature|truncat|unexpected end|end of (file|stream)/i.test(msg)
    ? `truncated or corrupt image data: ${msg}`
    : msg;
}

export type ImageFormat = 'png' | 'jpeg' | 'webp';

export interface EncodeOptions {
  /** Resize the output to this size (both default to the tensor's size). */
  width?: number;
  height?: number;
  /** JPEG/WebP quality 1-100 (default 92). */
  quality?: number;
}

/** Extensions readImage/writeImage understand, lower case with the dot. */
export const IMAGE_EXTENSIONS: readonly string[] = ['.png', '.jpg', '.jpeg', '.webp', '.gif', '.tif', '.tiff', '.avif'];

/** Whether a file name has an image extension listed in IMAGE_EXTENSIONS. */
export function isImageFile(name: string): boolean {
  return IMAGE_EXTENSIONS.includes(extname(name).toLowerCase());
}

function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split('\n')[0]!.trim();
}

/** Decodes an encoded image (any format sharp reads). `name` is used in error messages. */
export async function decodeImage(input: Uint8Array, name: string, opts: ReadImageOptions = {}): Promise<RawImage> {
  const channels = opts.channels ?? 3;
  check(channels === 1 || channels === 3, `${name}: channels must be 1 or 3, got ${channels}`);
  if (input.length === 0) throw new GantryError(`${name}: not a readable image (empty file)`);
  const max = opts.maxMegapixels ?? MAX_IMAGE_MEGAPIXELS;
  try {
    checkPixels(name, await sharp(input, { limitInputPixels: false }).metadata(), max, opts.limitHint);
    let p = sharp(input, { failOn: 'truncated', autoOrient: true, limitInputPixels: pixelLimit(max) });
    p = p.flatten({ background: '#ffffff' });
    p = channels === 1 ? p.toColourspace('b-w') : p.toColourspace('srgb');
    const { data, info } = await p.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    let bytes = new Uint8Array(data.buffer, data.byteOffset, data.length);
    if (info.channels !== channels) bytes = convertChannels(bytes, info.channels, channels);
    return { data: bytes, width: info.width, height: info.height, channels };
  } catch (e) {
    if (e instanceof GantryError) throw e;
    throw new GantryError(`${name}: not a readable image (${decodeFailure(e)})`);
  }
}

/** Reads an image file into 8-bit HWC bytes with the requested channels (default 3). */
export async function readImage(path: string, opts: ReadImageOptions = {}): Promise<RawImage> {
  let input: Buffer;
  try {
    input = await readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new GantryError(`${path}: file not found (expected an image file)`);
    if (code === 'EISDIR') throw new GantryError(`${path}: is a directory (expected an image file)`);
    throw new GantryError(`${path}: cannot read (${firstLine(e)})`);
  }
  return decodeImage(input, path, opts);
}

/** Width and height of an image file after EXIF orientation, from its header only. */
export async function readImageSize(path: string): Promise<{ width: number; height: number }> {
  try {
    const m = await sharp(path).metadata();
    check(m.width !== undefined && m.height !== undefined, `${path}: not a readable image (no size)`);
    return m.autoOrient
      ? { width: m.autoOrient.width, height: m.autoOrient.height }
      : { width: m.width, height: m.height };
  } catch (e) {
    if (e instanceof GantryError) throw e;
    throw new GantryError(`${path}: not a readable image (${firstLine(e)})`);
  }
}

/** Converts interleaved pixels between 1, 3 and 4 channels (RGB to gray uses Rec. 601 luma; alpha is dropped). */
function convertChannels(src: Uint8Array, from: number, to: number): Uint8Array {
  const n = src.length / from;
  const out = new Uint8Array(n * to);
  for (let i = 0; i < n; i++) {
    const s = i * from;
    const r = src[s]!;
    const g = from >= 3 ? src[s + 1]! : r;
    const b = from >= 3 ? src[s + 2]! : r;
    if (to === 1) out[i] = Math.round(0.299 * r + 0.587 * g + 0.114 * b);
    else {
      const o = i * to;
      out[o] = r;
      out[o + 1] = g;
      out[o + 2] = b;
      if (to === 4) out[o + 3] = from === 4 || from === 2 ? src[s + from - 1]! : 255;
    }
  }
  return out;
}

/** Resizes with sharp (bicubic by default, like the reference pix2pix). Aspect ratio is not kept. */
export async function resizeImage(
  img: RawImage,
  width: number,
  height: number,
  opts: { kernel?: 'nearest' | 'cubic' | 'lanczos3' | 'linear' } = {},
): Promise<RawImage> {
  check(
    width >= 1 && height >= 1 && Number.isInteger(width) && Number.isInteger(height),
    `resizeImage: bad size ${width}x${height}`,
  );
  if (width === img.width && height === img.height) return img;
  const { data, info } = await sharp(img.data, { raw: rawInput(img) })
    .resize(width, height, { fit: 'fill', kernel: opts.kernel ?? 'cubic' })
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  check(info.channels === img.channels, `resizeImage: channel count changed from ${img.channels} to ${info.channels}`);
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width, height, channels: img.channels };
}

/** Copies the rectangle [left, left+width) x [top, top+height); it must lie inside the image. */
export function cropImage(img: RawImage, left: number, top: number, width: number, height: number): RawImage {
  check(
    left >= 0 && top >= 0 && width >= 1 && height >= 1 && left + width <= img.width && top + height <= img.height,
    `cropImage: ${width}x${height}+${left}+${top} does not fit in a ${img.width}x${img.height} image`,
  );
  const c = img.channels;
  const out = new Uint8Array(width * height * c);
  const rowBytes = width * c;
  for (let y = 0; y < height; y++) {
    const s = ((top + y) * img.width + left) * c;
    out.set(img.data.subarray(s, s + rowBytes), y * rowBytes);
  }
  return { data: out, width, height, channels: c };
}

/** Mirrors left-right. */
export function flipImage(img: RawImage): RawImage {
  const { width: w, height: h, channels: c } = img;
  const out = new Uint8Array(img.data.length);
  for (let y = 0; y < h; y++) {
    const row = y * w * c;
    for (let x = 0; x < w; x++) {
      const s = row + x * c;
      const d = row + (w - 1 - x) * c;
      for (let k = 0; k < c; k++) out[d + k] = img.data[s + k]!;
    }
  }
  return { ...img, data: out };
}

/** Bytes (any shape, values 0..255) to a float32 tensor in [-1, 1]. No intermediate tensors. */
export function bytesToTensor(data: Uint8Array, shape: [number, number, number]): tf.Tensor3D;
export function bytesToTensor(data: Uint8Array, shape: [number, number, number, number]): tf.Tensor4D;
export function bytesToTensor(data: Uint8Array, shape: number[]): tf.Tensor;
export function bytesToTensor(data: Uint8Array, shape: number[]): tf.Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  check(size === data.length, `bytesToTensor: ${data.length} bytes do not fill shape [${shape}]`);
  const f = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) f[i] = data[i]! / 127.5 - 1;
  return tf.tensor(f, shape, 'float32');
}

/** An int32 1-D tensor (e.g. class labels). */
export function int32Tensor1d(values: ArrayLike<number>): tf.Tensor1D {
  return tf.tensor1d(Int32Array.from(values), 'int32');
}

/** One image to a float32 [H, W, C] tensor in [-1, 1]. */
export function imageToTensor(img: RawImage): tf.Tensor3D {
  return bytesToTensor(img.data, [img.height, img.width, img.channels]);
}

/** Same-sized images to a float32 [N, H, W, C] tensor in [-1, 1]. */
export function imagesToTensor(imgs: readonly RawImage[]): tf.Tensor4D {
  check(imgs.length > 0, 'imagesToTensor: no images');
  const { width: w, height: h, channels: c } = imgs[0]!;
  const per = w * h * c;
  const all = new Uint8Array(per * imgs.length);
  imgs.forEach((im, i) => {
    check(
      im.width === w && im.height === h && im.channels === c,
      `imagesToTensor: image ${i} is ${im.width}x${im.height}x${im.channels}, expected ${w}x${h}x${c}`,
    );
    all.set(im.data, i * per);
  });
  return bytesToTensor(all, [imgs.length, h, w, c]);
}

export function floatsToBytes(v: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const x = v[i]!;
    out[i] = x >= 1 ? 255 : x > -1 ? Math.round((x + 1) * 127.5) : 0; // NaN -> 0
  }
  return out;
}

/** A [H, W, C] or [1, H, W, C] tensor in [-1, 1] to 8-bit bytes (C = 1, 3 or 4). Creates no tensors. */
export async function tensorToImage(t: tf.Tensor3D | tf.Tensor4D): Promise<RawImage> {
  check(
    t.rank === 3 || (t.rank === 4 && t.shape[0] === 1),
    `tensorToImage: expected [H,W,C] or [1,H,W,C], got [${t.shape}]`,
  );
  const [h, w, c] = (t.rank === 4 ? t.shape.slice(1) : t.shape) as number[];
  check(c === 1 || c === 3 || c === 4, `tensorToImage: expected 1, 3 or 4 channels, got ${c}`);
  const values = await t.data();
  return { data: floatsToBytes(values as ArrayLike<number>), width: w!, height: h!, channels: c! };
}

function rawInput(img: RawImage): { width: number; height: number; channels: 1 | 2 | 3 | 4 } {
  check(
    img.data.length === img.width * img.height * img.channels && img.channels >= 1 && img.channels <= 4,
    `image: ${img.data.length} bytes do not match ${img.width}x${img.height}x${img.channels}`,
  );
  return { width: img.width, height: img.height, channels: img.channels as 1 | 2 | 3 | 4 };
}

/** Image format implied by a file name's extension, or a GantryError. */
export function formatFromPath(path: string): ImageFormat {
  const ext = extname(path).toLowerCase();
  if (ext === '.png') return 'png';
  if (ext === '.jpg' || ext === '.jpeg') return 'jpeg';
  if (ext === '.webp') return 'webp';
  throw new GantryError(`${path}: unsupported output extension '${ext}' (expected .png, .jpg, .jpeg or .webp)`);
}

/** Encodes raw bytes to PNG/JPEG/WebP, optionally resized (bicubic). JPEG drops alpha (flattened on white). */
export async function encodeImage(img: RawImage, format: ImageFormat, opts: EncodeOptions = {}): Promise<Buffer> {
  let p = sharp(img.data, { raw: rawInput(img) });
  const width = opts.width ?? img.width;
  const height = opts.height ?? img.height;
  if (width !== img.width || height !== img.height) p = p.resize(width, height, { fit: 'fill', kernel: 'cubic' });
  const quality = opts.quality ?? 92;
  if (format === 'png') p = p.png();
  else if (format === 'jpeg') p = p.flatten({ background: '#ffffff' }).jpeg({ quality });
  else p = p.webp({ quality });
  return p.toBuffer();
}

/** A [H,W,C] or [1,H,W,C] tensor in [-1, 1] as PNG bytes. */
export async function encodePng(t: tf.Tensor3D | tf.Tensor4D): Promise<Buffer> {
  return encodeImage(await tensorToImage(t), 'png');
}

/** Writes raw bytes as an image file (format from the extension), atomically. */
export async function writeRawImage(img: RawImage, path: string, opts: EncodeOptions = {}): Promise<void> {
  const buf = await encodeImage(img, formatFromPath(path), opts);
  await atomicWriteAsync(path, buf);
}

/** Writes a [H,W,C] or [1,H,W,C] tensor in [-1, 1] as .png/.jpg/.webp, optionally resized, atomically. */
export async function writeImage(t: tf.Tensor3D | tf.Tensor4D, path: string, opts: EncodeOptions = {}): Promise<void> {
  const format = formatFromPath(path);
  await atomicWriteAsync(path, await encodeImage(await tensorToImage(t), format, opts));
}

/** Writes a [H,W,C] or [1,H,W,C] tensor in [-1, 1] as a PNG file, atomically (whatever the extension). */
export async function tensorToPng(t: tf.Tensor3D | tf.Tensor4D, path: string): Promise<void> {
  await atomicWriteAsync(path, await encodePng(t));
}

export interface GridOptions {
  /** Images per row (default ceil(sqrt(N))). */
  cols?: number;
  /** Pixels between and around tiles (default 2). */
  padding?: number;
  /** Padding gray level 0..255 (default 0, black, like torchvision's make_grid). */
  padValue?: number;
}

/** Tiles a [N,H,W,C] tensor in [-1, 1] into one grid image (bytes). */
export async function imageGrid(images: tf.Tensor4D, opts: GridOptions = {}): Promise<RawImage> {
  check(images.rank === 4, `imageGrid: expected [N,H,W,C], got [${images.shape}]`);
  const [n, h, w, c] = images.shape;
  check(n >= 1, 'imageGrid: no images');
  check(c === 1 || c === 3 || c === 4, `imageGrid: expected 1, 3 or 4 channels, got ${c}`);
  const cols = Math.min(opts.cols ?? Math.ceil(Math.sqrt(n)), n);
  check(Number.isInteger(cols) && cols >= 1, `imageGrid: cols must be a positive integer, got ${opts.cols}`);
  const pad = opts.padding ?? 2;
  check(Number.isInteger(pad) && pad >= 0, `imageGrid: padding must be a non-negative integer, got ${pad}`);
  const rows = Math.ceil(n / cols);
  const gw = cols * w + (cols + 1) * pad;
  const gh = rows * h + (rows + 1) * pad;
  const out = new Uint8Array(gw * gh * c).fill(opts.padValue ?? 0);
  if (c === 4) for (let i = 3; i < out.length; i += 4) out[i] = 255;
  const bytes = floatsToBytes((await images.data()) as ArrayLike<number>);
  const rowBytes = w * c;
  for (let i = 0; i < n; i++) {
    const x0 = pad + (i % cols) * (w + pad);
    const y0 = pad + Math.floor(i / cols) * (h + pad);
    for (let y = 0; y < h; y++) {
      const s = (i * h + y) * rowBytes;
      out.set(bytes.subarray(s, s + rowBytes), ((y0 + y) * gw + x0) * c);
    }
  }
  return { data: out, width: gw, height: gh, channels: c };
}

/** Saves a [N,H,W,C] tensor in [-1, 1] as an image grid (.png/.jpg/.webp), atomically. */
export async function saveImageGrid(images: tf.Tensor4D, path: string, opts: GridOptions = {}): Promise<void> {
  await writeRawImage(await imageGrid(images, opts), path);
}

/**
 * Async twin of fsutil's synchronous `atomicWrite` (named apart so both can be re-exported from the index).
 * Writes a file atomically: `<path>.tmp-<pid>-<random>` is written, fsynced and renamed over `path`, so readers
 * never see a half-written file. Creates the parent folder if needed.
 */
export async function atomicWriteAsync(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    mkdirp(dirname(path)); // not fs's recursive mkdir: it spins forever under /proc
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    const code = (e as NodeJS.ErrnoException).code;
    if (
      code === 'EACCES' ||
      code === 'EEXIST' ||
      code === 'EROFS' ||
      code === 'ENOSPC' ||
      code === 'ENOTDIR' ||
      code === 'EISDIR' ||
      code === 'ENOENT' ||
      code === 'EPERM'
    )
      throw new GantryError(`${path}: cannot write (${firstLine(e)})`);
    throw e;
  }
}
