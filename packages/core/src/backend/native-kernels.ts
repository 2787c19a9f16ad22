/**
 * The wasm backend's convolutions and matmuls on oneDNN (`@gantry/native`, built when the machine has g++ and
 * Debian's libdnnl-dev). The wasm backend keeps every tensor in its WebAssembly heap, an ArrayBuffer: the native
 * code reads the inputs and writes the output there in place, so nothing is copied. Each kernel falls back to the
 * kernel it replaces (Gantry's wasm kernels) for what it does not handle: NCHW, non-float32, PReLU, a geometry
 * oneDNN rejects.
 */
import { createRequire } from 'node:module';
import * as os from 'node:os';
import type { NativeBinding } from '@gantry/native';
import * as tf from '@tensorflow/tfjs';
import { GantryError } from '../errors.js';
import {
  ACTIVATION_GRAD,
  ADAM_UPDATE,
  type AdamUpdateAttrs,
  activationGradComposed,
  BATCH_NORM,
  BATCH_NORM_GRAD,
  batchNormComposed,
  batchNormGradComposed,
  INSTANCE_NORM,
  INSTANCE_NORM_GRAD,
  instanceNormComposed,
  instanceNormGradComposed,
  LERP,
  MINIBATCH_STDDEV,
  MINIBATCH_STDDEV_GRAD,
  MIRROR_PAD_GRAD,
  minibatchStddevComposed,
  minibatchStddevGradComposed,
  setNativeUpdates,
} from './fused-ops.js';
import { mirrorPadGrad } from './gradients.js';
import { attrsAs, inputList } from './kernel-glue.js';
import { offsetOf, replaceWasmKernel, type WasmBackendLike, wrap } from './wasm-kernels.js';

type TensorInfo = tf.TensorInfo;
type KernelFunc = tf.KernelConfig['kernelFunc'];

/** TF.js fused activations the native kernels apply (numbering shared with gantry_native.cc). */
const ACTIVATIONS: Record<string, number> = {
  linear: 0,
  relu: 1,
  relu6: 2,
  leakyrelu: 3,
  elu: 4,
  sigmoid: 5,
};

export interface NativeKernelsInfo {
  /** e.g. "oneDNN 2.6.3"; null when not loaded. */
  version: string | null;
  threads: number;
  /** Why the native kernels are not in use (empty when they are). */
  why: string;
}

let state: NativeKernelsInfo | null = null;
let native: NativeBinding | null = null;
/** Implementation oneDNN picked per kernel call site, and how often a call fell back (for tests and the bench). */
export const nativeStats = { calls: 0, fallbacks: 0, impls: new Map<string, number>(), lastError: '' };

/** libgomp's spins before an idle thread sleeps (its own estimate: about 100,000 per millisecond). */
const SPIN_COUNT = 10_000;

function loadBinding(): { binding: NativeBinding | null; why: string } {
  // How idle OpenMP threads wait. Spinning long (libgomp's default, as PyTorch runs) collapses the step when
  // another process shares the cores; sleeping at once (passive) makes nearly every kernel of a step pay for waking
  // a thread. A short spin bridges the gaps between the kernels of a step and then sleeps (measurements:
  // docs/results/2026-12-01-two-threads.md). Read by libgomp when the addon loads it, so set before the require; a
  // user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT wins.
  if (process.env.OMP_WAIT_POLICY === undefined && process.env.GOMP_SPINCOUNT === undefined) {
    process.env.OMP_WAIT_POLICY = 'passive';
    process.env.GOMP_SPINCOUNT = String(SPIN_COUNT);
  }
  try {
    const req = createRequire(import.meta.url);
    return req('@gantry/native') as { binding: NativeBinding | null; why: string };
  } catch (e) {
    return { binding: null, why: `@gantry/native not installed (${String((e as Error).message).split('\n')[0]})` };
  }
}

/**
 * Thread count of every native kernel (oneDNN's and the elementwise ones): GANTRY_THREADS (a positive integer, or
 * `all`), else every core available to the process. Idle threads spin briefly, then sleep (loadBinding), so a
 * thread the step cannot use costs little, and another process sharing the cores does not collapse the step.
 */
export function nativeThreadCount(env = process.env.GANTRY_THREADS): number {
  const all = os.availableParallelism();
  const raw = (env ?? '').trim();
  if (raw === '' || raw === 'all') return all;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) {
    throw new GantryError(`GANTRY_THREADS=${raw}: expected a positive integer or 'all' (this machine: ${all} cores)`);
  }
  return n;
}

