import {
  BACKWARDS,
  END,
  EventStoreDBClient,
  FORWARDS,
  PersistentSubscriptionExistsError,
  START,
  StreamDeletedError,
  StreamNotFoundError,
  WrongExpectedVersionError as EsdbWrongExpectedVersionError,
  jsonEvent,
  persistentSubscriptionToAllSettingsFromDefaults,
} from '@eventstore/db-client';
import type {
  AppendResult as EsdbAppendResult,
  AllStreamResolvedEvent,
  ReadPosition,
  ResolvedEvent,
  StreamingRead,
} from '@eventstore/db-client';
import { EventStoreValidationError, WrongExpectedVersionError } from '../errors';
import { BLOCKED_BY_PARKED, comparePositions } from '../event-store';
import type {
  AppendOptions,
  CountEventsOptions,
  EventCount,
  ParkedSummary,
  AppendResult,
  BatchHandler,
  BatchSubscriptionOptions,
  EventHandler,
  EventStore,
  GlobalPosition,
  ListStreamsOptions,
  NewEvent,
  ParkedEvent,
  ReadAllOptions,
  ReadStreamOptions,
  StreamRead,
  RecordedEvent,
  StreamSummary,
  Subscription,
  SubscriptionFilter,
  SubscriptionOptions,
} from '../event-store';
import { assertTimeLeft } from '../../infra/attempt-deadline';
import { WRITE_BUDGET_MS } from '../../infra/pg-pool';
import { validateAppend, validateStreamName } from '../validation';
import { eventMatcher } from './event-filter';
import { chainedMetadata, chainTail, EsdbChainAudit } from './hash-chain';
import { describeError, toStoreError } from './esdb-errors';
import { parkedReason, parkedStreamName } from './parked';
import { EsdbPersistentSubscription } from './persistent-subscription';
import { isSystemEvent, toRecordedEvent } from './recorded-event';
import { toActualRevision, toEsdbExpectedRevision } from './revisions';
import { serverSideFilter } from './subscription-filter';

/** Events per request when paging through $all. */
const PAGE_SIZE = 500;
const MIN_PAGE_SIZE = 64;
const DEFAULT_LIST_STREAMS_LIMIT = 100;
const DEFAULT_LIST_STREAMS_SCAN_LIMIT = 100_000;
const DEFAULT_MAX_ATTEMPTS = 5;
const DEFAULT_RETRY_BACKOFF_MS = 100;
const DEFAULT_SUBSCRIPTION_BUFFER_SIZE = 10;
/** countEvents reads at most this many events (EventStoreDB cannot count without reading). */
const COUNT_LIMIT = 10_000;

export interface EsdbEventStoreOptions {
  /** listStreams scans at most this many of the latest $all records (default 100 000). */
  listStreamsScanLimit?: number;
  /** Messages the server may have in flight to one consumer of a group (default 10). */
  subscriptionBufferSize?: number;
  /** Called when a consumer loses its group connection (it re-joins after a pause). Default: console.error. */
  onSubscriptionError?: (group: string, err: unknown) => void;
}

/**
 * The EventStoreDB adapter of the event store port, on @eventstore/db-client 6.2.1 (servers 22.6+; persistent
 * subscriptions to $all need 21.10+). Reading $all, system streams and managing persistent subscriptions need an
 * admin user (in the connection string) on a secure server.
 *
 * Differences from the PostgreSQL adapter worth knowing:
 * - DuplicateEventIdError is never thrown: EventStoreDB does not index event ids across streams.
 * - listStreams scans $all (see there); headPosition may scan back over system records.
 * - Subscriptions are persistent subscriptions: no ordering guarantee, redelivery happens (see persistent-subscription.ts).
 */
export class EsdbEventStore implements EventStore {
  private readonly subscriptions = new Set<EsdbPersistentSubscription>();
  /** maxAttempts given to subscribe() in this process, per group; listParked prefers the server's settings. */
  private readonly maxAttemptsByGroup = new Map<string, number>();

  private constructor(
    private readonly client: EventStoreDBClient,
    private readonly options: EsdbEventStoreOptions,
  ) {}

  /** Verify the hash chains (./hash-chain.ts). */
  chainAudit(): EsdbChainAudit {
    return new EsdbChainAudit(this.client);
  }

