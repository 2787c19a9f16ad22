/**
 * Kernels that the TF.js 4.22 WebAssembly backend lacks for GAN training, and replacements for its slow
 * spots. Each kernel is composed of ops that the wasm backend has; ops called inside a kernel are not
 * recorded on the gradient tape (TF.js stops taping while a kernel runs), so gradients still come from
 * the kernel's registered gradient function.
 *
 * Supplied (missing in tfjs-backend-wasm 4.22):
 *  - Conv2DBackpropFilter: filter gradient of conv2d and of conv2dTranspose.
 *  - UnsortedSegmentSum: gradient of gather, i.e. of an embedding layer (cGAN labels).
 * Replaced (measured faster; the original kernel's setupFunc is kept):
 *  - Conv2DBackpropInput: input gradient of conv2d and the forward pass of conv2dTranspose.
 *  - BatchMatMul with transposeA/transposeB: explicit transposes, then the original kernel.
 *  - Sum and Mean over outer axes: a matmul with a row of ones.
 *  - FusedBatchNorm: (x − mean) · scale/√(var + ε) + offset as three broadcasting ops.
 *  - GatherV2 of whole rows (axis 0): one block copy per index.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';

type TensorInfo = tf.TensorInfo;
type KernelFunc = tf.KernelConfig['kernelFunc'];
type Pad = 'valid' | 'same' | number | [[number, number], [number, number], [number, number], [number, number]];
type Rounding = 'floor' | 'round' | 'ceil' | undefined;

const BACKEND = 'wasm';

/**
 * A Tensor view of a kernel input. Inputs are normally Tensors already (returned as is: tf.tidy does
 * not dispose tensors created outside it). A bare TensorInfo gets a new Tensor holding one more
 * reference to its data, which the enclosing tf.tidy releases.
 */
export function wrap(info: TensorInfo): tf.Tensor {
  if (info instanceof tf.Tensor && !info.isDisposed) return info;
  const t = tf.engine().makeTensorFromTensorInfo(info);
  tf.engine().backend.incRef(info.dataId);
  return t;
}

function pair(v: number | [number, number] | number[]): [number, number] {
  return typeof v === 'number' ? [v, v] : [v[0]!, v[1]!];
}

/** NCHW → NHWC for the rare caller that asks for channelsFirst (the wasm Conv2D is NHWC only). */
function toNHWC(t: tf.Tensor4D, dataFormat: string | undefined): tf.Tensor4D {
  return dataFormat === 'NCHW' ? tf.transpose(t, [0, 2, 3, 1]) : t;
}
function fromNHWC(t: tf.Tensor4D, dataFormat: string | undefined): tf.Tensor4D {
  return dataFormat === 'NCHW' ? tf.transpose(t, [0, 3, 1, 2]) : t;
}
function shapeNHWC(shape: number[], dataFormat: string | undefined): [number, number, number, number] {
  const [a, b, c, d] = shape as [number, number, number, number];
  return dataFormat === 'NCHW' ? [a, c, d, b] : [a, b, c, d];
}
function padNHWC(pad: Pad, dataFormat: string | undefined): Pad {
  if (Array.isArray(pad) && dataFormat === 'NCHW') {
    // explicit NCHW padding [[0,0],[0,0],[t,b],[l,r]] → NHWC [[0,0],[t,b],[l,r],[0,0]]
    return [pad[0], pad[2], pad[3], pad[1]];
  }
  return pad;
}

/**
 * dW[i,j,ci,co] = Σ_{n,oh,ow} xpad[n, oh·sh+i, ow·sw+j, ci] · dy[n,oh,ow,co], as ONE stride-1 'valid'
 * convolution without dilation: split the padded input into its sh·sw polyphase components
 * (xpad[:, a::sh, b::sw]), put (phase, ci) on the batch axis and n on the channel axis, and convolve
 * with dy as the filter ([Ho,Wo,n,co]). Output [(b,a,ci), Th, Tw, co] holds tap (i'·sh+a, j'·sw+b).
 * Only reshapes and fast (rank ≤ 3) transposes are used to move data: the wasm Transpose is very slow
 * for some rank-5/6 permutations, and a dilated convolution is about 2× slower than this.
 */