/**
 * Runs `call` on fresh outputs of `dtype`; on any failure frees them and returns null (the caller falls back).
 * The heap is read after the outputs are allocated: allocating may grow (and replace) the heap's buffer.
 */
function withOutputs(
  backend: WasmBackendLike,
  shapes: number[][],
  dtype: tf.DataType,
  inputs: TensorInfo[],
  call: (heap: ArrayBuffer, inOffsets: number[], outOffsets: number[]) => string,
): TensorInfo[] | null {
  if (inputs.some((t) => t.dtype !== dtype)) return null;
  if (shapes.some((s) => s.some((d) => d === 0)) || inputs.some((t) => t.shape.some((d) => d === 0))) return null;
  const outs = shapes.map((shape) => backend.makeOutput(shape, dtype));
  try {
    const offs = inputs.map((t) => offsetOf(backend, t));
    const outOffs = outs.map((t) => offsetOf(backend, t));
    if ([...offs, ...outOffs].some((o) => o == null)) throw new Error('tensor not in the wasm heap');
    const impl = call(backend.wasm.HEAPU8.buffer as ArrayBuffer, offs as number[], outOffs as number[]);
    nativeStats.calls++;
    nativeStats.impls.set(impl, (nativeStats.impls.get(impl) ?? 0) + 1);
    return outs;
  } catch (e) {
    for (const t of outs) backend.disposeData(t.dataId, true);
    nativeStats.fallbacks++;
    nativeStats.lastError = String((e as Error).message ?? e);
    if (process.env.GANTRY_DEBUG) console.warn(`native kernel fell back: ${nativeStats.lastError}`);
    return null;
  }
}

/** withOutputs for one float32 output. */
function withOutput(
  backend: WasmBackendLike,
  shape: number[],
  inputs: TensorInfo[],
  call: (heap: ArrayBuffer, inOffsets: number[], outOffset: number) => string,
): TensorInfo | null {
  return withOutputs(backend, [shape], 'float32', inputs, (heap, ins, [out]) => call(heap, ins, out!))?.[0] ?? null;
}

interface ConvAttrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | number[][];
  dataFormat?: 'NHWC' | 'NCHW';
  dilations?: number | [number, number];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  activation?: string;
  leakyreluAlpha?: number;
  inputShape?: number[];
  filterShape?: number[];
}

/** Geometry block of native conv's params (N … dw), from TF.js's own conv shape rules. */
function convGeometry(xShape: number[], filterShape: number[], a: ConvAttrs): number[] {
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    a.strides,
    a.dilations ?? 1,
    a.pad as 'same',
    a.dimRoundingMode,
    false,
    'channelsLast',
  );
  const p = info.padInfo;
  return [
    info.batchSize,
    info.inHeight,
    info.inWidth,
    info.inChannels,
    info.filterHeight,
    info.filterWidth,
    info.outChannels,
    info.outHeight,
    info.outWidth,
    info.strideHeight,
    info.strideWidth,
    p.top,
    p.left,
    p.bottom,
    p.right,
    info.dilationHeight,
    info.dilationWidth,
  ];
}

function nhwcOnly(a: ConvAttrs): boolean {
  return (a.dataFormat ?? 'NHWC') === 'NHWC';
}

/** Conv2D and FusedConv2D (bias + activation as oneDNN post-ops). */
function conv2D(original: KernelFunc): KernelFunc {
  return (args) => {
    const a = attrsAs<ConvAttrs>(args.attrs);
    const ins = args.inputs as {
      x: TensorInfo;
      filter: TensorInfo;
      bias?: TensorInfo;
      preluActivationWeights?: TensorInfo;
    };
    const act = ACTIVATIONS[a.activation ?? 'linear'];
    const biasOk = !ins.bias || tf.util.sizeFromShape(ins.bias.shape) === ins.filter.shape[3];
    if (!native || !nhwcOnly(a) || act == null || !biasOk || ins.preluActivationWeights) return original(args);
    const backend = args.backend as WasmBackendLike;
    const geo = convGeometry(ins.x.shape, ins.filter.shape, a);
    const outShape = [geo[0]!, geo[7]!, geo[8]!, geo[6]!];
    const inputs = ins.bias ? [ins.x, ins.filter, ins.bias] : [ins.x, ins.filter];
    const out = withOutput(backend, outShape, inputs, (heap, [x, w, b], y) =>
      native!.conv(heap, Float64Array.of(0, x!, w!, y, b ?? -1, ...geo, act, a.leakyreluAlpha ?? 0.2)),
    );
    return out ?? original(args);
  };
}

