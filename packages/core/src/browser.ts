/**
 * The browser-safe part of Gantry's core: networks and layers, the training loop and the latent GAN step, losses,
 * optimizers, schedules, checkpoints as in-memory files (checked as in Node), and the wasm backend's gradient
 * kernels. Nothing here imports Node (browser-safe.test.ts walks the import graph to keep it so); the demo page
 * trains with it in a Web Worker. Node programs use the package's main entry, which exports all of this too.
 */
export { registerGradientFixes } from './backend/gradients.js';
export { REPLACED_WASM_KERNELS, registerWasmKernels, SUPPLIED_WASM_KERNELS } from './backend/wasm-kernels.js';
export { flag } from './cli/flags.js';
export * from './errors.js';
export * from './nn/batch-norm.js';
export * from './nn/conv-dense.js';
export * from './nn/fully-conv.js';
export * from './nn/networks.js';
export * from './nn/sizes.js';
export * from './nn/tiles.js';
export * from './runs/checkpoint-data.js';
export * from './train/latent-gan.js';
export * from './train/losses.js';
export * from './train/optim.js';
export * from './train/pool.js';
export * from './train/rng.js';
export * from './train/schedules.js';
export * from './train/trainer.js';
