/**
 * Ops that run as one native kernel on the wasm backend where `@gantry/native` is loaded, and as compositions of
 * TF.js ops everywhere else (the cpu backend, GANTRY_NATIVE=0, tfjs-node), with the same results:
 *
 *  - instanceNorm: (x − mean) / √(variance + ε) per sample and channel over H×W, forward and gradient one
 *    kernel each (TF.js composes about a dozen single-threaded passes for each).
 *  - batchNormTraining: batch norm on the batch's statistics, γ and β, and the running averages updated, one
 *    kernel forward; the gradient one kernel for x, one for γ, a sum for β (TF.js's training path runs about 25
 *    kernels forward and 40 backward for one layer).
 *  - the MirrorPad gradient (gradients.ts) and the gradients of ReLU, leaky ReLU, tanh and sigmoid: one pass
 *    instead of two to four.
 *  - minibatchStddev: the minibatch standard-deviation feature of a GAN's D, forward and gradient one kernel each
 *    (composed, about a dozen small ops forward and twenty backward, each a dispatch that costs more than its
 *    arithmetic).
 *
 * The native gradients are used only when the backward pass is not itself being differentiated (a gradient of a
 * gradient, as WGAN-GP's penalty takes): the native gradient kernels have no gradients of their own, so then the
 * TF.js compositions run and are taped as usual.
 */
import * as tf from '@tensorflow/tfjs';

// Browser-safe: this module imports nothing but TF.js (networks.ts uses it). The kernels are registered for
// 'wasm' by native-kernels.ts when the binding loads; where they are not registered the compositions run.

/** Kernel names (registered by native-kernels.ts). */
export const INSTANCE_NORM = 'GantryInstanceNorm';
export const INSTANCE_NORM_GRAD = 'GantryInstanceNormGrad';
export const MIRROR_PAD_GRAD = 'GantryMirrorPadGrad';
export const ACTIVATION_GRAD = 'GantryActivationGrad';
/**
 * Batch norm in training (batchNormTraining): inputs x ([groups, pixels, 1, C]: each group's pixels as one image),
 * gamma, beta, movingMean, movingVariance; attrs epsilon, decay (1 − momentum); outputs y, and the running averages
 * after each group in turn.
 */
export const BATCH_NORM = 'GantryBatchNorm';
/** BATCH_NORM's gradient for x (attr `want` 0) or for γ (1): inputs dy, x, gamma; attr epsilon. */
export const BATCH_NORM_GRAD = 'GantryBatchNormGrad';
/** The minibatch standard-deviation feature (minibatchStddev): input x [B, F]; attr groupSize; output [B, F + 1]. */
export const MINIBATCH_STDDEV = 'GantryMinibatchStddev';
/** MINIBATCH_STDDEV's gradient: inputs dy [B, F + 1], x; attr groupSize; output dx [B, F]. */
export const MINIBATCH_STDDEV_GRAD = 'GantryMinibatchStddevGrad';
/** Activations whose gradient ACTIVATION_GRAD computes in one pass: 0, 1 read the input x; 2, 3 the output y. */
export const ACTIVATION_GRAD_OPS: Record<string, number> = { Relu: 0, LeakyRelu: 1, Tanh: 2, Sigmoid: 3 };

/** Kernels of whole-tensor updates in one pass (optim.ts uses them where registered and enabled). */
export const ADAM_UPDATE = 'GantryAdamUpdate';
export const LERP = 'GantryLerp';

/** Adam's update of one variable: inputs x, m, v, g (float32, one shape); outputs x′, m′, v′. */
export interface AdamUpdateAttrs {
  lr: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  /** 1 − β1^t and 1 − β2^t: Adam's bias corrections at this update. */
  correction1: number;
  correction2: number;
}

/** Whether the native binding with the update kernels is loaded and enabled (set by native-kernels.ts). */
let nativeUpdates = false;
export function setNativeUpdates(on: boolean): void {
  nativeUpdates = on;
}

/** Whether the one-pass update kernels can run now: on the wasm backend with the native binding enabled. */
export function nativeUpdatesAvailable(): boolean {
  return nativeUpdates && tf.getBackend() === 'wasm' && tf.getKernel(ADAM_UPDATE, 'wasm') != null;
}

/** Whether `kernelName` is registered for the current backend. */
function hasKernel(kernelName: string): boolean {
  return tf.getKernel(kernelName, tf.getBackend()) != null;
}

/** Whether kernels run now are recorded for a gradient (a backward pass inside an outer tf.grad). */
function taping(): boolean {
  return (tf.engine() as { state: { gradientDepth: number } }).state.gradientDepth > 0;
}

