export * from './data.js';
export * from './classifier.js';
export * from './evaluate.js';
export * from './variant.js';
export * from './folder-evaluate.js';
export * from './parzen.js';
