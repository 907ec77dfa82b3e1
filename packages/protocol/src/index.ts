export * from './codes.js';
export * from './enums.js';
export * from './identifiers.js';
export * from './messages.js';
export * from './appsign.js';
export * from './media.js';
export * from './audioLevel.js';
export * from './quality.js';
