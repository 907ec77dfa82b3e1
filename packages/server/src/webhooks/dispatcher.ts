/**
 * Delivers webhooks: watches the room service and hands one webhook per event, built at once with
 * its room event's number and `event_id`, to a queue that POSTs it signed to the app's callback
 * URL. Watching costs the room service a push; the HTTP work happens later. The queue is in memory
 * for a single process (memoryWebhookQueue.ts) and a Redis Stream per partition for a cluster
 * (redisWebhookQueue.ts), which keeps each webhook through the death of the node that caused it or
 * was delivering it. Drops are logged at warn, without secrets.
 *
 * Receivers deduplicate by `event_id` (`<appid>-<room_session_id>-<room_seq>`), the same on every
 * attempt and redelivery.
 */
import type { Logger } from 'pino';
import type { EventEmitter } from 'node:events';
import type { AppRegistry } from '../apps.js';
import type { RecordStatusEvent } from '../egress/recordings.js';
import type { MixEvent, MixingEvents } from '../egress/mixing.js';
import type { RoomRef, RoomServiceEvents, RoomServiceObserver } from '../rooms/observer.js';
import { ROOM_CLOSE_REASONS, ROOM_LOGOUT_REASONS, STREAM_CLOSE_TYPES, type UnsignedWebhook, type WebhookCommon } from './events.js';
import { MemoryWebhookQueue } from './memoryWebhookQueue.js';
import { resolveWebhookOptions, type WebhookOptions, type WebhookStats } from './options.js';
import { WebhookSender, type WebhookQueue, type WebhookQueueFactory } from './sender.js';

export { DEFAULT_WEBHOOK_OPTIONS, type WebhookOptions, type WebhookStats } from './options.js';

export interface WebhookDispatcherOptions {
  apps: AppRegistry;
  observer: RoomServiceObserver;
  /** A server that records reports its tasks too. */
  recordings?: EventEmitter<{ recordStatus: [RecordStatusEvent] }> | undefined;
  mixing?: EventEmitter<MixingEvents>;
  log: Logger;
  options?: Partial<WebhookOptions>;
  /** Where webhooks wait: in this process's memory unless given (a cluster's Redis queue). */
  queue?: WebhookQueueFactory;
}

/** Room fields of a webhook, fixed when the event happens. */
type EventFields = Pick<WebhookCommon, 'appid' | 'room_id' | 'room_session_id' | 'room_seq' | 'event_time' | 'event_id'>;

export class WebhookDispatcher {
  private readonly sender: WebhookSender;
  private readonly queue: WebhookQueue;
  private readonly log: Logger;
  private readonly unsubscribe: () => void;
  private stopping = false;
  private closing: Promise<void> | undefined;

  /** Throws if an app's callback configuration or an option is invalid. */
  constructor({ apps, observer, recordings, mixing, log, options, queue = MemoryWebhookQueue.factory }: WebhookDispatcherOptions) {
    const resolved = resolveWebhookOptions(options);
    this.log = log;
    this.sender = new WebhookSender(apps, resolved, log);
    this.queue = queue(this.sender, resolved, log);
    // Watched even without callbacks: a reloaded configuration may add some.
    const unwatchRooms = this.watch(observer);
    const onRecordStatus = (event: RecordStatusEvent): void => this.recordStatus(event);
    recordings?.on('recordStatus', onRecordStatus);
    const onMixStart = ({ appID, roomID, taskID, streamID, timeMs }: MixEvent): void =>
      this.record({ appID, roomID, lifeID: taskID, seq: 1, timeMs }, (f) => ({
        ...f,
        event: 'mix_start',
        task_id: taskID,
        stream_id: streamID,
      }));
    const onMixStop = ({ appID, roomID, taskID, streamID, timeMs, reason }: MixingEvents['mixStop'][0]): void =>
      this.record({ appID, roomID, lifeID: taskID, seq: 2, timeMs }, (f) => ({
        ...f,
        event: 'mix_stop',
        task_id: taskID,
        stream_id: streamID,
        reason,
      }));
    mixing?.on('mixStart', onMixStart);
    mixing?.on('mixStop', onMixStop);
    this.unsubscribe = () => {
      unwatchRooms();
      recordings?.off('recordStatus', onRecordStatus);
      mixing?.off('mixStart', onMixStart);
      mixing?.off('mixStop', onMixStop);
    };
  }

