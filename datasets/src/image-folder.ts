/**
 * A folder of the user's own images as training data for the noise → image GANs (DCGAN, cGAN).
 *
 * - A plain folder: every image in it and in its sub-folders (recursive), one class.
 * - For a conditional model, one sub-folder per class (the ImageFolder convention): the sub-folder names, sorted,
 *   are the class names; each class takes the images in its sub-folder, recursively.
 * - `scenes:day`, `scenes:night` (one class) or `scenes` (two classes, day and night): the procedural scenes at
 *   64×64, generated once under `<repo>/data` (default-data.ts).
 *
 * Images are decoded once, centre-cropped to a square, resized to the model's size and stored as uint8 in a
 * cache (see docs/image-folders.md): `<cache>/<key>/images.u8` (N × size × size × channels bytes, in file order)
 * and `index.json` (the source, the size, the channels, each file's path, byte size, mtime and class). Training
 * batches are read from that file by offset, so the images never have to fit in memory together, and a later
 * run whose folder is unchanged reads the cache instead of decoding again. The cache root is
 * `<repo>/data/cache` (or `$GANTRY_DATA_CACHE`): shared by every run on the same folder, outside the runs.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  GantryError,
  isImageFile,
  type LabelledImages,
  mixSeed,
  mulberry32,
  readImage,
  resizeImage,
  workspaceRoot,
} from '@gantry/core';
import * as tf from '@tensorflow/tfjs';
import { ensureSceneDataset, sceneDatasetPath } from './default-data.js';

/** Where the training images come from: folders, each one class (one folder for an unconditional model). */
export interface ImageSource {
  /** What the user gave (`--data`), for messages and the cache key. */
  spec: string;
  classes: { name: string; dir: string }[];
  /** Procedural scenes to generate first, when the source is `scenes…`. */
  scenes?: { size: number; count: number };
}

/** The scene dataset that `scenes:…` uses: 1,000 day and 1,000 night images of 64×64 (900 of each to train on). */
const SCENES = { size: 64, count: 1000 };

const IDX = /^(train|t10k)-(images-idx3|labels-idx1)-ubyte(\.gz)?$/;