export function conv2DBackpropFilterImpl(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  filterShape: [number, number, number, number],
  strides: number | [number, number],
  pad: Pad,
  dimRoundingMode?: Rounding,
): tf.Tensor4D {
  const [kh, kw, ci, co] = filterShape;
  const info = tf.backend_util.computeConv2DInfo(
    x.shape,
    filterShape,
    strides,
    1,
    pad as 'same',
    dimRoundingMode,
    false,
    'channelsLast',
  );
  const { top, left } = info.padInfo;
  const [sh, sw] = [info.strideHeight, info.strideWidth];
  const [n, H, W] = x.shape;
  const [, Ho, Wo] = dy.shape;
  const Th = Math.ceil(kh / sh);
  const Tw = Math.ceil(kw / sw);
  const Hq = Ho - 1 + Th; // rows per phase
  const Wq = Wo - 1 + Tw;
  // Pad (or crop) x to exactly [n, Hq·sh, Wq·sw, ci] in padded coordinates.
  const bottom = Hq * sh - top - H;
  const right = Wq * sw - left - W;
  let xp: tf.Tensor4D = x;
  if (bottom < 0 || right < 0) {
    xp = tf.slice(xp, [0, 0, 0, 0], [n, Math.min(H, H + bottom), Math.min(W, W + right), ci]);
  }
  if (top > 0 || left > 0 || bottom > 0 || right > 0) {
    xp = tf.pad(xp, [
      [0, 0],
      [top, Math.max(0, bottom)],
      [left, Math.max(0, right)],
      [0, 0],
    ]);
  }
  // [n, Hq, sh, Wq, sw, ci] → [ci, Hq, sh, Wq, sw, n] → [sw, sh, ci, Hq, Wq, n]
  let t: tf.Tensor = tf.transpose(tf.reshape(xp, [n, Hq * sh * Wq * sw, ci]), [2, 1, 0]);
  if (sh > 1) t = tf.transpose(tf.reshape(t, [ci * Hq, sh, Wq * sw * n]), [1, 0, 2]);
  if (sw > 1) t = tf.transpose(tf.reshape(t, [sh * ci * Hq * Wq, sw, n]), [1, 0, 2]);
  const xb = tf.reshape(t, [sw * sh * ci, Hq, Wq, n]) as tf.Tensor4D;
  const dyT = tf.reshape(tf.transpose(tf.reshape(dy, [n, Ho * Wo, co]), [1, 0, 2]), [Ho, Wo, n, co]) as tf.Tensor4D;
  const out = tf.conv2d(xb, dyT, 1, 'valid'); // [(b, a, ci), Th, Tw, co]
  let dw = tf.reshape(tf.transpose(tf.reshape(out, [sw, sh, ci, Th, Tw, co]), [3, 1, 4, 0, 2, 5]), [
    Th * sh,
    Tw * sw,
    ci,
    co,
  ]) as tf.Tensor4D;
  if (Th * sh !== kh || Tw * sw !== kw) dw = tf.slice(dw, [0, 0, 0, 0], [kh, kw, ci, co]);
  return dw;
}

/**
 * Per spatial dimension of conv2DBackpropInput: output phase r' (output index h = m·s + r') reads the
 * filter taps r + s·t, with r = (r' + pad) mod s, from dy[m + δ(r') - t]. All phases are aligned to a
 * common tap count T and offset D so that one stride-1 convolution computes every phase.
 */
function phasePlan(H: number, s: number, k: number, pad: number) {
  const a = Math.floor(pad / s);
  const b = pad % s;
  const phases = Array.from({ length: s }, (_, rp) => {
    const r = (rp + b) % s;
    const delta = a + Math.floor((rp + b) / s);
    const taps = r < k ? Math.ceil((k - r) / s) : 0;
    return { r, delta, taps };
  });
  const D = Math.max(...phases.map((p) => p.delta));
  const T = Math.max(1, ...phases.map((p) => p.taps + D - p.delta));
  const M = Math.ceil(H / s);
  /** Filter row u of output phase rp: the index into W, or -1 for a zero tap. */
  const tap = (rp: number, u: number): number => {
    const p = phases[rp]!;
    const t = T - 1 - u - D + p.delta;
    return t >= 0 && t < p.taps ? p.r + s * t : -1;
  };
  return { D, T, M, tap };
}