  /** Connects (e.g. "esdb://localhost:2113?tls=false") and checks the server answers by reading the head of $all. */
  static async connect(connectionString: string, options: EsdbEventStoreOptions = {}): Promise<EsdbEventStore> {
    const client = EventStoreDBClient.connectionString(connectionString);
    try {
      await collect(client.readAll({ direction: BACKWARDS, fromPosition: END, maxCount: 1 }));
    } catch (err) {
      await client.dispose().catch(() => undefined);
      // Unreachable -> EventStoreUnavailableError; anything else (e.g. AccessDeniedError for bad credentials) as is.
      throw toStoreError(err, 'connect');
    }
    return new EsdbEventStore(client, options);
  }

  async appendToStream(stream: string, events: readonly NewEvent[], options: AppendOptions): Promise<AppendResult> {
    validateAppend(stream, events, options);
    // In an activity attempt: start only with the call's whole deadline left (as the PostgreSQL store does).
    assertTimeLeft('append', WRITE_BUDGET_MS);
    const expected = options.expectedRevision;
    let result: EsdbAppendResult;
    // The hash chain (./hash-chain.ts): hashed client-side from the stream's last event, appended at exactly that
    // revision; for 'any' / 'stream_exists' a concurrent writer makes it read the new last event and try again.
    for (let attempt = 1; ; attempt++) {
      let tail: Awaited<ReturnType<typeof chainTail>>;
      try {
        tail = await chainTail(this.client, stream, expected);
      } catch (err) {
        throw toStoreError(err, 'append');
      }
      const pinned = typeof expected !== 'bigint' && expected !== 'no_stream';
      // 'any' re-sent after it landed (best effort, as before): the stream already ends with these events.
      if (
        pinned &&
        tail.lastId !== undefined &&
        tail.revision !== 'no_stream' &&
        events.some((e) => e.id.toLowerCase() === tail.lastId!.toLowerCase())
      ) {
        const landed = await this.readStream(stream, { direction: 'backwards', fromRevision: tail.revision, maxCount: events.length });
        if (landed.length === events.length && landed.reverse().every((e, i) => e.id.toLowerCase() === events[i]!.id.toLowerCase())) {
          return { nextExpectedRevision: tail.revision, position: landed.at(-1)!.position, recordedAt: landed.at(-1)!.recordedAt };
        }
      }
      const first = tail.revision === 'no_stream' ? 0n : tail.revision + 1n;
      const metadata = chainedMetadata(stream, events, tail.previous, first, tail.stamp);
      const esdbEvents = events.map((event, i) => jsonEvent({ id: event.id, type: event.type, data: event.data, metadata: metadata[i] }));
      const esdbExpected = !pinned || (expected === 'stream_exists' && tail.revision === 'no_stream') ? expected : tail.revision;
      try {
        result = await this.client.appendToStream(stream, esdbEvents, {
          expectedRevision: toEsdbExpectedRevision(esdbExpected),
          deadline: WRITE_BUDGET_MS,
        });
        break;
      } catch (err) {
        if (err instanceof EsdbWrongExpectedVersionError) {
          if (pinned && esdbExpected !== expected && attempt < 5) continue;
          throw new WrongExpectedVersionError(stream, expected, toActualRevision(err.actualVersion));
        }
        throw toStoreError(err, 'append');
      }
    }
    // The server stamps each event's `created` itself (our recordedAt, and occurredAt unless the writer set one),
    // but its append response does not carry it: recordedAt is left out rather than read back on every append.
    if (result.position && result.position.commit >= 0n) {
      return {
        nextExpectedRevision: result.nextExpectedRevision,
        position: { commit: result.position.commit, prepare: result.position.prepare },
      };
    }
    // An idempotent re-append succeeds without a position (the server answers NoPosition): look the last event up.
    return { nextExpectedRevision: result.nextExpectedRevision, ...(await this.lastAppended(stream, result.nextExpectedRevision)) };
  }

  /** EventStoreDB has no multi-stream read: the reads go out together. */
  async readStreams(reads: readonly StreamRead[]): Promise<RecordedEvent[][]> {
    return Promise.all(reads.map((r) => this.readStream(r.stream, { fromRevision: r.fromRevision, maxCount: r.maxCount })));
  }

  async readStream(stream: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    validateStreamName(stream);
    const direction = options.direction ?? 'forwards';
    if (options.maxCount !== undefined && options.maxCount <= 0) return [];
    let fromRevision: bigint | typeof START | typeof END = direction === 'forwards' ? START : END;
    if (options.fromRevision !== undefined) {
      if (options.fromRevision >= 0n) fromRevision = options.fromRevision;
      else if (direction === 'backwards') return [];
    }
    try {
      const resolved = await collect(
        this.client.readStream(stream, {
          fromRevision,
          direction: direction === 'forwards' ? FORWARDS : BACKWARDS,
          ...(options.maxCount !== undefined ? { maxCount: options.maxCount } : {}),
        }),
      );
      return convertAll(resolved);
    } catch (err) {
      // The client reports a missing stream while iterating (dist/streams/utils/ReadStream.js); a deleted one likewise.
      if (err instanceof StreamNotFoundError || err instanceof StreamDeletedError) return [];
      throw toStoreError(err, 'readStream');
    }
  }

