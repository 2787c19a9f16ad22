/**
 * Where Gantry's code meets the parts of TF.js that its typings leave loose or private: a kernel's attributes (typed
 * `NamedAttrMap`, an index signature), the attribute map handed to `runKernel`, a concatenation kernel's inputs (an
 * array TF.js passes as a map), fields that TF.js's classes keep private (a layer's kernel, Adam's moments, the
 * engine's tape state) and a layer class registered for serialisation. Each is one unchecked conversion here, so
 * the kernels, layers and optimiser that use them need no casts of their own.
 */
import * as tf from '@tensorflow/tfjs';

/** A kernel's attributes as the record the caller knows the kernel to receive. */
export function attrsAs<A extends object>(attrs: tf.NamedAttrMap | undefined): A {
  return (attrs ?? {}) as unknown as A;
}

/** A typed attribute record as the map `runKernel` and `registerKernel` take. */
export function attrMap(attrs: object): tf.NamedAttrMap {
  return attrs as unknown as tf.NamedAttrMap;
}

/** The inputs of a kernel that TF.js calls with an array (Concat, AddN) in place of a named map. */
export function inputList(inputs: tf.NamedTensorInfoMap): tf.TensorInfo[] {
  return inputs as unknown as tf.TensorInfo[];
}

/** The fields of a TF.js object that its typings keep private or protected, as the caller declares them. */
export function fieldsOf<F>(object: unknown): F {
  return object as F;
}

/** Registers a layer class under its `className`, for loading saved models. */
export function registerLayerClass(layer: abstract new (...args: never[]) => tf.layers.Layer): void {
  tf.serialization.registerClass(
    layer as unknown as tf.serialization.SerializableConstructor<tf.serialization.Serializable>,
  );
}

/** Layer arguments as the loose record TF.js's layer constructors take. */
export function layerArgs(args: object): Record<string, unknown> {
  return args as Record<string, unknown>;
}