/**
 * dx = conv2dTranspose(dy, W) as ONE stride-1 convolution of dy with a filter that holds, for every
 * output phase (r', c') of the stride, the flipped sub-filter W[r::s, c::s] (in/out channels swapped),
 * followed by a depth-to-space shuffle (reshape + transpose). Same arithmetic as the direct method, but
 * done by the fast XNNPACK Conv2D of the wasm backend; no strided slices, no zero-insertion.
 */
export function conv2DBackpropInputImpl(
  inputShape: [number, number, number, number],
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  strides: number | [number, number],
  pad: Pad,
  dimRoundingMode?: Rounding,
): tf.Tensor4D {
  const [N, H, W, ci] = inputShape;
  const [kh, kw, , co] = filter.shape;
  const info = tf.backend_util.computeConv2DInfo(
    inputShape,
    filter.shape,
    strides,
    1,
    pad as 'same',
    dimRoundingMode,
    false,
    'channelsLast',
  );
  const [sh, sw] = [info.strideHeight, info.strideWidth];
  // Compute e extra leading rows (cropped at the end) so that the padding seen by the phases is a
  // multiple of the stride: then every phase has the same alignment and ceil(k/s) taps (no zero taps).
  const eh = info.padInfo.top % sh;
  const ew = info.padInfo.left % sw;
  const ph = phasePlan(H + eh, sh, kh, info.padInfo.top - eh);
  const pw = phasePlan(W + ew, sw, kw, info.padInfo.left - ew);
  // Filter [Th, Tw, co, (r', c', ci)], built on the JS side (filters are small; gather/reverse/strided
  // slices on the wasm backend cost more than this loop).
  const w = filter.dataSync() as Float32Array; // [kh, kw, ci, co]
  const P = sh * sw;
  const outC = P * ci;
  const f = new Float32Array(ph.T * pw.T * co * outC);
  for (let u = 0; u < ph.T; u++) {
    for (let v = 0; v < pw.T; v++) {
      const base = (u * pw.T + v) * co * outC;
      for (let rp = 0; rp < sh; rp++) {
        const i = ph.tap(rp, u);
        if (i < 0) continue;
        for (let cp = 0; cp < sw; cp++) {
          const j = pw.tap(cp, v);
          if (j < 0) continue;
          const src = (i * kw + j) * ci * co;
          const chan = (rp * sw + cp) * ci;
          for (let c = 0; c < ci; c++) {
            for (let o = 0; o < co; o++) f[base + o * outC + chan + c] = w[src + c * co + o]!;
          }
        }
      }
    }
  }
  const F = tf.tensor4d(f, [ph.T, pw.T, co, outC]);
  // Output m of the convolution reads dy[m + D - T + 1 + u]: pad (or crop) dy accordingly.
  const [, Ho, Wo] = dy.shape;
  let top = ph.T - 1 - ph.D;
  let left = pw.T - 1 - pw.D;
  const cropTop = Math.max(0, -top);
  const cropLeft = Math.max(0, -left);
  top = Math.max(0, top);
  left = Math.max(0, left);
  // rows of dy read: up to M - 1 + D (exclusive bound M + D)
  const needH = Math.min(Ho, ph.M + ph.D) - cropTop;
  const needW = Math.min(Wo, pw.M + pw.D) - cropLeft;
  let x = dy;
  if (cropTop > 0 || cropLeft > 0 || needH < Ho || needW < Wo) {
    x = tf.slice(dy, [0, cropTop, cropLeft, 0], [N, Math.max(0, needH), Math.max(0, needW), co]);
  }
  const bottom = ph.M + ph.T - 1 - x.shape[1] - top;
  const right = pw.M + pw.T - 1 - x.shape[2] - left;
  let y = tf.conv2d(
    x,
    F,
    1,
    [
      [0, 0],
      [top, Math.max(0, bottom)],
      [left, Math.max(0, right)],
      [0, 0],
    ],
    'NHWC',
  ); // [N, M, Mw, P·ci]
  if (y.shape[1] !== ph.M || y.shape[2] !== pw.M) y = tf.slice(y, [0, 0, 0, 0], [N, ph.M, pw.M, outC]);
  let out: tf.Tensor4D = y;
  if (P > 1) {
    out = tf.reshape(tf.transpose(tf.reshape(y, [N, ph.M, pw.M, sh, sw, ci]), [0, 1, 3, 2, 4, 5]), [
      N,
      ph.M * sh,
      pw.M * sw,
      ci,
    ]);
  }
  if (eh > 0 || ew > 0 || out.shape[1] !== H || out.shape[2] !== W) {
    out = tf.slice(out, [0, eh, ew, 0], [N, H, W, ci]);
  }
  return out;
}