  async readAll(options: ReadAllOptions = {}): Promise<RecordedEvent[]> {
    const maxCount = options.maxCount ?? Number.POSITIVE_INFINITY;
    if (maxCount <= 0) return [];
    const matches = eventMatcher(options);
    // ESDB's readAll fromPosition is inclusive; ours is exclusive, so anything at or before the cursor is dropped.
    let cursor: GlobalPosition | undefined = options.fromPosition && options.fromPosition.commit >= 0n ? options.fromPosition : undefined;
    const out: RecordedEvent[] = [];
    try {
      for (;;) {
        // Small reads stay small; filtered reads may skip many records, hence the floor.
        const count = Math.min(PAGE_SIZE, Math.max(maxCount - out.length + 1, MIN_PAGE_SIZE));
        const page = await collect(
          this.client.readAll({ direction: FORWARDS, fromPosition: toReadPosition(cursor, START), maxCount: count }),
        );
        let advanced = false;
        for (const resolved of page) {
          const raw = resolved.event;
          if (!raw) continue;
          if (cursor && comparePositions(raw.position, cursor) <= 0) continue;
          cursor = raw.position;
          advanced = true;
          const event = toRecordedEvent(raw);
          if (event && matches(event)) {
            out.push(event);
            if (out.length >= maxCount) return out;
          }
        }
        if (page.length < count || !advanced) return out;
      }
    } catch (err) {
      throw toStoreError(err, 'readAll');
    }
  }

  async headPosition(): Promise<GlobalPosition | undefined> {
    try {
      const found = await this.scanBackwards((event) => (isSystemEvent(event) ? undefined : 'stop'), Number.POSITIVE_INFINITY, 32);
      return found;
    } catch (err) {
      throw toStoreError(err, 'headPosition');
    }
  }

  /**
   * EventStoreDB has no cheap listing of streams ($streams needs the system projections, which a fresh server does not
   * run). This walks $all backwards from the end, remembering the first (latest) event seen of each non-system stream:
   * its revision and recorded time. The cost is one read of up to `listStreamsScanLimit` records (default 100 000) per
   * call, whatever the limit: fine for the local stream browser, not for production paths. Streams whose latest event
   * is older than the scanned window are missing from the answer. Deleted streams may show up until scavenged.
   */
  async listStreams(options: ListStreamsOptions = {}): Promise<StreamSummary[]> {
    const limit = options.limit ?? DEFAULT_LIST_STREAMS_LIMIT;
    if (limit <= 0) return [];
    const prefix = options.prefix ?? '';
    const after = options.after;
    const latest = new Map<string, StreamSummary>();
    try {
      await this.scanBackwards(
        (event) => {
          if (isSystemEvent(event) || latest.has(event.streamId)) return undefined;
          if (prefix && !event.streamId.startsWith(prefix)) return undefined;
          if (after !== undefined && !(event.streamId > after)) return undefined;
          latest.set(event.streamId, { stream: event.streamId, revision: event.revision, lastRecordedAt: event.created.toISOString() });
          return undefined;
        },
        this.options.listStreamsScanLimit ?? DEFAULT_LIST_STREAMS_SCAN_LIMIT,
        PAGE_SIZE,
      );
    } catch (err) {
      throw toStoreError(err, 'listStreams');
    }
    return [...latest.values()].sort((a, b) => (a.stream < b.stream ? -1 : a.stream > b.stream ? 1 : 0)).slice(0, limit);
  }

  /**
   * Joins (creating when absent) the persistent subscription group `group` on $all.
   * Created with: startFrom START or END, maxRetryCount = maxAttempts - 1, and a server-side filter (stream-name prefix,
   * exact event types, or "no system events"). An existing group keeps the settings and filter it was created with
   * (PersistentSubscriptionExistsError is expected then). Order is not guaranteed and events may be redelivered.
   */
  /**
   * Persistent subscriptions hand over one message at a time (acked one by one); batches are of
   * one event here. Batching on EventStoreDB would need acks held back across messages.
   */
  async subscribeInBatches(
    group: string,
    filter: SubscriptionFilter,
    handler: BatchHandler,
    options: BatchSubscriptionOptions = {},
  ): Promise<Subscription> {
    return this.subscribe(group, filter, (event) => handler([event]), options);
  }

