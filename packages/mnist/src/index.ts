export * from './classifier.js';
export * from './data.js';
export * from './evaluate.js';
export * from './folder-evaluate.js';
export * from './parzen.js';
export * from './variant.js';
