/**
 * Conv2D and Dense with TF.js's layer configs, weights and results, whose backward pass computes only the
 * gradients it is asked for. TF.js's own layers run through `tf.fused.conv2d` / `tf.fused.matMul`, which in a
 * gradient scope use `customGrad`: it computes the gradient of every input whenever any is needed. So D's weight
 * gradients were computed (and thrown away) in every G update, and the input gradient of D's first layer in every
 * D update (docs/results/2026-12-01-dcgan-step.md). Here a layer with a bias runs the fused kernel under a
 * registered gradient whose parts are computed on demand, and one without runs `tf.conv2d` / `tf.matMul`, whose
 * TF.js gradients already are.
 *
 * Registered under TF.js's own class names, as batch-norm.ts is: saved models and checkpoints do not change, load
 * here as these classes, and load in a browser as TF.js's layers. Browser-safe (imports only TF.js).
 */
import * as tf from '@tensorflow/tfjs';
import { attrMap, attrsAs, fieldsOf, layerArgs, registerLayerClass } from '../backend/kernel-glue.js';
import { firstInput } from './layer-inputs.js';

type CallKwargs = Record<string, unknown>;
type LayerClass = new (config: Record<string, unknown>) => tf.layers.Layer;

// TF.js does not export its layer classes; their constructors are those of instances.
const TfConv2D = tf.layers.conv2d({ filters: 1, kernelSize: 1 }).constructor as LayerClass;
const TfDense = tf.layers.dense({ units: 1 }).constructor as LayerClass;

/** The fields of TF.js's convolution and dense layers that their `call` reads (set by constructor and build). */
interface LayerFields {
  kernel: tf.LayerVariable;
  bias: tf.LayerVariable | null;
  activation: { getClassName(): string };
}
interface ConvFields extends LayerFields {
  rank: number;
  strides: [number, number];
  padding: 'same' | 'valid' | 'causal';
  dataFormat: 'channelsFirst' | 'channelsLast';
  dilationRate: number | [number, number];
}

const FUSED_CONV = 'FusedConv2D';

interface FusedConvAttrs {
  strides: [number, number];
  pad: 'same' | 'valid';
  dataFormat: 'NHWC';
  dilations: [number, number];
  activation: 'linear';
}

/** conv2d(x, filter) + bias in one kernel, differentiable input by input. */
function conv2dWithBias(x: tf.Tensor4D, filter: tf.Tensor4D, bias: tf.Tensor, attrs: FusedConvAttrs): tf.Tensor4D {
  return tf.engine().runKernel(FUSED_CONV, { x, filter, bias }, attrMap(attrs)) as tf.Tensor4D;
}

/**
 * The gradient of the FusedConv2D kernel when it is run directly (TF.js's own fused op runs it inside `customGrad`,
 * untaped, so this does not change it). Only the plain case this module runs: NHWC, no dilation, linear.
 */
function registerFusedConvGradient(): void {
  if (tf.getGradient(FUSED_CONV) != null) return;
  tf.registerGradient({
    kernelName: FUSED_CONV,
    inputsToSave: ['x', 'filter'],
    gradFunc: (dy, saved, attrs) => {
      const [x, filter] = saved as [tf.Tensor4D, tf.Tensor4D];
      const { strides, pad, activation } = attrsAs<FusedConvAttrs>(attrs);
      if (activation !== 'linear')
        throw new Error(`FusedConv2D gradient: activation '${activation}' (expected linear)`);
      const g = dy as tf.Tensor4D;
      return {
        x: () => tf.conv2dTranspose(g, filter, x.shape, strides, pad),
        filter: () =>
          tf.engine().runKernel('Conv2DBackpropFilter', { x, dy: g }, {
            strides,
            pad,
            dataFormat: 'NHWC',
            filterShape: filter.shape,
          } as tf.NamedAttrMap) as tf.Tensor,
        bias: () => tf.sum(g, [0, 1, 2]),
      };
    },
  });
}
registerFusedConvGradient();

const isLinear = (f: LayerFields) => f.activation.getClassName() === 'linear';

export class Conv2D extends TfConv2D {
  static className = 'Conv2D';

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: CallKwargs): tf.Tensor | tf.Tensor[] {
    const f = fieldsOf<ConvFields>(this);
    const x = firstInput(inputs);
    const pad = f.padding;
    const dilated = [f.dilationRate].flat().some((d) => d !== 1);
    if (f.rank !== 2 || x.rank !== 4 || f.dataFormat !== 'channelsLast' || pad === 'causal' || dilated || !isLinear(f))
      return super.call(inputs, kwargs);
    return tf.tidy(() => {
      const filter = f.kernel.read() as tf.Tensor4D;
      if (!f.bias) return tf.conv2d(x as tf.Tensor4D, filter, f.strides, pad);
      const attrs: FusedConvAttrs = {
        strides: f.strides,
        pad,
        dataFormat: 'NHWC',
        dilations: [1, 1],
        activation: 'linear',
      };
      return conv2dWithBias(x as tf.Tensor4D, filter, f.bias.read(), attrs);
    });
  }
}
registerLayerClass(Conv2D);

export class Dense extends TfDense {
  static className = 'Dense';

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: CallKwargs): tf.Tensor | tf.Tensor[] {
    const f = fieldsOf<LayerFields>(this);
    const x = firstInput(inputs);
    if (x.rank !== 2 || !isLinear(f)) return super.call(inputs, kwargs);
    // A dense layer's output is small: its bias is added apart (its gradient is a sum over the batch).
    return tf.tidy(() => {
      const y = tf.matMul(x as tf.Tensor2D, f.kernel.read() as tf.Tensor2D);
      return f.bias ? tf.add(y, f.bias.read()) : y;
    });
  }
}
registerLayerClass(Dense);

/** A 2-D convolution layer (this module's class) with TF.js's layer arguments. */
export function conv2d(args: Parameters<typeof tf.layers.conv2d>[0]): tf.layers.Layer {
  return new Conv2D(layerArgs(args));
}

/** A dense layer (this module's class) with TF.js's layer arguments. */
export function dense(args: Parameters<typeof tf.layers.dense>[0]): tf.layers.Layer {
  return new Dense(layerArgs(args));
}
