/**
 * SFU on werift: each publisher is one peer connection receiving audio and (simulcast) video;
 * each subscriber is one peer connection sending it on to a player, video from the layer chosen
 * for that player. Keyframe requests travel from players back to the publisher's layer; NACKs
 * are answered from what each player was sent.
 */
import { DEFAULT_MEDIA_STALL_MS } from '@parley/protocol';
import { WeriftPublisher } from './weriftPublisher.js';
import type { PeerOptions } from './weriftPeer.js';
import { emptyMediaStats, type MediaPlane, type MediaPublisher, type MediaStats } from './types.js';

export interface WeriftPlaneOptions {
  listenIp: string;
  announcedIp?: string;
  portRange?: [number, number];
  /** A peer connection that has not connected by then is closed. */
  connectTimeoutMs?: number;
  /** A connected peer connection that receives nothing for this long is reported stalled (default 3 s). */
  mediaStallMs?: number;
}

export class WeriftMediaPlane implements MediaPlane {
  readonly stats: MediaStats = emptyMediaStats();
  private readonly peerOptions: PeerOptions;
  private readonly publishers = new Set<WeriftPublisher>();

  constructor(options: WeriftPlaneOptions) {
    this.peerOptions = { connectTimeoutMs: 15_000, mediaStallMs: DEFAULT_MEDIA_STALL_MS, ...options, stats: this.stats };
  }

  async publish(offer: string): Promise<MediaPublisher> {
    const publisher = await WeriftPublisher.create(this.peerOptions, offer);
    this.publishers.add(publisher);
    publisher.observer.once('closed', () => this.publishers.delete(publisher));
    return publisher;
  }

  async close(): Promise<void> {
    for (const publisher of [...this.publishers]) publisher.close();
  }
}
