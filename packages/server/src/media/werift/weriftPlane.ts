/**
 * SFU on werift: each publisher is one peer connection receiving audio and (simulcast) video;
 * each subscriber is one peer connection sending it on to a player, video from the layer chosen
 * for that player. Keyframe requests travel from players back to the publisher's layer; NACKs
 * are answered from what each player was sent.
 */
import { DEFAULT_MEDIA_STALL_MS } from '@parley/protocol';
import { checkWeriftInternalsOnce } from '@parley/protocol/rtp';
import { WeriftPublisher, type LayerSsrcs } from './weriftPublisher.js';
import type { PeerOptions } from './weriftPeer.js';
import { IceSockets, type IceSocketOptions } from '../sockets/iceSockets.js';
import { emptyMediaStats, type MediaPlane, type MediaRelayPlane, type MediaStats } from '../core/types.js';
import { MediaRelay, type RelayOptions } from '../relay/mediaRelay.js';
import { openFastPath, type FastPathKind } from '../fastpath/fastPath.js';

export interface WeriftPlaneOptions extends IceSocketOptions {
  announcedIp?: string;
  /** A peer connection that has not connected by then is closed. */
  connectTimeoutMs?: number;
  /** A connected peer connection that receives nothing for this long is reported stalled (default 3 s). */
  mediaStallMs?: number;
  /** A media socket's error (a send to an unreachable address): it affects that datagram only. */
  onSocketError?: (err: Error) => void;
  /** A node of a cluster: where it takes other nodes' relays, and the cluster's relay key. */
  relay?: RelayOptions;
  /** How forwarded packets are sealed and sent: native (the default, where the addon was built) or TypeScript. */
  fastPath?: FastPathKind;
}

export class WeriftMediaPlane implements MediaPlane {
  private readonly publishers = new Set<WeriftPublisher>();
  readonly relay: MediaRelayPlane | undefined;

  private constructor(
    private readonly peerOptions: PeerOptions,
    readonly sockets: IceSockets,
    readonly stats: MediaStats,
    private readonly mediaRelay: MediaRelay | undefined,
    /** Which fast path runs, and why not native. */
    readonly fastPathNote: string,
  ) {
    this.relay = mediaRelay && {
      address: mediaRelay.address,
      // Only publishers of this plane have a fanout to relay from.
      serve: (find) =>
        mediaRelay.serve((stream) => {
          const publisher = find(stream);
          return publisher instanceof WeriftPublisher ? publisher : undefined;
        }),
      publisher: (from, stream) => mediaRelay.publisher(from, stream),
    };
  }

  /**
   * Opens the media sockets (see `IceSockets`), and the relay's on a node of a cluster, once the
   * installed werift is known to have the internals the media path relies on: a server with
   * another werift refuses to start, saying what is missing.
   */
  static async open(options: WeriftPlaneOptions): Promise<WeriftMediaPlane> {
    checkWeriftInternalsOnce();
    const stats = emptyMediaStats();
    const sockets = await IceSockets.open(options, stats, options.onSocketError ?? (() => undefined));
    const { fastPath, note } = openFastPath(options.fastPath);
    const peerOptions: PeerOptions = {
      fastPath,
      sockets,
      listenIp: options.listenIp,
      announcedIp: options.announcedIp,
      connectTimeoutMs: options.connectTimeoutMs ?? 15_000,
      mediaStallMs: options.mediaStallMs ?? DEFAULT_MEDIA_STALL_MS,
      stats,
    };
    try {
      const relay = options.relay && (await MediaRelay.open(options.relay, stats, peerOptions));
      return new WeriftMediaPlane(peerOptions, sockets, stats, relay, note);
    } catch (err) {
      await sockets.close();
      throw err;
    }
  }

  /** Its media ports (one of each kind here; a port per connection when `portRange`, none listed). */
  get ports(): { udp: Array<number | undefined>; tcp: Array<number | undefined> } {
    return { udp: [this.sockets.udpPort], tcp: [this.sockets.tcpPort] };
  }

  /** `known`: the layers' SSRCs another peer connection of this publisher learned (see WeriftPublisher.create). */
  async publish(offer: string, known?: readonly LayerSsrcs[]): Promise<WeriftPublisher> {
    const publisher = await WeriftPublisher.create(this.peerOptions, offer, known);
    this.publishers.add(publisher);
    publisher.observer.once('closed', () => this.publishers.delete(publisher));
    return publisher;
  }

  async close(): Promise<void> {
    this.mediaRelay?.close();
    for (const publisher of [...this.publishers]) publisher.close();
    await this.sockets.close();
  }
}
