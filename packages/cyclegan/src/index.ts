export * from './data.js';
export * from './evaluate.js';
export * from './features.js';
export * from './losses.js';
export * from './networks.js';
export * from './task.js';
export * from './variant.js';