function conv2DBackpropInput(original: KernelFunc): KernelFunc {
  return (args) => {
    const a = attrsAs<ConvAttrs>(args.attrs);
    const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
    if (!native || !nhwcOnly(a) || !a.inputShape) return original(args);
    const backend = args.backend as WasmBackendLike;
    const geo = convGeometry(a.inputShape, filter.shape, { ...a, dilations: 1 });
    const out = withOutput(backend, a.inputShape, [dy, filter], (heap, [g, w], x) =>
      native!.conv(heap, Float64Array.of(1, x, w!, g!, -1, ...geo, 0, 0)),
    );
    return out ?? original(args);
  };
}

function conv2DBackpropFilter(original: KernelFunc): KernelFunc {
  return (args) => {
    const a = attrsAs<ConvAttrs>(args.attrs);
    const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
    if (!native || !nhwcOnly(a) || !a.filterShape) return original(args);
    const backend = args.backend as WasmBackendLike;
    const geo = convGeometry(x.shape, a.filterShape, { ...a, dilations: 1 });
    const out = withOutput(backend, a.filterShape, [x, dy], (heap, [xo, g], w) =>
      native!.conv(heap, Float64Array.of(2, xo!, w, g!, -1, ...geo, 0, 0)),
    );
    return out ?? original(args);
  };
}

/** BatchMatMul and _FusedMatMul (bias + activation) on oneDNN's sgemm; batch axes equal or broadcast from 1. */
function matMul(original: KernelFunc): KernelFunc {
  return (args) => {
    const ins = args.inputs as { a: TensorInfo; b: TensorInfo; bias?: TensorInfo; preluActivationWeights?: TensorInfo };
    const at = args.attrs as {
      transposeA: boolean;
      transposeB: boolean;
      activation?: string;
      leakyreluAlpha?: number;
    };
    const act = ACTIVATIONS[at.activation ?? 'linear'];
    if (!native || act == null || ins.preluActivationWeights) return original(args);
    const { a, b, bias } = ins;
    const ra = a.shape.length;
    const rb = b.shape.length;
    if (ra < 2 || rb < 2) return original(args);
    const M = at.transposeA ? a.shape[ra - 1]! : a.shape[ra - 2]!;
    const K = at.transposeA ? a.shape[ra - 2]! : a.shape[ra - 1]!;
    const N = at.transposeB ? b.shape[rb - 2]! : b.shape[rb - 1]!;
    const kB = at.transposeB ? b.shape[rb - 1]! : b.shape[rb - 2]!;
    if (K !== kB) return original(args);
    const leadA = a.shape.slice(0, -2);
    const leadB = b.shape.slice(0, -2);
    let lead: number[];
    try {
      lead = tf.backend_util.assertAndGetBroadcastShape(leadA, leadB);
    } catch {
      return original(args);
    }
    const batch = tf.util.sizeFromShape(lead);
    const batchA = tf.util.sizeFromShape(leadA);
    const batchB = tf.util.sizeFromShape(leadB);
    if ((batchA !== batch && batchA !== 1) || (batchB !== batch && batchB !== 1)) return original(args);
    const biasSize = bias ? tf.util.sizeFromShape(bias.shape) : 0;
    if (bias && biasSize !== N && biasSize !== 1) return original(args);
    const backend = args.backend as WasmBackendLike;
    const inputs = bias ? [a, b, bias] : [a, b];
    const out = withOutput(backend, [...lead, M, N], inputs, (heap, [ao, bo, biasOff], c) =>
      native!.matmul(
        heap,
        Float64Array.of(
          ao!,
          bo!,
          c,
          biasOff ?? -1,
          biasSize,
          batchA,
          batchB,
          M,
          N,
          K,
          +at.transposeA,
          +at.transposeB,
          act,
          at.leakyreluAlpha ?? 0.2,
        ),
      ),
    );
    return out ?? original(args);
  };
}

/**
 * Concat and SplitV of 4-byte tensors (float32, int32) as block copies: the wasm Concat works on JS copies of
 * its inputs and SplitV slices once per part, both slow for the U-Net's skip connections and their gradients.
 */
