import { PARK, START } from '@eventstore/db-client';
import type {
  EventStoreDBClient,
  PersistentSubscriptionToAll,
  PersistentSubscriptionToAllResolvedEvent,
  StreamSubscription,
} from '@eventstore/db-client';
import type { EventHandler, GlobalPosition, RecordedEvent, Subscription } from '../event-store';
import { blockedReason } from '../event-store';
import { describeError } from './esdb-errors';
import { attemptsInReason, parkedLinkTarget, parkedReason, parkedStreamName, parkReason } from './parked';
import { toRecordedEvent } from './recorded-event';

/** Longest wait before a retry: the group's other buffered messages wait too. */
export const MAX_RETRY_DELAY_MS = 5_000;
/** Waits between attempts to re-join the group after the connection to it broke. */
const RECONNECT_DELAY_MS = 500;
const MAX_RECONNECT_DELAY_MS = 30_000;

/** How long the handler's attempts at one event may take in all, pauses included (the group's message timeout must exceed it). */
export function retryWindowMs(maxAttempts: number, retryBackoffMs: number): number {
  let total = 0;
  for (let attempt = 1; attempt < maxAttempts; attempt++) total += Math.min(retryBackoffMs * 2 ** (attempt - 1), MAX_RETRY_DELAY_MS);
  return total;
}

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
  /** The event's own position in the log (a replayed parked event arrives with its parking link's position). */
  ownPosition: (event: RecordedEvent) => Promise<GlobalPosition>;
  /** Failures of the connection to the group or to its parked stream (both are re-joined after a pause). */
  onError: (group: string, err: unknown) => void;
  onStopped: () => void;
}

