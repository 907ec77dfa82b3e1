/**
 * The Lua scripts behind the Redis RoomStore's atomic operations. Redis runs a script to its end
 * before any other command, so each operation is atomic across every server sharing the store.
 * Every key a script touches is passed in KEYS. A room's keys share the room's hash tag, an app's
 * indexes the app's.
 *
 * A room's log is a Redis Stream whose entry IDs are `0-<seq>`: fields `b` (the client event's
 * body as JSON, empty for a mark of the room's lifetime), `f` (the causing session, or empty), `t`
 * (the userIDs it is for as a JSON array, or empty for everyone), `m` (Unix ms).
 */
import { createHash } from 'node:crypto';

/**
 * A script of the store. One that writes is fenced: it runs only while the node's lease (the last
 * key) still holds the node's epoch (the last argument), so that a node that was paused past its
 * lease changes nothing when it wakes; the store adds both (see RedisRoomStore).
 */
export class LuaScript {
  readonly sha1: string;
  readonly source: string;

  constructor(
    body: string,
    readonly writes = true,
  ) {
    this.source = writes ? `${FENCE}${body}` : body;
    this.sha1 = createHash('sha1').update(this.source).digest('hex');
  }
}

/** Refuses a write of a node whose lease has lapsed (no lease key: a store without fencing). */
const FENCE = `
local lease = KEYS[#KEYS]
if lease ~= '-' and redis.call('GET', lease) ~= ARGV[#ARGV] then return redis.error_reply('FENCED the lease of this node has lapsed') end
`;

/** Appends to the log of the room whose hash is `roomKey`: its next number. */
const APPEND = `
local function append(roomKey, logKey, size, now, body, from, to)
  local seq = redis.call('HINCRBY', roomKey, 'seq', 1)
  redis.call('XADD', logKey, 'MAXLEN', size, '0-' .. seq, 'b', body, 'f', from, 't', to, 'm', now)
  return seq
end
local function roomFields(roomKey)
  return redis.call('HMGET', roomKey, 'lifeID', 'max', 'seq', 'msgSeq')
end
`;

/**
 * KEYS: room, members, sessions, log, app rooms, app session rooms, the user's sessions, apps,
 * publications, extra infos.
 * ARGV: sessionID, session JSON, maxMemberCount, a new lifeID, the join event's body, now, log size, roomID, appID.
 * Returns with the join the room as the newcomer sees it: members in order, sessions, publications, extra infos.
 */
export const JOIN_ROOM = new LuaScript(`${APPEND}
local opened = 0
if redis.call('EXISTS', KEYS[1]) == 1 then
  local max = tonumber(redis.call('HGET', KEYS[1], 'max'))
  if max > 0 and redis.call('ZCARD', KEYS[2]) >= max then return {'full'} end
else
  redis.call('DEL', KEYS[4])
  redis.call('HSET', KEYS[1], 'lifeID', ARGV[4], 'max', ARGV[3], 'seq', 0, 'msgSeq', 0)
  redis.call('SADD', KEYS[5], ARGV[8])
  redis.call('SADD', KEYS[8], ARGV[9])
  opened = append(KEYS[1], KEYS[4], ARGV[7], ARGV[6], '', '', '')
end
local joined = append(KEYS[1], KEYS[4], ARGV[7], ARGV[6], ARGV[5], ARGV[1], '')
redis.call('ZADD', KEYS[2], joined, ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[6], ARGV[1], ARGV[8])
redis.call('SADD', KEYS[7], ARGV[1])
local room = roomFields(KEYS[1])
return {'ok', opened, joined, room[1], room[2], room[3], room[4],
  redis.call('ZRANGE', KEYS[2], 0, -1), redis.call('HGETALL', KEYS[3]), redis.call('HVALS', KEYS[9]), redis.call('HVALS', KEYS[10])}
`);

