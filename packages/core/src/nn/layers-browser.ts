/**
 * Browser-safe entry for pages that load Gantry generators with `tf.loadLayersModel`: the custom layers (importing
 * this module registers them with tf.serialization) and running a generator at any image size. The package index
 * pulls in Node-only modules (fs, sharp); networks.ts, batch-norm.ts and fully-conv.ts import nothing but TF.js,
 * rng.ts, layer-inputs.ts and backend/fused-ops.ts (TF.js only).
 */

export { BatchNormalization } from './batch-norm.js';
export { type FloatImage, forwardPadded, type ImageTranslator, imageTranslator } from './fully-conv.js';
export { ClassConditionalAffine, InstanceNormalization, ReflectionPadding2D } from './networks.js';
