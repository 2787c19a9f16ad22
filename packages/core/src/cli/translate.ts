/**
 * The `translate` command's input/output handling, shared by the image-to-image variants (pix2pix, CycleGAN).
 * A variant supplies only a function from a batch of one image at the model's resolution to its translation;
 * this module does the rest:
 *
 * - `--input` is an image file or a folder (its regular, non-hidden files; not recursive). `--output` is a file
 *   (single input) or a folder (created if needed; for a single input, an existing folder receives
 *   `<input name>`). Outputs are PNG, JPEG or WebP, by extension; in folder mode each output keeps its input's
 *   name and extension (.gif/.tif/.avif inputs, which cannot be written, become .png).
 * - Any size, aspect ratio and format sharp decodes (JPEG, PNG, WebP, GIF, TIFF, AVIF), 8 or 16 bit, EXIF
 *   orientation applied (the output is upright and has the input's displayed size).
 * - `resolution: 'native'` (the default): the generator runs fully convolutionally on the image's own pixels,
 *   reflect-padded to the network's stride multiple and cropped back (fully-conv.ts) — the reference
 *   implementation's `--preprocess none`. The output keeps the photo's detail; the network sees the scene at the
 *   photo's scale, not the training crops' (see docs/readme-23b.md for when that matters). When the estimated
 *   memory of one pass exceeds `maxMemory`, or `tile` says so, the image goes through in overlapping tiles blended
 *   without seams (tiles.ts).
 * - `resolution: 'model'`: the image is resized (bicubic, aspect not kept — the reference's `--preprocess resize`)
 *   to modelSize×modelSize, translated whole, and the translation resized back (bicubic) to the input's size: the
 *   network sees the whole scene at its training scale, and the output carries the model's level of detail.
 * - Each written line reports how much of the input's structure the output keeps (structure.ts), with a warning
 *   when it is low.
 * - Grayscale inputs are fed to an RGB model as gray RGB and the output is written back as grayscale (luma);
 *   inputs with alpha are translated flattened onto white (core/image.ts's convention) and the input's alpha
 *   channel is put back on the output (PNG/WebP; a JPEG output is flattened onto white).
 * - Every output is written atomically (temporary sibling, then rename): a failure never leaves a partial file.
 * - Inputs over `maxMegapixels` (default 50, `--max-megapixels`) are refused from their header, before any
 *   decoding: a 16000×16000 PNG would otherwise take tens of seconds and gigabytes.
 * - A file that cannot be read or decoded is a one-line error naming it (a looping or dangling symlink, an
 *   unreadable entry in a folder too). In folder mode the other files are
 *   still translated, each failure is reported on its own line, and the run ends with a GantryError (exit 1)
 *   listing the failed files. The output of a failed file is never written.
 *
 * The command itself (flags, loading the generator) is cli/commands/translate.ts.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { check, GantryError } from '../errors.js';
import { formatStructure, type StructureScore, structureScore } from '../metrics/structure.js';
import { type FloatImage, forwardPadded } from '../nn/fully-conv.js';
import { forwardTiled, tilePlan } from '../nn/tiles.js';
import { mkdirp } from '../runs/fsutil.js';
import {
  atomicWriteAsync,
  checkPixels,
  decodeFailure,
  decodeImage,
  encodeImage,
  formatFromPath,
  type ImageFormat,
  imageToTensor,
  MAX_IMAGE_MEGAPIXELS,
  pixelLimit,
  type RawImage,
  resizeImage,
  tensorToImage,
} from '../runs/image.js';
import { userPath } from '../runs/run.js';

/**
 * The model: a [1, H, W, C] float32 tensor in [-1, 1] (H = W = modelSize at model resolution; multiples of the
 * stride multiple at native resolution; C = inChannels) to a [1, H, W, C'] tensor in [-1, 1] (C' = 1 or 3). It may
 * be async. The input is disposed by the caller; the output is disposed here.
 */
export type TranslateFn = (x: tf.Tensor4D) => tf.Tensor4D | Promise<tf.Tensor4D>;

