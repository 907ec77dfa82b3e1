/**
 * What publishers and subscribers share: a werift peer connection that answers a client's offer
 * (non-trickle: the answer carries all candidates), announces only the configured address, and
 * reports connected/closed exactly once.
 */
import { EventEmitter } from 'node:events';
import {
  RTCPeerConnection,
  RTCRtpCodecParameters,
  useAbsSendTime,
  useAudioLevelIndication,
  useH264,
  useNACK,
  useOPUS,
  useRepairedRtpStreamId,
  useSdesMid,
  useSdesRTPStreamId,
  useTransportWideCC,
  useVP8,
  type PeerConfig,
  type RTCRtpHeaderExtensionParameters,
  type RTCRtpTransceiver,
} from 'werift';
import { SdpError, type EndpointEvents, type MediaStats } from './types.js';

export interface PeerOptions {
  listenIp: string;
  announcedIp?: string;
  portRange?: [number, number];
  connectTimeoutMs: number;
  /** The plane's numbers, which every peer adds to. */
  stats: MediaStats;
}

export interface NegotiatedCodecs {
  /** Opus; `audioRed` the RED format around it when the publisher sends RED. */
  audio?: RTCRtpCodecParameters;
  audioRed?: RTCRtpCodecParameters;
  video?: RTCRtpCodecParameters;
}

/** Adds generic NACK to a negotiated codec's feedback (the answer then offers it) unless it is there. */
export function addNack(codec: RTCRtpCodecParameters): void {
  if (!codec.rtcpFeedback.some((f) => f.type === 'nack' && !f.parameter)) codec.rtcpFeedback.push(useNACK());
}

/** `parameters` (an fmtp value, "a=1;b=2") with `set` merged in. */
export function withFormatParameters(parameters: string | undefined, set: Record<string, string>): string {
  const merged = new Map<string, string>();
  for (const pair of (parameters ?? '').split(';')) {
    const [key, value] = pair.split('=');
    if (key?.trim()) merged.set(key.trim(), value?.trim() ?? '');
  }
  for (const [key, value] of Object.entries(set)) merged.set(key, value);
  return [...merged].map(([key, value]) => `${key}=${value}`).join(';');
}

const rtx = (): RTCRtpCodecParameters => new RTCRtpCodecParameters({ mimeType: 'video/rtx', clockRate: 90000 });

/** What the server accepts from publishers. Players are offered exactly what their publisher sends. */
export const publishCodecs = (): Codecs => ({
  audio: [useOPUS(), new RTCRtpCodecParameters({ mimeType: 'audio/red', clockRate: 48000, channels: 2 })],
  video: [useVP8(), useH264(), rtx()],
});

export type Codecs = { audio: RTCRtpCodecParameters[]; video: RTCRtpCodecParameters[] };
export type HeaderExtensions = { audio: RTCRtpHeaderExtensionParameters[]; video: RTCRtpHeaderExtensionParameters[] };

/**
 * What publishers may send: transport-wide sequence numbers and send times for their congestion
 * control, the MID, the RIDs that name simulcast streams (repaired: their retransmissions), and
 * the level of each audio packet.
 */
export const publishHeaderExtensions = (): HeaderExtensions => ({
  audio: [useSdesMid(), useTransportWideCC(), useAudioLevelIndication()],
  video: [useSdesMid(), useSdesRTPStreamId(), useRepairedRtpStreamId(), useTransportWideCC(), useAbsSendTime()],
});

/** werift 0.24's DTLS transport, as far as its ICE connection's pair in use and consent go. */
interface IceInternals {
  iceTransport: {
    connection: {
      state: string;
      nominated?: {
        /** Seconds. */
        rtt?: number;
        remoteAddr: readonly [string, number];
        protocol: { onRequestReceived: { subscribe(listener: (message: unknown, addr: readonly [string, number]) => void): unknown } };
      };
      /** Starts consent over: fresh now, expiring 30 s after the last answer from here on. */
      queryConsent(): void;
    };
  };
}

export const isLoopback = (ip: string): boolean => ip.startsWith('127.') || ip === '::1';

export abstract class WeriftPeer<Events extends EndpointEvents & Record<keyof Events, unknown[]> = EndpointEvents> {
  readonly observer = new EventEmitter<Events>();
  /** The events every endpoint has, as this class emits them. */
  private get endpointObserver(): EventEmitter<EndpointEvents> {
    return this.observer as unknown as EventEmitter<EndpointEvents>;
  }
  protected readonly pc: RTCPeerConnection;
  protected readonly stats: MediaStats;
  answer = '';
  private state: 'new' | 'connected' | 'closed' = 'new';
  private readonly connectTimer: NodeJS.Timeout;

