export * from './data.js';
export * from './html.js';
export * from './runs.js';
export * from './write.js';