export interface TranslateOptions {
  /** An image file or a folder of images (resolved with `userPath`). */
  input: string;
  /** A file (single input) or a folder. */
  output: string;
  /** The model's square input size. */
  modelSize: number;
  /** Channels the model takes: 3 (default) or 1. */
  inChannels?: 1 | 3;
  /** JPEG/WebP quality 1-100 (default 92). */
  quality?: number;
  /** Largest input accepted, in megapixels (width × height / 10⁶; default DEFAULT_MAX_MEGAPIXELS). */
  maxMegapixels?: number;
  /** Progress lines (default console.error). */
  log?: (line: string) => void;
  /** 'native' (default): the image's own size; 'model': resized to modelSize and back. */
  resolution?: Resolution;
  /** Native resolution: height and width must be multiples of this (the network's stride multiple; default 1). */
  multiple?: number;
  /** Native resolution: tile side in pixels, 0 = never tile, 'auto' (default) = tile when one pass exceeds maxMemory. */
  tile?: number | 'auto';
  /** Minimum overlap of adjacent tiles in pixels (default tile / 4). */
  tileOverlap?: number;
  /** Bytes one pass may use before 'auto' tiles (default `defaultMaxMemory()`). */
  maxMemory?: number;
  /** Tensor bytes per input pixel of one pass (measured by `measureBytesPerPixel`); needed by tile 'auto'. */
  bytesPerPixel?: () => Promise<number>;
}

/** The default input-size limit of `translate` (megapixels): the one limit of every decoded image (runs/image.ts). */
export const DEFAULT_MAX_MEGAPIXELS = MAX_IMAGE_MEGAPIXELS;

export type Resolution = 'native' | 'model';

export interface TranslateFailure {
  file: string;
  error: string;
}

export interface TranslateSummary {
  /** [input, output] pairs written. */
  written: [string, string][];
  failed: TranslateFailure[];
  /** Hidden files and sub-folders skipped in folder mode. */
  skipped: number;
  /** One per written file, in the order of `written`. */
  reports: FileReport[];
}

function logWritten(log: (l: string) => void, src: string, dst: string, r: FileReport): void {
  const d = describeFile(r);
  log(`${src} → ${dst} (${d.text})`);
  if (d.warning) log(`${src}: ${d.warning}`);
}

const WRITABLE = new Set(['.png', '.jpg', '.jpeg', '.webp']);

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0]!.trim();
}

/** The output name in folder mode: the input's name, with .png when its format cannot be written. */
export function outputNameFor(inputName: string): string {
  const ext = path.extname(inputName);
  return WRITABLE.has(ext.toLowerCase()) ? inputName : `${path.basename(inputName, ext)}.png`;
}

interface Decoded {
  /** RGB (or gray) pixels for the model, alpha flattened onto white. */
  image: RawImage;
  /** The input's alpha channel (one byte per pixel), if it has one. */
  alpha?: Uint8Array;
  /** Whether the input is grayscale (the output is written as grayscale). */
  gray: boolean;
  /** Frames of an animated image (GIF, WebP); only the first is translated. */
  frames?: number;
}