/**
 * KEYS: room, members, sessions, log, extra, publications, app rooms, app session rooms, the
 * user's sessions, the session's plays, the session's publications, app streams, app live
 * streams, app stream rooms, the session's reliable requests.
 * ARGV: sessionID, the leave event's body, now, log size, roomID.
 */
export const LEAVE_ROOM = new LuaScript(`${APPEND}
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 0 then return false end
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[8], ARGV[1])
redis.call('SREM', KEYS[9], ARGV[1])
for _, streamID in ipairs(redis.call('SMEMBERS', KEYS[11])) do
  redis.call('HDEL', KEYS[6], streamID)
  redis.call('HDEL', KEYS[12], streamID)
  redis.call('SREM', KEYS[13], streamID)
  redis.call('HDEL', KEYS[14], streamID)
end
redis.call('DEL', KEYS[10], KEYS[11], KEYS[15])
local left = append(KEYS[1], KEYS[4], ARGV[4], ARGV[3], ARGV[2], ARGV[1], '')
local closed = 0
if redis.call('ZCARD', KEYS[2]) == 0 then
  closed = append(KEYS[1], KEYS[4], ARGV[4], ARGV[3], '', '', '')
end
local room = roomFields(KEYS[1])
if closed ~= 0 then
  redis.call('DEL', KEYS[1], KEYS[4], KEYS[5], KEYS[6])
  redis.call('SREM', KEYS[7], ARGV[5])
end
return {left, closed, room[1], room[2], room[3], room[4]}
`);

/** KEYS: room, log. ARGV: body, from, to, now, log size. The event's number, or nil if the room is not open. */
export const APPEND_EVENT = new LuaScript(`${APPEND}
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
return append(KEYS[1], KEYS[2], ARGV[5], ARGV[4], ARGV[1], ARGV[2], ARGV[3])
`);

/** KEYS: room, log. ARGV: seq. {'gone'} when some events after seq are no longer kept, else {'ok', entries}; nil if not open. */
export const EVENTS_SINCE = new LuaScript(
  `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local seq = tonumber(ARGV[1])
local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)[1]
local oldest
if first then oldest = tonumber(string.sub(first[1], 3)) else oldest = tonumber(redis.call('HGET', KEYS[1], 'seq')) + 1 end
if seq < oldest - 1 then return {'gone'} end
return {'ok', redis.call('XRANGE', KEYS[2], '0-' .. (seq + 1), '+')}
`,
  false,
);

/** KEYS: room. The next messageID, or nil if the room is not open. */
export const NEXT_MESSAGE_ID = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
return redis.call('HINCRBY', KEYS[1], 'msgSeq', 1)
`);

/** KEYS: room, extra. ARGV: key, info JSON, max keys. */
export const SET_ROOM_EXTRA_INFO = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 'closed' end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 and redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[3]) then return 'full' end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 'ok'
`);

/**
 * KEYS: app forbidden streams, app streams (streamID → sessionID), app stream rooms (streamID →
 * roomID), publications, the session's publications. ARGV: streamID, sessionID, max per session,
 * the new publication's JSON, the devices JSON (or empty), roomID.
 */
export const RESERVE_STREAM = new LuaScript(`
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return {'forbidden'} end
local owner = redis.call('HGET', KEYS[2], ARGV[1])
if owner then
  if owner ~= ARGV[2] then return {'taken'} end
  local publication = cjson.decode(redis.call('HGET', KEYS[4], ARGV[1]))
  publication.negotiation = publication.negotiation + 1
  if ARGV[5] ~= '' then publication.devices = cjson.decode(ARGV[5]) end
  publication.mediaNode = ARGV[7]
  local json = cjson.encode(publication)
  redis.call('HSET', KEYS[4], ARGV[1], json)
  return {'existing', json}
end
if redis.call('SCARD', KEYS[5]) >= tonumber(ARGV[3]) then return {'limit'} end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[6])
redis.call('HSET', KEYS[4], ARGV[1], ARGV[4])
redis.call('SADD', KEYS[5], ARGV[1])
return {'reserved', ARGV[4]}
`);

