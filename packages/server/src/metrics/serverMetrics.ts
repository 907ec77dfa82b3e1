/**
 * Prometheus metrics of one server: what it hosts now (gauges read on each scrape), what it has
 * done (counters), and the Node.js process it runs in. Each server has its own registry, so that
 * several servers in one process never share or clash over metrics.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { ErrorCode } from '@parley/protocol';
import type { MediaStats } from '../media/index.js';
import type { RoomService } from '../rooms/roomService.js';
import type { HttpRoutes } from '../http/routes.js';

export const METRICS_PATH = '/metrics';

/**
 * The process metrics (CPU, memory, event-loop lag, GC) describe the process, not a server, and
 * their collectors cannot be stopped (an event-loop delay monitor, a GC observer): they are
 * registered once per process, in a registry of their own (never prom-client's global one), and
 * served beside every server's metrics.
 */
let processRegistry: Registry | undefined;
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

const errorNames = new Map<number, string>(Object.entries(ErrorCode).map(([name, code]) => [code, name]));

export interface MetricsSources {
  rooms: RoomService;
  /** The media plane's live numbers. */
  media: Readonly<MediaStats>;
}

export class ServerMetrics {
  readonly registry = new Registry();
  private readonly signallingErrors: Counter<'code' | 'name'>;
  /** One child per code, so that counting a refusal (floods included) looks nothing up by labels. */
  private readonly errorsByCode = new Map<number, Counter.Internal>();

