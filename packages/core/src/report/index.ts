export * from './data.js';
export * from './html.js';
export * from './write.js';
export * from './runs.js';
