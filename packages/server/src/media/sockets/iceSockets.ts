/**
 * The sockets of the server's ICE agents, all on the listen address only: by default one UDP port
 * for every peer connection (`UdpMux`), or a socket per peer connection from a port range; and,
 * when configured, one TCP port for ICE over TCP (`TcpMux`). Each werift agent is adapted as
 * werift creates it (`adopt`): it gathers the listen address alone, takes a ufrag unique on this
 * server (werift's are 4 hex digits: among 500 agents two would likely share one), and its
 * protocols use the shared sockets instead of opening their own.
 */
import { randomBytes } from 'node:crypto';
import { StunProtocol, TcpPassiveProtocol, type PeerConfig } from 'werift';
import { hasValidIntegrity, stunProtocolInternals, type IceAgentInternals } from '@parley/protocol/rtp';
import { TcpMux } from './tcpMux.js';
import { UdpMux, type MuxedSocket } from './udpMux.js';
import type { MediaStats } from '../core/types.js';

export interface IceSocketOptions {
  listenIp: string;
  /** One UDP port for the media of every peer connection (0: one the system picks). Not with `portRange`. */
  udpPort?: number;
  /** A UDP port per peer connection from this range, instead of one for all. */
  portRange?: [number, number];
  /** One TCP port for ICE over TCP (0: one the system picks); without it, ICE runs over UDP only. */
  tcpPort?: number;
}

/** A connection sends its first binding request at once; one that has not within this is not ICE. */
const TCP_FIRST_FRAME_TIMEOUT_MS = 10_000;

export class IceSockets {
  private constructor(
    private readonly options: IceSocketOptions,
    private readonly udp: UdpMux | undefined,
    private readonly tcp: TcpMux | undefined,
  ) {}

  /** Opens the shared sockets; what reaches them for no agent is counted in `stats`. */
  static async open(options: IceSocketOptions, stats: MediaStats, onUdpError: (err: Error) => void): Promise<IceSockets> {
    const { listenIp, portRange, tcpPort } = options;
    const udp = portRange ? undefined : await UdpMux.open(listenIp, options.udpPort ?? 0, stats, onUdpError);
    try {
      const tcp = tcpPort === undefined ? undefined : await TcpMux.open(listenIp, tcpPort, stats, TCP_FIRST_FRAME_TIMEOUT_MS);
      return new IceSockets(options, udp, tcp);
    } catch (err) {
      await udp?.close();
      throw err;
    }
  }

  get udpPort(): number | undefined {
    return this.udp?.port;
  }

  get tcpPort(): number | undefined {
    return this.tcp?.port;
  }

  /** What a werift peer connection needs to know of these sockets. */
  get peerConfig(): Partial<PeerConfig> {
    const { listenIp, portRange } = this.options;
    return { iceInterfaceAddresses: { udp4: listenIp }, icePortRange: portRange, iceUseTcp: this.tcp !== undefined };
  }

  /** Adapts one of werift's ICE agents as it is created (see the module comment). */
  adopt(agent: IceAgentInternals): void {
    const { listenIp } = this.options;
    const ufrags: string[] = [];
    let udp: MuxedSocket | undefined;
    let tcp: TcpPassiveProtocol | undefined;

    /** Whether a binding request to one of the agent's ufrags carries a valid MESSAGE-INTEGRITY under its password. */
    const signed = (request: Buffer, ufrag: string): boolean => {
      const password = agent.userHistory[ufrag];
      return password !== undefined && hasValidIntegrity(request, password);
    };
    const takeFreshUfrag = (): void => {
      const werifts = agent.localUsername;
      const ufrag = this.freshUfrag();
      agent.localUsername = ufrag;
      agent.userHistory[ufrag] = agent.localPassword;
      delete agent.userHistory[werifts];
      for (const protocol of agent.protocols) {
        if (protocol.localCandidate?.ufrag === werifts) protocol.localCandidate.ufrag = ufrag;
      }
      ufrags.push(ufrag);
      udp?.addUfrag(ufrag);
      if (tcp) this.tcp?.addUfrag(ufrag, tcp, (request) => signed(request, ufrag));
    };
    takeFreshUfrag();
    // werift's restart runs to its end synchronously: the fresh ufrag replaces its new one before anything reads it.
    const restart = agent.restart.bind(agent);
    agent.restart = () => {
      const restarted = restart();
      takeFreshUfrag();
      return restarted;
    };

    // werift waits for the client's checks only while it has pairs of its own to check: with none
    // (a client that offers only ICE-TCP active candidates, which the server does not dial) it
    // would fail at once. It waits here instead, until a check arrives or the peer is closed.
    const connect = agent.connect.bind(agent);
    agent.connect = async () => {
      for (;;) {
        try {
          return await connect();
        } catch (err) {
          if (agent.state === 'closed' || agent.checkList.length > 0) throw err;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
    };

    const gather = agent.getCandidatePromises.bind(agent);
    agent.getCandidatePromises = (_addresses, timeout) => gather([listenIp], timeout);

    const ensureProtocol = agent.ensureProtocol.bind(agent);
    agent.ensureProtocol = (protocol) => {
      ensureProtocol(protocol);
      const udpMux = this.udp;
      const tcpMux = this.tcp;
      if (protocol instanceof StunProtocol && udpMux) {
        const stun = stunProtocolInternals(protocol);
        protocol.connectionMade = async () => {
          const socket = udpMux.socketFor(ufrags);
          socket.onData = (data, addr) => stun.datagramReceived(data, addr);
          socket.signed = signed;
          stun.transport = socket;
          udp = socket;
        };
      } else if (protocol instanceof TcpPassiveProtocol && tcpMux) {
        protocol.connectionMade = async (localIp: string) => {
          protocol.localIp = localIp;
          for (const ufrag of ufrags) tcpMux.addUfrag(ufrag, protocol, (request) => signed(request, ufrag));
          tcp = protocol;
        };
        Object.defineProperty(protocol, 'listeningPort', { get: () => tcpMux.port });
        const close = protocol.close.bind(protocol);
        protocol.close = async () => {
          tcpMux.forget(protocol);
          await close();
        };
      }
    };
  }

  /** 64 random bits (hex: ufrags allow letters, digits, + and / only), and not in use here. */
  private freshUfrag(): string {
    for (;;) {
      const ufrag = randomBytes(8).toString('hex');
      if (!this.udp?.hasUfrag(ufrag) && !this.tcp?.hasUfrag(ufrag)) return ufrag;
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.udp?.close(), this.tcp?.close()]);
  }
}