/** Decodes any image sharp reads, upright (EXIF), keeping its alpha and whether it is grayscale. */
export async function decodeForTranslation(
  file: string,
  inChannels: 1 | 3 = 3,
  maxMegapixels = DEFAULT_MAX_MEGAPIXELS,
): Promise<Decoded> {
  let buf: Buffer;
  try {
    buf = await fs.promises.readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new GantryError(`${file}: file not found`);
    if (code === 'EISDIR') throw new GantryError(`${file}: is a directory (expected an image file)`);
    if (code === 'ELOOP') throw new GantryError(`${file}: cannot read (ELOOP: a symbolic link loop)`);
    throw new GantryError(`${file}: cannot read (${code ?? firstLine(e)})`);
  }
  if (buf.length === 0) throw new GantryError(`${file}: not a readable image (empty file)`);
  let meta: sharp.Metadata;
  try {
    meta = await sharp(buf, { limitInputPixels: false }).metadata();
  } catch (e) {
    throw new GantryError(`${file}: not a readable image (${decodeFailure(e)})`);
  }
  checkPixels(file, meta, maxMegapixels, ' (--max-megapixels)');
  const image = await decodeImage(buf, file, { channels: inChannels, maxMegapixels, limitHint: ' (--max-megapixels)' });
  const gray =
    meta.space === 'b-w' ||
    meta.space === 'grey16' ||
    meta.channels === 1 ||
    (meta.channels === 2 && meta.hasAlpha === true);
  let alpha: Uint8Array | undefined;
  if (meta.hasAlpha) {
    try {
      const { data, info } = await sharp(buf, { autoOrient: true, limitInputPixels: pixelLimit(maxMegapixels) })
        .toColourspace('srgb')
        .ensureAlpha()
        .extractChannel(3)
        .raw({ depth: 'uchar' })
        .toBuffer({ resolveWithObject: true });
      check(info.width === image.width && info.height === image.height, `${file}: alpha channel size mismatch`);
      alpha = new Uint8Array(data.buffer, data.byteOffset, data.length);
      // Fully opaque alpha is not worth carrying.
      if (alpha.every((v) => v === 255)) alpha = undefined;
    } catch (e) {
      if (e instanceof GantryError) throw e;
      throw new GantryError(`${file}: not a readable image (${firstLine(e)})`);
    }
  }
  return { image, alpha, gray, frames: meta.pages && meta.pages > 1 ? meta.pages : undefined };
}

/** Rec. 601 luma of RGB bytes, or the bytes themselves for one channel. */
function toGray(img: RawImage): RawImage {
  if (img.channels === 1) return img;
  const n = img.width * img.height;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const s = i * img.channels;
    out[i] = Math.round(0.299 * img.data[s]! + 0.587 * img.data[s + 1]! + 0.114 * img.data[s + 2]!);
  }
  return { data: out, width: img.width, height: img.height, channels: 1 };
}

function toRgb(img: RawImage): RawImage {
  if (img.channels === 3) return img;
  const n = img.width * img.height;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = img.data[i * img.channels]!;
  return { data: out, width: img.width, height: img.height, channels: 3 };
}

/** Appends an alpha plane: gray becomes gray+alpha (2 channels), RGB becomes RGBA. */
function withAlpha(img: RawImage, alpha: Uint8Array): RawImage {
  const c = img.channels;
  const n = img.width * img.height;
  const out = new Uint8Array(n * (c + 1));
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < c; k++) out[(c + 1) * i + k] = img.data[c * i + k]!;
    out[(c + 1) * i + c] = alpha[i]!;
  }
  return { data: out, width: img.width, height: img.height, channels: c + 1 };
}

/**
 * Encodes 1-4 channel bytes; 1 and 2 channels (gray, gray+alpha) stay grayscale in PNG and JPEG (core's
 * encodeImage would write them as RGB). WebP has no grayscale mode, so it stores gray as RGB.
 */
async function encodeOutput(img: RawImage, format: ImageFormat, quality = 92): Promise<Buffer> {
  if (img.channels >= 3) return encodeImage(img, format, { quality });
  let p = sharp(img.data, { raw: { width: img.width, height: img.height, channels: img.channels as 1 | 2 } });
  if (format === 'jpeg') p = p.flatten({ background: '#ffffff' });
  p = p.toColourspace('b-w');
  return format === 'png'
    ? p.png().toBuffer()
    : format === 'jpeg'
      ? p.jpeg({ quality }).toBuffer()
      : p.webp({ quality }).toBuffer();
}

