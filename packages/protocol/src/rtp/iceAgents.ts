/**
 * werift creates an ICE agent and a DTLS transport for a peer connection on its first transceiver
 * or remote description, with no way to reach them before they start. `onEachTransport` and
 * `onEachIceAgent` let the owner of a peer connection adapt each as it is created.
 */
import type { IceConnection, RTCDtlsTransport, RTCPeerConnection } from 'werift';
import { iceAgentInternals, peerConnectionInternals, type IceAgentInternals } from './weriftInternals.js';

export function onEachTransport<T extends RTCPeerConnection>(pc: T, adapt: (transport: RTCDtlsTransport) => void): T {
  const manager = peerConnectionInternals(pc).secureManager;
  const createTransport = manager.createTransport.bind(manager);
  manager.createTransport = () => {
    const transport = createTransport();
    adapt(transport);
    return transport;
  };
  return pc;
}

export function onEachIceAgent<T extends RTCPeerConnection>(pc: T, adapt: (agent: IceAgentInternals) => void): T {
  return onEachTransport(pc, (transport) => adapt(iceAgentInternals(transport.iceTransport.connection)));
}

/**
 * werift gives every ICE agent that names no STUN server Google's (stun.l.google.com:19302) and
 * asks it for a reflexive candidate: a DNS query and STUN requests to a host nobody configured,
 * from every peer connection. Parley's peers reach the server at the addresses in its offers and
 * answers (and the STUN or TURN servers configured), so the default is removed; a configured one stays.
 */
export function withoutDefaultStunServer<T extends RTCPeerConnection>(pc: T): T {
  return onEachIceAgent(pc, (ice) => {
    if (ice.options.stunServer === undefined) ice.stunServer = undefined;
  });
}

/**
 * Sends one binding request on the ICE agent's pair in use now (as its consent checks do, every
 * 4-6 s), nominating it (USE-CANDIDATE, as libwebrtc's checks of its selected pair do): a NAT
 * that moved this side to another address or port shows the other side where its pair in use
 * went. Its answer changes nothing here.
 */
export function checkPairInUse(agent: IceConnection): void {
  const ice = iceAgentInternals(agent);
  const pair = ice.nominated;
  if (!pair || !ice.remotePassword) return;
  const request = ice.buildRequest({
    nominate: true,
    localUsername: ice.localUsername,
    remoteUsername: ice.remoteUsername,
    iceControlling: ice.iceControlling,
    localCandidate: pair.localCandidate,
  });
  pair.protocol.request(request, pair.remoteAddr, Buffer.from(ice.remotePassword, 'utf8'), { retransmissions: 0 }).catch(() => undefined);
}