/** A native gradient kernel may run: it is registered and the backward pass is not differentiated. */
function nativeGradient(kernelName: string): boolean {
  return hasKernel(kernelName) && !taping();
}

/** Instance norm of NHWC x as TF.js ops (the reference, and the path off the native kernels). */
export function instanceNormComposed(x: tf.Tensor, epsilon: number): tf.Tensor {
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, [1, 2], true);
    return tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, epsilon)));
  });
}

/** The gradient of instance norm as TF.js ops: rstd · (dy − mean(dy) − x̂ · mean(dy · x̂)), means over H×W. */
export function instanceNormGradComposed(dy: tf.Tensor, x: tf.Tensor, epsilon: number): tf.Tensor {
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, [1, 2], true);
    const rstd = tf.rsqrt(tf.add(variance, epsilon));
    const xhat = tf.mul(tf.sub(x, mean), rstd);
    const a = tf.mean(dy, [1, 2], true);
    const b = tf.mean(tf.mul(dy, xhat), [1, 2], true);
    return tf.mul(rstd, tf.sub(tf.sub(dy, a), tf.mul(xhat, b)));
  });
}

/**
 * Instance normalisation of a rank-4 NHWC tensor over H×W per sample and channel (no affine part). One native
 * kernel forward and one backward on the wasm backend with `@gantry/native`; TF.js's moments elsewhere.
 */
export function instanceNorm(x: tf.Tensor, epsilon: number): tf.Tensor {
  if (x.rank !== 4 || x.dtype !== 'float32' || x.size === 0 || !hasKernel(INSTANCE_NORM)) {
    return instanceNormComposed(x, epsilon);
  }
  return tf.engine().runKernel(INSTANCE_NORM, { x }, { epsilon } as tf.NamedAttrMap) as tf.Tensor;
}

/** The running averages of batch norm as TF.js's layer updates them, by each group's statistics in turn. */
export interface RunningAverages {
  movingMean: tf.Tensor;
  movingVariance: tf.Tensor;
  momentum: number;
}

/**
 * BATCH_NORM as TF.js ops (the kernel's path while the native binding is disabled): `images` [groups, pixels, 1, C],
 * y = x̂ · γ + β, and each running average v ← v − (v − the group's value) · decay, group by group, with the biased
 * variance, exactly as TF.js's BatchNormalization layer updates them.
 */
export function batchNormComposed(
  images: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  movingMean: tf.Tensor,
  movingVariance: tf.Tensor,
  epsilon: number,
  decay: number,
): tf.Tensor[] {
  return tf.tidy(() => {
    const y = tf.add(tf.mul(instanceNormComposed(images, epsilon), gamma), beta);
    const { mean, variance } = tf.moments(images, [1, 2]); // [groups, C] each
    const [means, variances] = [tf.unstack(mean), tf.unstack(variance)];
    let [m, v] = [movingMean, movingVariance];
    for (let g = 0; g < means.length; g++) {
      m = tf.sub(m, tf.mul(tf.sub(m, means[g]!), decay));
      v = tf.sub(v, tf.mul(tf.sub(v, variances[g]!), decay));
    }
    return [y, m, v];
  });
}

/**
 * BATCH_NORM_GRAD as TF.js ops, differentiable (the path while a backward pass is itself recorded, and while the
 * binding is disabled): `want` 0 the gradient of x, γ·(the instance-norm gradient); 1 that of γ, Σ dy · x̂.
 */
export function batchNormGradComposed(
  dy: tf.Tensor,
  images: tf.Tensor,
  gamma: tf.Tensor,
  epsilon: number,
  want: 0 | 1,
): tf.Tensor {
  return tf.tidy(() =>
    want === 0
      ? instanceNormGradComposed(tf.mul(dy, gamma), images, epsilon)
      : tf.sum(tf.mul(dy, instanceNormComposed(images, epsilon)), [0, 1, 2]),
  );
}

/**
 * Batch norm in training, over every axis but the last of a rank-2 or rank-4 float32 x: y = x̂ · γ + β with
 * x̂ = (x − mean) / √(variance + ε) on the batch's statistics, and the running averages updated as TF.js's
 * BatchNormalization layer updates them (returned, for the layer to write). With `groups` > 1, x is that many
 * batches of equal size stacked along its first axis, each normalised by its own statistics and averaged into the
 * running averages one after the other, as if each ran alone. One kernel (BATCH_NORM); null where it is not
 * registered or the batch does not split evenly (the layer then runs TF.js's own path). The gradient flows to x
 * (including through the statistics), γ and β.
 */
