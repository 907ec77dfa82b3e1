/**
 * The node-to-node relay (UDP on `relayPort`): this node's relays of its publications to other
 * nodes (RelaySink), and its relayed publishers of other nodes' publications (RelayedPublisher).
 * One relay per (publication, node) whatever the number of players there. Control messages are
 * signed with the cluster's relay key; RTP and RTCP are taken only from the node the relay is
 * with, under the relay's SSRCs.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { RtcpPacketConverter, type RtcpPacket } from 'werift';
import { RelayUnavailable, type MediaStats, type RelayAddress, type RelayStream } from '../core/types.js';
import type { PeerOptions } from '../werift/weriftPeer.js';
import { RelayedPublisher } from './relayedPublisher.js';
import { RelaySink, type RelayOrigin } from './relaySink.js';
import { decodeControl, encodeControl, type ControlMessage, type DescriptionMessage, type OpenMessage } from './relayProtocol.js';

export interface RelayOptions {
  /** The address and port to take relays on (port 0: one the system picks). */
  host: string;
  port: number;
  /** The cluster's relay key, which signs control messages. */
  key: Buffer;
  /** How often a relay's player node repeats `open` (default 500 ms). */
  keepaliveMs?: number;
  /** A relay whose other end is silent this long ends (default 2 s). */
  silenceMs?: number;
  /** A relay without players ends after this (default 3 s). */
  lingerMs?: number;
}

const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;

const keyOf = ({ host, port }: RelayAddress): string => `${host}:${port}`;

/** Whether a datagram came from `address` (field by field: this runs for every relayed packet). */
const isFrom = (address: RelayAddress, remote: RemoteInfo): boolean => address.port === remote.port && address.host === remote.address;

export class MediaRelay {
  private readonly sinks = new Map<string, { sink: RelaySink; from: RelayAddress }>();
  private readonly sinkBySsrc = new Map<number, { sink: RelaySink; from: RelayAddress }>();
  private readonly relayed = new Map<string, Promise<RelayedPublisher>>();
  private readonly relayedByID = new Map<string, { publisher: RelayedPublisher; from: RelayAddress }>();
  private readonly relayedBySsrc = new Map<number, { publisher: RelayedPublisher; from: RelayAddress }>();
  /** Relays being opened, by relay ID: told of the first answer. */
  private readonly opening = new Map<string, (message: ControlMessage) => void>();
  private origin: (stream: RelayStream) => RelayOrigin | undefined = () => undefined;
  private readonly timing: Required<Pick<RelayOptions, 'keepaliveMs' | 'silenceMs' | 'lingerMs'>>;
  private readonly sweep: NodeJS.Timeout;

  private constructor(
    private readonly socket: Socket,
    readonly address: RelayAddress,
    private readonly key: Buffer,
    private readonly stats: MediaStats,
    private readonly peerOptions: PeerOptions,
    options: RelayOptions,
  ) {
    this.timing = { keepaliveMs: options.keepaliveMs ?? 500, silenceMs: options.silenceMs ?? 2_000, lingerMs: options.lingerMs ?? 3_000 };
    socket.on('message', (data, remote) => this.route(data, remote));
    socket.on('error', () => undefined); // a send to a node that is gone fails for that datagram only
    this.sweep = setInterval(() => this.endSilentSinks(), this.timing.keepaliveMs);
    this.sweep.unref();
  }