function concat(original: KernelFunc): KernelFunc {
  return (args) => {
    const parts = inputList(args.inputs).filter((t) => tf.util.sizeFromShape(t.shape) > 0);
    const { axis } = args.attrs as { axis: number | number[] };
    const dtype = parts[0]?.dtype;
    if (!native || parts.length < 2 || (dtype !== 'float32' && dtype !== 'int32')) return original(args);
    const ax = tf.util.parseAxisParam(axis, parts[0]!.shape)[0]!;
    const shape = tf.backend_util.computeOutShape(
      parts.map((t) => t.shape),
      ax,
    );
    const outer = tf.util.sizeFromShape(shape.slice(0, ax));
    const inner = (t: { shape: number[] }) => tf.util.sizeFromShape(t.shape.slice(ax));
    const out = withOutputs(args.backend as WasmBackendLike, [shape], dtype, parts, (heap, ins, [o]) =>
      native!.blocks(
        heap,
        Float64Array.of(0, o!, outer, inner({ shape }), parts.length, ...parts.flatMap((t, k) => [ins[k]!, inner(t)])),
      ),
    );
    return out?.[0] ?? original(args);
  };
}

function splitV(original: KernelFunc): KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const { numOrSizeSplits, axis } = args.attrs as { numOrSizeSplits: number | number[]; axis: number };
    if (!native || (x.dtype !== 'float32' && x.dtype !== 'int32')) return original(args);
    const ax = tf.util.parseAxisParam(axis, x.shape)[0]!;
    const sizes = tf.backend_util.prepareSplitSize(x, numOrSizeSplits, ax);
    const shapes = sizes.map((s) => x.shape.map((d, i) => (i === ax ? s : d)));
    const outer = tf.util.sizeFromShape(x.shape.slice(0, ax));
    const inner = (shape: number[]) => tf.util.sizeFromShape(shape.slice(ax));
    const outs = withOutputs(args.backend as WasmBackendLike, shapes, x.dtype, [x], (heap, [xo], outOffs) =>
      native!.blocks(
        heap,
        Float64Array.of(
          1,
          xo!,
          outer,
          inner(x.shape),
          shapes.length,
          ...shapes.flatMap((s, k) => [outOffs[k]!, inner(s)]),
        ),
      ),
    );
    return outs ?? original(args);
  };
}

export { ADAM_UPDATE, type AdamUpdateAttrs, LERP, nativeUpdatesAvailable } from './fused-ops.js';

/** Runs native `update` on `outputs` fresh tensors shaped like the inputs; `params(n, inOffsets, outOffsets)`. */
function updateOutputs(
  args: Parameters<KernelFunc>[0],
  inputs: TensorInfo[],
  outputs: number,
  params: (n: number, ins: number[], outs: number[]) => number[],
): TensorInfo[] {
  const shape = inputs[0]!.shape;
  const n = tf.util.sizeFromShape(shape);
  const backend = args.backend as WasmBackendLike;
  const outs = withOutputs(backend, Array(outputs).fill(shape), 'float32', inputs, (heap, ins, o) =>
    native!.update(heap, Float64Array.from(params(n, ins, o))),
  );
  // Only registered with the binding loaded, and only called while it is enabled: a failure here is a bug.
  if (!outs) throw new Error(`native update failed: ${nativeStats.lastError}`);
  return outs;
}

const adamUpdate: KernelFunc = (args) => {
  const { x, m, v, g } = args.inputs as { x: TensorInfo; m: TensorInfo; v: TensorInfo; g: TensorInfo };
  const a = attrsAs<AdamUpdateAttrs>(args.attrs);
  return updateOutputs(args, [x, m, v, g], 3, (n, ins, outs) => [
    0,
    n,
    ...ins,
    ...outs,
    a.lr,
    a.beta1,
    a.beta2,
    a.epsilon,
    a.correction1,
    a.correction2,
  ]);
};

const lerp: KernelFunc = (args) => {
  const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
  const { beta } = args.attrs as { beta: number };
  return updateOutputs(args, [a, b], 1, (n, ins, outs) => [1, n, ...ins, ...outs, beta])[0]!;
};

// ---------------------------------------------------------------------------------------------------------------
// Elementwise arithmetic, activations, reductions, instance norm and reflection padding on the native threads.
// The wasm backend runs each of these one at a time on one thread; after the convolutions they were half of a
// CycleGAN step (docs/results/2026-11-30-cyclegan-profile.md).

const BINARY_OPS: Record<string, number> = {
  Add: 0,
  Sub: 1,
  Multiply: 2,
  RealDiv: 3,
  SquaredDifference: 4,
  Maximum: 5,
  Minimum: 6,
};

