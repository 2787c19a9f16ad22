/** CycleGAN's non-adversarial terms, built on core's L1. Inputs are image batches in [-1, 1]. */

import { l1 } from '@gantry/core';
import * as tf from '@tensorflow/tfjs';

/** Cycle consistency λ·‖F(G(x)) − x‖₁ (mean absolute error), for one direction. */
export function cycleLoss(real: tf.Tensor, reconstructed: tf.Tensor, lambda: number): tf.Scalar {
  return tf.tidy(() => tf.mul(lambda, l1(reconstructed, real)) as tf.Scalar);
}

/**
 * Identity loss λ·λ_idt·‖G(y) − y‖₁ for G: X→Y fed a real y (the reference scales it by the cycle weight of the
 * domain, so λ_idt = 0.5 means half the cycle weight). It keeps G from changing colours it need not change.
 */
export function identityLoss(real: tf.Tensor, mapped: tf.Tensor, lambda: number, lambdaIdentity: number): tf.Scalar {
  return tf.tidy(() => tf.mul(lambda * lambdaIdentity, l1(mapped, real)) as tf.Scalar);
}
