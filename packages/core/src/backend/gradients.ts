/**
 * Fixes to TF.js 4.22 gradient functions (the gradient registry is shared by every backend).
 *
 *  - MirrorPad: TF.js's gradient only slices the centre of dy and drops what flowed into the reflected
 *    border, which is wrong for reflection padding (CycleGAN). Replaced by the exact gradient: the
 *    border gradients are reversed and added back onto the pixels they copied.
 *  - Comparison / logical ops (Greater, Less, ...) have no gradient in TF.js, so a gradient of a
 *    gradient through LeakyReLU (WGAN-GP's gradient penalty) fails with "gradient function not found for
 *    Greater". They are piecewise constant: their gradient is zero (TensorFlow marks them not
 *    differentiable). Registered only where TF.js has none.
 */
import * as tf from '@tensorflow/tfjs';
import { nativeMirrorPadGrad, registerFusedGradients } from './fused-ops.js';

/** Exact gradient of mirrorPad(x, paddings, mode) with respect to x. */
export function mirrorPadGrad(
  dy: tf.Tensor,
  paddings: Array<[number, number]>,
  mode: 'reflect' | 'symmetric',
): tf.Tensor {
  const o = mode === 'reflect' ? 1 : 0;
  let g = dy;
  for (let axis = 0; axis < paddings.length; axis++) {
    const [before, after] = paddings[axis]!;
    if (before === 0 && after === 0) continue;
    const total = g.shape[axis]!;
    const n = total - before - after;
    const begin = g.shape.map(() => 0);
    const size = g.shape.map(() => -1);
    const part = (start: number, len: number) => {
      const b = [...begin];
      const s = [...size];
      b[axis] = start;
      s[axis] = len;
      return tf.slice(g, b, s);
    };
    const padAxis = (t: tf.Tensor, lo: number, hi: number) =>
      tf.pad(
        t,
        t.shape.map((_, i) => (i === axis ? [lo, hi] : [0, 0]) as [number, number]),
      );
    let acc = part(before, n);
    if (before > 0) acc = tf.add(acc, padAxis(tf.reverse(part(0, before), axis), o, n - o - before));
    if (after > 0) acc = tf.add(acc, padAxis(tf.reverse(part(before + n, after), axis), n - o - after, o));
    g = acc;
  }
  return g;
}

const ZERO_GRAD_KERNELS = [
  'Greater',
  'GreaterEqual',
  'Less',
  'LessEqual',
  'Equal',
  'NotEqual',
  'LogicalAnd',
  'LogicalOr',
] as const;

let registered = false;

/** Registers the gradient fixes above. Idempotent; affects every backend. */
export function registerGradientFixes(): void {
  if (registered) return;
  registered = true;
  tf.registerGradient({
    kernelName: 'MirrorPad',
    inputsToSave: [],
    gradFunc: (dy, _saved, attrs) => {
      const { paddings, mode } = attrs as {
        paddings: Array<[number, number]>;
        mode: 'reflect' | 'symmetric';
      };
      return {
        x: () => nativeMirrorPadGrad(dy as tf.Tensor, paddings, mode) ?? mirrorPadGrad(dy as tf.Tensor, paddings, mode),
      };
    },
  });
  for (const kernelName of ZERO_GRAD_KERNELS) {
    if (tf.getGradient(kernelName) != null) continue;
    tf.registerGradient({
      kernelName,
      inputsToSave: ['a', 'b'],
      gradFunc: (_dy, saved) => ({
        a: () => tf.zeros(saved[0]!.shape),
        b: () => tf.zeros(saved[1]!.shape),
      }),
    });
  }
  registerFusedGradients();
  if (tf.getGradient('LogicalNot') == null) {
    tf.registerGradient({
      kernelName: 'LogicalNot',
      inputsToSave: ['x'],
      gradFunc: (_dy, saved) => ({ x: () => tf.zeros(saved[0]!.shape) }),
    });
  }
}
