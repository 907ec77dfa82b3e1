/**
 * werift creates an ICE agent for a peer connection on its first transceiver or remote
 * description, with no way to reach it before it gathers. `onEachIceAgent` lets the owner of a
 * peer connection adapt each agent as it is created (werift 0.24's ICE `Connection`).
 */
interface IceAgentHost {
  secureManager: { createTransport(): { iceTransport: { connection: object } } };
}

export function onEachIceAgent<T extends object>(pc: T, adapt: (agent: object) => void): T {
  const manager = (pc as unknown as IceAgentHost).secureManager;
  const createTransport = manager.createTransport.bind(manager);
  manager.createTransport = () => {
    const transport = createTransport();
    adapt(transport.iceTransport.connection);
    return transport;
  };
  return pc;
}

/**
 * werift gives every ICE agent that names no STUN server Google's (stun.l.google.com:19302) and
 * asks it for a reflexive candidate: a DNS query and STUN requests to a host nobody configured,
 * from every peer connection. Parley's peers reach the server at the addresses in its offers and
 * answers (and the STUN or TURN servers configured), so the default is removed; a configured one stays.
 */
export function withoutDefaultStunServer<T extends object>(pc: T): T {
  return onEachIceAgent(pc, (agent) => {
    const ice = agent as { stunServer?: readonly [string, number]; options: { stunServer?: unknown } };
    if (ice.options.stunServer === undefined) ice.stunServer = undefined;
  });
}