/** Argument errors of the native-resolution options, before any work. */
export function checkNativeOptions(
  o: Pick<TranslateOptions, 'resolution' | 'tile' | 'tileOverlap' | 'maxMemory'>,
): void {
  if (o.resolution !== undefined)
    check(
      o.resolution === 'native' || o.resolution === 'model',
      `--resolution: expected native or model, got '${o.resolution}'`,
    );
  if (o.tile !== undefined && o.tile !== 'auto')
    check(
      Number.isInteger(o.tile) && o.tile >= 0,
      `--tile: expected auto, 0 or a tile side in pixels, got '${o.tile}'`,
    );
  if (o.tileOverlap !== undefined)
    check(
      Number.isInteger(o.tileOverlap) && o.tileOverlap >= 1,
      `--tile-overlap: expected a positive number of pixels, got '${o.tileOverlap}'`,
    );
  if (o.maxMemory !== undefined)
    check(
      Number.isFinite(o.maxMemory) && o.maxMemory > 0,
      `--max-memory: expected a positive number of bytes, got '${o.maxMemory}'`,
    );
  if (typeof o.tile === 'number' && o.tile > 0 && o.tileOverlap !== undefined) {
    check(o.tileOverlap < o.tile, `--tile-overlap ${o.tileOverlap}: must be smaller than --tile ${o.tile}`);
  }
}

/**
 * The tensor memory one pass may use by default: a quarter of RAM, at most 1 GiB, so that the process's peak RSS
 * (weights, the image's arrays and the wasm heap's slack on top) stays within 3 GB for a unet_256 on a 2560×1600
 * photo (why not more: docs/results/2026-12-08-tuning-notes-from-code.md).
 */
export function defaultMaxMemory(): number {
  return Math.min(1024 ** 3, Math.floor(os.totalmem() / 4));
}

/** The tile side for an image (0: one pass), from `tile` and, for 'auto', the memory estimate. */
export async function chooseTile(
  width: number,
  height: number,
  o: Pick<TranslateOptions, 'tile' | 'tileOverlap' | 'maxMemory' | 'bytesPerPixel' | 'multiple'>,
): Promise<number> {
  const tile = o.tile ?? 'auto';
  if (tile !== 'auto') return tile;
  if (!o.bytesPerPixel) return 0;
  const m = o.multiple ?? 1;
  const pixels = Math.ceil(height / m) * m * Math.ceil(width / m) * m;
  const budget = o.maxMemory ?? defaultMaxMemory();
  const perPixel = await o.bytesPerPixel();
  if (pixels * perPixel <= budget) return 0;
  // The largest square window within the budget, a multiple of m (at least 2m, so tiles can overlap and advance)…
  const largest = Math.max(2 * m, Math.floor(Math.sqrt(budget / perPixel) / m) * m);
  // …then the smallest that still needs no more windows: the largest often covers the photo with as many windows
  // as a smaller one, and computes up to twice the pixels in their overlaps (a 2560×1600 photo in 6 windows of
  // 1424 px is 12.2 M pixels; 6 of 1024 px, 6.3 M).
  const count = (t: number) => {
    const p = tilePlan(height, width, { tile: t, multiple: m, overlap: o.tileOverlap });
    return p.ys.length * p.xs.length;
  };
  const windows = count(largest);
  let side = largest;
  while (side - m >= 2 * m && (o.tileOverlap === undefined || side - m > o.tileOverlap) && count(side - m) <= windows)
    side -= m;
  return side;
}

function toFloat(img: RawImage): FloatImage {
  const f = new Float32Array(img.data.length);
  for (let i = 0; i < f.length; i++) f[i] = img.data[i]! / 127.5 - 1;
  return { data: f, height: img.height, width: img.width, channels: img.channels };
}

function toBytes(img: FloatImage): RawImage {
  const v = img.data;
  const out = new Uint8Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const x = v[i]!;
    out[i] = x >= 1 ? 255 : x > -1 ? Math.round((x + 1) * 127.5) : 0; // NaN -> 0
  }
  return { data: out, width: img.width, height: img.height, channels: img.channels };
}

/** How `translateImage` ran: at which resolution, and in how many tiles of which side. */
export interface TranslateRun {
  resolution: Resolution;
  tiles: number;
  tile: number;
}

