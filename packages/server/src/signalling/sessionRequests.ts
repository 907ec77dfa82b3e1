/**
 * What each request of a logged-in session does, by message type: one typed table, which does not
 * compile until a new request type has its handler.
 */
import type { ClientMessage, ClientMessageType, ClientRequest } from '@parley/protocol';
import { ok, type Outcome } from '../outcome.js';
import { roomOf, senderOf } from '../rooms/messaging.js';
import type { RoomService, SessionRef } from '../rooms/roomService.js';
import type { CdnRelays } from '../egress/cdnRelays.js';
import type { Mixing } from '../egress/mixing.js';

export interface RequestContext {
  rooms: RoomService;
  cdn: CdnRelays;
  mixing: Mixing;
  session: SessionRef;
  /** The session ended at its own request: the connection speaks for it no more. */
  loggedOut(): void;
}

/** Requests that need no session (login, resume) or do nothing (heartbeat) are the connection's own. */
export type SessionRequestType = Exclude<ClientMessageType, 'login' | 'resume' | 'heartbeat'>;
/** Requests the client re-sends after a reconnect until answered: done once per clientSeq. */
type ReliableType = Extract<ClientMessage, { clientSeq: number }>['type'];

type Handler<T extends SessionRequestType> = (context: RequestContext, message: ClientRequest<T>) => Promise<Outcome<unknown>>;
export type SessionRequest<T extends SessionRequestType> = T extends ReliableType
  ? { reliable: true; handle: Handler<T> }
  : { reliable: false; handle: Handler<T> };

export const sessionRequests: { [T in SessionRequestType]: SessionRequest<T> } = {
  logout: {
    reliable: false,
    handle: async ({ rooms, session, loggedOut }) => {
      loggedOut();
      await rooms.logout(session);
      return ok({});
    },
  },
  publish: { reliable: false, handle: ({ rooms, session }, m) => rooms.publish(session, m) },
  unpublish: { reliable: false, handle: ({ rooms, session }, m) => rooms.unpublish(session, m.streamID) },
  play: { reliable: false, handle: ({ rooms, session }, m) => rooms.play(session, m) },
  unplay: { reliable: false, handle: ({ rooms, session }, m) => rooms.unplay(session, m.streamID) },
  playVideo: { reliable: false, handle: ({ rooms, session }, m) => rooms.changePlay(session, m) },
  mutePlay: { reliable: false, handle: ({ rooms, session }, m) => rooms.changePlay(session, m) },
  restartIce: { reliable: false, handle: ({ rooms, session }, m) => rooms.restartIce(session, m) },
  addCdnUrl: { reliable: false, handle: ({ cdn, session }, m) => cdn.add(session, m.streamID, m.url) },
  removeCdnUrl: { reliable: false, handle: ({ cdn, session }, m) => cdn.remove(session, m.streamID, m.url) },
  startMixerTask: { reliable: false, handle: ({ mixing, session }, m) => mixing.startFor(session, m.task) },
  stopMixerTask: { reliable: false, handle: ({ mixing, session }, m) => mixing.stopFor(session, m.taskID) },
  renewToken: { reliable: false, handle: ({ rooms, session }, m) => rooms.renewToken(session, m.token) },
  barrageMessage: {
    reliable: false,
    handle: ({ rooms, session }, m) => rooms.say(session, (messaging, s) => messaging.barrage(roomOf(s), senderOf(s), m.message)),
  },
  broadcastMessage: {
    reliable: true,
    handle: ({ rooms, session }, m) => rooms.say(session, (messaging, s) => messaging.broadcast(roomOf(s), senderOf(s), m.message)),
  },
  customCommand: {
    reliable: true,
    handle: ({ rooms, session }, m) =>
      rooms.say(session, (messaging, s) => messaging.customCommand(roomOf(s), senderOf(s), m.command, m.toUserIDs)),
  },
  setRoomExtraInfo: {
    reliable: true,
    handle: ({ rooms, session }, m) => rooms.say(session, (messaging, s) => messaging.setRoomExtraInfo(s, m.key, m.value)),
  },
  setStreamExtraInfo: {
    reliable: true,
    handle: ({ rooms, session }, m) => rooms.say(session, (messaging, s) => messaging.setStreamExtraInfo(s, m.streamID, m.extraInfo)),
  },
  setStreamDevices: {
    reliable: true,
    handle: ({ rooms, session }, { streamID, camera, microphone, speaker }) =>
      rooms.say(session, (messaging, s) => messaging.setStreamDevices(s, { streamID, camera, microphone, speaker })),
  },
};
