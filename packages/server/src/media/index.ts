export type { MediaPlane, MediaPublisher, MediaSubscriber, MediaEndpoint, MediaStats } from './types.js';
export { SdpError, emptyMediaStats } from './types.js';
export { WeriftMediaPlane, type WeriftPlaneOptions } from './weriftPlane.js';