/**
 * Translates one decoded image at model or native resolution (see the module comment), restoring grayscale and
 * alpha. Returns 8-bit pixels with the input's width and height, and how it ran.
 */
export async function translateImageWith(
  fn: TranslateFn,
  decoded: Decoded,
  o: Pick<
    TranslateOptions,
    'modelSize' | 'resolution' | 'multiple' | 'tile' | 'tileOverlap' | 'maxMemory' | 'bytesPerPixel'
  >,
): Promise<{ image: RawImage; run: TranslateRun }> {
  const { image, alpha, gray } = decoded;
  const resolution = o.resolution ?? 'native';
  let out: RawImage;
  const run: TranslateRun = { resolution, tiles: 1, tile: 0 };
  if (resolution === 'model') {
    out = await translateAtModelSize(fn, image, o.modelSize);
  } else {
    const m = o.multiple ?? 1;
    check(Number.isInteger(m) && m >= 1, `translate: bad stride multiple ${m}`);
    const tile = await chooseTile(image.width, image.height, o);
    const checked: TranslateFn = async (x) => {
      const y = await fn(x);
      if (
        !(
          y.rank === 4 &&
          y.shape[0] === 1 &&
          y.shape[1] === x.shape[1] &&
          y.shape[2] === x.shape[2] &&
          (y.shape[3] === 1 || y.shape[3] === 3)
        )
      ) {
        y.dispose();
        throw new GantryError(
          `translate: the model returned shape [${y.shape}] for input [${x.shape}], expected [1, ${x.shape[1]}, ${x.shape[2]}, 1 or 3]`,
        );
      }
      return y;
    };
    let result: FloatImage;
    if (tile > 0) {
      const plan = tilePlan(image.height, image.width, { multiple: m, tile, overlap: o.tileOverlap });
      run.tiles = plan.ys.length * plan.xs.length;
      run.tile = Math.max(plan.th, plan.tw);
      result = await forwardTiled(checked, toFloat(image), { multiple: m, tile, overlap: o.tileOverlap });
    } else {
      result = await forwardPadded(checked, toFloat(image), m);
    }
    out = toBytes(result);
  }
  out = gray ? toGray(out) : toRgb(out);
  return { image: alpha ? withAlpha(out, alpha) : out, run };
}

async function translateAtModelSize(fn: TranslateFn, image: RawImage, modelSize: number): Promise<RawImage> {
  const small = await resizeImage(image, modelSize, modelSize);
  const x = tf.tidy(() => tf.expandDims(imageToTensor(small), 0) as tf.Tensor4D);
  let y: tf.Tensor4D | undefined;
  let out: RawImage;
  try {
    y = await fn(x);
    check(
      y.rank === 4 &&
        y.shape[0] === 1 &&
        y.shape[1] === modelSize &&
        y.shape[2] === modelSize &&
        (y.shape[3] === 1 || y.shape[3] === 3),
      `translate: the model returned shape [${y.shape}], expected [1, ${modelSize}, ${modelSize}, 1 or 3]`,
    );
    out = await tensorToImage(y);
  } finally {
    tf.dispose([x, y ?? []]);
  }
  return resizeImage(out, image.width, image.height);
}

/**
 * Translates one decoded image at the model's resolution: resize to the model size, run `fn`, resize back to the
 * input's size, restore grayscale/alpha. Returns 8-bit pixels with the input's width and height.
 */
export async function translateImage(fn: TranslateFn, decoded: Decoded, modelSize: number): Promise<RawImage> {
  return (await translateImageWith(fn, decoded, { modelSize, resolution: 'model' })).image;
}

/** What one translated file reports: how it ran and how much structure the output kept. */
export interface FileReport {
  run: TranslateRun;
  structure: StructureScore;
  /** Frames of an animated input (only the first was translated). */
  frames?: number;
}