/** out[s, ...] = Σ_{i: ids[i] = s} x[i, ...]; negative ids are dropped (as in TensorFlow). One matMul. */
export function unsortedSegmentSumImpl(x: tf.Tensor, segmentIds: tf.Tensor, numSegments: number): tf.Tensor {
  const n = segmentIds.size;
  const inner = x.shape.slice(segmentIds.rank);
  const ids = tf.reshape(segmentIds, [1, n]);
  const oneHotT = tf.cast(tf.equal(tf.expandDims(tf.range(0, numSegments, 1, 'int32'), 1), ids), 'float32'); // [S, n]
  const x2 = tf.reshape(x.dtype === 'float32' ? x : tf.cast(x, 'float32'), [n, -1]);
  const out = tf.reshape(tf.matMul(oneHotT, x2), [numSegments, ...inner]);
  return x.dtype === 'float32' ? out : tf.cast(out, x.dtype);
}

const conv2DBackpropFilterKernel: KernelFunc = ({ inputs, attrs }) => {
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const a = attrs as {
    strides: number | [number, number];
    pad: Pad;
    dataFormat?: string;
    dimRoundingMode?: Rounding;
    filterShape: [number, number, number, number];
  };
  return tf.tidy(() =>
    conv2DBackpropFilterImpl(
      toNHWC(wrap(x) as tf.Tensor4D, a.dataFormat),
      toNHWC(wrap(dy) as tf.Tensor4D, a.dataFormat),
      a.filterShape,
      a.strides,
      padNHWC(a.pad, a.dataFormat),
      a.dimRoundingMode,
    ),
  );
};

const conv2DBackpropInputKernel: KernelFunc = ({ inputs, attrs }) => {
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
  const a = attrs as {
    strides: number | [number, number];
    pad: Pad;
    dataFormat?: string;
    dimRoundingMode?: Rounding;
    inputShape: [number, number, number, number];
  };
  return tf.tidy(() =>
    fromNHWC(
      conv2DBackpropInputImpl(
        shapeNHWC(a.inputShape, a.dataFormat),
        toNHWC(wrap(dy) as tf.Tensor4D, a.dataFormat),
        wrap(filter) as tf.Tensor4D,
        a.strides,
        padNHWC(a.pad, a.dataFormat),
        a.dimRoundingMode,
      ),
      a.dataFormat,
    ),
  );
};

const unsortedSegmentSumKernel: KernelFunc = ({ inputs, attrs }) => {
  const { x, segmentIds } = inputs as { x: TensorInfo; segmentIds: TensorInfo };
  const { numSegments } = attrs as { numSegments: number };
  return tf.tidy(() => unsortedSegmentSumImpl(wrap(x), wrap(segmentIds), numSegments));
};

/** BatchMatMul with transpose flags: the wasm kernel is far slower with them than an explicit transpose. */
function batchMatMulKernel(original: KernelFunc): KernelFunc {
  return (args) => {
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const { transposeA, transposeB } = args.attrs as {
      transposeA: boolean;
      transposeB: boolean;
    };
    if (!transposeA && !transposeB) return original(args);
    const swapLast = (t: tf.Tensor) => {
      const perm = t.shape.map((_, i) => i);
      const r = perm.length;
      [perm[r - 2], perm[r - 1]] = [perm[r - 1]!, perm[r - 2]!];
      return tf.transpose(t, perm);
    };
    const aT = transposeA ? tf.tidy(() => swapLast(wrap(a))) : null;
    const bT = transposeB ? tf.tidy(() => swapLast(wrap(b))) : null;
    try {
      return original({
        ...args,
        inputs: { a: aT ?? a, b: bT ?? b },
        attrs: { ...args.attrs, transposeA: false, transposeB: false },
      });
    } finally {
      aT?.dispose();
      bT?.dispose();
    }
  };
}

