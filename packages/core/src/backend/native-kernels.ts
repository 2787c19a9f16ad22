/**
 * The wasm backend's convolutions and matmuls on oneDNN (`@gantry/native`, built when the machine has g++ and
 * Debian's libdnnl-dev). The wasm backend keeps every tensor in its WebAssembly heap, an ArrayBuffer: the native
 * code reads the inputs and writes the output there in place, so nothing is copied. Each kernel falls back to the
 * kernel it replaces (Gantry's wasm kernels) for what it does not handle: NCHW, non-float32, PReLU, a geometry
 * oneDNN rejects.
 */
import { createRequire } from 'node:module';
import type { NativeBinding } from '@gantry/native';
import * as tf from '@tensorflow/tfjs';
import { offsetOf, replaceWasmKernel, type WasmBackendLike } from './wasm-kernels.js';

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

function loadBinding(): { binding: NativeBinding | null; why: string } {
  // OpenMP threads that wait by spinning are ruinous when another process shares the cores (measured: a
  // CycleGAN step 2.6× slower on 2 threads than on 1 next to another training run); waiting passively costs
  // nothing measurable alone. Read by libgomp when the addon loads it, so set before the require.
  process.env.OMP_WAIT_POLICY ??= 'passive';
  try {
    const req = createRequire(import.meta.url);
    return req('@gantry/native') as { binding: NativeBinding | null; why: string };
  } catch (e) {
    return { binding: null, why: `@gantry/native not installed (${String((e as Error).message).split('\n')[0]})` };
  }
}

/**
 * Thread count for oneDNN: GANTRY_THREADS, else 1. Measured on 2 cores: a second thread made no training step
 * faster (CycleGAN 1.27 → 1.41 s, cGAN 0.20 → 0.23 s, pix2pix 0.42 → 0.43 s): once the convolutions are fast the
 * step is dominated by the wasm backend's single-threaded elementwise ops. Larger networks may gain from more.
 */
function nativeThreadCount(): number {
  const env = Number(process.env.GANTRY_THREADS);
  return Number.isInteger(env) && env > 0 ? env : 1;
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
    const a = args.attrs as unknown as ConvAttrs;
    const ins = args.inputs as {
      x: TensorInfo;
      filter: TensorInfo;
      bias?: TensorInfo;
      preluActivationWeights?: TensorInfo;
    };
    const act = ACTIVATIONS[a.activation ?? 'linear'];
    const biasOk = !ins.bias || tf.util.sizeFromShape(ins.bias.shape) === ins.filter.shape[3];
    if (!native || !nhwcOnly(a) || act == null || !biasOk || ins.preluActivationWeights) return original(args);
    const backend = args.backend as unknown as WasmBackendLike;
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
    const a = args.attrs as unknown as ConvAttrs;
    const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
    if (!native || !nhwcOnly(a) || !a.inputShape) return original(args);
    const backend = args.backend as unknown as WasmBackendLike;
    const geo = convGeometry(a.inputShape, filter.shape, { ...a, dilations: 1 });
    const out = withOutput(backend, a.inputShape, [dy, filter], (heap, [g, w], x) =>
      native!.conv(heap, Float64Array.of(1, x, w!, g!, -1, ...geo, 0, 0)),
    );
    return out ?? original(args);
  };
}

