/** What the server's and the Node.js SDK's media stacks (werift) share; not for browser bundles. */
export * from './clock.js';
export * from './nackGenerator.js';
export * from './iceAgents.js';
export * from './mediaGuard.js';
export * from './replayWindow.js';
export * from './stun.js';
export * from './weriftInternals.js';
export * from './windowedMinimum.js';