/**
 * Broadcasting plan of a binary op: output dims and each input's element strides (0 where it is broadcast), with
 * size-1 output axes dropped and neighbouring axes merged wherever both inputs allow (a same-shape op becomes one
 * axis, a per-channel one two).
 */
export function broadcastPlan(aShape: number[], bShape: number[]): { dims: number[]; sa: number[]; sb: number[] } {
  const out = tf.backend_util.assertAndGetBroadcastShape(aShape, bShape);
  const rank = out.length;
  const strides = (shape: number[]) => {
    const full = [...Array<number>(rank - shape.length).fill(1), ...shape];
    const st = Array<number>(rank).fill(0);
    let acc = 1;
    for (let d = rank - 1; d >= 0; d--) {
      st[d] = full[d] === 1 ? 0 : acc;
      acc *= full[d]!;
    }
    return st;
  };
  const A = strides(aShape);
  const B = strides(bShape);
  const dims: number[] = [];
  const sa: number[] = [];
  const sb: number[] = [];
  for (let d = 0; d < rank; d++) {
    if (out[d] === 1) continue;
    const k = dims.length - 1;
    if (k >= 0 && sa[k] === A[d]! * out[d]! && sb[k] === B[d]! * out[d]!) {
      dims[k]! *= out[d]!;
      sa[k] = A[d]!;
      sb[k] = B[d]!;
    } else {
      dims.push(out[d]!);
      sa.push(A[d]!);
      sb.push(B[d]!);
    }
  }
  if (dims.length === 0) return { dims: [1], sa: [0], sb: [0] };
  return { dims, sa, sb };
}

function binary(op: number): (original: KernelFunc) => KernelFunc {
  return (original) => (args) => {
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    if (!native || a.dtype !== 'float32' || b.dtype !== 'float32') return original(args);
    let plan: ReturnType<typeof broadcastPlan>;
    try {
      plan = broadcastPlan(a.shape, b.shape);
    } catch {
      return original(args); // the original kernel reports incompatible shapes
    }
    const shape = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
    const out = withOutput(args.backend as WasmBackendLike, shape, [a, b], (heap, [ao, bo], y) =>
      native!.binary(heap, Float64Array.of(op, y, ao!, bo!, plan.dims.length, ...plan.dims, ...plan.sa, ...plan.sb)),
    );
    return out ?? original(args);
  };
}

const UNARY_OPS: Record<string, number> = {
  Relu: 0,
  LeakyRelu: 1,
  Tanh: 2,
  Sigmoid: 3,
  Square: 4,
  Neg: 5,
  Abs: 6,
  Rsqrt: 7,
  Sqrt: 8,
  Step: 9,
  Exp: 10,
  Elu: 11,
  Relu6: 12,
};

function unary(op: number): (original: KernelFunc) => KernelFunc {
  return (original) => (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    if (!native || x.dtype !== 'float32') return original(args);
    const alpha = Number(
      (args.attrs as { alpha?: number } | undefined)?.alpha ?? (op === UNARY_OPS.LeakyRelu ? 0.2 : 0),
    );
    const n = tf.util.sizeFromShape(x.shape);
    const out = withOutput(args.backend as WasmBackendLike, x.shape, [x], (heap, [xo], y) =>
      native!.unary(heap, Float64Array.of(op, n, xo!, y, alpha)),
    );
    return out ?? original(args);
  };
}

/** Sum and Mean over one contiguous block of axes (any position), float32; the rest go to the original kernel. */
function reduce(mean: boolean): (original: KernelFunc) => KernelFunc {
  return (original) => (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const { axis, keepDims } = args.attrs as { axis: number | number[]; keepDims: boolean };
    if (!native || x.dtype !== 'float32') return original(args);
    const axes = tf.util.parseAxisParam(axis, x.shape).sort((p, q) => p - q);
    if (axes.length === 0 || !axes.every((v, i) => v === axes[0]! + i)) return original(args);
    const first = axes[0]!;
    const last = axes[axes.length - 1]!;
    const outer = tf.util.sizeFromShape(x.shape.slice(0, first));
    const rows = tf.util.sizeFromShape(x.shape.slice(first, last + 1));
    const inner = tf.util.sizeFromShape(x.shape.slice(last + 1));
    const [reduced] = tf.backend_util.computeOutAndReduceShapes(x.shape, axes);
    const outShape = keepDims ? tf.backend_util.expandShapeToKeepDim(reduced, axes) : reduced;
    const out = withOutput(args.backend as WasmBackendLike, outShape, [x], (heap, [xo], y) =>
      native!.reduce(heap, Float64Array.of(mean ? 1 : 0, outer, rows, inner, xo!, y)),
    );
    return out ?? original(args);
  };
}

