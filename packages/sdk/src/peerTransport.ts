import type { LivenessSample } from '@parley/protocol';
import type { MediaTransport, TransportState } from './platform.js';
import { sampleStats, type MediaSample, type StatsEntry } from './quality.js';

/** What both RTCPeerConnection implementations (browsers', werift's) offer for our use. */
export interface OfferingPeer<Description> {
  createOffer(): Promise<Description>;
  setLocalDescription(description: Description): Promise<unknown>;
  setRemoteDescription(description: { type: 'answer'; sdp: string }): Promise<unknown>;
  restartIce(): void;
  readonly localDescription: { sdp: string } | null | undefined;
  getStats(): Promise<{ forEach(callback: (entry: StatsEntry) => void): void }>;
}

/** The peer connection's states that matter here (the others are on the way to one of them). */
const FOLLOWED_STATES: Record<string, TransportState | 'closed' | undefined> = {
  connected: 'connected',
  failed: 'failed',
  closed: 'closed',
};

/**
 * One peer connection as a MediaTransport: the offer (after `prepare` adds transceivers and
 * gathering completes), the answer, ICE restarts, and a connection state that late listeners
 * still hear.
 */
export abstract class PeerTransport<Description> implements MediaTransport {
  protected abstract readonly pc: OfferingPeer<Description>;
  /** What the server sends on it: media on a play transport, RTCP alone on a publish transport. */
  protected abstract readonly receives: 'rtp' | 'rtcp';
  private state: TransportState | 'closed' | undefined;
  private readonly listeners: Array<(state: TransportState) => void> = [];

  /** `onClosed` gets the promise of the peer connection's shutdown, for whoever must wait for it. */
  constructor(private readonly onClosed: (closing: Promise<void>) => void) {}

  /** Adds the transceivers before the offer is made. */
  protected abstract prepare(): Promise<void>;
  protected abstract gatheringComplete(): Promise<void>;
  protected abstract closePeer(): Promise<void> | void;
  abstract soundLevel(): Promise<number>;
  /** Releases what the subclass holds beyond the peer connection. */
  protected onClose(): void {}
  /** The offer as it is to be sent: format parameters the API cannot set (e.g. Opus stereo). */
  protected shapeOffer(sdp: string): string {
    return sdp;
  }

  async createOffer(): Promise<string> {
    await this.prepare();
    return this.offer();
  }

  async applyAnswer(sdp: string): Promise<void> {
    await this.pc.setRemoteDescription({ type: 'answer', sdp });
  }

  restartIce(): Promise<string> {
    this.pc.restartIce();
    return this.offer();
  }

  /** A complete offer (shaped, set as the local description, all candidates gathered). */
  private async offer(): Promise<string> {
    const offer = await this.pc.createOffer();
    const sdp = (offer as { sdp: string }).sdp;
    const shaped = this.shapeOffer(sdp);
    await this.pc.setLocalDescription(shaped === sdp ? offer : ({ type: 'offer', sdp: shaped } as Description));
    await this.gatheringComplete();
    return this.pc.localDescription!.sdp;
  }

  async mediaProgress(): Promise<LivenessSample> {
    let packets = 0;
    let rtp = 0;
    const reportedSent = new Map<number, number>();
    type Entry = StatsEntry & { packetsReceived?: number; bytesReceived?: number; packetsSent?: number; ssrc?: number };
    (await this.pc.getStats()).forEach((entry: Entry) => {
      // Either grows with every packet; some browsers give only the bytes.
      if (entry.type === 'transport') packets += entry.packetsReceived ?? entry.bytesReceived ?? 0;
      else if (entry.type === 'inbound-rtp') rtp += entry.packetsReceived ?? 0;
      else if (entry.type === 'remote-outbound-rtp' && entry.ssrc !== undefined) reportedSent.set(entry.ssrc, entry.packetsSent ?? 0);
    });
    return { media: this.receives === 'rtp' ? rtp : packets, packets, reportedSent };
  }

  async stats(): Promise<MediaSample> {
    const entries: StatsEntry[] = [];
    (await this.pc.getStats()).forEach((entry: StatsEntry) => entries.push(entry));
    return sampleStats(entries, performance.now());
  }

  onStateChange(listener: (state: TransportState) => void): void {
    this.listeners.push(listener);
    if (this.state) listener(this.state === 'closed' ? 'failed' : this.state);
  }

  /**
   * Feeds the peer connection's connectionState in. 'failed' may be followed by 'connected' again
   * after an ICE restart; 'closed' is final (reported as 'failed').
   */
  protected connectionStateChanged(connectionState: string): void {
    if (this.state === 'closed') return;
    const state = FOLLOWED_STATES[connectionState];
    if (!state || this.state === state) return;
    this.state = state;
    for (const listener of this.listeners) listener(state === 'closed' ? 'failed' : state);
  }

  close(): void {
    this.onClose();
    this.onClosed(Promise.resolve(this.closePeer()).catch(() => undefined));
  }
}
