/**
 * `generate` for noise → image models: images drawn in batches and written as they come, so the time is linear
 * in --count (the generator's forward passes plus PNG encoding) and memory stays one batch.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { GantryError } from '../errors.js';
import { latentNoise } from '../train/latent-gan.js';
import { mixSeed } from '../train/rng.js';
import { ensureWritableDir } from './fsutil.js';
import { encodeImage, floatsToBytes, saveImageGrid } from './image.js';

const BATCH = 500;
/** Images in flight to the encoder at once. */
const ENCODERS = 8;

/**
 * Parses `--label`: a class name or index, a comma list of them, or "all", against the model's classes;
 * returns class indices.
 */
export function parseLabels(value: string, classes: readonly string[]): number[] {
  const text = value.trim();
  if (text === 'all') return classes.map((_, i) => i);
  return text.split(',').map((raw) => {
    const s = raw.trim();
    const byName = classes.indexOf(s);
    if (byName >= 0) return byName;
    const n = Number(s);
    if (s === '' || !Number.isInteger(n) || n < 0 || n >= classes.length) {
      const names = classes.every((c, i) => c === String(i)) ? `0-${classes.length - 1}` : classes.join(', ');
      throw new GantryError(
        `--label: '${s}' is not a class (expected ${names}, a list like ${classes.slice(0, 2).join(',')}, or all)`,
      );
    }
    return n;
  });
}

export interface LatentSampleOptions {
  out: string;
  /** Images per group (per label for a conditional model). */
  count: number;
  seed: number;
  latentDim: number;
  /** Class names of a conditional model. */
  classes?: string[];
  /** `--label` (conditional models). */
  label: string;
}

/** Writes `count` images per requested label (or `count` in all) as PNGs, plus grid.png; returns how many. */
export async function writeLatentSamples(generator: tf.LayersModel, o: LatentSampleOptions): Promise<number> {
  const labels: (number | undefined)[] = o.classes ? parseLabels(o.label, o.classes) : [undefined];
  ensureWritableDir(o.out);
  const gridRows: tf.Tensor4D[] = [];
  const perGroupInGrid = labels.length > 1 ? Math.min(o.count, 10) : Math.min(o.count, 100);
  let written = 0;
  try {
    for (const label of labels) {
      // One noise stream per group, drawn in batches: the same seed gives the same images for any batch size.
      for (let start = 0; start < o.count; start += BATCH) {
        const n = Math.min(BATCH, o.count - start);
        const images = tf.tidy(() => {
          const z = latentNoise(n, o.latentDim, mixSeed(o.seed, label ?? 0, start));
          const inputs = label === undefined ? z : [z, tf.fill([n, 1], label, 'int32')];
          return generator.predict(inputs) as tf.Tensor4D;
        });
        const [, h, w, c] = images.shape;
        if (start === 0) gridRows.push(tf.slice(images, 0, Math.min(n, perGroupInGrid)));
        const bytes = floatsToBytes(await images.data());
        images.dispose();
        const size = h * w * c;
        for (let i = 0; i < n; i += ENCODERS) {
          await Promise.all(
            Array.from({ length: Math.min(ENCODERS, n - i) }, async (_, j) => {
              const k = i + j;
              const name = `${label === undefined ? '' : `${o.classes![label]}-`}${String(start + k).padStart(4, '0')}.png`;
              const png = await encodeImage(
                { data: bytes.subarray(k * size, (k + 1) * size), width: w, height: h, channels: c as 1 | 3 },
                'png',
              );
              // Written beside and renamed: a stopped run never leaves a half-written image.
              const file = path.join(o.out, name);
              await fs.promises.writeFile(`${file}.tmp`, png);
              await fs.promises.rename(`${file}.tmp`, file);
            }),
          );
        }
        written += n;
      }
    }
    const grid = tf.concat(gridRows);
    try {
      await saveImageGrid(grid, path.join(o.out, 'grid.png'), {
        cols: labels.length > 1 ? perGroupInGrid : Math.ceil(Math.sqrt(grid.shape[0])),
      });
    } finally {
      grid.dispose();
    }
  } finally {
    tf.dispose(gridRows);
  }
  return written;
}