  async subscribe(
    group: string,
    filter: SubscriptionFilter,
    handler: EventHandler,
    options: SubscriptionOptions = {},
  ): Promise<Subscription> {
    if (typeof group !== 'string' || group.trim() === '') throw new EventStoreValidationError('group', 'must be a non-empty string');
    const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
    const retryBackoffMs = options.retryBackoffMs ?? DEFAULT_RETRY_BACKOFF_MS;
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1) throw new EventStoreValidationError('maxAttempts', 'must be an integer >= 1');
    if (!Number.isFinite(retryBackoffMs) || retryBackoffMs < 0)
      throw new EventStoreValidationError('retryBackoffMs', 'must be a number >= 0');
    this.maxAttemptsByGroup.set(group, maxAttempts);

    try {
      await this.client.createPersistentSubscriptionToAll(
        group,
        persistentSubscriptionToAllSettingsFromDefaults({
          startFrom: filter.from === 'start' ? START : END,
          maxRetryCount: maxAttempts - 1,
          resolveLinkTos: false,
        }),
        { filter: serverSideFilter(filter) },
      );
    } catch (err) {
      if (!(err instanceof PersistentSubscriptionExistsError)) throw toStoreError(err, 'createPersistentSubscriptionToAll');
    }

    let subscription: EsdbPersistentSubscription;
    try {
      subscription = await EsdbPersistentSubscription.start({
        client: this.client,
        group,
        handler,
        matches: eventMatcher({ streamPrefix: filter.streamPrefix, eventTypes: filter.eventTypes }),
        loadParked: async () => (await this.listParked(group)).map((p) => p.event),
        maxAttempts,
        retryBackoffMs,
        bufferSize: this.options.subscriptionBufferSize ?? DEFAULT_SUBSCRIPTION_BUFFER_SIZE,
        onError: this.options.onSubscriptionError ?? defaultSubscriptionErrorHandler,
        onStopped: () => this.subscriptions.delete(subscription),
      });
    } catch (err) {
      throw toStoreError(err, 'subscribeToPersistentSubscriptionToAll');
    }
    this.subscriptions.add(subscription);
    return subscription;
  }

  /**
   * Reads the group's parked-messages stream (resolving the links to the original events). `error` is the reason the
   * server recorded (our nack reason, or the server's own when it parked after too many timeouts); `attempts` is the
   * group's maxRetryCount + 1 (the attempts made before parking), `parkedAt` when the parking link was written.
   */
  async listParked(group: string): Promise<ParkedEvent[]> {
    try {
      const parked = await this.readParked(group);
      if (parked.length === 0) return [];
      const attempts = await this.attemptsOf(group);
      const out: ParkedEvent[] = [];
      for (const resolved of parked) {
        const event = resolved.event ? toRecordedEvent(resolved.event, resolved.commitPosition) : undefined;
        if (!event) continue; // the original event is gone (deleted or scavenged), or is not ours
        const error = parkedReason(resolved.link) ?? 'parked by EventStoreDB';
        const blocked = error.startsWith(BLOCKED_BY_PARKED);
        out.push({
          group,
          event,
          error,
          attempts: blocked ? 0 : attempts,
          parkedAt: (resolved.link ?? resolved.event)?.created.toISOString() ?? event.recordedAt,
          blocked,
        });
      }
      return out;
    } catch (err) {
      throw toStoreError(err, 'listParked');
    }
  }

  /** From the parked stream (read whole: parked events are few, or the group has a bigger problem than this read). */
  async parkedSummary(group: string, upTo?: GlobalPosition): Promise<ParkedSummary> {
    const parked = (await this.listParked(group)).map((p) => p.event).filter((e) => !upTo || comparePositions(e.position, upTo) <= 0);
    if (parked.length === 0) return { count: 0 };
    const first = parked.reduce((a, e) => (comparePositions(e.position, a.position) < 0 ? e : a));
    const oldest = parked.reduce((a, e) => (e.recordedAt < a.recordedAt ? e : a));
    return { count: parked.length, first: first.position, oldestRecordedAt: oldest.recordedAt };
  }

  /**
   * EventStoreDB has no count: this reads the matching events, up to COUNT_LIMIT (then `saturated`). Still cheaper
   * than before for the caller (no events are returned), but a lag of more than COUNT_LIMIT events reads as COUNT_LIMIT.
   */
  async countEvents(options: CountEventsOptions = {}): Promise<EventCount> {
    const events = await this.readAll({
      fromPosition: options.fromPosition,
      streamPrefix: options.streamPrefix,
      eventTypes: options.eventTypes,
      maxCount: COUNT_LIMIT,
    });
    const oldest = events.reduce<string | undefined>((a, e) => (a === undefined || e.recordedAt < a ? e.recordedAt : a), undefined);
    return { count: events.length, oldestRecordedAt: oldest, saturated: events.length >= COUNT_LIMIT };
  }

  /**
   * Asks the server to deliver the group's parked messages again (replayParkedMessagesToAll). Returns how many were
   * parked just before. The server truncates the parked stream once replayed, asynchronously.
   */
  async replayParked(group: string): Promise<number> {
    try {
      const count = (await this.readParked(group)).length;
      if (count === 0) return 0;
      await this.client.replayParkedMessagesToAll(group);
      return count;
    } catch (err) {
      throw toStoreError(err, 'replayParked');
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.subscriptions].map((subscription) => subscription.stop()));
    await this.client.dispose();
  }

  private async readParked(group: string): Promise<ResolvedEvent[]> {
    try {
      return await collect(
        this.client.readStream(parkedStreamName(group), { direction: FORWARDS, fromRevision: START, resolveLinkTos: true }),
      );
    } catch (err) {
      if (err instanceof StreamNotFoundError || err instanceof StreamDeletedError) return [];
      throw err;
    }
  }

  private async attemptsOf(group: string): Promise<number> {
    try {
      const info = await this.client.getPersistentSubscriptionToAllInfo(group);
      return info.settings.maxRetryCount + 1;
    } catch {
      return this.maxAttemptsByGroup.get(group) ?? DEFAULT_MAX_ATTEMPTS; // the setting cannot be read now: the one we created the group with
    }
  }

  private async lastAppended(stream: string, revision: bigint): Promise<{ position: GlobalPosition; recordedAt?: string }> {
    const [resolved] = await collect(this.client.readStream(stream, { direction: BACKWARDS, fromRevision: revision, maxCount: 1 })).catch(
      (err: unknown) => {
        throw toStoreError(err, 'append');
      },
    );
    const position =
      resolved?.event?.position ??
      (resolved?.commitPosition !== undefined ? { commit: resolved.commitPosition, prepare: resolved.commitPosition } : undefined);
    if (!position) throw new Error(`EventStoreDB did not return the position of ${stream}@${revision} after an idempotent append`);
    return { position: { commit: position.commit, prepare: position.prepare }, recordedAt: resolved?.event?.created.toISOString() };
  }

  /**
   * Walks $all backwards from the end, page by page, calling `visit` on each record until it returns 'stop' (the
   * record's position is then returned), `maxRecords` records were seen, or the start of the log is reached.
   */
  private async scanBackwards(
    visit: (event: NonNullable<AllStreamResolvedEvent['event']>) => 'stop' | undefined,
    maxRecords: number,
    pageSize: number,
  ): Promise<GlobalPosition | undefined> {
    let cursor: GlobalPosition | undefined;
    let seen = 0;
    for (;;) {
      const count = Math.min(pageSize, maxRecords - seen);
      if (count <= 0) return undefined;
      const page = await collect(this.client.readAll({ direction: BACKWARDS, fromPosition: toReadPosition(cursor, END), maxCount: count }));
      let advanced = false;
      for (const resolved of page) {
        const raw = resolved.event;
        if (!raw) continue;
        // Whether a backwards read includes the record at fromPosition is not documented: drop it either way.
        if (cursor && comparePositions(raw.position, cursor) >= 0) continue;
        cursor = raw.position;
        advanced = true;
        seen += 1;
        if (visit(raw) === 'stop') return { commit: raw.position.commit, prepare: raw.position.prepare };
      }
      if (page.length < count || !advanced) return undefined;
    }
  }
}

function toReadPosition(cursor: GlobalPosition | undefined, otherwise: typeof START | typeof END): ReadPosition {
  return cursor ? { commit: cursor.commit, prepare: cursor.prepare } : otherwise;
}

async function collect<T>(read: StreamingRead<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of read) out.push(item);
  return out;
}

function convertAll(resolved: readonly ResolvedEvent[]): RecordedEvent[] {
  const out: RecordedEvent[] = [];
  for (const item of resolved) {
    const event = item.event ? toRecordedEvent(item.event, item.commitPosition) : undefined;
    if (event) out.push(event);
  }
  return out;
}

function defaultSubscriptionErrorHandler(group: string, err: unknown): void {
  console.error(`EventStoreDB subscription '${group}' lost its connection; re-joining: ${describeError(err)}`);
}
