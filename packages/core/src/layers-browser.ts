/**
 * Browser-safe entry for pages that load Gantry generators with `tf.loadLayersModel`: only the custom layers
 * (importing this module registers them with tf.serialization). The package index pulls in Node-only modules
 * (fs, sharp); networks.ts imports nothing but TF.js, rng.ts and backend/fused-ops.ts (TF.js only).
 */
export { ClassConditionalAffine, InstanceNormalization, ReflectionPadding2D } from './networks.js';