export function batchNormTraining(
  x: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  running: RunningAverages,
  epsilon: number,
  groups = 1,
): { y: tf.Tensor; movingMean: tf.Tensor; movingVariance: tf.Tensor } | null {
  if ((x.rank !== 2 && x.rank !== 4) || x.dtype !== 'float32' || x.size === 0) return null;
  if (!Number.isInteger(groups) || groups < 1 || x.shape[0]! % groups !== 0) return null;
  if (!hasKernel(BATCH_NORM)) return null;
  const channels = x.shape[x.rank - 1]!;
  return tf.tidy(() => {
    // Each group's pixels as one [pixels, 1, C] image of a batch of `groups`: instance norm over it is batch norm.
    const images = tf.reshape(x, [groups, x.size / (groups * channels), 1, channels]);
    const inputs = { x: images, gamma, beta, movingMean: running.movingMean, movingVariance: running.movingVariance };
    const attrs = { epsilon, decay: 1 - running.momentum } as tf.NamedAttrMap;
    const [y, movingMean, movingVariance] = tf.engine().runKernel(BATCH_NORM, inputs, attrs) as tf.Tensor[];
    return { y: tf.reshape(y!, x.shape), movingMean: movingMean!, movingVariance: movingVariance! };
  });
}

/** The exact MirrorPad gradient as one native kernel, or null where it cannot run (the caller composes it). */
export function nativeMirrorPadGrad(
  dy: tf.Tensor,
  paddings: Array<[number, number]>,
  mode: 'reflect' | 'symmetric',
): tf.Tensor | null {
  if (!nativeGradient(MIRROR_PAD_GRAD) || dy.rank !== 4 || dy.dtype !== 'float32' || dy.size === 0) return null;
  const [n, , , c] = paddings;
  if (n![0] || n![1] || c![0] || c![1]) return null;
  return tf.engine().runKernel(MIRROR_PAD_GRAD, { dy }, { paddings, mode } as tf.NamedAttrMap) as tf.Tensor;
}

/**
 * Per group of `g` consecutive rows of x [B, F]: the rows less their group's mean, and the standard deviation σ
 * [B/g, F] of each feature over the group (with 1e-8 under the root); and `member` [B/g, B], 1 where row i is in
 * group k. Group means and their spread back over the rows are matrix products: small matMuls in place of
 * broadcasting means over a reshape and `tile`, and the gradients of matMuls are matMuls.
 */
function groupSpread(x: tf.Tensor2D, g: number): { member: tf.Tensor2D; centred: tf.Tensor2D; sigma: tf.Tensor2D } {
  const batch = x.shape[0];
  const groups = batch / g;
  const memberOf = new Float32Array(groups * batch);
  for (let k = 0; k < groups; k++) memberOf.fill(1, k * batch + k * g, k * batch + (k + 1) * g);
  const member = tf.tensor2d(memberOf, [groups, batch]);
  const average = tf.div<tf.Tensor2D>(member, g);
  const centred = tf.sub<tf.Tensor2D>(x, tf.matMul(member, tf.matMul(average, x), true));
  const sigma = tf.sqrt(tf.add<tf.Tensor2D>(tf.matMul(average, tf.square(centred)), 1e-8));
  return { member, centred, sigma };
}

/** MINIBATCH_STDDEV as TF.js ops: x with one more column, per group the mean over features of σ. */
export function minibatchStddevComposed(x: tf.Tensor2D, g: number): tf.Tensor2D {
  return tf.tidy(() => {
    const { member, sigma } = groupSpread(x, g);
    return tf.concat<tf.Tensor2D>([x, tf.matMul<tf.Tensor2D>(member, tf.mean(sigma, 1, true), true)], 1);
  });
}

/**
 * MINIBATCH_STDDEV_GRAD as TF.js ops, differentiable (R1 differentiates D's gradient): dx = dy[:, :F] +
 * (Σ over the group of dy[:, F]) · (x − mean) / (g · F · σ).
 */
export function minibatchStddevGradComposed(dy: tf.Tensor2D, x: tf.Tensor2D, g: number): tf.Tensor2D {
  return tf.tidy(() => {
    const features = x.shape[1];
    const { member, centred, sigma } = groupSpread(x, g);
    const [dx, dFeature] = tf.split(dy, [features, 1], 1) as [tf.Tensor2D, tf.Tensor2D];
    const perGroup = tf.div<tf.Tensor2D>(tf.matMul(member, dFeature), tf.mul(sigma, g * features)); // [B/g, F]
    return tf.add<tf.Tensor2D>(dx, tf.mul(centred, tf.matMul(member, perGroup, true)));
  });
}

/**
 * The minibatch standard-deviation feature (Karras et al. 2018) of x [B, F] over groups of `g` consecutive rows
 * (g divides B): x with one more column. One native kernel each way where registered; TF.js ops elsewhere.
 */
