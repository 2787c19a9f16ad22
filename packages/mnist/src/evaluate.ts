/** Quality figures for generated MNIST digits, next to the same figures for real digits. */

import { frechetDistance, meanPairwiseDistance } from '@gantry/core';
import { type MnistData, mnistBatch } from '@gantry/datasets';
import * as tf from '@tensorflow/tfjs';
import { accuracy, classify, FEATURE_DIM } from './classifier.js';

export interface ClassFigures {
  label: number;
  /** Share of samples that the classifier assigns to `label` (conditional models only). */
  accuracy?: number;
  /** Share of all samples the classifier assigns to this class. */
  share: number;
  /** Mean pairwise feature distance of samples of this class (higher: more varied). */
  diversity: number;
}

export interface EvaluationFigures {
  samples: number;
  frechet: number;
  perClass: ClassFigures[];
  meanAccuracy?: number;
  minAccuracy?: number;
}

/** Images of a 32×32 model cropped to the classifier's 28×28. */
function to28(images: tf.Tensor4D): tf.Tensor4D {
  const s = images.shape[1];
  return s === 28 ? images : (tf.slice(images, [0, (s - 28) / 2, (s - 28) / 2, 0], [-1, 28, 28, -1]) as tf.Tensor4D);
}

function figures(
  classifier: tf.LayersModel,
  images: tf.Tensor4D,
  requested: Int32Array | undefined,
  reference: Float32Array,
): EvaluationFigures {
  const cropped = to28(images);
  const { features, predictions } = classify(classifier, cropped);
  if (cropped !== images) cropped.dispose();
  const perClass: ClassFigures[] = [];
  for (let label = 0; label < 10; label++) {
    // Diversity within a class is measured on the samples that were asked for (or classified as) that class.
    const members = [...predictions.keys()]
      .filter((i) => (requested ? requested[i] : predictions[i]) === label)
      .slice(0, 300);
    const feats = new Float32Array(members.length * FEATURE_DIM);
    for (const [k, i] of members.entries())
      feats.set(features.subarray(i * FEATURE_DIM, (i + 1) * FEATURE_DIM), k * FEATURE_DIM);
    const asked = requested ? [...requested.keys()].filter((i) => requested[i] === label) : [];
    perClass.push({
      label,
      accuracy: requested
        ? accuracy(
            Int32Array.from(asked.map((i) => predictions[i]!)),
            asked.map(() => label),
          )
        : undefined,
      share: predictions.filter((p) => p === label).length / predictions.length,
      diversity: meanPairwiseDistance(feats, FEATURE_DIM),
    });
  }
  const accs = perClass.map((c) => c.accuracy).filter((a): a is number => a !== undefined);
  return {
    samples: images.shape[0],
    frechet: frechetDistance(features, reference, FEATURE_DIM),
    perClass,
    meanAccuracy: accs.length ? accs.reduce((a, b) => a + b, 0) / accs.length : undefined,
    minAccuracy: accs.length ? Math.min(...accs) : undefined,
  };
}

/** Test-set features: the reference distribution every Fréchet distance here is measured against. */
export function referenceFeatures(classifier: tf.LayersModel, test: MnistData): Float32Array {
  const { x, y } = mnistBatch(
    test,
    Int32Array.from({ length: test.count }, (_, i) => i),
  );
  const { features } = classify(classifier, x);
  tf.dispose([x, y]);
  return features;
}

/** Figures for real training digits against the test set: what a perfect generator would score. */
export function evaluateReal(
  classifier: tf.LayersModel,
  train: MnistData,
  reference: Float32Array,
  count: number,
): EvaluationFigures {
  const idx = Int32Array.from({ length: Math.min(count, train.count) }, (_, i) => i);
  const { x, y } = mnistBatch(train, idx);
  const out = figures(classifier, x, y.dataSync() as Int32Array, reference);
  tf.dispose([x, y]);
  return out;
}

/** Figures for generated images; `labels` are the requested classes for a conditional model. */
export function evaluateGenerated(
  classifier: tf.LayersModel,
  images: tf.Tensor4D,
  labels: Int32Array | undefined,
  reference: Float32Array,
): EvaluationFigures {
  return figures(classifier, images, labels, reference);
}

const pct = (v: number | undefined) => (v === undefined ? '   -  ' : `${(v * 100).toFixed(1).padStart(5)}%`);

/** A printable table: generated next to real, one row per class. */
export function formatEvaluation(gen: EvaluationFigures, real: EvaluationFigures, conditional: boolean): string {
  const lines = [
    `class | ${conditional ? 'recognised as asked (gen / real)' : 'share of samples (gen / real)'} | diversity (gen / real)`,
  ];
  for (let c = 0; c < 10; c++) {
    const g = gen.perClass[c]!;
    const r = real.perClass[c]!;
    const col = conditional ? `${pct(g.accuracy)} / ${pct(r.accuracy)}` : `${pct(g.share)} / ${pct(r.share)}`;
    lines.push(
      `  ${c}   | ${col.padEnd(conditional ? 32 : 29)} | ${g.diversity.toFixed(2)} / ${r.diversity.toFixed(2)}`,
    );
  }
  if (conditional)
    lines.push(
      `accuracy: mean ${pct(gen.meanAccuracy)}, worst class ${pct(gen.minAccuracy)} (real digits: mean ${pct(real.meanAccuracy)}, worst ${pct(real.minAccuracy)})`,
    );
  lines.push(
    `Fréchet distance to MNIST test (classifier features): generated ${gen.frechet.toFixed(3)}, real train digits ${real.frechet.toFixed(3)} (ratio ${(gen.frechet / Math.max(1e-9, real.frechet)).toFixed(2)}×)`,
  );
  return lines.join('\n');
}