  static async open(options: RelayOptions, stats: MediaStats, peerOptions: PeerOptions): Promise<MediaRelay> {
    const socket = createSocket({ type: 'udp4', recvBufferSize: SOCKET_BUFFER_BYTES, sendBufferSize: SOCKET_BUFFER_BYTES });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ address: options.host, port: options.port, exclusive: true }, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return new MediaRelay(socket, { host: options.host, port: socket.address().port }, options.key, stats, peerOptions, options);
  }

  /** How this node finds the publications other nodes ask it to relay (a publisher of this node's plane, else none). */
  serve(origin: (stream: RelayStream) => RelayOrigin | undefined): void {
    this.origin = origin;
  }

  /** The publication on the node at `from`, relayed here: shared by all its players here. Rejects with RelayUnavailable. */
  publisher(from: RelayAddress, stream: RelayStream): Promise<RelayedPublisher> {
    const key = `${keyOf(from)}/${stream.appID}/${stream.publicationID}`;
    const existing = this.relayed.get(key);
    if (existing) return existing;
    const opened = this.openRelay(from, stream);
    this.relayed.set(key, opened);
    const forget = (): void => {
      if (this.relayed.get(key) === opened) this.relayed.delete(key);
    };
    opened.then((publisher) => publisher.observer.once('closed', forget), forget);
    return opened;
  }

  private async openRelay(from: RelayAddress, stream: RelayStream): Promise<RelayedPublisher> {
    const relayID = randomBytes(8).toString('hex');
    const send = (datagram: Buffer): void => this.socket.send(datagram, from.port, from.host);
    const open: OpenMessage = { type: 'open', relayID, ...stream, used: 1, forwarded: 1 };
    const answer = await new Promise<ControlMessage | undefined>((resolve) => {
      const repeat = setInterval(() => send(encodeControl(this.key, open)), Math.max(50, this.timing.keepaliveMs / 2));
      const timeout = setTimeout(() => done(undefined), this.timing.silenceMs);
      const done = (message: ControlMessage | undefined): void => {
        clearInterval(repeat);
        clearTimeout(timeout);
        this.opening.delete(relayID);
        resolve(message);
      };
      this.opening.set(relayID, done);
      send(encodeControl(this.key, open));
    });
    if (answer?.type !== 'description') {
      throw new RelayUnavailable(
        answer ? `the node at ${keyOf(from)} does not have stream ${stream.streamID}` : `the node at ${keyOf(from)} does not answer`,
      );
    }
    const publisher = new RelayedPublisher(answer, {
      relayID,
      stream,
      peerOptions: this.peerOptions,
      stats: this.stats,
      sendRtcp: send,
      sendOpen: (message) => send(encodeControl(this.key, message)),
      unwanted: () => send(encodeControl(this.key, { type: 'closed', relayID, reason: 'unwanted' })),
      ...this.timing,
    });
    const entry = { publisher, from };
    this.relayedByID.set(relayID, entry);
    for (const ssrc of publisher.ssrcs) this.relayedBySsrc.set(ssrc, entry);
    publisher.observer.once('closed', () => {
      this.relayedByID.delete(relayID);
      for (const ssrc of publisher.ssrcs) if (this.relayedBySsrc.get(ssrc) === entry) this.relayedBySsrc.delete(ssrc);
    });
    return publisher;
  }

  private route(data: Buffer, remote: RemoteInfo): void {
    const first = data[0] ?? 0;
    if (first >= 128 && first <= 191 && data.length >= 12) {
      // RTCP (RFC 5761: packet types 192–223) comes back to relays of ours; RTP comes in on relays to us.
      const packetType = data[1]! & 0x7f;
      if (packetType >= 64 && packetType <= 95) this.onRtcp(data, remote);
      else {
        const entry = this.relayedBySsrc.get(data.readUInt32BE(8));
        if (entry && isFrom(entry.from, remote)) entry.publisher.onRtp(data);
      }
      return;
    }
    const message = decodeControl(this.key, data);
    if (message) this.onControl(message, remote);
  }

  private onRtcp(data: Buffer, remote: RemoteInfo): void {
    let packets: RtcpPacket[];
    try {
      packets = RtcpPacketConverter.deSerialize(data);
    } catch {
      return;
    }
    for (const rtcp of packets) {
      const feedback = (rtcp as { feedback?: { mediaSsrc?: number; mediaSourceSsrc?: number } }).feedback;
      const entry = this.sinkBySsrc.get(feedback?.mediaSsrc ?? feedback?.mediaSourceSsrc ?? -1);
      if (entry && isFrom(entry.from, remote)) entry.sink.onRtcp(rtcp);
    }
  }

  private onControl(message: ControlMessage, remote: RemoteInfo): void {
    if (message.type === 'open') return this.onOpen(message, remote);
    const opening = this.opening.get(message.relayID);
    if (opening) return opening(message);
    if (message.type === 'description') {
      const entry = this.relayedByID.get(message.relayID);
      if (entry && isFrom(entry.from, remote)) entry.publisher.described(message);
      return;
    }
    // Closed: by the publisher's node (the publication ended) or by a player's node (no player left).
    const relayed = this.relayedByID.get(message.relayID);
    if (relayed && isFrom(relayed.from, remote)) relayed.publisher.close();
    const sink = this.sinks.get(message.relayID);
    if (sink && isFrom(sink.from, remote)) sink.sink.close(true);
  }

  private onOpen(message: OpenMessage, remote: RemoteInfo): void {
    const existing = this.sinks.get(message.relayID);
    if (existing) {
      if (isFrom(existing.from, remote)) existing.sink.opened(message);
      return;
    }
    const from: RelayAddress = { host: remote.address, port: remote.port };
    const send = (datagram: Buffer): void => this.socket.send(datagram, from.port, from.host);
    const origin = this.origin(message);
    if (!origin) {
      send(encodeControl(this.key, { type: 'closed', relayID: message.relayID, reason: 'unknown' }));
      return;
    }
    const sink = new RelaySink(
      message.relayID,
      origin,
      this.stats,
      send,
      (description: DescriptionMessage) => send(encodeControl(this.key, description)),
      () => send(encodeControl(this.key, { type: 'closed', relayID: message.relayID, reason: 'ended' })),
    );
    const entry = { sink, from };
    this.sinks.set(message.relayID, entry);
    for (const ssrc of [sink.audioSsrc, ...sink.videoSsrcs]) this.sinkBySsrc.set(ssrc, entry);
    sink.observer.once('closed', () => {
      this.sinks.delete(message.relayID);
      for (const ssrc of [sink.audioSsrc, ...sink.videoSsrcs]) if (this.sinkBySsrc.get(ssrc) === entry) this.sinkBySsrc.delete(ssrc);
    });
    origin.fanout.add(sink);
    sink.opened(message);
  }

  /** Relays whose player node fell silent (it died, or lost its way here) end. */
  private endSilentSinks(): void {
    const now = performance.now();
    for (const { sink } of [...this.sinks.values()]) if (now - sink.lastOpenMs > this.timing.silenceMs) sink.close();
  }

  /** The relays this node sends, and those it receives. */
  get counts(): { sending: number; receiving: number } {
    return { sending: this.sinks.size, receiving: this.relayedByID.size };
  }

  close(): void {
    clearInterval(this.sweep);
    for (const { sink } of [...this.sinks.values()]) sink.close();
    for (const { publisher } of [...this.relayedByID.values()]) publisher.close();
    for (const done of [...this.opening.values()]) done({ type: 'closed', relayID: '', reason: 'ended' });
    this.socket.close();
  }
}
