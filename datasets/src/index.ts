export * from './types.js';
export * from './mnist.js';
export * from './scenes.js';
export * from './folder.js';
export * from './paired.js';
export * from './unpaired.js';
export * from './download.js';
export * from './default-data.js';
