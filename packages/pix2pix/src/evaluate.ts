/**
 * `evaluate`: L1, PSNR and SSIM (core/image-metrics.ts) of a pix2pix generator against the true targets of a
 * held-out split, next to the identity mapping (output = input) and an L1-only generator (trained with
 * `train --lambda-gan 0`), so that the contribution of the adversarial term is visible.
 */
import {
  latestCheckpoint,
  latestRun,
  meanL1,
  psnrPerImage,
  readCheckpointState,
  readRunInfo,
  runsRoot,
  ssimPerImage,
} from '@gantry/core';
import type { AlignedDataset } from '@gantry/datasets';
import * as tf from '@tensorflow/tfjs';

export interface Scores {
  l1: number;
  psnr: number;
  ssim: number;
  count: number;
}

export type Model = (a: tf.Tensor4D) => tf.Tensor4D;

/** Scores each model on every pair of `ds` (inputs/targets at the dataset's crop size), in batches. */
export async function scoreModels(
  ds: AlignedDataset,
  models: Record<string, Model>,
  batchSize = 8,
  limit = Number.POSITIVE_INFINITY,
): Promise<Record<string, Scores>> {
  const sums: Record<string, { l1: number; psnr: number; ssim: number; count: number }> = {};
  for (const k of Object.keys(models)) sums[k] = { l1: 0, psnr: 0, ssim: 0, count: 0 };
  const n = Math.min(ds.length, limit);
  for (let start = 0; start < n; start += batchSize) {
    const idx = Array.from({ length: Math.min(batchSize, n - start) }, (_, i) => start + i);
    const { a, b } = await ds.batch(idx, () => 0.5);
    try {
      for (const [k, model] of Object.entries(models)) {
        const out = tf.tidy(() => tf.clipByValue(model(a), -1, 1));
        try {
          const s = sums[k]!;
          s.l1 += meanL1(out, b) * idx.length;
          s.psnr += psnrPerImage(out, b).reduce((x, y) => x + y, 0);
          s.ssim += ssimPerImage(out, b).reduce((x, y) => x + y, 0);
          s.count += idx.length;
        } finally {
          out.dispose();
        }
      }
    } finally {
      tf.dispose([a, b]);
    }
  }
  return Object.fromEntries(
    Object.entries(sums).map(([k, s]) => [
      k,
      { l1: s.l1 / s.count, psnr: s.psnr / s.count, ssim: s.ssim / s.count, count: s.count },
    ]),
  );
}

/** A fixed-width table of scores, one row per model. */
export function formatScores(rows: [string, Scores][]): string {
  const w = Math.max(...rows.map(([name]) => name.length), 5);
  const head = `${'model'.padEnd(w)}   L1 (on [-1,1]) ↓   PSNR (dB) ↑   SSIM ↑`;
  const lines = rows.map(
    ([name, s]) =>
      `${name.padEnd(w)}   ${s.l1.toFixed(4).padStart(14)}   ${s.psnr.toFixed(2).padStart(11)}   ${s.ssim.toFixed(4).padStart(6)}`,
  );
  return [head, ...lines].join('\n');
}

/**
 * The latest pix2pix run trained with λ_GAN = 0 at crop size `cropSize` and with the same direction, as the
 * L1-only baseline; undefined when there is none.
 */
export function findBaseline(cropSize: number, direction: string, exclude?: string): string | undefined {
  const run = latestRun('pix2pix', runsRoot(), (checkpoint, runDir) => {
    if (checkpoint === exclude) return false;
    try {
      const o = readRunInfo(runDir).options as Record<string, unknown>;
      if (o.lambdaGan !== 0 || o.cropSize !== cropSize || o.direction !== direction) return false;
      return readCheckpointState(checkpoint).variant === 'pix2pix';
    } catch {
      return false; // not a run
    }
  });
  return run === undefined ? undefined : latestCheckpoint(run);
}