/**
 * Tile that only repeats size-1 axes (a broadcast: batch-norm gradients, broadcastTo) as x + zeros;
 * the wasm Tile kernel is about 10× slower than that broadcasting add. Other tilings: original kernel.
 */
function tileKernel(original: KernelFunc): KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const { reps } = args.attrs as { reps: number[] };
    const isBroadcast = reps.length === x.shape.length && reps.every((r, i) => r === 1 || x.shape[i] === 1);
    if (!isBroadcast || (x.dtype !== 'float32' && x.dtype !== 'int32')) return original(args);
    const outShape = x.shape.map((d, i) => d * reps[i]!);
    return tf.tidy(() => tf.add(wrap(x), tf.zeros(outShape, x.dtype)));
  };
}

/**
 * Sum and Mean over a contiguous block of axes that is not innermost (batch-norm statistics and their gradients,
 * bias gradients: axes [0, 1, 2] of NHWC; instance norm: [1, 2]) as a matmul with a row of ones (1/n for Mean):
 * the wasm kernels reduce only innermost axes and transpose everything else first, which took a quarter of a
 * cGAN training step. Other reductions, and non-float inputs, go to the original kernel.
 */
function blockReduceKernel(original: KernelFunc, mean: boolean): KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const { axis, keepDims } = args.attrs as { axis: number | number[]; keepDims: boolean };
    const axes = tf.util.parseAxisParam(axis, x.shape).sort((a, b) => a - b);
    const first = axes[0] ?? 0;
    const last = axes[axes.length - 1] ?? -1;
    const contiguous = axes.length > 0 && axes.every((a, i) => a === first + i);
    const outer = tf.util.sizeFromShape(x.shape.slice(0, first));
    const rows = tf.util.sizeFromShape(x.shape.slice(first, last + 1));
    const inner = tf.util.sizeFromShape(x.shape.slice(last + 1));
    if (!contiguous || inner === 1 || rows <= 1 || outer * rows * inner === 0 || x.dtype !== 'float32')
      return original(args);
    const [reduced] = tf.backend_util.computeOutAndReduceShapes(x.shape, axes);
    const outShape = keepDims ? tf.backend_util.expandShapeToKeepDim(reduced, axes) : reduced;
    return tf.tidy(() => {
      const ones = tf.fill(outer === 1 ? [1, rows] : [outer, 1, rows], mean ? 1 / rows : 1);
      const block = tf.reshape(wrap(x), outer === 1 ? [rows, inner] : [outer, rows, inner]);
      return tf.reshape(tf.matMul(ones as tf.Tensor2D, block as tf.Tensor2D), outShape);
    });
  };
}

/**
 * Batch normalisation with given statistics as (x − mean) · s + offset, s = scale / √(variance + ε) computed per
 * channel first: three broadcasting passes, several times faster than the wasm FusedBatchNorm kernel, which batch
 * norm runs in every forward pass, training mode included (figures: docs/results/2026-11-23-performance.md).
 */
function batchNormKernel(original: KernelFunc): KernelFunc {
  return (args) => {
    const { x, mean, variance, offset, scale } = args.inputs as Record<string, TensorInfo | undefined>;
    const { varianceEpsilon } = args.attrs as { varianceEpsilon: number };
    if (!x || !mean || !variance || x.dtype !== 'float32') return original(args);
    return tf.tidy(() => {
      let s = tf.rsqrt(tf.add(wrap(variance), varianceEpsilon));
      if (scale) s = tf.mul(s, wrap(scale));
      const y = tf.mul(tf.sub(wrap(x), wrap(mean)), s);
      return offset ? tf.add(y, wrap(offset)) : y;
    });
  };
}

/** The parts of BackendWasm that kernels reading and writing its heap directly use (here and native-kernels.ts). */
export interface WasmBackendLike {
  wasm: { HEAPU8: Uint8Array };
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
  readSync(dataId: object): ArrayLike<number>;
}

/** Byte offset of a tensor's data in the wasm heap; null when it has none. */
export function offsetOf(backend: WasmBackendLike, t: TensorInfo): number | null {
  const d = backend.dataIdMap.get(t.dataId);
  return d && typeof d.memoryOffset === 'number' ? d.memoryOffset : null;
}