/** Slice of float32 tensors (rank ≤ 8): the box at `begin` copied row by row (TF.js's wasm Slice copies per element). */
function sliceForward(original: KernelFunc): KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const attrs = args.attrs as { begin: number | number[]; size: number | number[] };
    if (!native?.box || x.dtype !== 'float32' || x.shape.length === 0 || x.shape.length > 8) return original(args);
    const [begin, size] = tf.slice_util.parseSliceParams(x as tf.Tensor, attrs.begin, attrs.size);
    const rank = x.shape.length;
    const out = withOutput(args.backend as WasmBackendLike, size, [x], (heap, [xo], y) =>
      native!.box!(heap, Float64Array.of(0, rank, ...x.shape, ...size, ...begin, xo!, y, 0)),
    );
    return out ?? original(args);
  };
}

/** PadV2 (constant padding, the gradient of Slice) of float32 tensors of rank ≤ 8. */
function padForward(original: KernelFunc): KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const { paddings, constantValue } = args.attrs as {
      paddings: Array<[number, number]>;
      constantValue: number;
    };
    if (!native?.box || x.dtype !== 'float32' || x.shape.length === 0 || x.shape.length > 8) return original(args);
    const rank = x.shape.length;
    const shape = x.shape.map((d, i) => d + paddings[i]![0] + paddings[i]![1]);
    const before = paddings.map((p) => p[0]);
    const out = withOutput(args.backend as WasmBackendLike, shape, [x], (heap, [xo], y) =>
      native!.box!(heap, Float64Array.of(1, rank, ...x.shape, ...shape, ...before, xo!, y, constantValue)),
    );
    return out ?? original(args);
  };
}

/** MirrorPad of float32 NHWC tensors padded along H and W only; other paddings go to the original kernel. */
function mirrorPadForward(original: KernelFunc): KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const { paddings, mode } = args.attrs as { paddings: Array<[number, number]>; mode: string };
    const p = mirrorPadParams(x.shape, paddings, mode);
    if (!native || x.dtype !== 'float32' || !p) return original(args);
    const shape = x.shape.map((d, i) => d + paddings[i]![0] + paddings[i]![1]);
    const out = withOutput(args.backend as WasmBackendLike, shape, [x], (heap, [xo], y) =>
      native!.mirrorPad(heap, Float64Array.of(0, ...p, xo!, y)),
    );
    return out ?? original(args);
  };
}

/** [N, H, W, C, top, bottom, left, right, symmetric] of a rank-4 mirror padding of H and W only, else null. */
function mirrorPadParams(shape: number[], paddings: Array<[number, number]>, mode: string): number[] | null {
  if (shape.length !== 4 || paddings.length !== 4) return null;
  const [n, c] = [paddings[0]!, paddings[3]!];
  if (n[0] || n[1] || c[0] || c[1]) return null;
  return [...shape.slice(0, 3), shape[3]!, ...paddings[1]!, ...paddings[2]!, mode === 'symmetric' ? 1 : 0];
}

/** A custom kernel's result; a failure of the binding is a bug (the inputs were checked), so it throws. */
function must<T>(out: T | null, what: string): T {
  if (out == null) throw new Error(`native ${what} failed: ${nativeStats.lastError}`);
  return out;
}

/** Runs `compose` on Tensor views of the inputs (the custom kernels' path while the binding is disabled). */
function composed(inputs: TensorInfo[], compose: (...ts: tf.Tensor[]) => tf.Tensor): TensorInfo {
  return tf.tidy(() => compose(...inputs.map(wrap)));
}

function nhwc(shape: number[]): [number, number, number] | null {
  return shape.length === 4 ? [shape[0]!, shape[1]! * shape[2]!, shape[3]!] : null;
}

const instanceNormKernel: KernelFunc = (args) => {
  const { x } = args.inputs as { x: TensorInfo };
  const { epsilon } = args.attrs as { epsilon: number };
  const [N, HW, C] = nhwc(x.shape) ?? [0, 0, 0];
  if (!native) return composed([x], (t) => instanceNormComposed(t, epsilon));
  return must(
    withOutput(args.backend as WasmBackendLike, x.shape, [x], (heap, [xo], y) =>
      native!.instanceNorm(heap, Float64Array.of(0, N, HW, C, xo!, -1, y, epsilon)),
    ),
    'instance norm',
  );
};

