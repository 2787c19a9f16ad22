import * as tf from '@tensorflow/tfjs';
import { ADAM_UPDATE, type AdamUpdateAttrs, LERP, nativeUpdatesAvailable } from '../backend/fused-ops.js';
import { attrMap, fieldsOf } from '../backend/kernel-glue.js';
import type { Losses } from './trainer.js';

/** TF.js's AdamOptimizer state that FusedAdam shares (private in the typings). */
interface AdamState {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  accumulatedFirstMoment: { originalName: string; variable: tf.Variable }[];
  accumulatedSecondMoment: { originalName: string; variable: tf.Variable }[];
  incrementIterations(): void;
}

/**
 * TF.js's Adam with each variable's update fused into one kernel where the backend has it (wasm): same maths,
 * same saved slots (`<name>/m`, `<name>/v`, iterations) and class name, so checkpoints move freely between the
 * two; elsewhere it is TF.js's update unchanged.
 */
class FusedAdam extends tf.AdamOptimizer {
  override applyGradients(variableGradients: Parameters<tf.AdamOptimizer['applyGradients']>[0]): void {
    const list = Array.isArray(variableGradients)
      ? variableGradients.map((v) => [v.name, v.tensor] as const)
      : Object.entries(variableGradients as tf.NamedTensorMap);
    const float32 = list.every(
      ([name, g]) => tf.engine().registeredVariables[name]?.dtype === 'float32' && (g == null || g.dtype === 'float32'),
    );
    if (!nativeUpdatesAvailable() || !float32) {
      super.applyGradients(variableGradients);
      return;
    }
    const s = fieldsOf<AdamState>(this);
    const [acc1, acc2] = [s.accBeta1.dataSync()[0]!, s.accBeta2.dataSync()[0]!];
    const attrs: AdamUpdateAttrs = {
      lr: s.learningRate,
      beta1: s.beta1,
      beta2: s.beta2,
      epsilon: s.epsilon,
      correction1: 1 - acc1,
      correction2: 1 - acc2,
    };
    list.forEach(([name, gradient], i) => {
      const value = tf.engine().registeredVariables[name]!;
      const slot = (suffix: string) => ({
        originalName: `${name}/${suffix}`,
        variable: tf.tidy(() => tf.zerosLike(value).variable(false)),
      });
      s.accumulatedFirstMoment[i] ??= slot('m');
      s.accumulatedSecondMoment[i] ??= slot('v');
      if (gradient == null) return;
      const m = s.accumulatedFirstMoment[i]!.variable;
      const v = s.accumulatedSecondMoment[i]!.variable;
      const inputs = { x: value, m, v, g: gradient } as tf.NamedTensorMap;
      const [x2, m2, v2] = tf.engine().runKernel(ADAM_UPDATE, inputs, attrMap(attrs)) as tf.Tensor[];
      m.assign(m2!);
      v.assign(v2!);
      value.assign(x2!);
      tf.dispose([x2!, m2!, v2!]);
    });
    tf.tidy(() => {
      s.accBeta1.assign(tf.mul(s.accBeta1, s.beta1));
      s.accBeta2.assign(tf.mul(s.accBeta2, s.beta2));
    });
    s.incrementIterations();
  }
}

/** Adam with the DCGAN/pix2pix defaults (lr 2e-4, β1 0.5). */
export function adam(lr = 2e-4, beta1 = 0.5, beta2 = 0.999): tf.Optimizer {
  return new FusedAdam(lr, beta1, beta2);
}

/** β·a + (1 − β)·b (a weight average's step), in one pass where the backend has the fused kernel. */
export function lerp(a: tf.Tensor, b: tf.Tensor, beta: number): tf.Tensor {
  if (
    nativeUpdatesAvailable() &&
    a.dtype === 'float32' &&
    b.dtype === 'float32' &&
    tf.util.arraysEqual(a.shape, b.shape)
  ) {
    return tf.engine().runKernel(LERP, { a, b }, { beta }) as tf.Tensor;
  }
  return tf.tidy(() => tf.add(tf.mul(a, beta), tf.mul(b, 1 - beta)));
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

/** TF.js's engine state of the gradient being recorded (private in the typings). */
interface TapeState {
  gradientDepth: number;
  activeTape: unknown;
}

/**
 * Runs `f` with the enclosing gradient's recording paused: its kernels are not taped (and their gradients run
 * the native first-order kernels, not the composed ones a taped backward pass needs). Nothing `f` computes may
 * be differentiated by the enclosing gradient.
 */
function untaped<T>(f: () => T): T {
  const state = (tf.engine() as { state: TapeState }).state;
  const { gradientDepth, activeTape } = state;
  state.gradientDepth = 0;
  state.activeTape = null;
  try {
    return f();
  } finally {
    state.gradientDepth = gradientDepth;
    state.activeTape = activeTape;
  }
}

/**
 * One D update, then one G update, on a single forward pass of G, as the reference training loops run
 * (PyTorch: `fake = G(z)`; D learns on `fake.detach()`; G learns through `fake` against the updated D). G's
 * forward pass is recorded once; D's update runs inside G's gradient scope with the recording paused (its
 * gradient reaches only D's weights); G's loss then sees D's new weights. For a G whose forward pass is
 * deterministic in its inputs (no dropout) these are the updates of `optimize` for D and then for G on a second
 * forward pass, which this saves.
 */
export function optimizeSharingForward<Fake extends tf.Tensor | tf.Tensor[]>(
  o: {
    D: { optimizer: tf.Optimizer; models: tf.LayersModel[] };
    G: { optimizer: tf.Optimizer; models: tf.LayersModel[] };
  },
  forward: () => Fake,
  discriminatorLosses: (fake: Fake) => Losses,
  generatorLosses: (fake: Fake) => Losses,
): Losses {
  let dLosses: Losses = {};
  const gLosses = optimize(
    o.G.optimizer,
    o.G.models,
    () => {
      const fake = forward();
      // The D losses are made inside G's scope: kept, or its end would dispose them.
      dLosses = untaped(() => optimize(o.D.optimizer, o.D.models, () => discriminatorLosses(fake), 'D'));
      for (const v of Object.values(dLosses)) tf.keep(v);
      return generatorLosses(fake);
    },
    'G',
  );
  return { ...dLosses, ...gLosses };
}
