/**
 * The media contract between the server and the SDK beyond standard WebRTC.
 *
 * Players that offer this RTP header extension (the Node.js SDK does) get, on every video packet,
 * one byte naming the simulcast layer the packet's frame was taken from (0 the smallest), so
 * custom render can say which layer each frame is.
 */
export const SIMULCAST_LAYER_EXTENSION_URI = 'urn:parley:rtp-hdrext:simulcast-layer';
