/**
 * A small builder of ONNX graphs on the ONNX schema's generated protobuf classes (`onnx-proto`, protobufjs): nodes,
 * weights (initializers), inputs and outputs, then one `ModelProto` encoded to bytes. Names are made unique here.
 */
import onnxProto from 'onnx-proto';

export const { onnx } = onnxProto;

/** The operator set the exporter writes (ONNX 1.8, 2020: read by every maintained runtime). */
export const OPSET = 13;
/** IR version 7 goes with opset 13. */
const IR_VERSION = 7;

type AttrValue = number | number[] | string | { int: number } | { ints: number[] };

/** A dimension of a graph input or output: a size, or a name for a size given at run time. */
export type Dim = number | string;

export class GraphBuilder {
  readonly nodes: onnxProto.onnx.INodeProto[] = [];
  readonly initializers: onnxProto.onnx.ITensorProto[] = [];
  readonly inputs: onnxProto.onnx.IValueInfoProto[] = [];
  readonly outputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly used = new Set<string>();

  /** A fresh value name from `base`. */
  name(base: string): string {
    let n = base;
    for (let i = 1; this.used.has(n); i++) n = `${base}_${i}`;
    this.used.add(n);
    return n;
  }

  /** Adds a node; returns its output's name (one output). */
  op(type: string, inputs: string[], attrs: Record<string, AttrValue> = {}, base = type.toLowerCase()): string {
    const out = this.name(base);
    this.nodes.push({
      opType: type,
      name: out,
      input: inputs,
      output: [out],
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return out;
  }

  /** A float32 weight of `dims` (row-major, copied). */
  floats(base: string, data: Float32Array | number[], dims: number[]): string {
    const name = this.name(base);
    const f = Float32Array.from(data);
    this.initializers.push({
      name,
      dims,
      dataType: onnx.TensorProto.DataType.FLOAT,
      rawData: new Uint8Array(f.buffer, f.byteOffset, f.byteLength),
    });
    return name;
  }

  /** An int64 constant (shapes, axes, pads, slice bounds). */
  ints(base: string, values: number[]): string {
    const name = this.name(base);
    const v = BigInt64Array.from(values.map((x) => BigInt(x)));
    this.initializers.push({
      name,
      dims: [values.length],
      dataType: onnx.TensorProto.DataType.INT64,
      rawData: new Uint8Array(v.buffer),
    });
    return name;
  }

  /** A boolean scalar constant. */
  bool(base: string, value: boolean): string {
    const name = this.name(base);
    this.initializers.push({
      name,
      dims: [],
      dataType: onnx.TensorProto.DataType.BOOL,
      rawData: new Uint8Array([value ? 1 : 0]),
    });
    return name;
  }

  input(name: string, type: 'float32' | 'int32', dims: Dim[]): string {
    this.used.add(name);
    this.inputs.push(valueInfo(name, type, dims));
    return name;
  }

  /** Names `value` as the graph output `name` (an Identity node). */
  output(value: string, name: string, dims: Dim[]): void {
    this.used.add(name);
    this.nodes.push({ opType: 'Identity', name, input: [value], output: [name] });
    this.outputs.push(valueInfo(name, 'float32', dims));
  }

  /** The model as ONNX protobuf bytes. */
  encode(o: { graphName: string; docString: string; metadata: Record<string, string> }): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: IR_VERSION,
      producerName: 'gantry',
      producerVersion: '0.1.0',
      docString: o.docString,
      opsetImport: [{ domain: '', version: OPSET }],
      metadataProps: Object.entries(o.metadata).map(([key, value]) => ({ key, value })),
      graph: {
        name: o.graphName,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

function attribute(name: string, v: AttrValue): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (typeof v === 'number') return { name, type: T.FLOAT, f: v };
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
  if ('int' in v) return { name, type: T.INT, i: v.int };
  return { name, type: T.INTS, ints: v.ints };
}

function valueInfo(name: string, type: 'float32' | 'int32', dims: Dim[]): onnxProto.onnx.IValueInfoProto {
  const D = onnx.TensorProto.DataType;
  return {
    name,
    type: {
      tensorType: {
        elemType: type === 'float32' ? D.FLOAT : D.INT32,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

/** Reads an encoded model back (tests, and `describeOnnx`). */
export function decodeModel(bytes: Uint8Array): onnxProto.onnx.ModelProto {
  return onnx.ModelProto.decode(bytes);
}
