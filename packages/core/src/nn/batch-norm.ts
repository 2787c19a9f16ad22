/**
 * Batch normalisation with TF.js's BatchNormalization layer's config, weights and results, whose training path
 * runs as one native kernel forward, two and a sum backward, on the wasm backend with `@gantry/native`
 * (fused-ops.ts's batchNormTraining) instead of TF.js's composition of moments, batchNorm and the running averages'
 * updates, about 25 single-threaded kernels forward and 40 backward per layer. Inference, other backends and what
 * the fused path does not cover run TF.js's own code.
 *
 * It is registered under TF.js's own class name, 'BatchNormalization': saved models and checkpoints do not
 * change, load here as this class, and load in a browser as TF.js's layer. Browser-safe (imports only TF.js).
 */
import * as tf from '@tensorflow/tfjs';
import { batchNormTraining } from '../backend/fused-ops.js';
import { firstInput } from './layer-inputs.js';

type CallKwargs = Record<string, unknown>;
type LayerClass = new (config: Record<string, unknown>) => tf.layers.Layer;

// TF.js does not export its BatchNormalization class; its constructor is that of an instance.
const TfBatchNormalization = tf.layers.batchNormalization({}).constructor as LayerClass;

/** The fields of TF.js's BatchNormalization that its training path reads (set by its constructor and build). */
interface BatchNormFields {
  axis: number;
  momentum: number;
  epsilon: number;
  gamma: tf.LayerVariable | null;
  beta: tf.LayerVariable | null;
  movingMean: tf.LayerVariable;
  movingVariance: tf.LayerVariable;
}

/**
 * A call argument of every layer (TF.js hands a model's call arguments to each layer): the batch is this many
 * batches of equal size stacked along its first axis, which batch norm normalises each by its own statistics and
 * averages into its running statistics one after the other, as if each had run alone. D judges its real and its
 * fake images in one pass this way: the results of two passes, with half the kernel calls.
 */
export const BATCH_GROUPS = 'batchGroups';

/** The BATCH_GROUPS call argument (1 when absent), checked against the batch size. */
export function batchGroupsOf(kwargs: CallKwargs, batch: number): number {
  const groups = Number(kwargs[BATCH_GROUPS] ?? 1);
  if (!Number.isInteger(groups) || groups < 1 || batch % groups !== 0)
    throw new Error(`${BATCH_GROUPS} ${kwargs[BATCH_GROUPS]}: expected a whole number that divides the batch`);
  return groups;
}

export class BatchNormalization extends TfBatchNormalization {
  static className = 'BatchNormalization';

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: CallKwargs): tf.Tensor | tf.Tensor[] {
    const x = firstInput(inputs);
    if (kwargs.training !== true) return super.call(inputs, kwargs);
    const groups = batchGroupsOf(kwargs, x.shape[0]!);
    const f = this as unknown as BatchNormFields;
    const lastAxis = f.axis === -1 || f.axis === x.rank - 1;
    const running = { movingMean: f.movingMean.read(), movingVariance: f.movingVariance.read(), momentum: f.momentum };
    const fused =
      lastAxis && f.gamma != null && f.beta != null
        ? batchNormTraining(x, f.gamma.read(), f.beta.read(), running, f.epsilon, groups)
        : null;
    if (!fused) {
      if (groups === 1) return super.call(inputs, kwargs);
      // TF.js's own layer on each group in turn.
      return tf.tidy(() => tf.concat(tf.split(x, groups).map((part) => super.call(part, kwargs) as tf.Tensor)));
    }
    // The running averages exactly as TF.js updates them, a group at a time (in the kernel):
    // v ← v − (v − batch value) · (1 − momentum). A variable keeps its own reference to what it is given.
    f.movingMean.write(fused.movingMean);
    f.movingVariance.write(fused.movingVariance);
    tf.dispose([fused.movingMean, fused.movingVariance]);
    return fused.y;
  }
}
tf.serialization.registerClass(
  BatchNormalization as unknown as tf.serialization.SerializableConstructor<tf.serialization.Serializable>,
);

/** A batch-norm layer (this module's class) with TF.js's layer arguments. */
export function batchNormalization(args: Parameters<typeof tf.layers.batchNormalization>[0] = {}): tf.layers.Layer {
  return new BatchNormalization(args as Record<string, unknown>);
}
