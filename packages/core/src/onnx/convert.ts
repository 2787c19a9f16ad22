/**
 * A Gantry (TF.js layers) network → an ONNX model, layer by layer.
 *
 * Layout: images enter and leave the ONNX model as NCHW ([batch, channels, height, width]), as PyTorch and most ONNX
 * runtimes expect, so an imported reference generator keeps its PyTorch interface. Inside, every rank-4 value is
 * NCHW and each layer's channel axis (TF.js's last) is mapped to axis 1; rank-2 and rank-3 values keep TF.js's
 * layout, and a reshape or flatten between the two transposes to NHWC first, so it orders elements as TF.js does.
 *
 * Batch norm has two forms. Eval mode (running statistics) is ONNX BatchNormalization. The reference's test mode
 * (and `translate`'s default) normalises by the batch's own statistics: ONNX's BatchNormalization computes those
 * only with training_mode, which inference runtimes do not implement, so it is written out as ReduceMean over N, H
 * and W, Sub, Mul, ReduceMean (the biased variance, as PyTorch and TF.js use), Add ε, Sqrt, Div, then γ and β.
 * Dropout is Identity in eval mode and ONNX Dropout with training_mode true in test mode (a fresh mask per run).
 */
import type * as tf from '@tensorflow/tfjs';
import { GantryError } from '../errors.js';
import { type Dim, GraphBuilder } from './graph.js';

/** A layer that has no ONNX mapping (named in the message; nothing is written). */
export class OnnxMappingError extends GantryError {}

export interface OnnxConvertOptions {
  /**
   * Batch norm by the batch's own statistics and dropout on (the reference's default test mode, `translate`'s
   * default); false: running statistics, no dropout (eval mode, `model.predict`).
   */
  batchStatistics?: boolean;
  /** Leave the input's height and width open (fully convolutional networks). */
  dynamicSize?: boolean;
  /** Names of the graph inputs, in the model's input order (default: the TF.js input layers' names). */
  inputNames?: string[];
  outputName?: string;
  /** `metadata_props` of the model (values as strings). */
  metadata?: Record<string, string>;
  docString?: string;
}

type Shape = (number | null)[];
/** A value of the graph: its ONNX name and its TF.js shape (NHWC for rank 4; stored NCHW). */
interface Val {
  name: string;
  shape: Shape;
}

type Json = Record<string, unknown>;

const INT64_MAX = 2 ** 62; // "to the end" for Slice (exact in a double, larger than any axis)

/** The weight of `layer` named `suffix` (TF.js names weights `<layer>/<suffix>`), as floats, or undefined. */
function weight(layer: tf.layers.Layer, suffix: string): { data: Float32Array; shape: number[] } | undefined {
  const w = layer.weights.find((v) => v.originalName.endsWith(`/${suffix}`));
  if (!w) return undefined;
  return { data: w.read().dataSync() as Float32Array, shape: w.shape as number[] };
}

function requireWeight(layer: tf.layers.Layer, suffix: string) {
  const w = weight(layer, suffix);
  if (!w) throw new Error(`ONNX export: layer ${layer.name} has no ${suffix}`);
  return w;
}

/** `data` of `shape` with its axes permuted by `perm` (out axis i = in axis perm[i]). */
export function transposeData(data: Float32Array, shape: number[], perm: number[]): Float32Array {
  const rank = shape.length;
  const outShape = perm.map((p) => shape[p]!);
  const inStrides = new Array<number>(rank);
  let s = 1;
  for (let i = rank - 1; i >= 0; i--) {
    inStrides[i] = s;
    s *= shape[i]!;
  }
  const strides = perm.map((p) => inStrides[p]!);
  const out = new Float32Array(data.length);
  const idx = new Array<number>(rank).fill(0);
  for (let o = 0; o < out.length; o++) {
    let src = 0;
    for (let k = 0; k < rank; k++) src += idx[k]! * strides[k]!;
    out[o] = data[src]!;
    for (let k = rank - 1; k >= 0; k--) {
      if (++idx[k]! < outShape[k]!) break;
      idx[k] = 0;
    }
  }
  return out;
}

