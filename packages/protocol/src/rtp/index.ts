/** RTP receiver behaviour the server and the Node.js SDK share; not for browser bundles. */
export * from './clock.js';
export * from './nackGenerator.js';
