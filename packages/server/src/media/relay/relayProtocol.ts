/**
 * The node-to-node relay's wire format. On the relay's UDP port a datagram is either RTP or RTCP
 * (first byte 128–191, RFC 7983) of a relay under way, or a control message: a type byte, an
 * HMAC-SHA256 (first 16 bytes) under the cluster's relay key, and JSON. Control messages are
 * idempotent and repeated, so a lost one costs a keepalive period, never the relay:
 *
 * - `open` (player's node → publisher's node): relay this publication to me, these layers; sent
 *   again every keepalive period for as long as the relay is wanted, and at once when its layers change.
 * - `description` (publisher's node → player's node): the answer to each `open`, and sent at once when
 *   the stream's layers change: its codecs, the relay's SSRCs, each layer's size, rate and usability.
 * - `closed` (either way): the relay ends (no player left; the publication ended or is not here).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { RelayStream } from '../core/types.js';
import type { VideoCodec } from '../core/videoRewriter.js';

export const CONTROL_TYPE = 0x01;
const MAC_BYTES = 16;

export interface RelayCodec {
  mimeType: string;
  clockRate: number;
  channels?: number;
  parameters?: string;
  rtcpFeedback?: Array<{ type: string; parameter?: string }>;
}

export interface RelayedLayer {
  usable: boolean;
  width: number;
  height: number;
  temporalLayers: number;
  /** Bits per second with temporal layers up to 0, 1 and 2. */
  bps: [number, number, number];
}

export interface OpenMessage extends RelayStream {
  type: 'open';
  relayID: string;
  /** The layers the player's node uses, and those it forwards to players (bits per layer). */
  used: number;
  forwarded: number;
}

export interface DescriptionMessage {
  type: 'description';
  relayID: string;
  audioCodecs: RelayCodec[];
  videoCodecs: RelayCodec[];
  /** The publisher's audio payload types and audio level extension id, as relayed packets carry them. */
  audioFormat: { opus: number; red: number; levelId: number };
  videoCodec: VideoCodec;
  /** The relay's SSRCs: audio, then one per layer, smallest first. */
  audioSsrc: number;
  videoSsrcs: number[];
  layers: RelayedLayer[];
}

export interface ClosedMessage {
  type: 'closed';
  relayID: string;
  reason: 'unwanted' | 'ended' | 'unknown';
}

export type ControlMessage = OpenMessage | DescriptionMessage | ClosedMessage;

export function encodeControl(key: Buffer, message: ControlMessage): Buffer {
  const body = Buffer.from(JSON.stringify(message));
  const mac = createHmac('sha256', key).update(body).digest().subarray(0, MAC_BYTES);
  return Buffer.concat([Buffer.of(CONTROL_TYPE), mac, body]);
}

/** The message, if the datagram is one signed with `key` and well formed; undefined otherwise. */
export function decodeControl(key: Buffer, datagram: Buffer): ControlMessage | undefined {
  if (datagram.length <= 1 + MAC_BYTES || datagram[0] !== CONTROL_TYPE) return undefined;
  const body = datagram.subarray(1 + MAC_BYTES);
  const mac = createHmac('sha256', key).update(body).digest().subarray(0, MAC_BYTES);
  if (!timingSafeEqual(mac, datagram.subarray(1, 1 + MAC_BYTES))) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString());
  } catch {
    return undefined;
  }
  return wellFormed(parsed) ? parsed : undefined;
}

const isString = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 256;
const isUint = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffffffff;

/** Signed by a node of the cluster, but checked all the same: a node of another version must not crash this one. */
function wellFormed(m: unknown): m is ControlMessage {
  if (typeof m !== 'object' || m === null) return false;
  const message = m as Record<string, unknown>;
  if (!isString(message.relayID)) return false;
  switch (message.type) {
    case 'open':
      return (
        isUint(message.appID) &&
        isString(message.streamID) &&
        isString(message.publicationID) &&
        isUint(message.used) &&
        isUint(message.forwarded)
      );
    case 'description': {
      const layers = message.layers;
      const ssrcs = message.videoSsrcs;
      const format = message.audioFormat as Record<string, unknown> | undefined;
      return (
        Array.isArray(message.audioCodecs) &&
        Array.isArray(message.videoCodecs) &&
        (message.videoCodec === 'vp8' || message.videoCodec === 'vp9' || message.videoCodec === 'h264') &&
        isUint(message.audioSsrc) &&
        Array.isArray(ssrcs) &&
        ssrcs.length >= 1 &&
        ssrcs.length <= 3 &&
        ssrcs.every(isUint) &&
        Array.isArray(layers) &&
        layers.length === ssrcs.length &&
        typeof format === 'object' &&
        format !== null &&
        [format.opus, format.red, format.levelId].every(Number.isInteger)
      );
    }
    case 'closed':
      return message.reason === 'unwanted' || message.reason === 'ended' || message.reason === 'unknown';
    default:
      return false;
  }
}

/** A fresh non-zero SSRC for a relayed stream. */
export const randomSsrc = (): number => randomBytes(4).readUInt32BE(0) >>> 0 || 1;
