/**
 * The Gaussian Parzen window log-likelihood of the original GAN paper (Goodfellow et al. 2014, Table 1), as its
 * code computes it: a Parzen window (an isotropic Gaussian of width σ on every one of N samples, pixels in
 * [0, 1]) is fitted to 10,000 generated digits; σ is the one of a grid that gives the 10,000 validation digits
 * (training digits 50,000–59,999) the highest mean log-likelihood; the figure is the mean log-likelihood of the
 * 10,000 test digits under that window, in nats, with its standard error.
 *
 *   log p(x) = logsumexp_i(−‖x − μ_i‖² / 2σ²) − log N − (d/2)·log(2πσ²)
 *
 * It is known to be a poor measure of sample quality (Theis et al. 2016): it rewards covering the data more than
 * sharp digits. It is here so that Gantry's GAN can be compared with the paper's figure (225 ± 2 nats).
 */
import * as tf from '@tensorflow/tfjs';

/** The paper code's default width grid: 10 values log-spaced from 0.1 to 1 (pixels in [0, 1]). */
export const PARZEN_SIGMAS: readonly number[] = Array.from({ length: 10 }, (_, i) => 10 ** (-1 + i / 9));

/** Rows of `data` scored per chunk: a [CHUNK, N] distance matrix at a time. */
const CHUNK = 250;

/**
 * Log-likelihood of each row of `data` ([M, d], pixels in [0, 1]) under the Parzen window on `samples` ([N, d]),
 * for each σ in `sigmas`: result[s][m].
 */
export function parzenLogLikelihoods(
  samples: tf.Tensor2D,
  data: tf.Tensor2D,
  sigmas: readonly number[],
): Float64Array[] {
  const [n, d] = samples.shape;
  const m = data.shape[0];
  const out = sigmas.map(() => new Float64Array(m));
  const sampleNorms = tf.tidy(() => tf.sum(tf.square(samples), 1));
  try {
    for (let start = 0; start < m; start += CHUNK) {
      const rows = Math.min(CHUNK, m - start);
      const perSigma = tf.tidy(() => {
        const x = tf.slice(data, [start, 0], [rows, d]);
        // ‖x − μ‖² = ‖x‖² + ‖μ‖² − 2 x·μ, clipped at 0 against rounding.
        const dist = tf.relu(
          tf.sub(tf.add(tf.sum(tf.square(x), 1, true), sampleNorms), tf.mul(2, tf.matMul(x, samples, false, true))),
        );
        return tf.stack(sigmas.map((s) => tf.logSumExp(tf.div(dist, -2 * s * s), 1)));
      });
      const values = perSigma.dataSync();
      perSigma.dispose();
      sigmas.forEach((s, k) => {
        const constant = Math.log(n) + (d / 2) * Math.log(2 * Math.PI * s * s);
        for (let i = 0; i < rows; i++) out[k]![start + i] = values[k * rows + i]! - constant;
      });
    }
  } finally {
    sampleNorms.dispose();
  }
  return out;
}

export interface ParzenResult {
  /** Mean log-likelihood of the test digits, nats. */
  logLikelihood: number;
  /** Its standard error (standard deviation / √M). */
  standardError: number;
  /** The width chosen on the validation digits. */
  sigma: number;
  /** Mean validation log-likelihood per σ of the grid. */
  validation: { sigma: number; logLikelihood: number }[];
}

const mean = (v: Float64Array) => v.reduce((a, b) => a + b, 0) / v.length;

/** Fits the window to `samples`, picks σ on `valid`, scores `test` (all [·, d] in [0, 1]). */
export function parzenEvaluate(
  samples: tf.Tensor2D,
  valid: tf.Tensor2D,
  test: tf.Tensor2D,
  sigmas: readonly number[] = PARZEN_SIGMAS,
): ParzenResult {
  const validation = parzenLogLikelihoods(samples, valid, sigmas).map((ll, k) => ({
    sigma: sigmas[k]!,
    logLikelihood: mean(ll),
  }));
  const best = validation.reduce((a, b) => (b.logLikelihood > a.logLikelihood ? b : a));
  const ll = parzenLogLikelihoods(samples, test, [best.sigma])[0]!;
  const mu = mean(ll);
  const sd = Math.sqrt(ll.reduce((a, b) => a + (b - mu) ** 2, 0) / ll.length);
  return { logLikelihood: mu, standardError: sd / Math.sqrt(ll.length), sigma: best.sigma, validation };
}