/** TF.js axis `axis` of a rank-`rank` value → the ONNX axis (rank 4: NHWC → NCHW). */
function onnxAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  return rank === 4 ? [0, 2, 3, 1][a]! : a;
}

const pair = (v: unknown): [number, number] => (Array.isArray(v) ? [v[0], v[1] ?? v[0]] : [v as number, v as number]);

class Converter {
  readonly g = new GraphBuilder();
  constructor(private readonly o: OnnxConvertOptions) {}

  /** A rank-4 value in NHWC order (for reshape/flatten), or the value itself. */
  private nhwc(v: Val): string {
    return v.shape.length === 4 ? this.g.op('Transpose', [v.name], { perm: [0, 2, 3, 1] }) : v.name;
  }

  private activation(x: string, act: string, layer: string): string {
    switch (act) {
      case 'linear':
        return x;
      case 'relu':
        return this.g.op('Relu', [x]);
      case 'tanh':
        return this.g.op('Tanh', [x]);
      case 'sigmoid':
        return this.g.op('Sigmoid', [x]);
      default:
        throw new OnnxMappingError(
          `cannot export to ONNX: layer ${layer} has activation '${act}', which has no mapping`,
        );
    }
  }

  private conv(layer: tf.layers.Layer, c: Json, x: Val, transposed: boolean): string {
    const [kh, kw] = pair(c.kernelSize);
    const [sh, sw] = pair(c.strides ?? 1);
    const dil = pair(c.dilationRate ?? 1);
    if (dil[0] !== 1 || dil[1] !== 1)
      throw new OnnxMappingError(`cannot export to ONNX: layer ${layer.name} is dilated`);
    if (c.dataFormat === 'channelsFirst')
      throw new OnnxMappingError(`cannot export to ONNX: layer ${layer.name} is channels-first`);
    const k = requireWeight(layer, 'kernel');
    // TF.js kernels: conv [kh, kw, in, out] → ONNX [out, in, kh, kw]; transposed [kh, kw, out, in] → [in, out, kh, kw].
    const w = this.g.floats(`${layer.name}.weight`, transposeData(k.data, k.shape, [3, 2, 0, 1]), [
      k.shape[3]!,
      k.shape[2]!,
      kh,
      kw,
    ]);
    const b = weight(layer, 'bias');
    const inputs = [x.name, w, ...(b ? [this.g.floats(`${layer.name}.bias`, b.data, b.shape)] : [])];
    const attrs: Record<string, number[] | string | { int: number }> = {
      kernel_shape: [kh, kw],
      strides: [sh, sw],
      dilations: [1, 1],
      group: { int: 1 },
    };
    const same = c.padding === 'same';
    if (!transposed) {
      if (same)
        attrs.auto_pad = 'SAME_UPPER'; // TF's 'same': the odd pixel of padding at the bottom/right
      else attrs.pads = [0, 0, 0, 0];
      return this.g.op('Conv', inputs, attrs, layer.name);
    }
    // TF's 'same' transposed conv is the gradient of a 'same' conv: output = input × stride, and the k − s pixels of
    // the full output it drops are split as that conv pads (the odd one at the bottom/right); size-independent.
    const total = (kk: number, s: number) => Math.max(kk - s, 0);
    const [th, tw] = [total(kh, sh), total(kw, sw)];
    attrs.pads = same
      ? [Math.floor(th / 2), Math.floor(tw / 2), th - Math.floor(th / 2), tw - Math.floor(tw / 2)]
      : [0, 0, 0, 0];
    if (same && (kh < sh || kw < sw)) attrs.output_padding = [Math.max(sh - kh, 0), Math.max(sw - kw, 0)];
    return this.g.op('ConvTranspose', inputs, attrs, layer.name);
  }