/**
 * GatherV2 along axis 0 (embedding lookups, per-class norm parameters) as one block copy per index: the wasm kernel
 * walks the whole table per row, and was a third of a cGAN step with class-conditional batch norm.
 * Other gathers, and any index out of range (the original kernel reports it), go to the original kernel.
 */
function gatherRowsKernel(original: KernelFunc): KernelFunc {
  return (args) => {
    const { x, indices } = args.inputs as { x: TensorInfo; indices: TensorInfo };
    const { axis, batchDims } = args.attrs as { axis: number; batchDims: number };
    const backend = args.backend as WasmBackendLike;
    if (
      batchDims !== 0 ||
      tf.util.parseAxisParam(axis, x.shape)[0] !== 0 ||
      (x.dtype !== 'float32' && x.dtype !== 'int32')
    )
      return original(args);
    const rows = x.shape[0]!;
    const index = Int32Array.from(backend.readSync(indices.dataId));
    if (index.some((r) => r < 0 || r >= rows)) return original(args);
    const row = tf.util.sizeFromShape(x.shape.slice(1));
    const out = backend.makeOutput([...indices.shape, ...x.shape.slice(1)], x.dtype);
    // The heap is read after allocating: allocation may grow (replace) its buffer.
    const heap = new Int32Array(backend.wasm.HEAPU8.buffer); // 4-byte elements: float32 and int32 alike
    const from = offsetOf(backend, x)! / 4;
    const to = offsetOf(backend, out)! / 4;
    for (const [i, r] of index.entries()) heap.copyWithin(to + i * row, from + r * row, from + (r + 1) * row);
    return out;
  };
}

/**
 * The wasm Conv2D/FusedConv2D/depthwise kernels give wrong results for padding 'same' when a stride is
 * larger than the (dilated) filter in that dimension (e.g. a 1×1 conv with stride 2): XNNPACK's own
 * SAME-padding rule is used there. Passing TF.js's padding explicitly gives the right answer.
 */
function samePadFixKernel(original: KernelFunc, depthwise: boolean): KernelFunc {
  return (args) => {
    const attrs = args.attrs as {
      pad: Pad;
      strides: number | [number, number];
      dilations?: number | [number, number];
      dimRoundingMode?: Rounding;
      dataFormat?: string;
    };
    if (attrs.pad !== 'same' || (attrs.dataFormat ?? 'NHWC') !== 'NHWC') return original(args);
    const { x, filter } = args.inputs as { x: TensorInfo; filter: TensorInfo };
    const [sh, sw] = pair(attrs.strides);
    const [dh, dw] = pair(attrs.dilations ?? 1);
    const [kh, kw] = filter.shape as [number, number];
    if (sh <= (kh - 1) * dh + 1 && sw <= (kw - 1) * dw + 1) return original(args);
    const info = tf.backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number],
      filter.shape as [number, number, number, number],
      attrs.strides,
      attrs.dilations ?? 1,
      'same',
      attrs.dimRoundingMode,
      depthwise,
      'channelsLast',
    );
    const { top, bottom, left, right } = info.padInfo;
    const pad: Pad = [
      [0, 0],
      [top, bottom],
      [left, right],
      [0, 0],
    ];
    return original({
      ...args,
      attrs: { ...args.attrs, pad } as tf.NamedAttrMap,
    });
  };
}

/**
 * Identity, and Cast to the dtype a tensor already has, as a shared reference (the cpu backend's way; wasm's
 * Reshape already shares) instead of wasm's copy. It is about memory more than time: TF.js saves every tensor a
 * gradient needs as `clone(t)`, i.e. an Identity, so with the copying kernel each taped activation was held
 * twice (part of why the 256×256 CycleGAN step ran out of the 4 GB wasm heap). Sharing is safe because no
 * wasm kernel writes into its inputs (variables are updated by swapping data, not in place).
 */
function sharingKernel(original: KernelFunc): KernelFunc {
  return (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    const dtype = (args.attrs as { dtype?: tf.DataType } | undefined)?.dtype ?? x.dtype;
    if (dtype !== x.dtype || x.dtype === 'string') return original(args);
    (args.backend as { incRef(id: object): void }).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype };
  };
}

