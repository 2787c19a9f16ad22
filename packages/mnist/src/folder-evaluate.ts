/**
 * `evaluate` for a model trained on a folder of images (docs/image-folders.md).
 *
 * The project ships no pretrained image network (nothing can be downloaded), so the Fréchet distance is taken in
 * the feature space of a fixed random convolutional network: three 3×3 stride-2 convolutions with ReLU
 * (32, 64, 128 filters, He-normal weights drawn from a fixed seed), on images resized to 64×64 (grey tiled to
 * RGB), each stage's output averaged over space and concatenated (224 values), plus the image's mean colour and
 * colour standard deviation (6). Random convolutional features respond to colour, contrast, edges and local texture
 * at three scales; they do not know objects, so the distance says whether samples have the training images' colour
 * and texture statistics, not whether a face looks like a face. It is comparable between runs of this project
 * only, never with published FIDs; the same figure for two disjoint halves of the training images is printed
 * beside it as the floor that real images reach.
 *
 * Diversity is the mean pairwise distance of the samples' features, beside the same for training images. The
 * memorisation check finds, for a few samples, the nearest training image in pixel space (RMS difference on a
 * 0–1 scale, streamed over the whole cache) and writes the pairs as `<run>/evaluation/nearest.png` (samples on top,
 * their nearest training images below); the nearest other training image of a few training images is the scale.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { frechetDistance, latentNoise, meanPairwiseDistance, mixSeed, saveImageGrid } from '@gantry/core';
import { cachedImages, type ImageCache } from '@gantry/datasets';
import * as tf from '@tensorflow/tfjs';

const FEATURE_SEED = 20_141_126;
const WIDTHS = [32, 64, 128];
export const FOLDER_FEATURE_DIM = 64 + 128 + 32 + 6;

let weights: tf.Tensor4D[] | undefined;

function featureWeights(): tf.Tensor4D[] {
  if (!weights) {
    let inC = 3;
    weights = WIDTHS.map((out, i) => {
      const w = tf.randomNormal(
        [3, 3, inC, out],
        0,
        Math.sqrt(2 / (9 * inC)),
        'float32',
        FEATURE_SEED + i,
      ) as tf.Tensor4D;
      inC = out;
      return tf.keep(w);
    });
  }
  return weights;
}

/** Features of a batch of images in [-1, 1] ([N, H, W, 1 or 3]), as N rows of FOLDER_FEATURE_DIM values. */
export function folderFeatures(images: tf.Tensor4D): Float32Array {
  const ws = featureWeights();
  return tf.tidy(() => {
    let x = tf.image.resizeBilinear(images, [64, 64]) as tf.Tensor4D;
    if (x.shape[3] === 1) x = tf.tile(x, [1, 1, 1, 3]);
    const { mean, variance } = tf.moments(x, [1, 2]);
    const parts: tf.Tensor2D[] = [];
    let h = x;
    for (const w of ws) {
      h = tf.relu(tf.conv2d(h, w, 2, 'same'));
      parts.push(tf.mean(h, [1, 2]) as tf.Tensor2D);
    }
    return tf.concat([...parts, mean as tf.Tensor2D, tf.sqrt(variance) as tf.Tensor2D], 1).dataSync() as Float32Array;
  });
}

function featuresOfCache(cache: ImageCache, indices: number[]): Float32Array {
  const data = cachedImages(cache);
  const out = new Float32Array(indices.length * FOLDER_FEATURE_DIM);
  for (let i = 0; i < indices.length; i += 256) {
    const { x, y } = data.batch(Int32Array.from(indices.slice(i, i + 256)));
    out.set(folderFeatures(x), i * FOLDER_FEATURE_DIM);
    tf.dispose([x, y]);
  }
  return out;
}

/** For each row of `queries` ([q, D] in [-1, 1]), the index and RMS distance (0–1 scale) of the nearest cached image. */
export function nearestInCache(
  cache: ImageCache,
  queries: tf.Tensor2D,
  exclude: number[] = [],
): { index: number; rms: number }[] {
  const q = queries.shape[0];
  const dim = queries.shape[1];
  const best = Array.from({ length: q }, () => ({ index: -1, d: Number.POSITIVE_INFINITY }));
  const data = cachedImages(cache);
  const qNorm = tf.tidy(() => tf.sum(tf.square(queries), 1, true));
  try {
    for (let start = 0; start < cache.count; start += 512) {
      const idx = Int32Array.from({ length: Math.min(512, cache.count - start) }, (_, i) => start + i);
      const { x, y } = data.batch(idx);
      const d = tf.tidy(() => {
        const flat = tf.reshape(x, [idx.length, dim]);
        const xNorm = tf.reshape(tf.sum(tf.square(flat), 1), [1, idx.length]);
        return tf.add(tf.sub(qNorm, tf.mul(2, tf.matMul(queries, flat, false, true))), xNorm).dataSync();
      });
      tf.dispose([x, y]);
      for (let i = 0; i < q; i++) {
        for (let j = 0; j < idx.length; j++) {
          const v = d[i * idx.length + j]!;
          if (v < best[i]!.d && exclude[i] !== start + j) best[i] = { index: start + j, d: v };
        }
      }
    }
  } finally {
    qNorm.dispose();
  }
  // Distances in [-1, 1] units; halved for the 0–1 scale.
  return best.map((b) => ({ index: b.index, rms: Math.sqrt(Math.max(0, b.d) / dim) / 2 }));
}

export interface FolderEvaluation {
  samples: number;
  featureSpace: string;
  /** Fréchet distance of the samples' features to those of half the training images. */
  frechet: number;
  diversity: number;
  nearest: { sample: number; label?: string; trainingImage: number; rms: number }[];
  nearestImage: string;
  /** The same figures for training images: the other half's distance, their diversity, their nearest others. */
  real: { images: number; frechet: number; diversity: number; nearestRms: number[] };
}

