export * from './config.js';
export * from './evaluate.js';
export * from './task.js';
export * from './variant.js';