/** Which kernels to register; all on by default. Exposed for tests and measurements. */
export interface WasmKernelOptions {
  /** Replace the wasm Conv2DBackpropInput (default true). */
  replaceConv2DBackpropInput?: boolean;
  /** Replace BatchMatMul with transpose flags (default true). */
  replaceBatchMatMul?: boolean;
  /** Replace Tile of size-1 axes by a broadcasting add (default true). */
  replaceTile?: boolean;
  /** Share the input's data in Identity and same-dtype Cast instead of copying it (default true). */
  shareIdentity?: boolean;
  /** Sum and Mean over non-innermost axes as matmuls (default true). */
  replaceReductions?: boolean;
  /** FusedBatchNorm as broadcasting ops (default true). */
  replaceBatchNorm?: boolean;
  /** GatherV2 along axis 0 as block copies (default true). */
  replaceGather?: boolean;
}

let registered = false;

/**
 * Replaces a registered 'wasm' kernel by `make(original)`, keeping the original's setupFunc and disposeFunc
 * (they run when the backend starts). No-op when the kernel is not registered.
 */
export function replaceWasmKernel(kernelName: string, make: (original: KernelFunc) => KernelFunc): void {
  const original = tf.getKernel(kernelName, BACKEND);
  if (original == null) return;
  tf.unregisterKernel(kernelName, BACKEND);
  tf.registerKernel({
    kernelName,
    backendName: BACKEND,
    kernelFunc: make(original.kernelFunc),
    ...(original.setupFunc ? { setupFunc: original.setupFunc } : {}),
    ...(original.disposeFunc ? { disposeFunc: original.disposeFunc } : {}),
  });
}

/**
 * Registers the missing and replacement kernels for 'wasm'. Call BEFORE tf.setBackend('wasm') (a
 * replaced kernel keeps the original's setupFunc, which runs when the backend starts). Idempotent.
 */
export function registerWasmKernels(opts: WasmKernelOptions = {}): void {
  if (registered) return;
  registered = true;
  const add = (kernelName: string, kernelFunc: KernelFunc) => {
    if (tf.getKernel(kernelName, BACKEND) == null) tf.registerKernel({ kernelName, backendName: BACKEND, kernelFunc });
  };
  const replace = replaceWasmKernel;
  add('Conv2DBackpropFilter', conv2DBackpropFilterKernel);
  add('UnsortedSegmentSum', unsortedSegmentSumKernel);
  if (opts.replaceConv2DBackpropInput !== false) replace('Conv2DBackpropInput', () => conv2DBackpropInputKernel);
  if (opts.replaceBatchMatMul !== false) replace('BatchMatMul', batchMatMulKernel);
  if (opts.replaceTile !== false) replace('Tile', tileKernel);
  if (opts.shareIdentity !== false) {
    replace('Identity', sharingKernel);
    replace('Cast', sharingKernel);
  }
  if (opts.replaceReductions !== false) {
    replace('Sum', (k) => blockReduceKernel(k, false));
    replace('Mean', (k) => blockReduceKernel(k, true));
  }
  if (opts.replaceBatchNorm !== false) replace('FusedBatchNorm', batchNormKernel);
  if (opts.replaceGather !== false) replace('GatherV2', gatherRowsKernel);
  replace('Conv2D', (k) => samePadFixKernel(k, false));
  replace('FusedConv2D', (k) => samePadFixKernel(k, false));
  replace('DepthwiseConv2dNative', (k) => samePadFixKernel(k, true));
  replace('FusedDepthwiseConv2D', (k) => samePadFixKernel(k, true));
}

/** Kernels this module supplies or replaces for 'wasm' (for the log line and docs). */
export const SUPPLIED_WASM_KERNELS = ['Conv2DBackpropFilter', 'UnsortedSegmentSum'] as const;
export const REPLACED_WASM_KERNELS = [
  'Conv2DBackpropInput',
  'BatchMatMul',
  'Tile',
  'Identity',
  'Cast',
  'Sum',
  'Mean',
  'FusedBatchNorm',
  'GatherV2',
  'Conv2D',
  'FusedConv2D',
  'DepthwiseConv2dNative',
  'FusedDepthwiseConv2D',
] as const;