  private batchNorm(layer: tf.layers.Layer, c: Json, x: Val, batchStats: boolean): string {
    const rank = x.shape.length;
    const axis = onnxAxis((c.axis as number) ?? -1, rank);
    if (axis !== 1) throw new OnnxMappingError(`cannot export to ONNX: layer ${layer.name} normalises axis ${c.axis}`);
    const channels = x.shape[rank - 1] as number;
    const eps = (c.epsilon as number) ?? 1e-3;
    const gamma = weight(layer, 'gamma')?.data ?? new Float32Array(channels).fill(1);
    const beta = weight(layer, 'beta')?.data ?? new Float32Array(channels);
    if (!batchStats) {
      const mean = requireWeight(layer, 'moving_mean').data;
      const variance = requireWeight(layer, 'moving_variance').data;
      const f = (n: string, d: Float32Array) => this.g.floats(`${layer.name}.${n}`, d, [channels]);
      return this.g.op(
        'BatchNormalization',
        [x.name, f('weight', gamma), f('bias', beta), f('running_mean', mean), f('running_var', variance)],
        { epsilon: eps },
        layer.name,
      );
    }
    // Test mode: the batch's own mean and biased variance over every axis but the channels'.
    const axes = rank === 4 ? [0, 2, 3] : [...Array(rank).keys()].filter((a) => a !== 1);
    const bshape = [channels, ...Array<number>(rank - 2).fill(1)];
    const g = this.g;
    const mean = g.op('ReduceMean', [x.name], { axes, keepdims: { int: 1 } });
    const d = g.op('Sub', [x.name, mean]);
    const variance = g.op('ReduceMean', [g.op('Mul', [d, d])], { axes, keepdims: { int: 1 } });
    const std = g.op('Sqrt', [g.op('Add', [variance, g.floats(`${layer.name}.eps`, [eps], [])])]);
    const y = g.op('Div', [d, std]);
    const scaled = g.op('Mul', [y, g.floats(`${layer.name}.weight`, gamma, bshape)]);
    return g.op('Add', [scaled, g.floats(`${layer.name}.bias`, beta, bshape)], {}, layer.name);
  }

  private dropout(layer: tf.layers.Layer, c: Json, x: Val, active: boolean): string {
    if (!active) return this.g.op('Identity', [x.name], {}, layer.name);
    const ratio = this.g.floats(`${layer.name}.ratio`, [c.rate as number], []);
    return this.g.op('Dropout', [x.name, ratio, this.g.bool(`${layer.name}.training_mode`, true)], {}, layer.name);
  }

