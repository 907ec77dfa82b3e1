/**
 * werift gives every ICE agent that names no STUN server Google's (stun.l.google.com:19302) and
 * asks it for a reflexive candidate: a DNS query and STUN requests to a host nobody configured,
 * from every peer connection. Parley's peers reach the server at the addresses in its offers and
 * answers (and TURN when configured), so the default is removed from each ICE agent the peer
 * connection creates. werift creates them on its first transceiver or remote description.
 */
interface IceAgentHost {
  secureManager: { createTransport(): { iceTransport: { connection: { stunServer?: unknown } } } };
}

export function withoutDefaultStunServer<T extends object>(pc: T): T {
  const manager = (pc as unknown as IceAgentHost).secureManager;
  const createTransport = manager.createTransport.bind(manager);
  manager.createTransport = () => {
    const transport = createTransport();
    transport.iceTransport.connection.stunServer = undefined;
    return transport;
  };
  return pc;
}