  private recordStatus({ appID, roomID, taskID, sequence, eventType, timeMs, detail }: RecordStatusEvent): void {
    const ref = { appID, roomID, lifeID: taskID, seq: sequence + 1, timeMs };
    this.record(ref, (f) => ({ ...f, event: 'record_status', task_id: taskID, event_type: eventType, sequence, detail }));
  }

  /** Whether `appID` has a callback URL, i.e. gets webhooks. */
  hasCallback(appID: number): boolean {
    return this.sender.hasCallback(appID);
  }

  stats(): WebhookStats {
    return { ...this.queue.held(), ...this.sender.counters };
  }

  /**
   * Stops watching, then closes the queue: in memory, waiting retries are dropped and queued and
   * in-flight attempts get `closeTimeoutMs` to finish; in a cluster, what is not delivered by then
   * stays in Redis for the other nodes.
   */
  close(): Promise<void> {
    return (this.closing ??= (async () => {
      this.stopping = true;
      this.unsubscribe();
      await this.queue.close();
    })());
  }

  private watch(observer: RoomServiceObserver): () => void {
    const handlers: { [K in keyof RoomServiceEvents]: (...args: RoomServiceEvents[K]) => void } = {
      roomCreated: (ref) => this.record(ref, (f) => ({ ...f, event: 'room_create' })),
      roomClosed: ({ reason, ...ref }) =>
        this.record(ref, (f) => ({
          ...f,
          event: 'room_close',
          close_reason: ROOM_CLOSE_REASONS[reason],
          reason_detail: reason,
        })),
      userJoined: ({ user, sessionID, ...ref }) =>
        this.record(ref, (f) => ({
          ...f,
          event: 'room_login',
          user_account: user.userID,
          user_nickname: user.userName,
          session_id: sessionID,
        })),
      userLeft: ({ user, sessionID, reason, ...ref }) =>
        this.record(ref, (f) => ({
          ...f,
          event: 'room_logout',
          user_account: user.userID,
          user_nickname: user.userName,
          session_id: sessionID,
          reason: ROOM_LOGOUT_REASONS[reason],
          reason_detail: reason,
        })),
      streamCreated: ({ stream, ...ref }) =>
        this.record(ref, (f) => ({
          ...f,
          event: 'stream_create',
          user_account: stream.user.userID,
          user_nickname: stream.user.userName,
          stream_id: stream.streamID,
          extra_info: stream.extraInfo,
        })),
      streamClosed: ({ stream, reason, ...ref }) =>
        this.record(ref, (f) => ({
          ...f,
          event: 'stream_close',
          user_account: stream.user.userID,
          user_nickname: stream.user.userName,
          stream_id: stream.streamID,
          extra_info: stream.extraInfo,
          type: STREAM_CLOSE_TYPES[reason],
          reason_detail: reason,
        })),
    };
    const names = Object.keys(handlers) as Array<keyof RoomServiceEvents>;
    // The mapped type above makes every event handled; the emitter's per-event typing cannot
    // follow a loop over names, hence the untyped view for attaching them.
    const emitter = observer as unknown as NodeJS.EventEmitter;
    for (const name of names) emitter.on(name, handlers[name] as (...args: unknown[]) => void);
    return () => {
      for (const name of names) emitter.off(name, handlers[name] as (...args: unknown[]) => void);
    };
  }

  /** Called synchronously by the room service: builds the webhook with its room event's number and queues it, nothing more. */
  private record({ appID, roomID, lifeID, seq, timeMs }: RoomRef, build: (f: EventFields) => UnsignedWebhook): void {
    if (this.stopping || !this.sender.hasCallback(appID)) return;
    try {
      const event_id = `${appID}-${lifeID}-${seq}`;
      this.queue.push(build({ appid: appID, room_id: roomID, room_session_id: lifeID, room_seq: seq, event_time: timeMs, event_id }));
    } catch (err) {
      this.log.error({ err, appID, roomID }, 'webhook not queued');
    }
  }
}