  protected constructor(
    protected readonly options: PeerOptions,
    codecs: Codecs,
    headerExtensions: HeaderExtensions = { audio: [], video: [] },
  ) {
    const { listenIp } = options;
    this.stats = options.stats;
    const config: Partial<PeerConfig> = {
      codecs,
      headerExtensions,
      // No STUN/TURN: the server's own address is what clients must reach.
      iceServers: [],
      iceUseIpv6: false,
      bundlePolicy: 'max-bundle',
      icePortRange: options.portRange,
      // werift gathers from the interfaces' addresses but skips loopback's, where an address may also be configured.
      iceAdditionalHostAddresses: [listenIp],
      iceFilterCandidatePair: (pair) =>
        pair.localCandidate.host === listenIp && (!isLoopback(listenIp) || isLoopback(pair.remoteCandidate.host)),
    };
    this.pc = new RTCPeerConnection(config);
    this.pc.connectionStateChange.subscribe((s) => {
      if (s === 'connected' && this.state === 'new') {
        this.state = 'connected';
        clearTimeout(this.connectTimer);
        this.keepConsentWhileClientChecks();
        this.endpointObserver.emit('connected');
      } else if (s === 'failed' || s === 'closed') {
        this.close();
      }
    });
    this.connectTimer = setTimeout(() => this.close(), options.connectTimeoutMs);
  }

  get closed(): boolean {
    return this.state === 'closed';
  }

  /** werift's ICE connection (one for all, bundled). */
  private get iceConnection(): IceInternals['iceTransport']['connection'] | undefined {
    return (this.pc.getTransceivers()[0]?.sender.dtlsTransport as unknown as IceInternals | undefined)?.iceTransport.connection;
  }

  /** The round trip of the ICE pair in use (consent checks measure it), if known. */
  protected rttMs(): number | undefined {
    const rtt = this.iceConnection?.nominated?.rtt;
    return typeof rtt === 'number' ? rtt * 1000 : undefined;
  }

  /**
   * werift keeps consent (RFC 7675) by a check of its own every 5 s, sent once, and ends the
   * connection 30 s after the last answer: at 50 % loss each way one in five connections died
   * within a minute while media flowed both ways. The client checks the pair every few seconds
   * too, repeating lost checks: each of its checks that arrives on the pair in use starts
   * werift's consent over. A client that is gone sends none, and consent then lapses as before.
   */
  private keepConsentWhileClientChecks(): void {
    const connection = this.iceConnection;
    const pair = connection?.nominated;
    if (!connection || !pair) return;
    pair.protocol.onRequestReceived.subscribe((_message, [host, port]) => {
      const [pairHost, pairPort] = pair.remoteAddr;
      if (
        connection.nominated === pair &&
        host === pairHost &&
        port === pairPort &&
        (connection.state === 'connected' || connection.state === 'completed')
      ) {
        connection.queryConsent();
      }
    });
  }

  get connected(): boolean {
    return this.state === 'connected';
  }

  /** Applies the client's offer, lets `prepare` set up transceivers, and produces the answer. */
  protected async negotiate(offer: string, prepare: (t: RTCRtpTransceiver) => void): Promise<void> {
    if (!/^v=0\r?\n/.test(offer) || !/^m=(audio|video) /m.test(offer)) throw new SdpError('offer has no audio or video section');
    // One stream is at most one audio and one video track.
    if ((offer.match(/^m=audio /gm)?.length ?? 0) > 1 || (offer.match(/^m=video /gm)?.length ?? 0) > 1) {
      throw new SdpError('offer has more than one audio or video section');
    }
    try {
      await this.pc.setRemoteDescription({ type: 'offer', sdp: offer });
      for (const t of this.pc.getTransceivers()) prepare(t);
      if (!this.pc.getTransceivers().some((t) => t.codecs.length > 0)) throw new SdpError('no codec in common');
      // The server takes the DTLS server role: werift as DTLS client waits 100 ms before its first
      // flight, while a browser client starts at once (Chromium first frame −30 to −60 ms).
      const answer = await this.pc.createAnswer();
      await this.pc.setLocalDescription({ type: 'answer', sdp: answer.sdp.replace(/^a=setup:active\b/gm, 'a=setup:passive') });
    } catch (err) {
      this.close();
      throw err instanceof SdpError ? err : new SdpError(`offer rejected: ${(err as Error).message}`);
    }
    if (this.pc.iceGatheringState !== 'complete') {
      await this.pc.iceGatheringStateChange.watch((s) => s === 'complete');
    }
    this.answer = this.announcedSdp(this.pc.localDescription?.sdp ?? '');
  }

  /** Keeps only candidates on the listen address, rewritten to the announced one if set. */
  private announcedSdp(sdp: string): string {
    const { listenIp, announcedIp } = this.options;
    return sdp
      .split('\r\n')
      .filter((line) => !line.startsWith('a=candidate:') || line.split(' ')[4] === listenIp)
      .map((line) => (announcedIp && line.startsWith('a=candidate:') ? line.replace(` ${listenIp} `, ` ${announcedIp} `) : line))
      .join('\r\n');
  }

  close(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearTimeout(this.connectTimer);
    this.onClose();
    void this.pc.close().catch(() => undefined);
    this.endpointObserver.emit('closed');
  }

  protected abstract onClose(): void;
}