const instanceNormGradKernel: KernelFunc = (args) => {
  const { dy, x } = args.inputs as { dy: TensorInfo; x: TensorInfo };
  const { epsilon } = args.attrs as { epsilon: number };
  const [N, HW, C] = nhwc(x.shape) ?? [0, 0, 0];
  if (!native) return composed([dy, x], (g, t) => instanceNormGradComposed(g, t, epsilon));
  return must(
    withOutput(args.backend as WasmBackendLike, x.shape, [x, dy], (heap, [xo, g], dx) =>
      native!.instanceNorm(heap, Float64Array.of(1, N, HW, C, xo!, g!, dx, epsilon)),
    ),
    'instance norm gradient',
  );
};

const batchNormKernel: KernelFunc = (args) => {
  const ins = args.inputs as Record<'x' | 'gamma' | 'beta' | 'movingMean' | 'movingVariance', TensorInfo>;
  const { epsilon, decay } = args.attrs as { epsilon: number; decay: number };
  const [G, P, C] = nhwc(ins.x.shape) ?? [0, 0, 0];
  const inputs = [ins.x, ins.gamma, ins.beta, ins.movingMean, ins.movingVariance];
  if (!native?.batchNorm) return tf.tidy(() => batchNormComposed(...(inputs.map(wrap) as Five), epsilon, decay));
  return must(
    withOutputs(args.backend as WasmBackendLike, [ins.x.shape, [C], [C]], 'float32', inputs, (heap, i, o) =>
      native!.batchNorm!(heap, Float64Array.of(0, G, P, C, ...i, ...o, epsilon, decay)),
    ),
    'batch norm',
  );
};
type Five = [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];

const batchNormGradKernel: KernelFunc = (args) => {
  const { dy, x, gamma } = args.inputs as { dy: TensorInfo; x: TensorInfo; gamma: TensorInfo };
  const { epsilon, want } = args.attrs as { epsilon: number; want: 0 | 1 };
  const [G, P, C] = nhwc(x.shape) ?? [0, 0, 0];
  if (!native?.batchNorm) return composed([dy, x, gamma], (g, t, gm) => batchNormGradComposed(g, t, gm, epsilon, want));
  return must(
    withOutput(args.backend as WasmBackendLike, want === 0 ? x.shape : [C], [x, dy, gamma], (heap, i, o) =>
      native!.batchNorm!(heap, Float64Array.of(1, G, P, C, ...i, want === 0 ? o : -1, want === 1 ? o : -1, epsilon)),
    ),
    'batch norm gradient',
  );
};

const mirrorPadGradKernel: KernelFunc = (args) => {
  const { dy } = args.inputs as { dy: TensorInfo };
  const { paddings, mode } = args.attrs as { paddings: Array<[number, number]>; mode: string };
  const xShape = dy.shape.map((d, i) => d - paddings[i]![0] - paddings[i]![1]);
  const p = mirrorPadParams(xShape, paddings, mode);
  if (!p) throw new Error(`${MIRROR_PAD_GRAD}: rank-4 padding of H and W only`);
  if (!native) return composed([dy], (g) => mirrorPadGrad(g, paddings, mode as 'reflect'));
  return must(
    withOutput(args.backend as WasmBackendLike, xShape, [dy], (heap, [g], dx) =>
      native!.mirrorPad(heap, Float64Array.of(1, ...p, dx, g!)),
    ),
    'mirror pad gradient',
  );
};

const minibatchStddevKernel: KernelFunc = (args) => {
  const { x } = args.inputs as { x: TensorInfo };
  const { groupSize } = args.attrs as { groupSize: number };
  const [B, F] = x.shape as [number, number];
  if (!native?.minibatchStddev) return composed([x], (t) => minibatchStddevComposed(t as tf.Tensor2D, groupSize));
  return must(
    withOutput(args.backend as WasmBackendLike, [B, F + 1], [x], (heap, [xo], y) =>
      native!.minibatchStddev!(heap, Float64Array.of(0, B, F, groupSize, xo!, -1, y)),
    ),
    'minibatch stddev',
  );
};