export function minibatchStddev(x: tf.Tensor2D, g: number): tf.Tensor2D {
  if (x.dtype !== 'float32' || x.size === 0 || !hasKernel(MINIBATCH_STDDEV)) return minibatchStddevComposed(x, g);
  return tf.engine().runKernel(MINIBATCH_STDDEV, { x }, { groupSize: g } as tf.NamedAttrMap) as tf.Tensor2D;
}

let registered = false;

/**
 * Registers the gradients of the instance-norm kernel and the one-pass activation gradients (which keep TF.js's
 * own gradient function as their fallback). Idempotent; call after the TF.js gradients are registered.
 */
export function registerFusedGradients(): void {
  if (registered) return;
  registered = true;
  tf.registerGradient({
    kernelName: INSTANCE_NORM,
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved as tf.Tensor[];
      const { epsilon } = attrs as { epsilon: number };
      return {
        x: () =>
          nativeGradient(INSTANCE_NORM_GRAD)
            ? (tf.engine().runKernel(INSTANCE_NORM_GRAD, { dy: dy as tf.Tensor, x: x! }, {
                epsilon,
              } as tf.NamedAttrMap) as tf.Tensor)
            : instanceNormGradComposed(dy as tf.Tensor, x!, epsilon),
      };
    },
  });
  tf.registerGradient({
    kernelName: BATCH_NORM,
    inputsToSave: ['x', 'gamma'],
    gradFunc: (dys, saved, attrs) => {
      const dy = (Array.isArray(dys) ? dys[0] : dys) as tf.Tensor; // the running averages carry no gradient
      const [x, gamma] = saved as tf.Tensor[];
      const { epsilon } = attrs as { epsilon: number };
      const gradient = (want: 0 | 1) =>
        nativeGradient(BATCH_NORM_GRAD)
          ? (tf.engine().runKernel(BATCH_NORM_GRAD, { dy, x: x!, gamma: gamma! }, {
              epsilon,
              want,
            } as tf.NamedAttrMap) as tf.Tensor)
          : batchNormGradComposed(dy, x!, gamma!, epsilon, want);
      // Each input's gradient on its own: D's γ and β are not wanted when G's update runs through D.
      return { x: () => gradient(0), gamma: () => gradient(1), beta: () => tf.sum(dy, [0, 1, 2]) };
    },
  });
  tf.registerGradient({
    kernelName: MINIBATCH_STDDEV,
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved as tf.Tensor2D[];
      const { groupSize } = attrs as { groupSize: number };
      return {
        x: () =>
          nativeGradient(MINIBATCH_STDDEV_GRAD)
            ? (tf.engine().runKernel(MINIBATCH_STDDEV_GRAD, { dy: dy as tf.Tensor, x: x! }, {
                groupSize,
              } as tf.NamedAttrMap) as tf.Tensor)
            : minibatchStddevGradComposed(dy as tf.Tensor2D, x!, groupSize),
      };
    },
  });
  for (const [kernelName, op] of Object.entries(ACTIVATION_GRAD_OPS)) {
    const original = tf.getGradient(kernelName);
    if (!original) continue;
    tf.registerGradient({
      ...original,
      gradFunc: (dy, saved, attrs) => {
        const v = saved[0]!; // TF.js's own configs save x (ReLU, leaky ReLU) or y (tanh, sigmoid), as the kernel reads
        if (!nativeGradient(ACTIVATION_GRAD) || (dy as tf.Tensor).dtype !== 'float32' || v.dtype !== 'float32') {
          return original.gradFunc(dy, saved, attrs);
        }
        const alpha = Number((attrs as { alpha?: number } | undefined)?.alpha ?? 0);
        return {
          x: () =>
            tf.engine().runKernel(ACTIVATION_GRAD, { dy: dy as tf.Tensor, v }, {
              op,
              alpha,
            } as tf.NamedAttrMap) as tf.Tensor,
        };
      },
    });
  }
}

/** The one-pass activation gradient as TF.js ops (the native kernel's fallback when the binding is disabled). */
export function activationGradComposed(op: number, dy: tf.Tensor, v: tf.Tensor, alpha: number): tf.Tensor {
  return tf.tidy(() => {
    switch (op) {
      case 0:
        return tf.mul(dy, tf.step(v));
      case 1:
        return tf.where(tf.greater(v, 0), dy, tf.mul(dy, alpha));
      case 2:
        return tf.mul(tf.sub(1, tf.square(v)), dy);
      default:
        return tf.mul(dy, tf.mul(v, tf.sub(1, v)));
    }
  });
}