/** KEYS: publications. ARGV: streamID, publicationID, the change as JSON. The new JSON, or nil if it is not that publication. */
export const UPDATE_PUBLICATION = new LuaScript(`
local json = redis.call('HGET', KEYS[1], ARGV[1])
if not json then return false end
local publication = cjson.decode(json)
if publication.publicationID ~= ARGV[2] then return false end
for key, value in pairs(cjson.decode(ARGV[3])) do publication[key] = value end
json = cjson.encode(publication)
redis.call('HSET', KEYS[1], ARGV[1], json)
return json
`);

/**
 * KEYS: publications, app live streams, room, log. ARGV: streamID, publicationID, now, log size,
 * then body, from and to of each event to log. Marks the publication live and logs the events, if
 * it is still that publication, not live yet, and its room is open: {its JSON, the events'
 * numbers}; else nil.
 */
export const ANNOUNCE_PUBLICATION = new LuaScript(`${APPEND}
local json = redis.call('HGET', KEYS[1], ARGV[1])
if not json or redis.call('EXISTS', KEYS[3]) == 0 then return false end
local publication = cjson.decode(json)
if publication.publicationID ~= ARGV[2] or publication.live then return false end
publication.live = true
json = cjson.encode(publication)
redis.call('HSET', KEYS[1], ARGV[1], json)
redis.call('SADD', KEYS[2], ARGV[1])
local seqs = {}
for i = 5, #ARGV - 1, 3 do
  seqs[#seqs + 1] = append(KEYS[3], KEYS[4], ARGV[4], ARGV[3], ARGV[i], ARGV[i + 1], ARGV[i + 2])
end
return {json, seqs}
`);

/**
 * KEYS: publications, app streams, app stream rooms, app live streams, the session's publications,
 * room, log. ARGV: streamID, publicationID, now, log size, the end event's body, from, to.
 * {the removed JSON, the end event's number (0 unless it was live and its room is open)}, or nil.
 */
export const DROP_PUBLICATION = new LuaScript(`${APPEND}
local json = redis.call('HGET', KEYS[1], ARGV[1])
if not json then return false end
local publication = cjson.decode(json)
if publication.publicationID ~= ARGV[2] then return false end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('SREM', KEYS[4], ARGV[1])
redis.call('SREM', KEYS[5], ARGV[1])
local ended = 0
if publication.live and redis.call('EXISTS', KEYS[6]) == 1 then
  ended = append(KEYS[6], KEYS[7], ARGV[4], ARGV[3], ARGV[5], ARGV[6], ARGV[7])
end
return {json, ended}
`);

/** KEYS: the session's plays. ARGV: streamID, play JSON, max per session. */
export const ADD_PLAY = new LuaScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return 'limit' end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 'ok'
`);

/** KEYS: the session's plays. ARGV: streamID, playID. */
export const DROP_PLAY = new LuaScript(`
local json = redis.call('HGET', KEYS[1], ARGV[1])
if not json or cjson.decode(json).playID ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
`);

/** KEYS: the session's requests, app session rooms. ARGV: sessionID, clientSeq, outcome JSON, how many to keep. Only while the session lasts. */
export const REMEMBER_REQUEST = new LuaScript(`
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return 0 end
local seq = tonumber(ARGV[2])
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
if seq > tonumber(redis.call('HGET', KEYS[1], 'last') or '0') then redis.call('HSET', KEYS[1], 'last', ARGV[2]) end
redis.call('HDEL', KEYS[1], tostring(seq - tonumber(ARGV[4])))
return 1
`);

/** KEYS: app kicks, their order, its counter. ARGV: sessionID, kick JSON, how many to keep. */
export const REMEMBER_KICK = new LuaScript(`
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[3]), ARGV[1])
while redis.call('ZCARD', KEYS[2]) > tonumber(ARGV[3]) do
  local oldest = redis.call('ZPOPMIN', KEYS[2])
  redis.call('HDEL', KEYS[1], oldest[1])
end
return 'ok'
`);
