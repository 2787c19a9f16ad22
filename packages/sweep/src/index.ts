export * from './local-redis.js';
export * from './prepare.js';
export * from './queue.js';
export * from './results.js';
export * from './spec.js';
export * from './variants.js';
export * from './worker.js';
