import { PARK, RETRY } from '@eventstore/db-client';
import type { EventStoreDBClient, PersistentSubscriptionToAll, PersistentSubscriptionToAllResolvedEvent } from '@eventstore/db-client';
import type { EventHandler, RecordedEvent, Subscription } from '../event-store';
import { blockedReason } from '../event-store';
import { describeError } from './esdb-errors';
import { toRecordedEvent } from './recorded-event';

/** Longest wait before a retry: the group's other buffered messages wait too, and the server retries (and counts
 * as an attempt) any message not acked within its messageTimeout (30 s by default). */
const MAX_RETRY_DELAY_MS = 5_000;
/** Waits between attempts to re-join the group after the connection to it broke. */
const RECONNECT_DELAY_MS = 500;
const MAX_RECONNECT_DELAY_MS = 30_000;

export interface PersistentSubscriptionOptions {
  client: EventStoreDBClient;
  group: string;
  handler: EventHandler;
  /** Exact client-side check; events that fail it are acked without calling the handler. */
  matches: (event: RecordedEvent) => boolean;
  maxAttempts: number;
  retryBackoffMs: number;
  /** Messages the server may have in flight to this consumer (SubscribeToPersistentSubscriptionToAllOptions.bufferSize). */
  bufferSize: number;
  /**
   * The group's parked events when this consumer joins (best effort: reading the parked stream needs admin rights;
   * an empty list then). Their streams start out blocked (see EsdbPersistentSubscription).
   */
  loadParked: () => Promise<readonly RecordedEvent[]>;
  /** Failures of the connection to the group (it is re-joined after a pause). */
  onError: (group: string, err: unknown) => void;
  onStopped: () => void;
}

/**
 * One consumer of an EventStoreDB persistent subscription group on $all. Handles one event at a time: convert, call the
 * handler, then `ack`, or `nack(RETRY)` after a backoff, or `nack(PARK)` on the last attempt (the server counts
 * attempts in `retryCount`, 0 on the first delivery). ack/nack are methods of the subscription
 * (PersistentSubscriptionBase in dist/types/index.d.ts).
 *
 * No cascade behind a parked event (best effort, as the PostgreSQL consumer group does exactly): once an event is
 * parked, a later event of its stream is parked at once behind it (nack PARK with a "blocked by a parked event"
 * reason), never handed to the handler. When the parked event itself comes back (a replay of the parked stream), it is
 * handled; once it succeeds its stream is unblocked, so the replayed events behind it follow. This consumer knows the
 * parked events it saw parked and those in the parked stream when it joined; with several consumers in a group (or
 * a parked stream it may not read) another consumer may not know a stream is blocked, and a second replay can be
 * needed. The server's order of replayed messages is the parked stream's, i.e. the order they were parked in.
 *
 * Persistent subscriptions do NOT guarantee order (a retried event comes back after later ones; with several
 * consumers in a group, events are spread over them) and deliver at least once (a message not acked within the
 * message timeout, or in flight when a consumer goes away, is delivered again). Handlers must be idempotent and
 * must not rely on order.
 */
export class EsdbPersistentSubscription implements Subscription {
  readonly group: string;
  private stopping = false;
  private current: PersistentSubscriptionToAll | undefined;
  private inFlight: Promise<void> = Promise.resolve();
  private loop: Promise<void> = Promise.resolve();
  private stopped: Promise<void> | undefined;
  private wakeUp: (() => void) | undefined;
  /** Streams with a parked event -> the lowest parked revision known to this consumer. */
  private readonly blocked = new Map<string, bigint>();

  private constructor(private readonly options: PersistentSubscriptionOptions) {
    this.group = options.group;
  }

