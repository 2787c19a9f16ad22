export * from './data.js';
export * from './html.js';
export * from './write.js';
