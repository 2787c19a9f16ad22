/**
 * Ops that run as one native kernel on the wasm backend where `@gantry/native` is loaded, and as compositions of
 * TF.js ops everywhere else (the cpu backend, GANTRY_NATIVE=0, tfjs-node), with the same results:
 *
 *  - instanceNorm: (x − mean) / √(variance + ε) per sample and channel over H×W, forward and gradient one
 *    kernel each (TF.js composes about a dozen single-threaded passes for each).
 *  - batchNormTraining: batch norm on the batch's statistics, the instance norm of the batch's pixels as one
 *    image, then γ and β, and the statistics for the running averages from one more kernel (TF.js's training
 *    path runs about 25 kernels forward and 40 backward for one layer).
 *  - the MirrorPad gradient (gradients.ts) and the gradients of ReLU, leaky ReLU, tanh and sigmoid: one pass
 *    instead of two to four.
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
/** Mean and biased variance per sample and channel over H×W of NHWC x: output [2, N, C] (means, then variances). */
export const MOMENTS = 'GantryMoments';
/** Activations whose gradient ACTIVATION_GRAD computes in one pass: 0, 1 read the input x; 2, 3 the output y. */
export const ACTIVATION_GRAD_OPS: Record<string, number> = { Relu: 0, LeakyRelu: 1, Tanh: 2, Sigmoid: 3 };

/** Whether `kernelName` is registered for the current backend. */
function hasKernel(kernelName: string): boolean {
  return tf.getKernel(kernelName, tf.getBackend()) != null;
}

/** Whether kernels run now are recorded for a gradient (a backward pass inside an outer tf.grad). */
function taping(): boolean {
  return (tf.engine() as unknown as { state: { gradientDepth: number } }).state.gradientDepth > 0;
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
  return tf.engine().runKernel(INSTANCE_NORM, { x }, { epsilon } as unknown as tf.NamedAttrMap) as tf.Tensor;
}

/** MOMENTS as TF.js ops: [2, N, C] from NHWC x. */
export function momentsComposed(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, [1, 2]);
    return tf.stack([mean, variance]);
  });
}

/**
 * Batch norm in training, over every axis but the last of a rank-2 or rank-4 float32 x: y = x̂ · γ + β with
 * x̂ = (x − mean) / √(variance + ε), and the batch's mean and (biased) variance per channel, as TF.js's
 * BatchNormalization layer computes them. With `groups` > 1, x is that many batches of equal size stacked along
 * its first axis, each normalised by its own statistics, as if each ran alone; `mean` and `variance` are then
 * [groups, C]. Null where the native kernels are not registered or the batch does not split evenly (the layer then
 * runs TF.js's own path). The gradient flows through x̂ (the instance-norm gradient, which includes the
 * statistics' dependence on x), γ and β; the returned statistics are for the running averages and carry no
 * gradient.
 */
export function batchNormTraining(
  x: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  epsilon: number,
  groups = 1,
): { y: tf.Tensor; mean: tf.Tensor; variance: tf.Tensor } | null {
  if ((x.rank !== 2 && x.rank !== 4) || x.dtype !== 'float32' || x.size === 0) return null;
  if (!Number.isInteger(groups) || groups < 1 || x.shape[0]! % groups !== 0) return null;
  if (!hasKernel(INSTANCE_NORM) || !hasKernel(MOMENTS)) return null;
  const channels = x.shape[x.rank - 1]!;
  return tf.tidy(() => {
    // Each group's pixels as one [pixels, 1, C] image of a batch of `groups`: instance norm over it is batch norm.
    const images = tf.reshape(x, [groups, x.size / (groups * channels), 1, channels]);
    const normalised = tf.reshape(instanceNorm(images, epsilon), x.shape);
    const y = tf.add(tf.mul(normalised, gamma), beta);
    const stats = tf.engine().runKernel(MOMENTS, { x: images }) as tf.Tensor;
    const [mean, variance] = tf.unstack(tf.reshape(stats, groups > 1 ? [2, groups, channels] : [2, channels]));
    return { y, mean: mean!, variance: variance! };
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
  return tf.engine().runKernel(MIRROR_PAD_GRAD, { dy }, { paddings, mode } as unknown as tf.NamedAttrMap) as tf.Tensor;
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
      const { epsilon } = attrs as unknown as { epsilon: number };
      return {
        x: () =>
          nativeGradient(INSTANCE_NORM_GRAD)
            ? (tf.engine().runKernel(INSTANCE_NORM_GRAD, { dy: dy as tf.Tensor, x: x! }, {
                epsilon,
              } as unknown as tf.NamedAttrMap) as tf.Tensor)
            : instanceNormGradComposed(dy as tf.Tensor, x!, epsilon),
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
            } as unknown as tf.NamedAttrMap) as tf.Tensor,
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
