/**
 * Gantry's wasm kernels and gradient fixes against the pure-JS `cpu` backend (the reference), on both paths
 * the wasm backend can take: Gantry's WebAssembly kernels, and oneDNN's (`@gantry/native`) where built.
 * Error measure: relErr(a, ref) = max|a - ref| / max|ref| over a tensor.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BATCH_GROUPS, batchNormalization } from '../nn/batch-norm.js';
import { adam, lerp } from '../train/optim.js';
import {
  batchNormTraining,
  instanceNorm as coreInstanceNorm,
  minibatchStddev,
  mirrorPadGrad,
  nativeStats,
  registerGradientFixes,
  registerNativeKernels,
  registerWasmKernels,
  setNativeEnabled,
  setNativeThreads,
} from './index.js';

/** Tolerance for single kernels (observed ≤ 2e-6). */
const KERNEL_TOL = 1e-4;
/** Tolerance for whole-model gradients (observed ≤ 1e-5; batch norm amplifies float32 rounding). */
const MODEL_TOL = 1e-3;

type Backend = 'cpu' | 'wasm';

// Registered before the backend starts (replacements keep the original setupFunc).
registerGradientFixes();
registerWasmKernels();
const native = registerNativeKernels();

beforeAll(async () => {
  expect(await tf.setBackend('cpu')).toBe(true);
  expect(await tf.setBackend('wasm')).toBe(true);
});

/** Deterministic PRNG (mulberry32). */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!,
    normal: (n: number, scale = 1) => {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const u = 1 - next();
        out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
      }
      return out;
    },
  };
}
type Rng = ReturnType<typeof rng>;

function relErr(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  expect(a.length).toBe(ref.length);
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    num = Math.max(num, Math.abs(a[i]! - ref[i]!));
    den = Math.max(den, Math.abs(ref[i]!));
  }
  return den === 0 ? num : num / den;
}

/** Runs `f` on each backend (inputs are created inside f from plain arrays) and returns its outputs. */
function onBoth(f: () => tf.Tensor | tf.Tensor[]): Record<Backend, Float32Array[]> {
  const out = {} as Record<Backend, Float32Array[]>;
  for (const b of ['cpu', 'wasm'] as const) {
    tf.setBackend(b);
    out[b] = tf.tidy(() => {
      const r = f();
      return (Array.isArray(r) ? r : [r]).map((t) => Float32Array.from(t.dataSync()));
    });
  }
  return out;
}

/** Largest error seen per test, printed when GANTRY_TEST_VERBOSE is set. */
const worstSeen = new Map<string, number>();
afterAll(() => {
  if (process.env.GANTRY_TEST_VERBOSE) for (const [k, v] of worstSeen) console.log(`${v.toExponential(1)}  ${k}`);
});

function worstErr(r: Record<Backend, Float32Array[]>): number {
  const e = Math.max(...r.cpu.map((ref, i) => relErr(r.wasm[i]!, ref)));
  const name = expect.getState().currentTestName ?? '?';
  worstSeen.set(name, Math.max(worstSeen.get(name) ?? 0, e));
  return e;
}

const normal = (r: Rng, shape: number[], scale = 1) =>
  tf.tensor(
    r.normal(
      shape.reduce((a, b) => a * b, 1),
      scale,
    ),
    shape,
  );

const reflectPad = (x: tf.Tensor4D, p: number) =>
  tf.mirrorPad(
    x,
    [
      [0, 0],
      [p, p],
      [p, p],
      [0, 0],
    ],
    'reflect',
  );

const PATHS = [
  { name: 'WebAssembly kernels', native: false },
  { name: `${native.version ?? 'oneDNN'} kernels`, native: true },
] as const;