const minibatchStddevGradKernel: KernelFunc = (args) => {
  const { dy, x } = args.inputs as { dy: TensorInfo; x: TensorInfo };
  const { groupSize } = args.attrs as { groupSize: number };
  const [B, F] = x.shape as [number, number];
  if (!native?.minibatchStddev)
    return composed([dy, x], (g, t) => minibatchStddevGradComposed(g as tf.Tensor2D, t as tf.Tensor2D, groupSize));
  return must(
    withOutput(args.backend as WasmBackendLike, x.shape, [x, dy], (heap, [xo, g], dx) =>
      native!.minibatchStddev!(heap, Float64Array.of(1, B, F, groupSize, xo!, g!, dx)),
    ),
    'minibatch stddev gradient',
  );
};

const activationGradKernel: KernelFunc = (args) => {
  const { dy, v } = args.inputs as { dy: TensorInfo; v: TensorInfo };
  const { op, alpha } = args.attrs as { op: number; alpha: number };
  const n = tf.util.sizeFromShape(dy.shape);
  if (!native) return composed([dy, v], (g, t) => activationGradComposed(op, g, t, alpha));
  return must(
    withOutput(args.backend as WasmBackendLike, dy.shape, [dy, v], (heap, [g, vo], dx) =>
      native!.actGrad(heap, Float64Array.of(op, n, g!, vo!, dx, alpha)),
    ),
    'activation gradient',
  );
};

/**
 * Loads `@gantry/native` and wraps the wasm conv/matmul kernels with it. Call after registerWasmKernels and
 * before tf.setBackend('wasm') (replacements keep the original setupFunc). GANTRY_NATIVE=0 turns it off.
 */
export function registerNativeKernels(): NativeKernelsInfo {
  if (state) return state;
  const { binding, why } = loadBinding();
  if (!binding) {
    state = { version: null, threads: 1, why };
    return state;
  }
  native = binding;
  setNativeUpdates(typeof binding.update === 'function');
  const threads = binding.setThreads(nativeThreadCount());
  state = { version: binding.version(), threads, why: '' };
  for (const name of ['Conv2D', 'FusedConv2D']) replaceWasmKernel(name, conv2D);
  replaceWasmKernel('Conv2DBackpropInput', conv2DBackpropInput);
  replaceWasmKernel('Conv2DBackpropFilter', conv2DBackpropFilter);
  for (const name of ['BatchMatMul', '_FusedMatMul']) replaceWasmKernel(name, matMul);
  replaceWasmKernel('Concat', concat);
  replaceWasmKernel('SplitV', splitV);
  if (typeof binding.binary === 'function') {
    for (const [name, op] of Object.entries(BINARY_OPS)) replaceWasmKernel(name, binary(op));
    for (const [name, op] of Object.entries(UNARY_OPS)) replaceWasmKernel(name, unary(op));
    replaceWasmKernel('Sum', reduce(false));
    replaceWasmKernel('Mean', reduce(true));
    replaceWasmKernel('MirrorPad', mirrorPadForward);
    replaceWasmKernel('Slice', sliceForward);
    replaceWasmKernel('PadV2', padForward);
    for (const [kernelName, kernelFunc] of [
      [INSTANCE_NORM, instanceNormKernel],
      [INSTANCE_NORM_GRAD, instanceNormGradKernel],
      [BATCH_NORM, batchNormKernel],
      [BATCH_NORM_GRAD, batchNormGradKernel],
      [MIRROR_PAD_GRAD, mirrorPadGradKernel],
      [ACTIVATION_GRAD, activationGradKernel],
      [MINIBATCH_STDDEV, minibatchStddevKernel],
      [MINIBATCH_STDDEV_GRAD, minibatchStddevGradKernel],
    ] as const) {
      if (tf.getKernel(kernelName, 'wasm') == null) tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc });
    }
  }
  if (typeof binding.update === 'function') {
    for (const [kernelName, kernelFunc] of [
      [ADAM_UPDATE, adamUpdate],
      [LERP, lerp],
    ] as const) {
      if (tf.getKernel(kernelName, 'wasm') == null) tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc });
    }
  }
  return state;
}

/** Sets the native kernels' thread count at run time (tests run the kernels split across threads); returns it. */
export function setNativeThreads(n: number): number {
  if (!native || !state?.version) return 1;
  state.threads = native.setThreads(n);
  return state.threads;
}

/** Turns the native path off or on again at run time (tests compare both paths in one process). */
export function setNativeEnabled(on: boolean): void {
  if (!state?.version) return;
  native = on ? loadBinding().binding : null;
  setNativeUpdates(native != null && typeof native.update === 'function');
}
