/**
 * `evaluate` on the test split: cycle-reconstruction error in both directions, and the scene-statistics Fréchet
 * distance (features.ts) between translated images and real images of the target domain, next to the same
 * distance for the untranslated source images as the reference (what "doing nothing" scores).
 */

import { frechetDistance, meanL1, psnr } from '@gantry/core';
import * as tf from '@tensorflow/tfjs';
import { SCENE_STAT_DIM, sceneStatistics } from './features.js';

export interface DirectionFigures {
  /** Mean |F(G(x)) − x| in 8-bit levels (0-255). */
  cycleL1: number;
  /** PSNR of F(G(x)) against x, dB. */
  cyclePsnr: number;
  /** Fréchet distance of scene statistics: translated source vs real target. */
  distanceTranslated: number;
  /** The same for the untranslated source images vs real target (the reference). */
  distanceUntranslated: number;
}

export interface CycleGanEvaluation {
  images: { A: number; B: number };
  /** A → B → A (day → night → day for the scenes). */
  AtoB: DirectionFigures;
  /** B → A → B. */
  BtoA: DirectionFigures;
}

/** Runs a generator over a batch in chunks (inference mode). */
export function runGenerator(g: tf.LayersModel, x: tf.Tensor4D, batchSize = 8): tf.Tensor4D {
  return tf.tidy(() => g.predict(x, { batchSize }) as tf.Tensor4D);
}

function direction(g: tf.LayersModel, f: tf.LayersModel, source: tf.Tensor4D, target: tf.Tensor4D): DirectionFigures {
  const fake = runGenerator(g, source);
  const rec = runGenerator(f, fake);
  try {
    const targetStats = sceneStatistics(target);
    return {
      cycleL1: meanL1(rec, source) * 127.5,
      cyclePsnr: psnr(rec, source),
      distanceTranslated: frechetDistance(sceneStatistics(fake), targetStats, SCENE_STAT_DIM),
      distanceUntranslated: frechetDistance(sceneStatistics(source), targetStats, SCENE_STAT_DIM),
    };
  } finally {
    tf.dispose([fake, rec]);
  }
}

/** Evaluates G_A: A→B and G_B: B→A on test images of A and B ([N, S, S, 3] in [-1, 1]). */
export function evaluateCycleGan(
  G_A: tf.LayersModel,
  G_B: tf.LayersModel,
  testA: tf.Tensor4D,
  testB: tf.Tensor4D,
): CycleGanEvaluation {
  return {
    images: { A: testA.shape[0], B: testB.shape[0] },
    AtoB: direction(G_A, G_B, testA, testB),
    BtoA: direction(G_B, G_A, testB, testA),
  };
}

export function formatEvaluation(e: CycleGanEvaluation, names: { A: string; B: string } = { A: 'A', B: 'B' }): string {
  const line = (d: DirectionFigures, from: string, to: string) =>
    [
      `${from} → ${to} → ${from}: cycle L1 ${d.cycleL1.toFixed(2)} levels (of 255), PSNR ${d.cyclePsnr.toFixed(2)} dB`,
      `  distance to real ${to}: translated ${d.distanceTranslated.toFixed(4)} vs untranslated ${from} ${d.distanceUntranslated.toFixed(4)} (${(d.distanceUntranslated / Math.max(d.distanceTranslated, 1e-12)).toFixed(1)}× lower)`,
    ].join('\n');
  const few = Math.min(e.images.A, e.images.B) <= SCENE_STAT_DIM;
  return [
    `test images: ${e.images.A} ${names.A}, ${e.images.B} ${names.B}; distance = Fréchet distance of ${SCENE_STAT_DIM} scene statistics (lower is closer)`,
    ...(few
      ? [
          `note: ${SCENE_STAT_DIM} statistics from ${Math.min(e.images.A, e.images.B)} images give a rank-deficient covariance; the distances are rough`,
        ]
      : []),
    line(e.AtoB, names.A, names.B),
    line(e.BtoA, names.B, names.A),
  ].join('\n');
}
