export type { MediaPlane, MediaPublisher, MediaSubscriber, MediaEndpoint } from './types.js';
export { SdpError } from './types.js';
export { WeriftMediaPlane, type WeriftPlaneOptions } from './weriftPlane.js';