function conv2DBackpropFilter(original: KernelFunc): KernelFunc {
  return (args) => {
    const a = args.attrs as unknown as ConvAttrs;
    const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
    if (!native || !nhwcOnly(a) || !a.filterShape) return original(args);
    const backend = args.backend as unknown as WasmBackendLike;
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
    const at = args.attrs as unknown as {
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
    const backend = args.backend as unknown as WasmBackendLike;
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
    const parts = (args.inputs as unknown as TensorInfo[]).filter((t) => tf.util.sizeFromShape(t.shape) > 0);
    const { axis } = args.attrs as unknown as { axis: number | number[] };
    const dtype = parts[0]?.dtype;
    if (!native || parts.length < 2 || (dtype !== 'float32' && dtype !== 'int32')) return original(args);
    const ax = tf.util.parseAxisParam(axis, parts[0]!.shape)[0]!;
    const shape = tf.backend_util.computeOutShape(
      parts.map((t) => t.shape),
      ax,
    );
    const outer = tf.util.sizeFromShape(shape.slice(0, ax));
    const inner = (t: { shape: number[] }) => tf.util.sizeFromShape(t.shape.slice(ax));
    const out = withOutputs(args.backend as unknown as WasmBackendLike, [shape], dtype, parts, (heap, ins, [o]) =>
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
    const { numOrSizeSplits, axis } = args.attrs as unknown as { numOrSizeSplits: number | number[]; axis: number };
    if (!native || (x.dtype !== 'float32' && x.dtype !== 'int32')) return original(args);
    const ax = tf.util.parseAxisParam(axis, x.shape)[0]!;
    const sizes = tf.backend_util.prepareSplitSize(x, numOrSizeSplits, ax);
    const shapes = sizes.map((s) => x.shape.map((d, i) => (i === ax ? s : d)));
    const outer = tf.util.sizeFromShape(x.shape.slice(0, ax));
    const inner = (shape: number[]) => tf.util.sizeFromShape(shape.slice(ax));
    const outs = withOutputs(args.backend as unknown as WasmBackendLike, shapes, x.dtype, [x], (heap, [xo], outOffs) =>
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

/** Runs native `update` on `outputs` fresh tensors shaped like the inputs; `params(n, inOffsets, outOffsets)`. */
function updateOutputs(
  args: Parameters<KernelFunc>[0],
  inputs: TensorInfo[],
  outputs: number,
  params: (n: number, ins: number[], outs: number[]) => number[],
): TensorInfo[] {
  const shape = inputs[0]!.shape;
  const n = tf.util.sizeFromShape(shape);
  const backend = args.backend as unknown as WasmBackendLike;
  const outs = withOutputs(backend, Array(outputs).fill(shape), 'float32', inputs, (heap, ins, o) =>
    native!.update(heap, Float64Array.from(params(n, ins, o))),
  );
  // Only registered with the binding loaded, and only called while it is enabled: a failure here is a bug.
  if (!outs) throw new Error(`native update failed: ${nativeStats.lastError}`);
  return outs;
}

const adamUpdate: KernelFunc = (args) => {
  const { x, m, v, g } = args.inputs as { x: TensorInfo; m: TensorInfo; v: TensorInfo; g: TensorInfo };
  const a = args.attrs as unknown as AdamUpdateAttrs;
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
  const { beta } = args.attrs as unknown as { beta: number };
  return updateOutputs(args, [a, b], 1, (n, ins, outs) => [1, n, ...ins, ...outs, beta])[0]!;
};

/** Whether the one-pass update kernels can run now: on the wasm backend with the native binding enabled. */
export function nativeUpdatesAvailable(): boolean {
  return (
    native != null &&
    typeof native.update === 'function' &&
    tf.getBackend() === 'wasm' &&
    tf.getKernel(ADAM_UPDATE, 'wasm') != null
  );
}

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
  const threads = binding.setThreads(nativeThreadCount());
  state = { version: binding.version(), threads, why: '' };
  for (const name of ['Conv2D', 'FusedConv2D']) replaceWasmKernel(name, conv2D);
  replaceWasmKernel('Conv2DBackpropInput', conv2DBackpropInput);
  replaceWasmKernel('Conv2DBackpropFilter', conv2DBackpropFilter);
  for (const name of ['BatchMatMul', '_FusedMatMul']) replaceWasmKernel(name, matMul);
  replaceWasmKernel('Concat', concat);
  replaceWasmKernel('SplitV', splitV);
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

/** Turns the native path off or on again at run time (tests compare both paths in one process). */
export function setNativeEnabled(on: boolean): void {
  if (!state?.version) return;
  native = on ? loadBinding().binding : null;
}
