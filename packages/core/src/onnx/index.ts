export * from './convert.js';
export * from './export.js';
export { decodeModel, OPSET } from './graph.js';