  /** The ONNX nodes of one call of `layer` on `ins`; returns the output's name. */
  layer(layer: tf.layers.Layer, cls: string, c: Json, ins: Val[]): string {
    const g = this.g;
    const x = ins[0]!;
    const stats = this.o.batchStatistics ?? false;
    switch (cls) {
      case 'Conv2D':
        return this.activation(this.conv(layer, c, x, false), c.activation as string, layer.name);
      case 'Conv2DTranspose':
        return this.activation(this.conv(layer, c, x, true), c.activation as string, layer.name);
      case 'Dense': {
        if (x.shape.length !== 2)
          throw new OnnxMappingError(
            `cannot export to ONNX: layer ${layer.name} (Dense) on a rank-${x.shape.length} input`,
          );
        const k = requireWeight(layer, 'kernel');
        const w = g.floats(`${layer.name}.weight`, k.data, k.shape);
        const b = weight(layer, 'bias');
        const y = b
          ? g.op('Gemm', [x.name, w, g.floats(`${layer.name}.bias`, b.data, b.shape)], {}, layer.name)
          : g.op('MatMul', [x.name, w], {}, layer.name);
        return this.activation(y, c.activation as string, layer.name);
      }
      case 'BatchNormalization':
        return this.batchNorm(layer, c, x, stats);
      case 'GantryBatchStatsNormalization':
        return this.batchNorm(layer, c, x, true);
      case 'InstanceNormalization': {
        const channels = x.shape[3] as number;
        const gamma = weight(layer, 'gamma')?.data ?? new Float32Array(channels).fill(1);
        const beta = weight(layer, 'beta')?.data ?? new Float32Array(channels);
        const s = g.floats(`${layer.name}.weight`, gamma, [channels]);
        const b = g.floats(`${layer.name}.bias`, beta, [channels]);
        return g.op('InstanceNormalization', [x.name, s, b], { epsilon: (c.epsilon as number) ?? 1e-5 }, layer.name);
      }
      case 'Dropout':
        return this.dropout(layer, c, x, stats);
      case 'GantryActiveDropout':
        return this.dropout(layer, c, x, true);
      case 'Activation':
        return g.op('Identity', [this.activation(x.name, c.activation as string, layer.name)], {}, layer.name);
      case 'LeakyReLU':
        return g.op('LeakyRelu', [x.name], { alpha: (c.alpha as number) ?? 0.3 }, layer.name);
      case 'Concatenate':
        return g.op(
          'Concat',
          ins.map((v) => v.name),
          { axis: { int: onnxAxis((c.axis as number) ?? -1, x.shape.length) } },
          layer.name,
        );
      case 'Add':
        return g.op(
          ins.length === 2 ? 'Add' : 'Sum',
          ins.map((v) => v.name),
          {},
          layer.name,
        );
      case 'ZeroPadding2D': {
        const [[t, bo], [l, r]] = c.padding as [[number, number], [number, number]];
        const pads = g.ints(`${layer.name}.pads`, [0, 0, t, l, 0, 0, bo, r]);
        return g.op('Pad', [x.name, pads], { mode: 'constant' }, layer.name);
      }
      case 'ReflectionPadding2D': {
        const p = c.padding as number;
        const pads = g.ints(`${layer.name}.pads`, [0, 0, p, p, 0, 0, p, p]);
        return g.op('Pad', [x.name, pads], { mode: 'reflect' }, layer.name);
      }
      case 'Cropping2D': {
        const [[t, bo], [l, r]] = c.cropping as [[number, number], [number, number]];
        const starts = g.ints(`${layer.name}.starts`, [t, l]);
        const ends = g.ints(`${layer.name}.ends`, [bo ? -bo : INT64_MAX, r ? -r : INT64_MAX]);
        return g.op('Slice', [x.name, starts, ends, g.ints(`${layer.name}.axes`, [2, 3])], {}, layer.name);
      }
      case 'Reshape': {
        const target = c.targetShape as number[];
        // [0, …]: the batch copied from the input; TF.js's element order is NHWC's.
        const flat = g.op('Reshape', [this.nhwc(x), g.ints(`${layer.name}.shape`, [0, ...target])]);
        return target.length === 3 ? g.op('Transpose', [flat], { perm: [0, 3, 1, 2] }, layer.name) : flat;
      }
      case 'Flatten':
        return g.op('Flatten', [this.nhwc(x)], { axis: { int: 1 } }, layer.name);
      case 'Embedding': {
        const e = requireWeight(layer, 'embeddings');
        const table = g.floats(`${layer.name}.weight`, e.data, e.shape);
        const index = g.op('Cast', [x.name], { to: { int: 7 } }); // INT64
        return g.op('Gather', [table, index], { axis: { int: 0 } }, layer.name);
      }
      case 'ClassConditionalAffine': {
        // y = γ[label] · x + β[label], per sample and channel.
        const index = g.op('Reshape', [g.op('Cast', [ins[1]!.name], { to: { int: 7 } }), g.ints('flat', [-1])]);
        const pick = (n: string) => {
          const w = requireWeight(layer, n);
          const rows = g.op('Gather', [g.floats(`${layer.name}.${n}`, w.data, w.shape), index], { axis: { int: 0 } });
          return x.shape.length === 4 ? g.op('Unsqueeze', [rows, g.ints('hw', [2, 3])]) : rows;
        };
        return g.op('Add', [g.op('Mul', [x.name, pick('gamma')]), pick('beta')], {}, layer.name);
      }
      case 'Dot': {
        const axes = [c.axes].flat() as number[];
        if (x.shape.length !== 2 || ins[1]!.shape.length !== 2 || axes.some((a) => a !== 1 && a !== -1) || c.normalize)
          throw new OnnxMappingError(
            `cannot export to ONNX: layer ${layer.name} (Dot) other than rank-2 inputs on axis 1`,
          );
        const prod = g.op('Mul', [x.name, ins[1]!.name]);
        return g.op('ReduceSum', [prod, g.ints('axis1', [1])], { keepdims: { int: 1 } }, layer.name);
      }
      default:
        throw new OnnxMappingError(
          `cannot export to ONNX: layer ${layer.name} (${cls}) has no ONNX mapping (supported: ${SUPPORTED.join(', ')})`,
        );
    }
  }
}