for (const path of PATHS) {
  describe.skipIf(path.native && !native.version)(`wasm backend, ${path.name}`, () => {
    beforeAll(() => setNativeEnabled(path.native));
    afterAll(() => setNativeEnabled(true));

    describe('supplied wasm kernels vs cpu', () => {
      it('Conv2DBackpropFilter and Conv2DBackpropInput (conv2d gradients), random shapes', () => {
        let worst = 0;
        let cases = 0;
        for (let seed = 1; cases < 120; seed++) {
          const r = rng(seed);
          const [N, H, W, ci, co] = [r.int(1, 3), r.int(1, 10), r.int(1, 10), r.int(1, 5), r.int(1, 5)];
          const [kh, kw] = [r.int(1, 5), r.int(1, 5)];
          const ss = r.int(1, 2);
          const strides: [number, number] = cases % 3 === 0 ? [r.int(1, 3), r.int(1, 3)] : [ss, ss];
          const pad = r.pick(['same', 'valid'] as const);
          if (pad === 'valid' && (kh > H || kw > W)) continue;
          cases++;
          const xs = r.normal(N * H * W * ci);
          const fs = r.normal(kh * kw * ci * co);
          const seedDy = seed * 7919;
          const res = onBoth(() => {
            const x = tf.tensor4d(xs, [N, H, W, ci]);
            const f = tf.tensor4d(fs, [kh, kw, ci, co]);
            const y = tf.conv2d(x, f, strides, pad);
            const dy = normal(rng(seedDy), y.shape);
            const [gx, gf] = tf.grads((a, b) =>
              tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, strides, pad), dy)),
            )([x, f]);
            return [y, gx!, gf!];
          });
          const e = worstErr(res);
          worst = Math.max(worst, e);
          expect(e, JSON.stringify({ N, H, W, ci, co, kh, kw, strides, pad })).toBeLessThan(KERNEL_TOL);
        }
        expect(worst).toBeLessThan(KERNEL_TOL);
      });

      it('conv2dTranspose forward and its filter gradient, random shapes', () => {
        for (let seed = 1000; seed < 1100; seed++) {
          const r = rng(seed);
          const [N, ci, co, kh, kw] = [r.int(1, 3), r.int(1, 5), r.int(1, 5), r.int(1, 5), r.int(1, 5)];
          const ss = r.int(1, 2);
          const s: [number, number] = seed % 3 === 0 ? [r.int(1, 3), r.int(1, 3)] : [ss, ss];
          const pad = r.pick(['same', 'valid'] as const);
          const [Ho, Wo] = [r.int(1, 7), r.int(1, 7)];
          // output (height, width) of the transposed conv consistent with its input (Ho, Wo)
          const H =
            pad === 'same' ? r.int((Ho - 1) * s[0] + 1, Ho * s[0]) : r.int((Ho - 1) * s[0] + kh, Ho * s[0] + kh - 1);
          const W =
            pad === 'same' ? r.int((Wo - 1) * s[1] + 1, Wo * s[1]) : r.int((Wo - 1) * s[1] + kw, Wo * s[1] + kw - 1);
          const ds = r.normal(N * Ho * Wo * co);
          const fs = r.normal(kh * kw * ci * co);
          const gs = r.normal(N * H * W * ci);
          const res = onBoth(() => {
            const dy = tf.tensor4d(ds, [N, Ho, Wo, co]);
            const f = tf.tensor4d(fs, [kh, kw, ci, co]);
            const g = tf.tensor4d(gs, [N, H, W, ci]);
            const fwd = (a: tf.Tensor, b: tf.Tensor) =>
              tf.conv2dTranspose(a as tf.Tensor4D, b as tf.Tensor4D, [N, H, W, ci], s, pad);
            const [gdy, gf] = tf.grads((a, b) => tf.sum(tf.mul(fwd(a, b), g)))([dy, f]);
            return [fwd(dy, f), gdy!, gf!];
          });
          expect(worstErr(res), JSON.stringify({ N, H, W, Ho, Wo, ci, co, kh, kw, s, pad })).toBeLessThan(KERNEL_TOL);
        }
      });

      it('conv2d and depthwise conv with stride larger than the kernel, padding same (wasm bug worked around)', () => {
        for (let seed = 2000; seed < 2030; seed++) {
          const r = rng(seed);
          const [N, H, W, c, m] = [r.int(1, 2), r.int(2, 9), r.int(2, 9), r.int(1, 4), r.int(1, 3)];
          const k = r.int(1, 2);
          const s = r.int(k + 1, 3);
          const xs = r.normal(N * H * W * c);
          const fs = r.normal(k * k * c * m);
          const bs = r.normal(m);
          const res = onBoth(() => {
            const x = tf.tensor4d(xs, [N, H, W, c]);
            const f = tf.tensor4d(fs, [k, k, c, m]);
            const fused = tf.fused.conv2d({
              x,
              filter: f,
              strides: s,
              pad: 'same',
              bias: tf.tensor1d(bs),
              activation: 'relu',
            });
            return [tf.conv2d(x, f, s, 'same'), fused, tf.depthwiseConv2d(x, f, s, 'same')];
          });
          expect(worstErr(res)).toBeLessThan(KERNEL_TOL);
        }
      });

      it('UnsortedSegmentSum (gather / embedding gradient), random sizes and ids incl. repeats', () => {
        for (let seed = 3000; seed < 3040; seed++) {
          const r = rng(seed);
          const [vocab, dim, n] = [r.int(1, 12), r.int(1, 9), r.int(1, 20)];
          const ids = Int32Array.from({ length: n }, () => r.int(0, vocab - 1));
          const table = r.normal(vocab * dim);
          const up = r.normal(n * dim);
          const res = onBoth(() => {
            const t = tf.tensor2d(table, [vocab, dim]);
            const g = tf.grad((a) =>
              tf.sum(tf.mul(tf.gather(a, tf.tensor1d(ids, 'int32')), tf.tensor2d(up, [n, dim]))),
            )(t);
            const direct = tf.unsortedSegmentSum(tf.tensor2d(up, [n, dim]), tf.tensor1d(ids, 'int32'), vocab);
            return [g, direct];
          });
          expect(worstErr(res)).toBeLessThan(KERNEL_TOL);
        }
      });

      it('BatchMatMul with transpose flags and Tile (replaced kernels)', () => {
        for (let seed = 4000; seed < 4030; seed++) {
          const r = rng(seed);
          const [b, m, k, n] = [r.int(1, 3), r.int(1, 17), r.int(1, 17), r.int(1, 17)];
          const [ta, tb] = [r.next() < 0.5, r.next() < 0.5];
          const as = r.normal(b * m * k);
          const bs = r.normal(b * k * n);
          const ts = r.normal(k);
          const res = onBoth(() => [
            tf.matMul(tf.tensor3d(as, ta ? [b, k, m] : [b, m, k]), tf.tensor3d(bs, tb ? [b, n, k] : [b, k, n]), ta, tb),
            tf.tile(tf.tensor4d(ts, [1, 1, 1, k]), [b, m, n, 1]),
            tf.tile(tf.tensor2d(as.slice(0, m * k), [m, k]), [b, 2]),
          ]);
          expect(worstErr(res)).toBeLessThan(KERNEL_TOL);
        }
      });

      it('Sum and Mean over any axes (outer blocks as matmuls, the rest the original kernels), keepDims or not', () => {
        for (let seed = 4100; seed < 4160; seed++) {
          const r = rng(seed);
          const rank = r.int(1, 5);
          const shape = Array.from({ length: rank }, () => r.int(1, 7));
          const axes = [...Array(rank).keys()].filter(() => r.next() < 0.5);
          if (axes.length === 0) axes.push(r.int(0, rank - 1));
          const keepDims = r.next() < 0.5;
          const xs = r.normal(shape.reduce((a, b) => a * b, 1));
          const res = onBoth(() => {
            const x = tf.tensor(xs, shape);
            return [
              tf.sum(x, axes, keepDims),
              tf.mean(x, axes, keepDims),
              tf.sum(
                x,
                axes.map((a) => a - rank),
              ),
            ];
          });
          expect(worstErr(res)).toBeLessThan(KERNEL_TOL);
        }
        // The batch-norm case at a size where the block path runs: statistics of NHWC activations over N, H, W.
        const x = rng(4200).normal(16 * 14 * 14 * 8);
        const res = onBoth(() => {
          const t = tf.tensor4d(x, [16, 14, 14, 8]);
          const batchNorm = tf.moments(t, [0, 1, 2]);
          return [batchNorm.mean, batchNorm.variance, tf.moments(t, [1, 2]).variance, tf.sum(t, [0, 1, 2])];
        });
        expect(worstErr(res)).toBeLessThan(KERNEL_TOL);
      });

      it('GatherV2 of rows (block copies): random tables and indices with repeats, float32 and int32; other axes too', () => {
        for (let seed = 4400; seed < 4430; seed++) {
          const r = rng(seed);
          const shape = [r.int(1, 12), r.int(1, 9), ...(seed % 2 ? [r.int(1, 5)] : [])];
          const xs = r.normal(tf.util.sizeFromShape(shape));
          const idx = Array.from({ length: r.int(1, 20) }, () => r.int(0, shape[0]! - 1));
          const idx2 = Array.from({ length: 6 }, () => r.int(0, shape[1]! - 1));
          const res = onBoth(() => {
            const x = tf.tensor(xs, shape);
            return [
              tf.gather(x, idx),
              tf.gather(
                x,
                tf.tensor2d(idx.slice(0, 2 * Math.floor(idx.length / 2)), [Math.floor(idx.length / 2), 2], 'int32'),
              ),
              tf.cast(tf.gather(tf.cast(tf.mul(x, 100), 'int32'), idx), 'float32'),
              tf.gather(x, idx2, 1),
            ];
          });
          expect(worstErr(res), JSON.stringify({ shape, idx })).toBe(0);
        }
        tf.setBackend('wasm');
        expect(() => tf.gather(tf.ones([3, 2]), [0, 3])).toThrow(/index value 3 is not in \[0, 2\]/);
      });

      it('FusedBatchNorm (replaced by broadcasting ops), rank 2 and 4, with and without scale and offset', () => {
        for (let seed = 4300; seed < 4330; seed++) {
          const r = rng(seed);
          const shape =
            seed % 3 === 0 ? [r.int(1, 9), r.int(1, 40)] : [r.int(1, 4), r.int(1, 9), r.int(1, 9), r.int(1, 12)];
          const c = shape[shape.length - 1]!;
          const [xs, ms, vs, gs, bs] = [
            r.normal(tf.util.sizeFromShape(shape), 3),
            r.normal(c),
            r.normal(c),
            r.normal(c),
            r.normal(c),
          ];
          const withScale = r.next() < 0.5;
          const withOffset = r.next() < 0.5;
          const res = onBoth(() =>
            tf.batchNorm(
              tf.tensor(xs, shape),
              tf.tensor1d(ms),
              tf.abs(tf.tensor1d(vs)),
              withOffset ? tf.tensor1d(bs) : undefined,
              withScale ? tf.tensor1d(gs) : undefined,
              1e-3,
            ),
          );
          expect(worstErr(res), JSON.stringify({ shape, withScale, withOffset })).toBeLessThan(KERNEL_TOL);
        }
      });
    });

    describe('gradient fixes', () => {
      /** mirrorPad composed of slice/reverse/concat, whose TF.js gradients are right. */
      function mirrorPadRef(x: tf.Tensor4D, p: number, mode: 'reflect' | 'symmetric'): tf.Tensor4D {
        const o = mode === 'reflect' ? 1 : 0;
        let y: tf.Tensor4D = x;
        for (const axis of [1, 2]) {
          const n = y.shape[axis]!;
          const part = (start: number, len: number) => {
            const begin = [0, 0, 0, 0];
            const size = [-1, -1, -1, -1];
            begin[axis] = start;
            size[axis] = len;
            return tf.reverse(tf.slice(y, begin, size), axis);
          };
          y = tf.concat([part(o, p), y, part(n - o - p, p)], axis);
        }
        return y;
      }

      it('MirrorPad gradient is exact (TF.js 4.22 drops the border), reflect and symmetric, cpu and wasm', () => {
        for (let seed = 5000; seed < 5020; seed++) {
          const r = rng(seed);
          const [N, H, W, C] = [r.int(1, 2), r.int(2, 7), r.int(2, 7), r.int(1, 3)];
          const mode = r.pick(['reflect', 'symmetric'] as const);
          const p = r.int(1, Math.min(H, W) - (mode === 'reflect' ? 1 : 0));
          const xs = r.normal(N * H * W * C);
          const ws = r.normal(N * (H + 2 * p) * (W + 2 * p) * C);
          for (const b of ['cpu', 'wasm'] as const) {
            tf.setBackend(b);
            tf.tidy(() => {
              const x = tf.tensor4d(xs, [N, H, W, C]);
              const w = tf.tensor4d(ws, [N, H + 2 * p, W + 2 * p, C]);
              const pads: Array<[number, number]> = [
                [0, 0],
                [p, p],
                [p, p],
                [0, 0],
              ];
              const got = tf.grad((a) => tf.sum(tf.mul(tf.mirrorPad(a as tf.Tensor4D, pads, mode), w)))(x);
              const ref = tf.grad((a) => tf.sum(tf.mul(mirrorPadRef(a as tf.Tensor4D, p, mode), w)))(x);
              expect(relErr(got.dataSync(), ref.dataSync())).toBeLessThan(KERNEL_TOL);
              expect(relErr(mirrorPadGrad(w, pads, mode).dataSync(), ref.dataSync())).toBeLessThan(KERNEL_TOL);
            });
          }
        }
      });
    });

    describe('elementwise ops, reductions, instance norm and reflection padding vs cpu (native kernels where built)', () => {
      // The tests run with GANTRY_THREADS=1 (vitest.config.ts); these kernels split their work across threads,
      // so here they get 3 (more than the cores of a small machine: uneven splits, and still correct).
      let threadsBefore = 1;
      beforeAll(() => {
        threadsBefore = native.threads;
        setNativeThreads(3);
      });
      afterAll(() => setNativeThreads(threadsBefore));
      /** Native calls of the named implementations during `f` (0 on the WebAssembly path). */
      function nativeRuns(impls: string[], f: () => void): number {
        const count = () => impls.reduce((a, k) => a + (nativeStats.impls.get(k) ?? 0), 0);
        const before = { n: count(), fallbacks: nativeStats.fallbacks };
        f();
        expect(nativeStats.fallbacks, nativeStats.lastError).toBe(before.fallbacks);
        return count() - before.n;
      }
      /** Shapes from a few elements to past three threads' share of work (the kernels split at 16,384 elements). */
      const shape4 = (r: Rng) =>
        r.next() < 0.25
          ? [r.int(1, 2), r.int(30, 48), r.int(30, 48), r.int(8, 16)]
          : [r.int(1, 3), r.int(1, 9), r.int(1, 9), r.int(1, 6)];

      it('binary arithmetic with broadcasting (add, sub, mul, div, squared difference, max, min) and gradients', () => {
        const ops = [tf.add, tf.sub, tf.mul, tf.div, tf.squaredDifference, tf.maximum, tf.minimum] as const;
        const runs = nativeRuns(['binary'], () => {
          for (let seed = 15000; seed < 15070; seed++) {
            const r = rng(seed);
            const full = seed % 5 === 0 ? shape4(r) : Array.from({ length: r.int(1, 4) }, () => r.int(1, 6));
            // b: the same shape, a suffix of it, or with random axes set to 1 (broadcast both ways sometimes).
            const op = ops[seed % ops.length]!;
            // (TF.js's Maximum, Minimum and SquaredDifference gradients do not reduce over broadcast axes: same
            // shapes only for those.)
            const kind = op === tf.maximum || op === tf.minimum || op === tf.squaredDifference ? 0 : r.int(0, 3);
            const bShape =
              kind === 0
                ? full
                : kind === 1
                  ? full.slice(r.int(0, full.length - 1))
                  : full.map((d) => (r.next() < 0.5 ? 1 : d));
            const aShape = kind === 3 ? full.map((d, i) => (i === 0 && bShape[i] !== 1 ? 1 : d)) : full;
            const [as, bs, gs] = [
              r.normal(tf.util.sizeFromShape(aShape)),
              r.normal(tf.util.sizeFromShape(bShape)),
              r.normal(tf.util.sizeFromShape(tf.backend_util.assertAndGetBroadcastShape(aShape, bShape))),
            ];
            // Divisors kept away from 0 so that the comparison measures the kernels, not 1/ε.
            const bData = op === tf.div ? bs.map((v) => (v < 0 ? v - 0.5 : v + 0.5)) : bs;
            const res = onBoth(() => {
              const a = tf.tensor(as, aShape);
              const b = tf.tensor(bData, bShape);
              const y = op(a, b);
              const [ga, gb] = tf.grads((p, q) => tf.sum(tf.mul(op(p, q), tf.tensor(gs, y.shape))))([a, b]);
              return [y, ga!, gb!];
            });
            expect(worstErr(res), JSON.stringify({ op: op.name, aShape, bShape })).toBeLessThan(KERNEL_TOL);
          }
        });
        expect(runs > 0).toBe(path.native);
      });

      it('slice and constant padding (the gradient of slice) of any rank, forward and gradient', () => {
        const runs = nativeRuns(['slice', 'pad'], () => {
          for (let seed = 15500; seed < 15560; seed++) {
            const r = rng(seed);
            const shape = seed % 4 === 0 ? shape4(r) : Array.from({ length: r.int(1, 6) }, () => r.int(1, 7));
            // A box inside the tensor; some dimensions whole (merged runs), some cut on both sides.
            const begin = shape.map((d) => (r.next() < 0.4 ? 0 : r.int(0, d - 1)));
            const size = shape.map((d, i) => (r.next() < 0.3 ? -1 : r.int(1, d - begin[i]!)));
            const paddings = shape.map(() => [r.int(0, 3), r.int(0, 3)] as [number, number]);
            const value = seed % 3 === 0 ? 0 : r.normal(1)[0]!;
            const xs = r.normal(tf.util.sizeFromShape(shape));
            const res = onBoth(() => {
              const x = tf.tensor(xs, shape);
              const sliced = tf.slice(x, begin, size);
              const padded = tf.pad(x, paddings, value);
              const g = tf.grad((t) => tf.sum(tf.mul(tf.slice(t, begin, size), tf.onesLike(sliced))))(x);
              return [sliced, padded, g];
            });
            expect(worstErr(res), JSON.stringify({ shape, begin, size, paddings })).toBeLessThan(KERNEL_TOL);
          }
        });
        expect(runs > 0).toBe(path.native);
      });

      it('activations and unary math, forward and gradient (one-pass native gradients of ReLU, leaky ReLU, tanh, sigmoid)', () => {
        const fns: Array<[string, (x: tf.Tensor) => tf.Tensor, boolean]> = [
          ['relu', tf.relu, true],
          ['leakyRelu', (x) => tf.leakyRelu(x, 0.2), true],
          ['tanh', tf.tanh, true],
          ['sigmoid', tf.sigmoid, true],
          ['square', tf.square, true],
          ['neg', tf.neg, true],
          ['abs', tf.abs, true],
          ['rsqrt', (x) => tf.rsqrt(tf.add(tf.abs(x), 0.5)), true],
          ['sqrt', (x) => tf.sqrt(tf.add(tf.abs(x), 0.5)), true],
          ['exp', tf.exp, true],
          ['elu', tf.elu, true],
          ['relu6', (x) => tf.relu6(tf.mul(x, 4)), true],
          ['step', (x) => tf.step(x, 0.3), false],
        ];
        const runs = nativeRuns(['unary', 'actGrad', 'jit:avx2', 'jit:avx', 'jit:sse41', 'ref:any'], () => {
          for (let seed = 16000; seed < 16052; seed++) {
            const r = rng(seed);
            const shape = shape4(r);
            const [name, f, differentiable] = fns[seed % fns.length]!;
            const [xs, gs] = [r.normal(tf.util.sizeFromShape(shape), 2), r.normal(tf.util.sizeFromShape(shape))];
            const res = onBoth(() => {
              const x = tf.tensor(xs, shape);
              const y = f(x);
              if (!differentiable) return y;
              return [y, tf.grad((t) => tf.sum(tf.mul(f(t), tf.tensor(gs, shape))))(x)];
            });
            expect(worstErr(res), JSON.stringify({ name, shape })).toBeLessThan(KERNEL_TOL);
          }
        });
        expect(runs > 0).toBe(path.native);
      });

      it('Sum and Mean over contiguous axes and their gradients, sizes that split across threads', () => {
        const runs = nativeRuns(['reduce'], () => {
          for (let seed = 17000; seed < 17040; seed++) {
            const r = rng(seed);
            const shape = shape4(r);
            const first = r.int(0, 3);
            const axes = Array.from({ length: r.int(1, 4 - first) }, (_, i) => first + i);
            const keepDims = r.next() < 0.5;
            const xs = r.normal(tf.util.sizeFromShape(shape), 3);
            const res = onBoth(() => {
              const x = tf.tensor(xs, shape);
              const g = tf.grad((t) => tf.sum(tf.square(tf.mean(t, axes, true))))(x);
              return [tf.sum(x, axes, keepDims), tf.mean(x, axes, keepDims), g];
            });
            expect(worstErr(res), JSON.stringify({ shape, axes })).toBeLessThan(KERNEL_TOL);
          }
        });
        expect(runs > 0).toBe(path.native);
      });

      it('instance norm forward and gradient (core op) against TF.js moments on cpu, random shapes and offsets', () => {
        const runs = nativeRuns(['instanceNorm', 'instanceNormGrad'], () => {
          for (let seed = 18000; seed < 18040; seed++) {
            const r = rng(seed);
            const shape = shape4(r);
            // Normalising 2 or 3 pixels is ill-conditioned (cpu and wasm TF.js ops already differ by percents there).
            if (shape[1]! * shape[2]! < 6) continue;
            // A large offset checks that the variance does not cancel away.
            const offset = seed % 4 === 0 ? 100 : 0;
            const xs = r.normal(tf.util.sizeFromShape(shape), 2).map((v) => v + offset);
            const gs = r.normal(tf.util.sizeFromShape(shape));
            const res = onBoth(() => {
              const x = tf.tensor(xs, shape);
              const dy = tf.tensor(gs, shape);
              const y = coreInstanceNorm(x, 1e-5);
              const g = tf.grad((t) => tf.sum(tf.mul(coreInstanceNorm(t, 1e-5), dy)))(x);
              return [y, g];
            });
            expect(worstErr(res), JSON.stringify({ shape, offset })).toBeLessThan(offset ? 1e-3 : KERNEL_TOL);
          }
        });
        expect(runs > 0).toBe(path.native);
      });

      /** x, dy, and γ, β and the running averages of a batch-norm layer test. */
      type BatchNormData = [Float32Array, Float32Array, Float32Array[]];
      /**
       * A batch-norm layer in training on x of `shape` (values `xs`), with γ, β and running averages `weights`:
       * the loss Σ forward(layer, x) · dy, its gradients for x, γ and β, and the layer's weights afterwards.
       */
      function batchNormLayerRun(
        shape: number[],
        [xs, gs, weights]: BatchNormData,
        forward: (layer: tf.layers.Layer, x: tf.Tensor) => tf.Tensor,
      ): tf.Tensor[] {
        const layer = batchNormalization({ momentum: 0.9, epsilon: 1e-5 });
        const x = tf.variable(tf.tensor(xs, shape));
        layer.apply(x);
        layer.setWeights(weights.map((w) => tf.tensor(w)));
        const dy = tf.tensor(gs, shape);
        const vars = [x, ...layer.trainableWeights.map((w) => w.read() as tf.Variable)];
        const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(forward(layer, x), dy)), vars);
        const out = [value, ...vars.map((v) => grads[v.name]!), ...layer.getWeights().map((w) => tf.clone(w))];
        layer.dispose();
        x.dispose();
        return out;
      }
      /** BatchNormData for x of `shape`, offset by `offset`. */
      const batchNormData = (r: Rng, shape: number[], offset = 0): BatchNormData => {
        const channels = shape.at(-1)!;
        const xs = r.normal(tf.util.sizeFromShape(shape), 2).map((v) => v + offset);
        const gs = r.normal(tf.util.sizeFromShape(shape));
        return [xs, gs, [r.normal(channels), r.normal(channels), r.normal(channels), r.normal(channels).map(Math.abs)]];
      };

      it("batch norm layer in training against TF.js's own layer on cpu: output, running averages, gradients", () => {
        const runs = nativeRuns(['batchNorm', 'batchNormGrad'], () => {
          for (let seed = 18100; seed < 18136; seed++) {
            const r = rng(seed);
            const shape = seed % 3 === 0 ? [r.int(2, 64), r.int(1, 300)] : shape4(r);
            // As for instance norm: a handful of values per channel is ill-conditioned.
            if (tf.util.sizeFromShape(shape) / shape.at(-1)! < 6) continue;
            const offset = seed % 4 === 0 ? 100 : 0;
            const data = batchNormData(r, shape, offset);
            // On cpu no fused kernels are registered: the layer runs TF.js's own training path, the reference.
            const res = onBoth(() =>
              batchNormLayerRun(shape, data, (layer, x) => layer.apply(x, { training: true }) as tf.Tensor),
            );
            expect(worstErr(res), JSON.stringify({ shape, offset })).toBeLessThan(offset ? 1e-3 : KERNEL_TOL);
          }
        });
        expect(runs > 0).toBe(path.native);
      });

      it('batch norm layer on stacked groups (BATCH_GROUPS) against each group alone through TF.js on cpu', () => {
        const runs = nativeRuns(['batchNorm', 'batchNormGrad'], () => {
          for (let seed = 18200; seed < 18216; seed++) {
            const r = rng(seed);
            const groups = r.int(2, 3);
            const one =
              seed % 3 === 0 ? [r.int(2, 16), r.int(1, 40)] : [r.int(1, 3), r.int(2, 9), r.int(2, 9), r.int(1, 6)];
            if (tf.util.sizeFromShape(one) / one.at(-1)! < 6) continue;
            const shape = [one[0]! * groups, ...one.slice(1)];
            const data = batchNormData(r, shape);
            // wasm: one pass over the stacked groups; cpu (the reference): TF.js's layer on each group in turn.
            const res = onBoth(() =>
              batchNormLayerRun(shape, data, (layer, x) =>
                tf.getBackend() === 'wasm'
                  ? (layer.apply(x, { training: true, [BATCH_GROUPS]: groups }) as tf.Tensor)
                  : tf.concat(tf.split(x, groups).map((part) => layer.apply(part, { training: true }) as tf.Tensor)),
              ),
            );
            expect(worstErr(res), JSON.stringify({ shape, groups })).toBeLessThan(KERNEL_TOL);
          }
        });
        expect(runs > 0).toBe(path.native);
      });

      it('reflection and symmetric padding, forward and gradient, sizes that split across threads', () => {
        const runs = nativeRuns(['mirrorPad', 'mirrorPadGrad'], () => {
          for (let seed = 19000; seed < 19040; seed++) {
            const r = rng(seed);
            const shape = shape4(r) as [number, number, number, number];
            const mode = r.pick(['reflect', 'symmetric'] as const);
            const o = mode === 'reflect' ? 1 : 0;
            if (Math.min(shape[1], shape[2]) - o < 1) continue;
            const pad = () => r.int(0, Math.min(3, Math.min(shape[1], shape[2]) - o));
            const pads: Array<[number, number]> = [
              [0, 0],
              [pad(), pad()],
              [pad(), pad()],
              [0, 0],
            ];
            const xs = r.normal(tf.util.sizeFromShape(shape));
            const out = shape.map((d, i) => d + pads[i]![0] + pads[i]![1]);
            const gs = r.normal(tf.util.sizeFromShape(out));
            const res = onBoth(() => {
              const x = tf.tensor4d(xs, shape);
              const g = tf.grad((t) => tf.sum(tf.mul(tf.mirrorPad(t as tf.Tensor4D, pads, mode), tf.tensor(gs, out))))(
                x,
              );
              return [tf.mirrorPad(x, pads, mode), g];
            });
            expect(worstErr(res), JSON.stringify({ shape, pads, mode })).toBeLessThan(KERNEL_TOL);
          }
        });
        expect(runs > 0).toBe(path.native);
      });

      it('a gradient of a gradient through instance norm, reflection padding and leaky ReLU (composed there)', () => {
        for (let seed = 19500; seed < 19504; seed++) {
          const r = rng(seed);
          const [xs, fs] = [r.normal(2 * 8 * 8 * 3), r.normal(3 * 3 * 3 * 4, 0.3)];
          const res = onBoth(() => {
            const f = tf.tensor4d(fs, [3, 3, 3, 4]);
            const critic = (x: tf.Tensor, w: tf.Tensor) =>
              tf.sum(
                tf.leakyRelu(
                  coreInstanceNorm(tf.conv2d(reflectPad(x as tf.Tensor4D, 1), w as tf.Tensor4D, 1, 'valid'), 1e-5),
                  0.2,
                ),
              );
            const x = tf.tensor4d(xs, [2, 8, 8, 3]);
            // WGAN-GP's shape: the penalty on ∂critic/∂x, differentiated with respect to the weights.
            return tf.grad((w) => tf.sum(tf.square(tf.grad((t) => critic(t, w))(x))))(f);
          });
          expect(worstErr(res), `seed ${seed}`).toBeLessThan(MODEL_TOL);
        }
      });

      it('a gradient of a gradient through batch norm in training (R1 and WGAN-GP through a DCGAN D)', () => {
        for (let seed = 19510; seed < 19514; seed++) {
          const r = rng(seed);
          const [xs, fs, gs, bs] = [r.normal(4 * 6 * 6 * 3), r.normal(3 * 3 * 3 * 5, 0.3), r.normal(5), r.normal(5)];
          const res = onBoth(() => {
            const [f, gamma, beta] = [tf.tensor4d(fs, [3, 3, 3, 5]), tf.tensor1d(gs), tf.tensor1d(bs)];
            const critic = (x: tf.Tensor, w: tf.Tensor) => {
              const h = tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same');
              return tf.sum(tf.mul(tf.leakyRelu(batchNorm(h, gamma, beta), 0.2), tf.tanh(h)));
            };
            const x = tf.tensor4d(xs, [4, 6, 6, 3]);
            return tf.grad((w) => tf.sum(tf.square(tf.grad((t) => critic(t, w))(x))))(f);
          });
          expect(worstErr(res), `seed ${seed}`).toBeLessThan(MODEL_TOL);
        }
      });

      it('minibatch standard deviation: output, gradient and a gradient of a gradient (R1 through a GAN D)', () => {
        const ran = () => nativeStats.impls.get('minibatchStddev') ?? 0;
        const before = ran();
        for (let seed = 19610; seed < 19616; seed++) {
          const r = rng(seed);
          const [g, groups, features] = [r.int(1, 4), r.int(1, 5), r.int(1, 40)];
          const [xs, ws] = [r.normal(g * groups * features), r.normal(features + 1)];
          const res = onBoth(() => {
            const [x, w] = [tf.tensor2d(xs, [g * groups, features]), tf.tensor2d(ws, [features + 1, 1])];
            // tanh after the layer: the upstream gradient depends on its output, as it would under more layers.
            const score = (t: tf.Tensor) => tf.sum(tf.tanh(tf.matMul(minibatchStddev(t as tf.Tensor2D, g), w)));
            // The gradient through the new feature alone (x's own columns pass through and would dominate).
            const feature = (t: tf.Tensor) =>
              tf.sum(tf.square(tf.slice(minibatchStddev(t as tf.Tensor2D, g), [0, features], [-1, 1])));
            const outer = (t: tf.Tensor) => tf.sum(tf.square(tf.grad(score)(t)));
            return [minibatchStddev(x, g), tf.grad(score)(x), tf.grad(feature)(x), tf.grad(outer)(x)];
          });
          expect(worstErr(res), `seed ${seed}`).toBeLessThan(KERNEL_TOL);
        }
        expect(ran() > before).toBe(path.native);
      });
    });

    // ---------------------------------------------------------------------------------------------
    // Whole-model gradients: small versions of the Gantry networks, as functions of explicit weights.

    const lrelu = (x: tf.Tensor) => tf.leakyRelu(x, 0.2);
    /** Core's fused op where its kernels are registered (wasm), TF.js's moments and batchNorm on cpu. */
    function batchNorm(x: tf.Tensor4D | tf.Tensor2D, gamma: tf.Tensor, beta: tf.Tensor) {
      const channels = [x.shape.at(-1)!];
      const running = { movingMean: tf.zeros(channels), movingVariance: tf.ones(channels), momentum: 0.99 };
      const fused = batchNormTraining(x, gamma, beta, running, 1e-5);
      if (fused) {
        tf.dispose([fused.movingMean, fused.movingVariance]);
        return fused.y;
      }
      const axes = x.rank === 4 ? [0, 1, 2] : [0];
      const { mean, variance } = tf.moments(x, axes);
      return tf.batchNorm(x, mean, variance, beta as tf.Tensor1D, gamma as tf.Tensor1D, 1e-5);
    }
    /** Core's op: one native kernel each way on the native path, TF.js's moments on cpu and the wasm path. */
    const instanceNorm = (x: tf.Tensor4D) => coreInstanceNorm(x, 1e-5) as tf.Tensor4D;
    const reflect = (x: tf.Tensor4D, p: number) =>
      tf.mirrorPad(
        x,
        [
          [0, 0],
          [p, p],
          [p, p],
          [0, 0],
        ],
        'reflect',
      );

    /** Weights as plain arrays so each backend builds its own tensors. */
    function weights(r: Rng, shapes: Record<string, number[]>, scale = 0.2) {
      return Object.fromEntries(
        Object.entries(shapes).map(([k, s]) => [
          k,
          {
            data: r.normal(
              s.reduce((a, b) => a * b, 1),
              scale,
            ),
            shape: s,
          },
        ]),
      );
    }
    type W = ReturnType<typeof weights>;
    function gradsOnBoth(w: W, loss: (v: Record<string, tf.Tensor>) => tf.Scalar) {
      const names = Object.keys(w);
      return onBoth(() => {
        const ts = names.map((k) => tf.tensor(w[k]!.data, w[k]!.shape));
        const { value, grads } = tf.valueAndGrads((...xs: tf.Tensor[]) =>
          loss(Object.fromEntries(names.map((k, i) => [k, xs[i]!]))),
        )(ts);
        return [value, ...grads];
      });
    }

    describe('whole-model gradients, wasm vs cpu', () => {
      const B = 4;
      const gShapes = {
        dense: [8, 4 * 4 * 16],
        g1: [16],
        b1: [16],
        t1: [4, 4, 8, 16],
        g2: [8],
        b2: [8],
        t2: [4, 4, 1, 8],
        bias: [1],
      };
      const dShapes = {
        c1: [4, 4, 1, 8],
        c1b: [8],
        c2: [4, 4, 8, 16],
        g: [16],
        b: [16],
        d: [4 * 4 * 16, 1],
        db: [1],
      };
      const G = (v: Record<string, tf.Tensor>, z: tf.Tensor2D) => {
        let h = lrelu(
          batchNorm(tf.reshape(tf.matMul(z, v.dense as tf.Tensor2D), [B, 4, 4, 16]) as tf.Tensor4D, v.g1!, v.b1!),
        ) as tf.Tensor4D;
        h = lrelu(
          batchNorm(tf.conv2dTranspose(h, v.t1 as tf.Tensor4D, [B, 8, 8, 8], 2, 'same'), v.g2!, v.b2!),
        ) as tf.Tensor4D;
        return tf.tanh(
          tf.add(tf.conv2dTranspose(h, v.t2 as tf.Tensor4D, [B, 16, 16, 1], 2, 'same'), v.bias!),
        ) as tf.Tensor4D;
      };
      const D = (v: Record<string, tf.Tensor>, x: tf.Tensor4D) => {
        let h = lrelu(tf.add(tf.conv2d(x, v.c1 as tf.Tensor4D, 2, 'same'), v.c1b!)) as tf.Tensor4D; // 8×8
        h = lrelu(batchNorm(tf.conv2d(h, v.c2 as tf.Tensor4D, 2, 'same'), v.g!, v.b!)) as tf.Tensor4D; // 4×4×16
        return tf.add(tf.matMul(tf.reshape(h, [B, 4 * 4 * 16]), v.d as tf.Tensor2D), v.db!);
      };

      it('DCGAN-like G and D (dense, deconv, conv, batch norm, leaky ReLU, tanh, sigmoid BCE), 12 seeds', () => {
        let worst = 0;
        for (let seed = 6000; seed < 6012; seed++) {
          const r = rng(seed);
          const gw = weights(r, gShapes);
          const dw = weights(r, dShapes);
          const zs = r.normal(B * 8);
          const real = r.normal(B * 16 * 16);
          const mk = () => ({
            z: tf.tensor2d(zs, [B, 8]),
            x: tf.tensor4d(real, [B, 16, 16, 1]),
          });
          const dv = (w: W) => Object.fromEntries(Object.entries(w).map(([k, t]) => [k, tf.tensor(t.data, t.shape)]));
          const gRes = gradsOnBoth(gw, (v) => {
            const { z } = mk();
            const logits = D(dv(dw), G(v, z));
            return tf.losses.sigmoidCrossEntropy(tf.onesLike(logits), logits) as tf.Scalar;
          });
          const dRes = gradsOnBoth(dw, (v) => {
            const { z, x } = mk();
            const lr = D(v, x);
            const lf = D(v, G(dv(gw), z));
            return tf.add(
              tf.losses.sigmoidCrossEntropy(tf.onesLike(lr), lr),
              tf.losses.sigmoidCrossEntropy(tf.zerosLike(lf), lf),
            ) as tf.Scalar;
          });
          worst = Math.max(worst, worstErr(gRes), worstErr(dRes));
          expect(worstErr(gRes), `G seed ${seed}`).toBeLessThan(MODEL_TOL);
          expect(worstErr(dRes), `D seed ${seed}`).toBeLessThan(MODEL_TOL);
        }
        expect(worst).toBeLessThan(MODEL_TOL);
      });

      it('Adam steps on the DCGAN-like G end with the same weights on wasm and cpu', () => {
        const r = rng(6100);
        const gw = weights(r, gShapes);
        const dw = weights(r, dShapes);
        const zs = r.normal(B * 8);
        const res = onBoth(() => {
          const vars = Object.fromEntries(
            Object.entries(gw).map(([k, t]) => [k, tf.variable(tf.tensor(t.data, t.shape))]),
          );
          const dvals = Object.fromEntries(Object.entries(dw).map(([k, t]) => [k, tf.tensor(t.data, t.shape)]));
          const opt = tf.train.adam(1e-2, 0.5);
          for (let i = 0; i < 3; i++) {
            opt.minimize(() => {
              const l = D(dvals, G(vars, tf.tensor2d(zs, [B, 8])));
              return tf.losses.sigmoidCrossEntropy(tf.onesLike(l), l) as tf.Scalar;
            });
          }
          const out = Object.values(vars).map((v) => v.clone());
          opt.dispose();
          for (const v of Object.values(vars)) v.dispose();
          return out;
        });
        expect(worstErr(res)).toBeLessThan(MODEL_TOL);
      });

      it('cGAN: label embedding (gather) + concat + dense, 6 seeds', () => {
        for (let seed = 7000; seed < 7006; seed++) {
          const r = rng(seed);
          const w = weights(r, {
            emb: [10, 6],
            emb2: [10, 16],
            dense: [14, 16],
            out: [32, 1],
          });
          const labels = Int32Array.from({ length: B }, () => r.int(0, 9));
          const zs = r.normal(B * 8);
          const res = gradsOnBoth(w, (v) => {
            const lab = tf.tensor1d(labels, 'int32');
            const e = tf.gather(v.emb!, lab);
            const img = tf.tanh(tf.matMul(tf.concat([tf.tensor2d(zs, [B, 8]), e], 1), v.dense as tf.Tensor2D));
            const o = tf.matMul(tf.concat([img, tf.gather(v.emb2!, lab)], 1), v.out as tf.Tensor2D);
            return tf.losses.sigmoidCrossEntropy(tf.onesLike(o), o) as tf.Scalar;
          });
          expect(worstErr(res), `seed ${seed}`).toBeLessThan(MODEL_TOL);
        }
      });

      it('pix2pix-like: U-Net (conv/deconv, concat skips, batch + instance norm, dropout mask) + PatchGAN, 4 seeds', () => {
        for (let seed = 8500; seed < 8504; seed++) {
          const r = rng(seed);
          const w = weights(r, {
            e1: [4, 4, 3, 8],
            e2: [4, 4, 8, 16],
            e3: [4, 4, 16, 16],
            g2: [16],
            b2: [16],
            u1: [4, 4, 16, 16],
            gu: [16],
            bu: [16],
            u2: [4, 4, 8, 32],
            u3: [4, 4, 3, 16],
            p1: [4, 4, 6, 8],
            p2: [4, 4, 8, 1],
          });
          const as = r.normal(2 * 16 * 16 * 3);
          const bs = r.normal(2 * 16 * 16 * 3);
          const mask = Float32Array.from({ length: 2 * 4 * 4 * 16 }, () => (r.next() < 0.5 ? 0 : 2));
          const res = gradsOnBoth(w, (v) => {
            const a = tf.tensor4d(as, [2, 16, 16, 3]);
            const b = tf.tensor4d(bs, [2, 16, 16, 3]);
            const down = (h: tf.Tensor4D, f: tf.Tensor) => tf.conv2d(h, f as tf.Tensor4D, 2, 'same');
            const up = (h: tf.Tensor4D, f: tf.Tensor, s: number, c: number) =>
              tf.conv2dTranspose(h, f as tf.Tensor4D, [2, s, s, c], 2, 'same');
            const e1 = lrelu(down(a, v.e1!)) as tf.Tensor4D; // 8×8×8
            const e2 = lrelu(batchNorm(down(e1, v.e2!), v.g2!, v.b2!)) as tf.Tensor4D; // 4×4×16
            const e3 = tf.relu(down(e2, v.e3!)) as tf.Tensor4D; // 2×2×16
            let h = tf.mul(
              tf.relu(batchNorm(up(e3, v.u1!, 4, 16), v.gu!, v.bu!)),
              tf.tensor4d(mask, [2, 4, 4, 16]),
            ) as tf.Tensor4D;
            h = tf.relu(instanceNorm(up(tf.concat([h, e2], 3), v.u2!, 8, 8))) as tf.Tensor4D;
            const fake = tf.tanh(up(tf.concat([h, e1], 3), v.u3!, 16, 3)) as tf.Tensor4D;
            const patch = tf.conv2d(
              lrelu(down(tf.concat([a, fake], 3), v.p1!)) as tf.Tensor4D,
              v.p2 as tf.Tensor4D,
              1,
              'valid',
            );
            return tf.add(
              tf.losses.sigmoidCrossEntropy(tf.onesLike(patch), patch),
              tf.mul(tf.mean(tf.abs(tf.sub(fake, b))), 100),
            ) as tf.Scalar;
          });
          expect(worstErr(res), `seed ${seed}`).toBeLessThan(MODEL_TOL);
        }
      });

      it('CycleGAN-like: reflection pad + instance norm + resnet block + deconv, LSGAN + L1, 6 seeds', () => {
        for (let seed = 8000; seed < 8006; seed++) {
          const r = rng(seed);
          const w = weights(r, {
            c1: [7, 7, 3, 8],
            dn: [3, 3, 8, 16],
            r1: [3, 3, 16, 16],
            r2: [3, 3, 16, 16],
            up: [3, 3, 8, 16],
            o: [7, 7, 8, 3],
            d: [4, 4, 3, 1],
          });
          const xs = r.normal(2 * 12 * 12 * 3);
          const res = gradsOnBoth(w, (v) => {
            const x = tf.tensor4d(xs, [2, 12, 12, 3]);
            const c = (h: tf.Tensor4D, f: tf.Tensor, s = 1, p: 'valid' | 'same' = 'valid') =>
              tf.conv2d(h, f as tf.Tensor4D, s, p);
            let h = tf.relu(instanceNorm(c(reflect(x, 3), v.c1!))) as tf.Tensor4D;
            h = tf.relu(instanceNorm(c(h, v.dn!, 2, 'same'))) as tf.Tensor4D; // 6×6×16
            const rb = instanceNorm(
              c(reflect(tf.relu(instanceNorm(c(reflect(h, 1), v.r1!))) as tf.Tensor4D, 1), v.r2!),
            );
            h = tf.add(h, rb);
            h = tf.relu(
              instanceNorm(tf.conv2dTranspose(h, v.up as tf.Tensor4D, [2, 12, 12, 8], 2, 'same')),
            ) as tf.Tensor4D;
            const y = tf.tanh(c(reflect(h, 3), v.o!)) as tf.Tensor4D;
            const d = c(y, v.d!, 2, 'same');
            return tf.add(tf.mean(tf.square(tf.sub(d, 1))), tf.mul(tf.mean(tf.abs(tf.sub(y, x))), 10)) as tf.Scalar;
          });
          expect(worstErr(res), `seed ${seed}`).toBeLessThan(MODEL_TOL);
        }
      });

      it('WGAN-GP: gradient of the gradient penalty through conv + leaky ReLU + dense, 4 seeds', () => {
        for (let seed = 9000; seed < 9004; seed++) {
          const r = rng(seed);
          const w = weights(r, {
            c1: [4, 4, 1, 8],
            c2: [4, 4, 8, 16],
            d: [4 * 4 * 16, 1],
          });
          const xs = r.normal(B * 16 * 16);
          const res = gradsOnBoth(w, (v) => {
            const critic = (x: tf.Tensor) => {
              let h = lrelu(tf.conv2d(x as tf.Tensor4D, v.c1 as tf.Tensor4D, 2, 'same')) as tf.Tensor4D;
              h = lrelu(tf.conv2d(h, v.c2 as tf.Tensor4D, 2, 'same')) as tf.Tensor4D;
              return tf.matMul(tf.reshape(h, [B, 4 * 4 * 16]), v.d as tf.Tensor2D);
            };
            const xh = tf.tensor4d(xs, [B, 16, 16, 1]);
            const g = tf.grad((x) => tf.sum(critic(x)))(xh);
            const norm = tf.sqrt(tf.add(tf.sum(tf.square(g), [1, 2, 3]), 1e-12));
            return tf.add(tf.mean(critic(xh)), tf.mul(tf.mean(tf.square(tf.sub(norm, 1))), 10)) as tf.Scalar;
          });
          expect(worstErr(res), `seed ${seed}`).toBeLessThan(MODEL_TOL);
        }
      });
    });
  });
}

