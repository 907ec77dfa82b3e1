export * from './browser.js';
export * from './network.js';
export * from './clip.js';
export * from './demo.js';
export * from './simulatedClock.js';
export * from './metrics.js';
export * from './teardown.js';
export * from './serverProcess.js';
