export * from './evaluate.js';
export * from './networks.js';
export * from './task.js';
export * from './variant.js';