function describeFile(r: FileReport): { text: string; warning?: string } {
  const s = formatStructure(r.structure);
  const how =
    r.run.resolution === 'model'
      ? 'model resolution'
      : r.run.tiles > 1
        ? `${r.run.tiles} tiles of ${r.run.tile} px`
        : '';
  const animated = r.frames
    ? `warning: an animated image of ${r.frames} frames; only the first frame is translated`
    : undefined;
  const warning = [animated, s.warning].filter(Boolean).join('; ') || undefined;
  return { text: how ? `${s.text}; ${how}` : s.text, warning };
}

async function translateFile(fn: TranslateFn, input: string, output: string, o: TranslateOptions): Promise<FileReport> {
  const format = formatFromPath(output);
  const decoded = await decodeForTranslation(input, o.inChannels ?? 3, o.maxMegapixels);
  const { image: img, run } = await translateImageWith(fn, decoded, o);
  const structure = structureScore(decoded.image, img);
  let buf: Buffer;
  try {
    buf = await encodeOutput(img, format, o.quality);
  } catch (e) {
    throw new GantryError(`${output}: cannot encode (${firstLine(e)})`);
  }
  await atomicWriteAsync(output, buf);
  return { run, structure, frames: decoded.frames };
}

/** Argument errors of `translatePaths`' options, before any work. */
function checkOptions(o: TranslateOptions): void {
  check(Number.isInteger(o.modelSize) && o.modelSize >= 1, `translate: bad model size ${o.modelSize}`);
  if (o.maxMegapixels !== undefined)
    check(
      Number.isFinite(o.maxMegapixels) && o.maxMegapixels > 0,
      `--max-megapixels: expected a positive number, got '${o.maxMegapixels}'`,
    );
  checkNativeOptions(o);
  if (o.quality !== undefined)
    check(
      Number.isInteger(o.quality) && o.quality >= 1 && o.quality <= 100,
      `--quality: expected an integer in 1..100, got '${o.quality}'`,
    );
}

/** One input file: its error is the command's error (one line, exit 2), not a per-file report. */
async function translateSingle(
  fn: TranslateFn,
  input: string,
  output: string,
  outputIsFolder: boolean,
  o: TranslateOptions,
  log: (l: string) => void,
): Promise<TranslateSummary> {
  let dst = output;
  if (outputIsFolder) dst = path.join(output, outputNameFor(path.basename(input)));
  else formatFromPath(output); // a bad output extension is an argument error, before any work
  if (path.resolve(input) === path.resolve(dst))
    throw new GantryError(`${o.input}: refusing to overwrite the input (choose another --output)`);
  let r: FileReport;
  try {
    r = await translateFile(fn, input, dst, o);
  } catch (e) {
    if (!(e instanceof GantryError)) throw e;
    const error = firstLine(e);
    throw new GantryError(error.includes(input) ? error : `${input}: ${error}`);
  }
  logWritten(log, input, dst, r);
  return { written: [[input, dst]], failed: [], skipped: 0, reports: [r] };
}

/**
 * The files of folder `input` to translate, in natural order: regular files and links to them, not hidden files
 * or sub-folders (counted as skipped). A link that cannot be followed is a named failure.
 */
function listFolder(input: string, flagValue: string, summary: TranslateSummary, log: (l: string) => void): string[] {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(input, { withFileTypes: true });
  } catch (e) {
    throw new GantryError(
      `--input ${flagValue}: cannot read folder (${(e as NodeJS.ErrnoException).code ?? firstLine(e)})`,
    );
  }
  const files: string[] = [];
  for (const e of entries) {
    const full = path.join(input, e.name);
    if (e.name.startsWith('.')) {
      summary.skipped++;
      continue;
    }
    let isFile = e.isFile();
    if (e.isSymbolicLink()) {
      try {
        isFile = fs.statSync(full).isFile();
      } catch (err) {
        // A looping or dangling link, or one we may not follow: a named failure, the other files still run.
        const code = (err as NodeJS.ErrnoException).code ?? firstLine(err);
        const msg = `${full}: cannot read (${code === 'ELOOP' ? 'ELOOP: a symbolic link loop' : code === 'ENOENT' ? 'ENOENT: a link to nothing' : code})`;
        summary.failed.push({ file: full, error: msg });
        log(msg);
        continue;
      }
    }
    if (!isFile) summary.skipped++;
    else files.push(e.name);
  }
  return files.sort(new Intl.Collator('en', { numeric: true }).compare);
}