describe.skipIf(!native.version)(`${native.version ?? 'oneDNN'} kernels: what only the native path does`, () => {
  const ACTS = ['linear', 'relu', 'relu6', 'leakyrelu', 'elu', 'sigmoid'] as const;

  it('fused conv2d (bias + every activation), dilations, odd strides and paddings run natively and match cpu', () => {
    const before = { calls: nativeStats.calls, fallbacks: nativeStats.fallbacks };
    for (let seed = 11000; seed < 11060; seed++) {
      const r = rng(seed);
      const [N, H, W, ci, co, kh, kw] = [
        r.int(1, 2),
        r.int(3, 12),
        r.int(3, 12),
        r.int(1, 6),
        r.int(1, 6),
        r.int(1, 4),
        r.int(1, 4),
      ];
      const dilated = seed % 4 === 0;
      const strides: [number, number] = dilated ? [1, 1] : [r.int(1, 3), r.int(1, 3)];
      const dilations: [number, number] = dilated ? [r.int(1, 2), r.int(1, 2)] : [1, 1];
      const pad = r.pick(['same', 'valid'] as const);
      if (pad === 'valid' && ((kh - 1) * dilations[0] + 1 > H || (kw - 1) * dilations[1] + 1 > W)) continue;
      const activation = ACTS[seed % ACTS.length]!;
      const [xs, fs, bs] = [r.normal(N * H * W * ci), r.normal(kh * kw * ci * co), r.normal(co)];
      const res = onBoth(() =>
        tf.fused.conv2d({
          x: tf.tensor4d(xs, [N, H, W, ci]),
          filter: tf.tensor4d(fs, [kh, kw, ci, co]),
          strides,
          pad,
          dilations,
          bias: tf.tensor1d(bs),
          activation,
          leakyreluAlpha: 0.2,
        }),
      );
      expect(
        worstErr(res),
        JSON.stringify({ N, H, W, ci, co, kh, kw, strides, dilations, pad, activation }),
      ).toBeLessThan(KERNEL_TOL);
    }
    expect(nativeStats.calls).toBeGreaterThan(before.calls);
    expect(nativeStats.fallbacks, nativeStats.lastError).toBe(before.fallbacks);
  });

  it('conv gradients of 1–4 input channels: by gathered patches and sgemm, as oneDNN computes them, as cpu does', () => {
    const patchCalls = () => nativeStats.impls.get('gantry:patches+sgemm') ?? 0;
    const threadsBefore = native.threads;
    setNativeThreads(3); // the gather and the scatter split images across threads
    try {
      for (let seed = 11100; seed < 11140; seed++) {
        const r = rng(seed);
        const [N, H, W, ci, co, kh, kw] = [
          r.int(1, 6),
          r.int(3, 30),
          r.int(3, 30),
          r.int(1, 4),
          r.int(1, 9),
          r.int(1, 5),
          r.int(1, 5),
        ];
        // TF.js has no gradients of dilated convolutions, so none reach these kernels.
        const strides: [number, number] = [r.int(1, 3), r.int(1, 3)];
        const pad = r.pick(['same', 'valid'] as const);
        if (pad === 'valid' && (kh > H || kw > W)) continue;
        const [xs, fs] = [r.normal(N * H * W * ci), r.normal(kh * kw * ci * co)];
        const gradients = () => {
          const x = tf.tensor4d(xs, [N, H, W, ci]);
          const f = tf.tensor4d(fs, [kh, kw, ci, co]);
          const conv = (a: tf.Tensor, b: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, strides, pad);
          const dy = normal(rng(seed * 31), conv(x, f).shape);
          const [gx, gf] = tf.grads((a, b) => tf.sum(tf.mul(conv(a, b), dy)))([x, f]);
          return [gx!, gf!];
        };
        const geometry = JSON.stringify({ N, H, W, ci, co, kh, kw, strides, pad });
        const before = patchCalls();
        const byPatches = onBoth(gradients);
        // The input gradient always; the filter gradient with one channel (three: oneDNN's was as fast).
        expect(patchCalls() - before, geometry).toBe(ci === 1 ? 2 : 1);
        expect(worstErr(byPatches), geometry).toBeLessThan(KERNEL_TOL);
        process.env.GANTRY_CONV_PATCHES = '0';
        const byOneDnn = onBoth(gradients);
        delete process.env.GANTRY_CONV_PATCHES;
        expect(patchCalls() - before, geometry).toBe(ci === 1 ? 2 : 1);
        expect(worstErr(byOneDnn), geometry).toBeLessThan(KERNEL_TOL);
      }
    } finally {
      delete process.env.GANTRY_CONV_PATCHES;
      setNativeThreads(threadsBefore);
    }
  });

  it("Adam's update and the weight average run natively in one pass and match TF.js's ops on cpu, slots included", async () => {
    const r = rng(13000);
    // [300, 170]: 51,000 elements, split into pieces on the 3 threads set below (the tests' work threshold is low).
    const shapes = [[150, 97], [3, 3, 8, 5], [7], [300, 170]];
    const init = shapes.map((sh) => r.normal(tf.util.sizeFromShape(sh)));
    const grads = Array.from({ length: 5 }, (_, step) =>
      shapes.map((sh) => r.normal(tf.util.sizeFromShape(sh), 1 + step)),
    );
    const run = async (backend: Backend) => {
      tf.setBackend(backend);
      const vars = shapes.map((sh, i) => tf.variable(tf.tensor(init[i]!, sh)));
      const opt = adam(1e-2, 0.5);
      // The one-pass updates only (the native elementwise kernels also run on the way).
      const updates = () => (nativeStats.impls.get('adam') ?? 0) + (nativeStats.impls.get('lerp') ?? 0);
      const before = updates();
      const live: number[] = [];
      for (const g of grads) {
        const map = Object.fromEntries(vars.map((v, i) => [v.name, tf.tensor(g[i]!, shapes[i])]));
        opt.applyGradients(map);
        tf.dispose(Object.values(map));
        live.push(tf.memory().numTensors);
      }
      // After the first update made the slots, every update leaves the tensor count as it found it.
      expect(new Set(live.slice(1)), backend).toEqual(new Set([live[0]]));
      const average = tf.tidy(() => lerp(vars[0]!, tf.tensor(init[0]!, shapes[0]), 0.9));
      const native = updates() - before;
      // Slot names carry the variables' names, which differ between the runs; the rest must match.
      const slots = (await opt.getWeights()).map((w) => ({
        name: w.name.replace(/^.*\//, ''),
        data: Float32Array.from(w.tensor.dataSync()),
      }));
      const out = {
        values: [...vars.map((v) => Float32Array.from(v.dataSync())), Float32Array.from(average.dataSync())],
        slots,
        native,
      };
      opt.dispose();
      tf.dispose([...vars, average]);
      return out;
    };
    const ref = await run('cpu');
    const threadsBefore = native.threads;
    setNativeThreads(3);
    const got = await run('wasm').finally(() => setNativeThreads(threadsBefore));
    expect(got.native).toBe(grads.length * shapes.length + 1); // every update and the average ran natively
    expect(ref.native).toBe(0);
    expect(got.slots.map((s) => s.name)).toEqual(ref.slots.map((s) => s.name)); // iter, m × 3, v × 3: same order
    for (const [i, v] of got.values.entries()) expect(relErr(v, ref.values[i]!), `value ${i}`).toBeLessThan(KERNEL_TOL);
    for (const [i, s] of got.slots.entries())
      expect(relErr(s.data, ref.slots[i]!.data), `slot ${i}`).toBeLessThan(KERNEL_TOL);
    expect(relErr(got.values[0]!, init[0]!)).toBeGreaterThan(1e-3); // the updates moved the weights
  });

  it('fused matMul (bias + activation) and batch broadcasting run natively and match cpu', () => {
    const before = { calls: nativeStats.calls, fallbacks: nativeStats.fallbacks };
    for (let seed = 12000; seed < 12040; seed++) {
      const r = rng(seed);
      const [b, m, k, n] = [r.int(1, 3), r.int(1, 20), r.int(1, 20), r.int(1, 20)];
      const [ta, tb] = [r.next() < 0.5, r.next() < 0.5];
      const broadcastA = seed % 3 === 0;
      const activation = ACTS[seed % ACTS.length]!;
      const [as, bs, cs] = [r.normal(b * m * k), r.normal(b * k * n), r.normal(n)];
      const aShape = (broadcastA ? [1] : [b]).concat(ta ? [k, m] : [m, k]);
      const res = onBoth(() => [
        tf.fused.matMul({
          a: tf.tensor2d(as.slice(0, m * k), ta ? [k, m] : [m, k]),
          b: tf.tensor2d(bs.slice(0, k * n), tb ? [n, k] : [k, n]),
          transposeA: ta,
          transposeB: tb,
          bias: tf.tensor1d(cs),
          activation,
          leakyreluAlpha: 0.1,
        }),
        tf.matMul(
          tf.tensor(
            as.slice(
              0,
              aShape.reduce((x, y) => x * y, 1),
            ),
            aShape,
          ),
          tf.tensor3d(bs, tb ? [b, n, k] : [b, k, n]),
          ta,
          tb,
        ),
      ]);
      expect(worstErr(res), JSON.stringify({ b, m, k, n, ta, tb, broadcastA, activation })).toBeLessThan(KERNEL_TOL);
    }
    expect(nativeStats.calls).toBeGreaterThan(before.calls);
    expect(nativeStats.fallbacks, nativeStats.lastError).toBe(before.fallbacks);
  });

  it('Concat and SplitV (block copies) on every axis, float32 and int32, match cpu', () => {
    const before = { calls: nativeStats.calls, fallbacks: nativeStats.fallbacks };
    for (let seed = 14000; seed < 14040; seed++) {
      const r = rng(seed);
      const rank = r.int(1, 4);
      const shape = Array.from({ length: rank }, () => r.int(1, 5));
      const axis = r.int(-rank, rank - 1);
      const ax = axis < 0 ? axis + rank : axis;
      const parts = r.int(2, 4);
      const sizes = Array.from({ length: parts }, () => r.int(1, 4));
      const data = sizes.map((s) => r.normal(shape.reduce((a, b, i) => a * (i === ax ? s : b), 1)));
      const res = onBoth(() => {
        const ts = sizes.map((s, k) =>
          tf.tensor(
            data[k]!,
            shape.map((d, i) => (i === ax ? s : d)),
          ),
        );
        const whole = tf.concat(ts, axis);
        const ints = tf.concat(
          ts.map((t) => tf.cast(tf.mul(t, 100), 'int32')),
          axis,
        );
        return [whole, tf.cast(ints, 'float32'), ...tf.split(whole, sizes, axis), ...tf.split(whole, 1, axis)];
      });
      expect(worstErr(res), JSON.stringify({ shape, axis, sizes })).toBe(0);
    }
    expect(nativeStats.calls).toBeGreaterThan(before.calls);
    expect(nativeStats.fallbacks, nativeStats.lastError).toBe(before.fallbacks);
  });

  it('falls back to the WebAssembly kernels for what it does not take (NCHW, PReLU) with the same results', () => {
    const before = nativeStats.calls;
    const r = rng(13000);
    const [xs, fs, ps] = [r.normal(2 * 3 * 6 * 6), r.normal(3 * 3 * 3 * 4), r.normal(4)];
    const res = onBoth(() =>
      tf.fused.conv2d({
        x: tf.tensor4d(xs, [2, 6, 6, 3]),
        filter: tf.tensor4d(fs, [3, 3, 3, 4]),
        strides: 1,
        pad: 'same',
        activation: 'prelu',
        preluActivationWeights: tf.tensor1d(ps),
      }),
    );
    expect(worstErr(res)).toBeLessThan(KERNEL_TOL);
    expect(nativeStats.calls).toBe(before);
  });
});