  constructor({ rooms, media }: MetricsSources) {
    const registers = [this.registry];
    const gauge = (name: string, help: string, read: () => number | Promise<number>): void => {
      new Gauge({
        name,
        help,
        registers,
        async collect() {
          this.set(await read());
        },
      });
    };
    // A total kept elsewhere as a plain number, brought into the counter on each scrape.
    const total = (name: string, help: string, read: () => number): void => {
      let seen = 0;
      new Counter({
        name,
        help,
        registers,
        collect() {
          const now = read();
          if (now > seen) this.inc(now - seen);
          seen = now;
        },
      });
    };

    // Totals by a label's values, kept elsewhere as a record of plain numbers.
    const labelledTotals = <L extends string>(name: string, help: string, label: L, read: () => Readonly<Record<string, number>>): void => {
      const seen = new Map<string, number>();
      new Counter({
        name,
        help,
        labelNames: [label],
        registers,
        collect() {
          for (const [value, now] of Object.entries(read())) {
            const before = seen.get(value) ?? 0;
            // Every value is shown, at 0 too, so that a scrape names them all.
            this.inc({ [label]: value } as Record<L, string>, now - before);
            seen.set(value, now);
          }
        },
      });
    };

    const logins = new Counter({ name: 'parley_logins_total', help: 'Successful logins into a room.', registers });
    rooms.observer.on('userJoined', () => logins.inc());

    gauge('parley_rooms', 'Rooms open now.', async () => (await rooms.stats()).rooms);
    gauge(
      'parley_users',
      'Users in rooms now (sessions, including those briefly without a connection).',
      async () => (await rooms.stats()).sessions,
    );
    gauge('parley_streams', 'Streams announced in rooms now (their media is connected).', async () => (await rooms.stats()).streams);
    gauge('parley_publishers', 'Publishing peer connections open now.', () => media.publishers);
    gauge('parley_players', 'Playing (subscriber) peer connections open now.', () => media.subscribers);

    this.signallingErrors = new Counter({
      name: 'parley_signalling_errors_total',
      help: 'Non-zero codes sent to clients in replies and errors, by code.',
      labelNames: ['code', 'name'] as const,
      registers,
    });

    total('parley_media_rtp_received_packets_total', 'RTP packets received from publishers.', () => media.packetsReceived);
    total('parley_media_rtp_received_bytes_total', 'RTP bytes (header and payload) received from publishers.', () => media.bytesReceived);
    total('parley_media_rtp_sent_packets_total', 'RTP packets relayed to players (first transmissions).', () => media.packetsSent);
    total(
      'parley_media_rtp_sent_bytes_total',
      'RTP bytes (header and payload) relayed to players (first transmissions).',
      () => media.bytesSent,
    );
    total('parley_media_nacks_received_total', 'Generic NACK feedback messages received from players.', () => media.nacksReceived);
    total('parley_media_nacks_sent_total', 'Generic NACK feedback messages sent to publishers.', () => media.nacksSent);
    total(
      'parley_media_retransmitted_packets_total',
      'RTP packets sent again to players in answer to NACKs.',
      () => media.retransmissionsSent,
    );
    total(
      'parley_media_retransmissions_refused_total',
      "Packets asked for by players and not sent again: the player's link had spent its retransmission budget.",
      () => media.retransmissionsRefused,
    );
    total(
      'parley_relay_sent_packets_total',
      "RTP packets relayed to other nodes' players (first transmissions).",
      () => media.relayPacketsSent,
    );
    total('parley_relay_received_packets_total', "RTP packets received from other nodes' relays.", () => media.relayPacketsReceived);
    total(
      'parley_relay_retransmitted_packets_total',
      "RTP packets sent again to other nodes in answer to their relays' NACKs.",
      () => media.relayRetransmissionsSent,
    );
    labelledTotals(
      'parley_media_stalls_total',
      'Connected media transports on which the media due stopped for the stall time, by cause (silent: nothing arrived; rtcp-only: RTCP only, no RTP from a publisher): their clients are told to restart ICE.',
      'cause',
      () => media.mediaStalls,
    );
    total('parley_media_audio_red_sent_packets_total', 'Audio packets relayed to players as RED (RFC 2198).', () => media.redPacketsSent);
    total(
      'parley_media_audio_recovered_frames_total',
      "Audio frames lost on publishers' uplinks and recovered from RED redundancy.",
      () => media.audioFramesRecovered,
    );
    total(
      'parley_media_keyframe_requests_received_total',
      'Keyframe requests (PLI or FIR) received from players.',
      () => media.keyFrameRequestsReceived,
    );
    labelledTotals(
      'parley_media_dropped_packets_total',
      'Datagrams the peer connections dropped, by reason: unauthenticated (STUN, DTLS, SRTP, SRTCP: forged, corrupted, or meant for another peer), replayed, malformed, of another DTLS epoch, or of no media protocol.',
      'reason',
      () => media.drops,
    );
    total(
      'parley_media_nat_rebindings_total',
      "Peer connections whose pair in use moved to the client's new address after its NAT rebound it.",
      () => media.natRebindings,
    );
    total(
      'parley_media_unroutable_datagrams_total',
      'Datagrams on the shared media UDP port that belonged to no peer connection.',
      () => media.unroutableDatagrams,
    );
    total(
      'parley_media_unroutable_tcp_connections_total',
      'Connections to the ICE-TCP port whose first binding request named no peer connection.',
      () => media.unroutableTcpConnections,
    );
    total(
      'parley_media_keyframe_requests_sent_total',
      'Keyframe requests (PLI) sent to publishers; requests close together from several players are merged into one.',
      () => media.keyFrameRequestsSent,
    );
  }

  /** Counts a non-zero code the server sent a client in a reply or an error. */
  signallingError(code: number): void {
    let counter = this.errorsByCode.get(code);
    if (!counter) {
      counter = this.signallingErrors.labels({ code: String(code), name: errorNames.get(code) ?? 'unknown' });
      this.errorsByCode.set(code, counter);
    }
    counter.inc();
  }

  /** The Prometheus text exposition of this server's metrics and the process's. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    const merged = Registry.merge([this.registry, processMetrics()]);
    return { contentType: merged.contentType, body: await merged.metrics() };
  }

  addRoutes(routes: HttpRoutes): void {
    routes.add(METRICS_PATH, async (req, res) => {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      const { contentType, body } = await this.scrape();
      res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
  }
}
