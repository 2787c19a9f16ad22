import * as tf from '@tensorflow/tfjs';
import type { Losses } from './trainer.js';

/** Adam with the DCGAN/pix2pix defaults (lr 2e-4, β1 0.5). */
export function adam(lr = 2e-4, beta1 = 0.5, beta2 = 0.999): tf.Optimizer {
  return tf.train.adam(lr, beta1, beta2);
}

/** The trainable variables of `models`, in a fixed order (Adam's saved slots are matched by position). */
export function trainableVariables(models: tf.LayersModel[]): tf.Variable[] {
  return models.flatMap((m) => m.trainableWeights.map((w) => w.read() as tf.Variable));
}

/**
 * One optimiser update of `models` minimising `losses[objective]`; the other named losses are kept for logging.
 * Returns every named loss as a scalar the caller disposes.
 */
export function optimize(opt: tf.Optimizer, models: tf.LayersModel[], losses: () => Losses, objective: string): Losses {
  const out: Losses = {};
  const cost = opt.minimize(
    () => {
      const parts = losses();
      for (const [k, v] of Object.entries(parts)) if (k !== objective) out[k] = tf.keep(v);
      return parts[objective]!;
    },
    true,
    trainableVariables(models),
  );
  out[objective] = cost as tf.Scalar;
  return out;
}