/**
 * One consumer of an EventStoreDB persistent subscription group on $all, built on what the server really does
 * (src/EventStore.Core/Services/PersistentSubscription/PersistentSubscription.cs at v24.10.0) rather than on what it
 * promises least:
 *
 * - Attempts are counted here, not read from the server's `retryCount`: the server raises that count for every
 *   redelivery, including those caused by a disconnect, a stop or a message timeout, which are not handler attempts.
 *   A failing event is retried in place (with backoff) up to maxAttempts, then parked (nack PARK); it is never handed
 *   back with nack RETRY, which the server re-queues AHEAD of the buffer so later events would overtake it. So one
 *   consumer hands its events to the handler in the order the server sent them, and a handler that saves "the
 *   position of the last event applied" never passes an event that is not applied (only a parked one, which is counted
 *   apart). The group's message timeout is set above the whole retry window (see EsdbEventStore.subscribe).
 * - The group uses the Pinned consumer strategy (set on creation, and applied to an existing group by an update): the
 *   events of one stream go to one consumer while it is connected, so several consumers keep each stream in order.
 * - No cascade behind a parked event: this consumer follows the group's parked stream
 *   (`$persistentsubscription-$all::<group>-parked`) from where it was truncated, so it learns of every parked event,
 *   whoever parked it (itself, another consumer, or the server after too many timeouts), and parks the later events
 *   of that stream behind it at once, unattempted ("blocked by a parked event"). When the parked event comes back (a
 *   replay) and is handled, its stream is unblocked and the replayed events behind it follow, in the order they were
 *   parked (the stream's order). A replayed event arrives resolved from its parking link and carries the LINK's
 *   position (PersistentSubscriptions.Read.cs, ConvertToReadEvent, uses OriginalPosition for both): the handler is
 *   given the event's own position, read from its stream.
 *
 * Delivery stays at least once (a message in flight when a consumer goes away is delivered again, possibly after later
 * ones already handled by this consumer): handlers must be idempotent, and a checkpoint must only move forward.
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
  /** Handler attempts made in this process, by event id, for events not yet acked or parked (a redelivery continues the count). */
  private readonly attempts = new Map<string, number>();
  /** The last revision of the group's parked stream this consumer has read (its links name the parked events). */
  private parkedRead = -1n;
  private parkedWatch: StreamSubscription | undefined;
  private parkedLoop: Promise<void> = Promise.resolve();

  private constructor(private readonly options: PersistentSubscriptionOptions) {
    this.group = options.group;
  }

  /** The streams this consumer holds back behind a parked event, with the parked revision (for metrics and tests). */
  blockedStreams(): ReadonlyMap<string, bigint> {
    return new Map(this.blocked);
  }

  /** Joins the group (rejects when the server refuses, e.g. unknown group or too many consumers) and starts delivery. */
  static async start(options: PersistentSubscriptionOptions): Promise<EsdbPersistentSubscription> {
    const subscription = new EsdbPersistentSubscription(options);
    // The streams parked now are blocked before the first event is handed over.
    await subscription.readParked().catch((err: unknown) => options.onError(options.group, err));
    const first = await subscription.open();
    subscription.loop = subscription.run(first);
    subscription.parkedLoop = subscription.watchParked();
    return subscription;
  }

  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.stopping = true;
      this.wakeUp?.();
      await this.inFlight.catch(() => undefined); // its own handler reports its outcome; here we only wait for it to end
      const current = this.current;
      if (current) await closeQuietly(current);
      const watch = this.parkedWatch;
      if (watch) await closeQuietly(watch);
      await Promise.all([this.loop, this.parkedLoop]);
      this.options.onStopped();
    })();
    return this.stopped;
  }

  /** The parked stream from where this consumer last read it: each link blocks its event's stream. */
  private async readParked(): Promise<void> {
    for (;;) {
      const page: Awaited<ReturnType<typeof collectParked>> = await collectParked(this.options.client, this.group, this.parkedRead + 1n);
      for (const link of page) this.noteParkedLink(link);
      if (page.length < PARKED_PAGE) return;
    }
  }

  /** Follows the parked stream live (best effort: reading it needs admin rights), re-joining after a failure. */
  private async watchParked(): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      let watch: StreamSubscription | undefined;
      try {
        await this.readParked();
        if (this.stopping) break;
        watch = this.options.client.subscribeToStream(parkedStreamName(this.group), {
          fromRevision: this.parkedRead >= 0n ? this.parkedRead : START,
          resolveLinkTos: false,
        });
        watch.on('error', (err: Error) => {
          if (!watch!.destroyed) watch!.destroy(err);
        });
        this.parkedWatch = watch;
        if (this.stopping) break;
        for await (const resolved of watch) {
          failures = 0;
          if (resolved.event) this.noteParkedLink({ revision: resolved.event.revision, data: resolved.event.data });
        }
      } catch (err) {
        if (!this.stopping) this.options.onError(this.group, err);
      } finally {
        this.parkedWatch = undefined;
        if (watch) await closeQuietly(watch);
      }
      if (this.stopping) break;
      failures += 1;
      await this.sleep(Math.min(RECONNECT_DELAY_MS * 2 ** (failures - 1), MAX_RECONNECT_DELAY_MS));
    }
  }

  private noteParkedLink(link: { revision: bigint; data: unknown }): void {
    if (link.revision <= this.parkedRead) return;
    this.parkedRead = link.revision;
    const target = parkedLinkTarget(link.data);
    if (target) this.noteParked(target);
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

  private noteParked(event: { stream: string; revision: bigint }): void {
    const first = this.blocked.get(event.stream);
    if (first === undefined || event.revision < first) this.blocked.set(event.stream, event.revision);
  }

  /** Handler failures end in a park after the last attempt; only ack/nack failures (a broken connection) are thrown. */
  private async deliver(subscription: PersistentSubscriptionToAll, resolved: PersistentSubscriptionToAllResolvedEvent): Promise<void> {
    const converted = resolved.event ? toRecordedEvent(resolved.event, resolved.commitPosition) : undefined;
    if (!converted || !this.options.matches(converted)) {
      await subscription.ack(resolved);
      return;
    }
    // A replayed parked event comes resolved from its parking link, with the link's position: use the event's own.
    const event = resolved.link ? { ...converted, position: await this.options.ownPosition(converted) } : converted;
    const blockedAt = this.blocked.get(event.stream);
    if (blockedAt !== undefined && event.revision > blockedAt) {
      await subscription.nack(PARK, blockedReason(event.stream, blockedAt), resolved);
      return;
    }
    // The parked event itself, but not from a replay (those come resolved from their parking link): a copy the server
    // sent before it parked it (a redelivery after a timeout, still in this consumer's buffer). It stays parked.
    if (blockedAt !== undefined && event.revision === blockedAt && !resolved.link) {
      await subscription.ack(resolved);
      return;
    }
    // Attempts of earlier deliveries that ended parked: the parking link's reason says (whoever parked it).
    const earlier = resolved.link ? (attemptsInReason(parkedReason(resolved.link) ?? '') ?? 0) : 0;
    for (let attempt = (this.attempts.get(event.id) ?? 0) + 1; ; attempt++) {
      try {
        await this.options.handler(event);
        break;
      } catch (err) {
        this.attempts.set(event.id, attempt);
        if (attempt >= this.options.maxAttempts) {
          await subscription.nack(PARK, parkReason(attempt, this.options.maxAttempts, earlier + attempt, describeError(err)), resolved);
          this.attempts.delete(event.id);
          this.noteParked(event);
          return;
        }
        // Stopping: no ack; the server delivers it again (to this group's next consumer), and the count goes on here.
        if (this.stopping) return;
        await this.sleep(Math.min(this.options.retryBackoffMs * 2 ** (attempt - 1), MAX_RETRY_DELAY_MS));
        if (this.stopping) return;
      }
    }
    await subscription.ack(resolved);
    this.attempts.delete(event.id);
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

const PARKED_PAGE = 500;

async function collectParked(
  client: EventStoreDBClient,
  group: string,
  fromRevision: bigint,
): Promise<{ revision: bigint; data: unknown }[]> {
  const out: { revision: bigint; data: unknown }[] = [];
  try {
    for await (const resolved of client.readStream(parkedStreamName(group), {
      fromRevision: fromRevision < 0n ? START : fromRevision,
      maxCount: PARKED_PAGE,
      resolveLinkTos: false,
    })) {
      if (resolved.event) out.push({ revision: resolved.event.revision, data: resolved.event.data });
    }
  } catch (err) {
    if ((err as { type?: string }).type === 'stream-not-found') return out;
    throw err;
  }
  return out;
}

async function closeQuietly(subscription: PersistentSubscriptionToAll | StreamSubscription): Promise<void> {
  try {
    await subscription.unsubscribe();
  } catch {
    // already closed or broken
  }
  // unsubscribe() cancels the gRPC call; destroying the stream also ends a pending `for await`.
  if (!subscription.destroyed) subscription.destroy();
}