/**
 * Evaluates `generator` against the cached training images: `count` samples (per class when conditional),
 * seeded by `seed`. Writes `<runDir>/evaluation/nearest.png`.
 */
export async function evaluateOnFolder(
  generator: tf.LayersModel,
  cache: ImageCache,
  o: { count: number; seed: number; latentDim: number; conditional: boolean; runDir: string },
): Promise<FolderEvaluation> {
  const k = o.conditional ? cache.classNames.length : 1;
  const total = o.count * k;
  const labels = o.conditional ? Int32Array.from({ length: total }, (_, i) => Math.floor(i / o.count)) : undefined;
  const genFeatures = new Float32Array(total * FOLDER_FEATURE_DIM);
  for (let i = 0; i < total; i += 256) {
    const n = Math.min(256, total - i);
    const images = tf.tidy(() => {
      const z = latentNoise(n, o.latentDim, mixSeed(o.seed, 99, i));
      return generator.predict(labels ? [z, tf.tensor2d(labels.slice(i, i + n), [n, 1], 'int32')] : z) as tf.Tensor4D;
    });
    genFeatures.set(folderFeatures(images), i * FOLDER_FEATURE_DIM);
    images.dispose();
  }
  // Real images: two disjoint halves (even and odd positions of a seeded shuffle), at most `total` each.
  const order = Array.from({ length: cache.count }, (_, i) => i);
  let s = mixSeed(o.seed, 5);
  for (let i = order.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1_103_515_245) + 12_345) >>> 0;
    const j = s % (i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const half = Math.max(1, Math.min(total, Math.floor(cache.count / 2)));
  const realA = featuresOfCache(cache, order.filter((_, i) => i % 2 === 0).slice(0, half));
  const realB = featuresOfCache(cache, order.filter((_, i) => i % 2 === 1).slice(0, half));
  const dim = FOLDER_FEATURE_DIM;
  const fd = frechetDistance(genFeatures, realA, dim);
  const realFd = frechetDistance(realB, realA, dim);
  const div = Math.min(total, 500);
  const diversity = meanPairwiseDistance(genFeatures.subarray(0, div * dim), dim);
  const realDiversity = meanPairwiseDistance(realA.subarray(0, Math.min(div, half) * dim), dim);

  // Memorisation check: 8 samples (spread over the classes) and their nearest training images.
  const picks = Array.from({ length: Math.min(8, total) }, (_, i) => Math.floor((i * total) / Math.min(8, total)));
  const samples = tf.tidy(() => {
    const z = tf.gather(latentNoise(total, o.latentDim, mixSeed(o.seed, 99, 0)), picks);
    const y = labels
      ? tf.tensor2d(
          picks.map((p) => labels[p]!),
          [picks.length, 1],
          'int32',
        )
      : undefined;
    return generator.predict(y ? [z, y] : z) as tf.Tensor4D;
  });
  const size = cache.imageSize * cache.imageSize * cache.channels;
  const flat = tf.reshape(samples, [picks.length, size]) as tf.Tensor2D;
  const nearest = nearestInCache(cache, flat);
  flat.dispose();
  const realPicks = order.slice(0, Math.min(8, cache.count));
  const realBatch = cachedImages(cache).batch(Int32Array.from(realPicks));
  const realFlat = tf.reshape(realBatch.x, [realPicks.length, size]) as tf.Tensor2D;
  const realNearest = cache.count > 1 ? nearestInCache(cache, realFlat, realPicks) : [];
  tf.dispose([realBatch.x, realBatch.y, realFlat]);
  const pairs = cachedImages(cache).batch(Int32Array.from(nearest.map((n) => n.index)));
  const dir = path.join(o.runDir, 'evaluation');
  fs.mkdirSync(dir, { recursive: true });
  const nearestImage = path.join(dir, 'nearest.png');
  const grid = tf.concat([samples, pairs.x]);
  try {
    await saveImageGrid(grid, nearestImage, { cols: picks.length });
  } finally {
    tf.dispose([grid, samples, pairs.x, pairs.y]);
  }
  return {
    samples: total,
    featureSpace: `random conv features (seed ${FEATURE_SEED}, ${dim} values)`,
    frechet: fd,
    diversity,
    nearest: nearest.map((n, i) => ({
      sample: picks[i]!,
      ...(labels ? { label: cache.classNames[labels[picks[i]!]!]! } : {}),
      trainingImage: n.index,
      rms: n.rms,
    })),
    nearestImage,
    real: { images: half, frechet: realFd, diversity: realDiversity, nearestRms: realNearest.map((n) => n.rms) },
  };
}

export function formatFolderEvaluation(e: FolderEvaluation): string {
  const f = (x: number) => x.toFixed(4);
  const median = (xs: number[]) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]! : Number.NaN);
  return [
    `Fréchet distance (${e.featureSpace}): ${f(e.frechet)}  (two halves of the training images: ${f(e.real.frechet)})`,
    `diversity (mean pairwise feature distance): ${f(e.diversity)}  (training images: ${f(e.real.diversity)})`,
    `nearest training image of ${e.nearest.length} samples, RMS 0-1: ${e.nearest.map((n) => n.rms.toFixed(3)).join(' ')}`,
    `  median ${median(e.nearest.map((n) => n.rms)).toFixed(3)}; training images to their nearest other: median ${median(e.real.nearestRms).toFixed(3)}`,
    `  (near 0 means a copied training image) pairs: ${e.nearestImage}`,
  ].join('\n');
}
