/**
 * What a single-input Keras-style layer takes from TF.js's call and build arguments, which may be lists. Browser-safe
 * (imports only TF.js); not part of the package's exports.
 */
import type * as tf from '@tensorflow/tfjs';

/** The (first) input tensor of a layer call. */
export const firstInput = (inputs: tf.Tensor | tf.Tensor[]): tf.Tensor => (Array.isArray(inputs) ? inputs[0]! : inputs);

/** The (first) input shape of a layer's build or computeOutputShape. */
export const firstShape = (inputShape: tf.Shape | tf.Shape[]): tf.Shape =>
  (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