  /** Joins the group (rejects when the server refuses, e.g. unknown group or too many consumers) and starts delivery. */
  static async start(options: PersistentSubscriptionOptions): Promise<EsdbPersistentSubscription> {
    const subscription = new EsdbPersistentSubscription(options);
    for (const parked of await options.loadParked().catch(() => [])) subscription.noteParked(parked);
    const first = await subscription.open();
    subscription.loop = subscription.run(first);
    return subscription;
  }

  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.stopping = true;
      this.wakeUp?.();
      await this.inFlight.catch(() => undefined); // its own handler reports its outcome; here we only wait for it to end
      const current = this.current;
      if (current) await closeQuietly(current);
      await this.loop;
      this.options.onStopped();
    })();
    return this.stopped;
  }

  /** Connects and waits for the server's confirmation (the "confirmation" event of ReadableSubscription). */
  private async open(): Promise<PersistentSubscriptionToAll> {
    const subscription = this.options.client.subscribeToPersistentSubscriptionToAll(this.group, { bufferSize: this.options.bufferSize });
    // The client emits 'error' without destroying the stream; an error emitted while no `for await` is attached would
    // otherwise crash the process or leave the next iteration hanging. Destroying with it makes the iterator throw.
    subscription.on('error', (err: Error) => {
      if (!subscription.destroyed) subscription.destroy(err);
    });
    try {
      await new Promise<void>((resolve, reject) => {
        const cleanup = () => {
          subscription.removeListener('confirmation', onConfirmation);
          subscription.removeListener('error', onError);
          subscription.removeListener('close', onClose);
        };
        const onConfirmation = () => {
          cleanup();
          resolve();
        };
        const onError = (err: Error) => {
          cleanup();
          reject(err);
        };
        const onClose = () => {
          cleanup();
          reject(new Error(`The subscription to group '${this.group}' closed before the server confirmed it`));
        };
        subscription.on('confirmation', onConfirmation);
        subscription.on('error', onError);
        subscription.on('close', onClose);
      });
    } catch (err) {
      await closeQuietly(subscription);
      throw err;
    }
    return subscription;
  }

  private async run(first: PersistentSubscriptionToAll): Promise<void> {
    let next: PersistentSubscriptionToAll | undefined = first;
    let failures = 0;
    while (!this.stopping) {
      let subscription: PersistentSubscriptionToAll | undefined;
      try {
        subscription = next ?? (await this.open());
        next = undefined;
        this.current = subscription;
        if (this.stopping) break;
        failures = 0;
        for await (const resolved of subscription) {
          if (this.stopping) break;
          const work = this.deliver(subscription, resolved);
          this.inFlight = work;
          await work;
        }
        if (!this.stopping) this.options.onError(this.group, new Error(`The server ended the subscription to group '${this.group}'`));
      } catch (err) {
        if (!this.stopping) this.options.onError(this.group, err);
      } finally {
        this.current = undefined;
        if (subscription) await closeQuietly(subscription);
      }
      if (this.stopping) break;
      failures += 1;
      await this.sleep(Math.min(RECONNECT_DELAY_MS * 2 ** (failures - 1), MAX_RECONNECT_DELAY_MS));
    }
  }

  private noteParked(event: RecordedEvent): void {
    const first = this.blocked.get(event.stream);
    if (first === undefined || event.revision < first) this.blocked.set(event.stream, event.revision);
  }

  /** Handler failures end in a nack; only ack/nack failures (a broken connection) are thrown. */
  private async deliver(subscription: PersistentSubscriptionToAll, resolved: PersistentSubscriptionToAllResolvedEvent): Promise<void> {
    const event = resolved.event ? toRecordedEvent(resolved.event, resolved.commitPosition) : undefined;
    if (!event || !this.options.matches(event)) {
      await subscription.ack(resolved);
      return;
    }
    const blockedAt = this.blocked.get(event.stream);
    if (blockedAt !== undefined && event.revision > blockedAt) {
      await subscription.nack(PARK, blockedReason(event.stream, blockedAt), resolved);
      return;
    }
    try {
      await this.options.handler(event);
    } catch (err) {
      const attempt = resolved.retryCount + 1;
      const reason = `attempt ${attempt} of ${this.options.maxAttempts}: ${describeError(err)}`;
      if (attempt >= this.options.maxAttempts) {
        await subscription.nack(PARK, reason, resolved);
        this.noteParked(event);
        return;
      }
      // Cut short by stop(): the event is then handed back for retry at once.
      await this.sleep(Math.min(this.options.retryBackoffMs * 2 ** (attempt - 1), MAX_RETRY_DELAY_MS));
      await subscription.nack(RETRY, reason, resolved);
      return;
    }
    await subscription.ack(resolved);
    // The parked head of its stream came back (a replay) and was handled: the events parked behind it may follow.
    if (blockedAt !== undefined && event.revision === blockedAt) this.blocked.delete(event.stream);
  }

  /** A pause that stop() ends early. Pauses never overlap: one event is handled at a time. */
  private sleep(ms: number): Promise<void> {
    if (this.stopping || ms <= 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        if (this.wakeUp === finish) this.wakeUp = undefined;
        resolve();
      };
      const timer = setTimeout(finish, ms);
      this.wakeUp = finish;
    });
  }
}

async function closeQuietly(subscription: PersistentSubscriptionToAll): Promise<void> {
  try {
    await subscription.unsubscribe();
  } catch {
    // already closed or broken
  }
  // unsubscribe() cancels the gRPC call; destroying the stream also ends a pending `for await`.
  if (!subscription.destroyed) subscription.destroy();
}