/** What kind of data `dir` holds, from its top-level entries: MNIST IDX files or images. Sync (used by `config`). */
export function dataFolderKind(spec: string, flagName = '--data'): 'mnist' | 'images' {
  if (spec === 'scenes' || spec.startsWith('scenes:')) return 'images';
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(spec, { withFileTypes: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw new GantryError(`${flagName} ${spec}: folder not found (expected MNIST IDX files or a folder of images)`);
    if (code === 'ENOTDIR')
      throw new GantryError(`${flagName} ${spec}: is a file (expected a folder of MNIST IDX files or of images)`);
    throw new GantryError(`${flagName} ${spec}: cannot read folder (${code ?? (e as Error).message})`);
  }
  if (entries.some((e) => IDX.test(e.name))) return 'mnist';
  if (entries.some((e) => !e.name.startsWith('.') && (e.isDirectory() || isImageFile(e.name)))) return 'images';
  throw new GantryError(
    `${flagName} ${spec}: neither MNIST IDX files (train-images-idx3-ubyte[.gz]) nor images (.png/.jpg/.webp…, or one sub-folder of them per class)`,
  );
}

/**
 * The source `spec` names (a folder, already resolved, or `scenes…`). With `byClass`, a folder's sub-folders are
 * its classes. Sync: only the top level is read (the class names are part of the model's config).
 */
export function imageSource(spec: string, byClass: boolean, flagName = '--data'): ImageSource {
  if (spec === 'scenes' || spec.startsWith('scenes:')) {
    const dir = sceneDatasetPath({ layout: 'unaligned', ...SCENES });
    const day = { name: 'day', dir: path.join(dir, 'trainA') };
    const night = { name: 'night', dir: path.join(dir, 'trainB') };
    const which =
      spec === 'scenes' ? [day, night] : spec === 'scenes:day' ? [day] : spec === 'scenes:night' ? [night] : undefined;
    if (!which)
      throw new GantryError(
        `${flagName} ${spec}: unknown scenes (expected scenes:day, scenes:night or scenes for both)`,
      );
    if (byClass && which.length < 2)
      throw new GantryError(`${flagName} ${spec}: one class (a conditional model needs at least two: --data scenes)`);
    if (!byClass && which.length > 1)
      throw new GantryError(
        `${flagName} ${spec}: two classes (an unconditional model trains on one: scenes:day or scenes:night)`,
      );
    return { spec, classes: which, scenes: SCENES };
  }
  if (!byClass) return { spec, classes: [{ name: path.basename(spec), dir: spec }] };
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(spec, { withFileTypes: true });
  } catch (e) {
    throw new GantryError(
      `${flagName} ${spec}: cannot read the folder of class sub-folders (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
  const subs = entries
    .filter(
      (e) =>
        !e.name.startsWith('.') &&
        (e.isDirectory() ||
          (e.isSymbolicLink() && fs.statSync(path.join(spec, e.name), { throwIfNoEntry: false })?.isDirectory())),
    )
    .map((e) => e.name)
    .sort(collator.compare);
  if (subs.length === 0)
    throw new GantryError(`${flagName} ${spec}: no class sub-folders (expected one sub-folder of images per class)`);
  if (subs.length === 1)
    throw new GantryError(
      `${flagName} ${spec}: one class sub-folder (${subs[0]}); a conditional model needs at least two`,
    );
  return { spec, classes: subs.map((name) => ({ name, dir: path.join(spec, name) })) };
}

const collator = new Intl.Collator('en', { numeric: true });

interface FileEntry {
  /** Relative to the source's class folder's parent, for the index. */
  path: string;
  size: number;
  mtimeMs: number;
  label: number;
}

/** Every image file under `dir` (recursive, hidden entries skipped, symlinks not followed), sorted. */
function walk(dir: string, what: string): string[] {
  const out: string[] = [];
  const visit = (d: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new GantryError(`${d}: folder not found (expected ${what})`);
      throw new GantryError(`${d}: cannot read folder (${code ?? (e as Error).message})`);
    }
    entries.sort((a, b) => collator.compare(a.name, b.name));
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const full = path.join(d, e.name);
      if (e.isDirectory()) visit(full);
      else if (e.isFile() && isImageFile(e.name)) out.push(full);
    }
  };
  visit(dir);
  return out;
}

export interface ImageCacheOptions {
  imageSize: number;
  channels: 1 | 3;
  /** Only the first N images (in file order over the classes). */
  limit?: number;
  /** Cache root (default `$GANTRY_DATA_CACHE` or `<repo>/data/cache`). */
  cacheRoot?: string;
  log?: (line: string) => void;
}

/** The decoded images of a source, in the cache. */
export interface ImageCache {
  dir: string;
  count: number;
  imageSize: number;
  channels: 1 | 3;
  classNames: string[];
  labels: Int32Array;
  /** Whether this call decoded the images (false: the cache was reused). */
  decoded: boolean;
  /** The images at `indices`, as bytes [n, size, size, channels]. */
  read(indices: ArrayLike<number>): Uint8Array;
}

const CACHE_VERSION = 1;

export function dataCacheRoot(): string {
  return process.env.GANTRY_DATA_CACHE
    ? path.resolve(process.env.GANTRY_DATA_CACHE)
    : path.join(workspaceRoot(), 'data', 'cache');
}

/** Lists the source, and decodes it into the cache unless an up-to-date cache exists. */
export async function openImageCache(src: ImageSource, o: ImageCacheOptions): Promise<ImageCache> {
  const log = o.log ?? ((l: string) => console.error(l));
  if (src.scenes) {
    await ensureSceneDataset({ layout: 'unaligned', ...src.scenes, log });
  }
  const files: FileEntry[] = [];
  const abs: string[] = [];
  const base = src.classes.length === 1 ? src.classes[0]!.dir : path.dirname(src.classes[0]!.dir);
  src.classes.forEach((c, label) => {
    const found = walk(c.dir, src.classes.length > 1 ? `a class folder of images` : 'a folder of images');
    if (found.length === 0) {
      throw new GantryError(
        `--data ${src.classes.length > 1 ? c.dir : src.spec}: no images (expected .png/.jpg/.jpeg/.webp/.gif/.tif/.avif files${src.classes.length > 1 ? ` in class folder ${c.name}` : ''})`,
      );
    }
    for (const f of found) {
      const st = fs.statSync(f);
      files.push({ path: path.relative(base, f), size: st.size, mtimeMs: st.mtimeMs, label });
      abs.push(f);
    }
  });
  if (o.limit !== undefined && o.limit < files.length) {
    files.length = o.limit;
    abs.length = o.limit;
  }
  const index = {
    version: CACHE_VERSION,
    source: path.resolve(base),
    imageSize: o.imageSize,
    channels: o.channels,
    classNames: src.classes.map((c) => c.name),
    files,
  };
  const key = createHash('sha256')
    .update(JSON.stringify([index.source, index.classNames, o.imageSize, o.channels, o.limit ?? null]))
    .digest('hex')
    .slice(0, 16);
  const dir = path.join(o.cacheRoot ?? dataCacheRoot(), `images-${key}`);
  const bytesPer = o.imageSize * o.imageSize * o.channels;
  const want = JSON.stringify(index);
  const current = () => {
    try {
      return (
        fs.readFileSync(path.join(dir, 'index.json'), 'utf8') === want &&
        fs.statSync(path.join(dir, 'images.u8')).size === files.length * bytesPer
      );
    } catch {
      return false;
    }
  };
  let decoded = false;
  if (!current()) {
    await buildCache(dir, want, abs, o, log);
    decoded = true;
  } else {
    log(`images: ${files.length} from the cache ${dir}`);
  }
  const labels = Int32Array.from(files, (f) => f.label);
  const file = path.join(dir, 'images.u8');
  return {
    dir,
    count: files.length,
    imageSize: o.imageSize,
    channels: o.channels,
    classNames: index.classNames,
    labels,
    decoded,
    read(indices) {
      const out = new Uint8Array(indices.length * bytesPer);
      const fd = fs.openSync(file, 'r');
      try {
        for (let k = 0; k < indices.length; k++) {
          const i = indices[k]!;
          if (!Number.isInteger(i) || i < 0 || i >= files.length)
            throw new GantryError(`${file}: image ${i} out of range 0..${files.length - 1}`);
          fs.readSync(fd, out, k * bytesPer, bytesPer, i * bytesPer);
        }
      } finally {
        fs.closeSync(fd);
      }
      return out;
    },
  };
}

/** Centre square crop, then resize to size×size. */
async function squareImage(file: string, size: number, channels: 1 | 3): Promise<Uint8Array> {
  const img = await readImage(file, { channels });
  const side = Math.min(img.width, img.height);
  const left = Math.floor((img.width - side) / 2);
  const top = Math.floor((img.height - side) / 2);
  let sq = img;
  if (img.width !== img.height) {
    const data = new Uint8Array(side * side * channels);
    for (let y = 0; y < side; y++) {
      const from = ((top + y) * img.width + left) * channels;
      data.set(img.data.subarray(from, from + side * channels), y * side * channels);
    }
    sq = { data, width: side, height: side, channels };
  }
  if (channels === 3) return (await resizeImage(sq, size, size, { kernel: 'lanczos3' })).data;
  // sharp resizes raw grey as RGB: resize three copies and keep one.
  const rgb = new Uint8Array(sq.data.length * 3);
  for (let i = 0; i < sq.data.length; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = sq.data[i]!;
  const resized = await resizeImage({ ...sq, data: rgb, channels: 3 }, size, size, { kernel: 'lanczos3' });
  return Uint8Array.from({ length: size * size }, (_, i) => resized.data[3 * i]!);
}

/** Decodes `files` in order into `<dir>/images.u8`, a few at a time; written beside and renamed into place. */
async function buildCache(
  dir: string,
  index: string,
  files: string[],
  o: ImageCacheOptions,
  log: (l: string) => void,
): Promise<void> {
  const started = Date.now();
  log(`images: decoding ${files.length} at ${o.imageSize}×${o.imageSize}×${o.channels} into the cache ${dir} (once)…`);
  const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
  try {
    fs.mkdirSync(tmp, { recursive: true });
  } catch (e) {
    throw new GantryError(
      `${path.dirname(dir)}: cannot create the image cache (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
  try {
    const fd = fs.openSync(path.join(tmp, 'images.u8'), 'w');
    try {
      const parallel = 8;
      for (let i = 0; i < files.length; i += parallel) {
        const chunk = await Promise.all(
          files.slice(i, i + parallel).map((f) => squareImage(f, o.imageSize, o.channels)),
        );
        for (const bytes of chunk) fs.writeSync(fd, bytes);
      }
    } finally {
      fs.closeSync(fd);
    }
    fs.writeFileSync(path.join(tmp, 'index.json'), index);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(tmp, dir);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  log(`images: decoded in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

/** The cache as training batches in [-1, 1], with random horizontal flips when `flip` is set. */
export function cachedImages(cache: ImageCache, opts: { flip?: boolean; seed?: number } = {}): LabelledImages {
  const s = cache.imageSize;
  const c = cache.channels;
  let calls = 0;
  return {
    count: cache.count,
    batch(indices) {
      const bytes = cache.read(indices);
      if (opts.flip) {
        const rng = mulberry32(mixSeed(opts.seed ?? 0, calls++, indices[0] ?? 0));
        const row = new Uint8Array(s * c);
        for (let k = 0; k < indices.length; k++) {
          if (rng() < 0.5) continue;
          for (let y = 0; y < s; y++) {
            const off = (k * s + y) * s * c;
            row.set(bytes.subarray(off, off + s * c));
            for (let x = 0; x < s; x++)
              for (let ch = 0; ch < c; ch++) bytes[off + x * c + ch] = row[(s - 1 - x) * c + ch]!;
          }
        }
      }
      const labels = Int32Array.from(indices, (i) => cache.labels[i]!);
      return tf.tidy(() => ({
        x: tf.sub(tf.div(tf.tensor4d(bytes, [indices.length, s, s, c], 'float32'), 127.5), 1) as tf.Tensor4D,
        y: tf.tensor1d(labels, 'int32'),
      }));
    },
  };
}
