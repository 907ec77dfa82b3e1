/**
 * SFU on werift: each publisher is one peer connection receiving audio and (simulcast) video;
 * each subscriber is one peer connection sending it on to a player, video from the layer chosen
 * for that player. Keyframe requests travel from players back to the publisher's layer; NACKs
 * are answered from what each player was sent.
 */
import { DEFAULT_MEDIA_STALL_MS } from '@parley/protocol';
import { checkWeriftInternalsOnce } from '@parley/protocol/rtp';
import { WeriftPublisher } from './weriftPublisher.js';
import type { PeerOptions } from './weriftPeer.js';
import { IceSockets, type IceSocketOptions } from '../sockets/iceSockets.js';
import { emptyMediaStats, type MediaPlane, type MediaPublisher, type MediaStats } from '../core/types.js';

export interface WeriftPlaneOptions extends IceSocketOptions {
  announcedIp?: string;
  /** A peer connection that has not connected by then is closed. */
  connectTimeoutMs?: number;
  /** A connected peer connection that receives nothing for this long is reported stalled (default 3 s). */
  mediaStallMs?: number;
  /** A media socket's error (a send to an unreachable address): it affects that datagram only. */
  onSocketError?: (err: Error) => void;
}

export class WeriftMediaPlane implements MediaPlane {
  private readonly peerOptions: PeerOptions;
  private readonly publishers = new Set<WeriftPublisher>();

  private constructor(
    options: WeriftPlaneOptions,
    readonly sockets: IceSockets,
    readonly stats: MediaStats,
  ) {
    const { listenIp, announcedIp } = options;
    this.peerOptions = {
      sockets,
      listenIp,
      announcedIp,
      connectTimeoutMs: options.connectTimeoutMs ?? 15_000,
      mediaStallMs: options.mediaStallMs ?? DEFAULT_MEDIA_STALL_MS,
      stats: this.stats,
    };
  }

  /**
   * Opens the media sockets (see `IceSockets`), once the installed werift is known to have the
   * internals the media path relies on: a server with another werift refuses to start, saying what is missing.
   */
  static async open(options: WeriftPlaneOptions): Promise<WeriftMediaPlane> {
    checkWeriftInternalsOnce();
    const stats = emptyMediaStats();
    const sockets = await IceSockets.open(options, stats, options.onSocketError ?? (() => undefined));
    return new WeriftMediaPlane(options, sockets, stats);
  }

  async publish(offer: string): Promise<MediaPublisher> {
    const publisher = await WeriftPublisher.create(this.peerOptions, offer);
    this.publishers.add(publisher);
    publisher.observer.once('closed', () => this.publishers.delete(publisher));
    return publisher;
  }

  async close(): Promise<void> {
    for (const publisher of [...this.publishers]) publisher.close();
    await this.sockets.close();
  }
}
