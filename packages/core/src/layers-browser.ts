/**
 * Browser-safe entry for pages that load Gantry generators with `tf.loadLayersModel`: only the custom layers
 * (importing this module registers them with tf.serialization). The package index pulls in Node-only modules
 * (fs, sharp); networks.ts imports nothing but TF.js and rng.ts.
 */
export { ClassConditionalAffine, InstanceNormalization, ReflectionPadding2D } from './networks.js';