/**
 * Translates `input` (file or folder) into `output`. Never throws for a bad input file: failures are collected
 * in the summary (use `translateCommand` for the CLI behaviour). Throws a GantryError only for unusable
 * arguments (missing input, output that cannot be a file/folder, output equal to the input).
 */
export async function translatePaths(fn: TranslateFn, o: TranslateOptions): Promise<TranslateSummary> {
  const log = o.log ?? ((l: string) => console.error(l));
  checkOptions(o);
  const input = userPath(o.input);
  const output = userPath(o.output);
  const st = fs.statSync(input, { throwIfNoEntry: false });
  if (!st) throw new GantryError(`--input ${o.input}: no such file or folder`);
  const outSt = fs.statSync(output, { throwIfNoEntry: false });
  if (!st.isDirectory()) return translateSingle(fn, input, output, outSt?.isDirectory() === true, o, log);

  if (outSt && !outSt.isDirectory())
    throw new GantryError(`--output ${o.output}: is a file, but --input is a folder (expected an output folder)`);
  if (path.resolve(input) === path.resolve(output))
    throw new GantryError(
      `--output ${o.output}: is the input folder; choose another folder so the inputs are not overwritten`,
    );
  const summary: TranslateSummary = { written: [], failed: [], skipped: 0, reports: [] };
  const fail = (file: string, error: string) => {
    summary.failed.push({ file, error });
    log(error);
  };
  const files = listFolder(input, o.input, summary, log);
  if (files.length === 0) {
    const why = summary.failed.length ? `: ${summary.failed.map((f) => f.error).join('; ')}` : '';
    throw new GantryError(`--input ${o.input}: no files to translate in this folder${why}`);
  }
  try {
    mkdirp(output);
  } catch (e) {
    throw new GantryError(
      `--output ${o.output}: cannot create folder (${(e as NodeJS.ErrnoException).code ?? firstLine(e)})`,
    );
  }
  const taken = new Map<string, string>();
  for (const name of files) {
    const [src, outName] = [path.join(input, name), outputNameFor(name)];
    const dst = path.join(output, outName);
    const clash = taken.get(outName.toLowerCase());
    if (clash !== undefined) {
      fail(src, `${src}: its output ${outName} would overwrite the translation of ${clash}; rename one of them`);
      continue;
    }
    taken.set(outName.toLowerCase(), name);
    if (path.resolve(src) === path.resolve(dst)) {
      fail(src, `${src}: refusing to overwrite the input (choose another --output)`);
      continue;
    }
    try {
      const r = await translateFile(fn, src, dst, o);
      summary.written.push([src, dst]);
      summary.reports.push(r);
      logWritten(log, src, dst, r);
    } catch (e) {
      const error = firstLine(e);
      fail(src, error.includes(src) ? error : `${src}: ${error}`);
    }
  }
  return summary;
}

/**
 * The CLI behaviour: translate, print a summary line, and throw a GantryError (exit code 2) naming the failed
 * files if any failed (the others are still written).
 */
export async function translateCommand(fn: TranslateFn, o: TranslateOptions): Promise<TranslateSummary> {
  const log = o.log ?? ((l: string) => console.error(l));
  const summary = await translatePaths(fn, { ...o, log });
  const n = summary.written.length + summary.failed.length;
  if (summary.failed.length) {
    const names = summary.failed.map((f) => path.basename(f.file));
    const list = names.length > 5 ? `${names.slice(0, 5).join(', ')} and ${names.length - 5} more` : names.join(', ');
    throw new GantryError(`${summary.failed.length} of ${n} file${n === 1 ? '' : 's'} failed: ${list}`);
  }
  if (n > 1) log(`translated ${n} images into ${userPath(o.output)}`);
  return summary;
}