/** The TF.js layer classes with an ONNX mapping. */
export const SUPPORTED = [
  'Conv2D',
  'Conv2DTranspose',
  'Dense',
  'BatchNormalization',
  'InstanceNormalization',
  'Dropout',
  'Activation',
  'LeakyReLU',
  'Concatenate',
  'Add',
  'ZeroPadding2D',
  'ReflectionPadding2D',
  'Cropping2D',
  'Reshape',
  'Flatten',
  'Embedding',
  'ClassConditionalAffine',
  'Dot',
];

const ONNX_DIMS = (shape: Shape, names: string[]): Dim[] => {
  const dims = shape.map((d, i) => (d == null ? names[i]! : d));
  return dims.length === 4 ? [dims[0]!, dims[3]!, dims[1]!, dims[2]!] : dims;
};

/**
 * `model` as ONNX bytes. Throws OnnxMappingError naming the first layer without a mapping (before anything is
 * written). Reads the weights synchronously; creates no tensors.
 */
export function layersModelToOnnx(model: tf.LayersModel, o: OnnxConvertOptions = {}): Uint8Array {
  const cv = new Converter(o);
  const g = cv.g;
  const config = model.getConfig() as unknown as {
    layers: { name: string; className: string; config: Json; inboundNodes: unknown[][][] }[];
    inputLayers: [string, number, number][];
    outputLayers: [string, number, number][];
  };
  // Check every layer first, so the error names the first unmapped layer whatever the graph's order.
  for (const l of config.layers)
    if (l.className !== 'InputLayer' && !SUPPORTED.includes(l.className) && !l.className.startsWith('Gantry'))
      throw new OnnxMappingError(
        `cannot export ${model.name} to ONNX: layer ${l.name} (${l.className}) has no ONNX mapping`,
      );
  const values = new Map<string, Val>();
  const key = (name: string, node: number, tensor: number) => `${name}/${node}/${tensor}`;
  const inputNames = o.inputNames ?? config.inputLayers.map(([n]) => n);
  // The graph's inputs in the model's input order.
  config.inputLayers.forEach(([inputName], at) => {
    const l = config.layers.find((k) => k.name === inputName)!;
    const shape = [...(l.config.batchInputShape as Shape)];
    shape[0] = null;
    if (o.dynamicSize && shape.length === 4) shape[1] = shape[2] = null;
    const name = g.name(inputNames[at] ?? l.name);
    g.input(
      name,
      l.config.dtype === 'int32' ? 'int32' : 'float32',
      ONNX_DIMS(shape, ['batch', 'height', 'width', 'channels']),
    );
    values.set(key(l.name, 0, 0), { name, shape });
  });
  for (const l of config.layers) {
    if (l.className === 'InputLayer') continue;
    const layer = model.getLayer(l.name);
    l.inboundNodes.forEach((node, n) => {
      const ins = node.map(([name, nodeIdx, tensorIdx]) => {
        const v = values.get(key(name as string, nodeIdx as number, tensorIdx as number));
        if (!v) throw new Error(`ONNX export: ${l.name} reads ${name}, not yet converted`);
        return v;
      });
      const inShapes = ins.map((v) => v.shape);
      const outShape = layer.computeOutputShape(ins.length === 1 ? inShapes[0]! : inShapes) as Shape;
      const name = cv.layer(layer, l.className, l.config, ins);
      values.set(key(l.name, n, 0), { name, shape: outShape });
    });
  }
  const outputs = config.outputLayers;
  outputs.forEach(([name, node, tensor], i) => {
    const v = values.get(key(name, node, tensor))!;
    const outName = outputs.length === 1 ? (o.outputName ?? 'output') : `${o.outputName ?? 'output'}_${i}`;
    g.output(v.name, outName, ONNX_DIMS(v.shape, ['batch', 'height', 'width', 'channels']));
  });
  return g.encode({ graphName: model.name, docString: o.docString ?? '', metadata: o.metadata ?? {} });
}
