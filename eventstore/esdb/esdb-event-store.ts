import {
  BACKWARDS,
  END,
  EventStoreDBClient,
  FORWARDS,
  PersistentSubscriptionExistsError,
  START,
  StreamDeletedError,
  StreamNotFoundError,
  InvalidArgumentError,
  MaxAppendSizeExceededError,
  WrongExpectedVersionError as EsdbWrongExpectedVersionError,
  jsonEvent,
  persistentSubscriptionToAllSettingsFromDefaults,
  PINNED,
} from '@eventstore/db-client';
import type {
  AppendResult as EsdbAppendResult,
  AllStreamResolvedEvent,
  Filter,
  ReadPosition,
  ResolvedEvent,
  StreamingRead,
} from '@eventstore/db-client';
import { DuplicateEventIdError, EventStoreValidationError, WrongExpectedVersionError } from '../errors';
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
  ReadAllPage,
  ReadAllPageOptions,
  ReadStreamOptions,
  StreamRead,
  StreamAppend,
  StreamAppendOutcome,
  RecordedEvent,
  StreamSummary,
  Subscription,
  SubscriptionFilter,
  SubscriptionOptions,
} from '../event-store';
import { assertTimeLeft, timeLeftMs } from '../../infra/attempt-deadline';
import { WRITE_BUDGET_MS } from '../../infra/pg-pool';
import { assertDistinctStreams, validateAppend, validateStreamName } from '../validation';
import { eventMatcher } from './event-filter';
import { chainedMetadata, chainTail, EsdbChainAudit, PREVIOUS_STAMP_KEY } from './hash-chain';
import { HASH_METADATA_KEY } from '../hash-chain';
import { StreamIdIndex } from './stream-ids';
import { describeError, toStoreError } from './esdb-errors';
import { attemptsInReason, parkedReason, parkedStreamName } from './parked';
import { EsdbPersistentSubscription, retryWindowMs } from './persistent-subscription';
import { isSystemEvent, toRecordedEvent } from './recorded-event';
import { toActualRevision, toEsdbExpectedRevision } from './revisions';
import { serverSideFilter } from './subscription-filter';

/** Events per request when paging through $all. */
/** appendToStreams: appends in flight at once over the one connection. */
const APPENDS_IN_FLIGHT = 32;
const PAGE_SIZE = 500;
/** headPosition looks back over at most this many records for the last event that is not the server's own. */
const HEAD_SCAN_LIMIT = 10_000;
/** Records a page of GET /events may look at on EventStoreDB before it answers with what it found and a `next`. */
const DEFAULT_SCAN_BUDGET = 10_000;
/** A filtered read's search window (the server's maxSearchWindow): a checkpoint comes after each. */
const FILTER_WINDOW = 500;
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
  /** Event ids kept in memory to refuse re-sent ids (./stream-ids.ts), across streams (default 500 000, about 50 MB). */
  idIndexSize?: number;
  /** Called when a consumer loses its group connection (it re-joins after a pause). Default: console.error. */
  onSubscriptionError?: (group: string, err: unknown) => void;
  /**
   * How long an 'any' / 'stream_exists' append keeps trying again when other writers moved the tail it hashed from
   * (default the write budget, 7 s; inside an activity never past its attempt's deadline).
   */
  contentionBudgetMs?: number;
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
  /** The event ids each stream holds (./stream-ids.ts): re-sent ids are refused or idempotent, as on PostgreSQL. */
  private readonly ids: StreamIdIndex;

  private constructor(
    private readonly client: EventStoreDBClient,
    private readonly options: EsdbEventStoreOptions,
  ) {
    this.ids = new StreamIdIndex(async (stream, fromRevision, maxCount) => {
      try {
        const page = await collect(this.client.readStream(stream, { direction: FORWARDS, fromRevision, maxCount }));
        return page.flatMap((r) => (r.event ? [{ id: r.event.id, revision: r.event.revision }] : []));
      } catch (err) {
        if (err instanceof StreamNotFoundError) return [];
        throw err;
      }
    }, options.idIndexSize);
  }

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
    forbidStoreMetadata(events);
    assertWithinAppendLimit(events);
    // In an activity attempt: start only with the call's whole deadline left (as the PostgreSQL store does).
    assertTimeLeft('append', WRITE_BUDGET_MS);
    const expected = options.expectedRevision;
    const ids = events.map((e) => e.id.toLowerCase());
    const pinned = typeof expected !== 'bigint' && expected !== 'no_stream';
    const started = Date.now();
    // The hash chain (./hash-chain.ts): hashed client-side from the stream's last event, appended at exactly that
    // revision. For 'any' / 'stream_exists' a concurrent writer makes it read the new last event and try again, with a
    // growing, jittered pause, for as long as the write budget lasts: every lost race means another append landed, so
    // the writers as a whole always progress, and spreading the retries lets each one land.
    for (let attempt = 1; ; attempt++) {
      let tail: Awaited<ReturnType<typeof chainTail>>;
      let known: Map<string, bigint>;
      try {
        [tail, known] = await Promise.all([
          chainTail(this.client, stream, expected),
          options.freshIds ? new Map<string, bigint>() : this.ids.find(stream, ids),
        ]);
      } catch (err) {
        throw toStoreError(err, 'append');
      }
      // Ids the stream already holds (the server compares them only below the current revision: see ./stream-ids.ts).
      if (known.size > 0) return this.resent(stream, events, expected, known);
      const first = tail.revision === 'no_stream' ? 0n : tail.revision + 1n;
      const metadata = chainedMetadata(stream, events, tail.previous, first, tail.stamp);
      const esdbEvents = events.map((event, i) => jsonEvent({ id: event.id, type: event.type, data: event.data, metadata: metadata[i] }));
      const esdbExpected = !pinned || (expected === 'stream_exists' && tail.revision === 'no_stream') ? expected : tail.revision;
      let result: EsdbAppendResult;
      try {
        result = await this.client.appendToStream(stream, esdbEvents, {
          expectedRevision: toEsdbExpectedRevision(esdbExpected),
          deadline: WRITE_BUDGET_MS,
        });
      } catch (err) {
        if (err instanceof EsdbWrongExpectedVersionError) {
          const actual = toActualRevision(err.actualVersion);
          // Pinned to a tail another writer moved: read the new tail and try again while the budget lasts.
          if (pinned && esdbExpected !== expected && !(expected === 'stream_exists' && actual === 'no_stream')) {
            const pause = contentionPause(attempt);
            if (
              Date.now() - started + pause < (this.options.contentionBudgetMs ?? WRITE_BUDGET_MS) &&
              timeLeftMs() > pause + WRITE_BUDGET_MS
            ) {
              await new Promise((resolve) => setTimeout(resolve, pause));
              continue;
            }
          }
          throw new WrongExpectedVersionError(stream, expected, actual);
        }
        if (err instanceof MaxAppendSizeExceededError) throw new EventStoreValidationError('events', tooLarge(err.maxAppendSize));
        throw toStoreError(err, 'append');
      }
      // The server stamps each event's `created` itself (our recordedAt, and occurredAt unless the writer set one),
      // but its append response does not carry it: recordedAt is left out rather than read back on every append.
      if (result.position && result.position.commit >= 0n) {
        this.ids.observe(
          stream,
          ids.map((id, i) => ({ id, revision: result.nextExpectedRevision - BigInt(ids.length - 1 - i) })),
        );
        return {
          nextExpectedRevision: result.nextExpectedRevision,
          position: { commit: result.position.commit, prepare: result.position.prepare },
        };
      }
      // An idempotent re-append succeeds without a position (the server answers NoPosition): look the last event up.
      return { nextExpectedRevision: result.nextExpectedRevision, ...(await this.lastAppended(stream, result.nextExpectedRevision)) };
    }
  }

  /**
   * An append whose ids the stream already holds: the same events at the place this append would have put them (any
   * place for 'any' / 'stream_exists', as PostgreSQL's findIdempotentAppend) is an idempotent success that writes
   * nothing; anything else is refused, as PostgreSQL's unique index on the id refuses it.
   */
  private async resent(
    stream: string,
    events: readonly NewEvent[],
    expected: AppendOptions['expectedRevision'],
    known: ReadonlyMap<string, bigint>,
  ): Promise<AppendResult> {
    const revisions = events.map((e) => known.get(e.id.toLowerCase()));
    const first = revisions[0];
    const consecutive = first !== undefined && revisions.every((r, i) => r === first + BigInt(i));
    const inPlace =
      consecutive &&
      (expected === 'any' || expected === 'stream_exists' || (expected === 'no_stream' ? first === 0n : first === expected + 1n));
    if (!inPlace) {
      const taken = events.find((e) => known.has(e.id.toLowerCase()))!;
      throw new DuplicateEventIdError(stream, taken.id.toLowerCase());
    }
    const last = first + BigInt(events.length - 1);
    return { nextExpectedRevision: last, ...(await this.lastAppended(stream, last)) };
  }

  /**
   * EventStoreDB has no multi-stream transaction: each append goes out on its own, at most APPENDS_IN_FLIGHT at a time
   * over the one connection, each answered as appendToStream answers it (a failure leaves the others landed; their
   * event ids make a retry of the whole call idempotent).
   */
  async appendToStreams(appends: readonly StreamAppend[]): Promise<StreamAppendOutcome[]> {
    assertDistinctStreams(appends);
    for (const { stream, events, options } of appends) validateAppend(stream, events, options); // all checked before any is written
    const outcomes = new Array<StreamAppendOutcome>(appends.length);
    let next = 0;
    const lane = async () => {
      while (next < appends.length) {
        const i = next++;
        const { stream, events, options } = appends[i]!;
        try {
          outcomes[i] = { ok: true, result: await this.appendToStream(stream, events, options) };
        } catch (error) {
          if (!(error instanceof Error)) throw error;
          outcomes[i] = { ok: false, error };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(APPENDS_IN_FLIGHT, appends.length) }, lane));
    return outcomes;
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
      const events = convertAll(resolved);
      if (direction === 'forwards') this.ids.observe(stream, events);
      return events;
    } catch (err) {
      // The client reports a missing stream while iterating (dist/streams/utils/ReadStream.js); a deleted one likewise.
      if (err instanceof StreamNotFoundError || err instanceof StreamDeletedError) return [];
      throw toStoreError(err, 'readStream');
    }
  }

  async readAll(options: ReadAllOptions = {}): Promise<RecordedEvent[]> {
    const maxCount = options.maxCount ?? Number.POSITIVE_INFINITY;
    if (maxCount <= 0) return [];
    return (await this.scanAll(options, maxCount, Number.POSITIVE_INFINITY)).events;
  }

  async readAllPage(options: ReadAllPageOptions): Promise<ReadAllPage> {
    if (options.maxCount <= 0) return { events: [] };
    const scan = await this.scanAll(options, options.maxCount, options.scanBudget ?? DEFAULT_SCAN_BUDGET);
    const last = scan.events.at(-1);
    if (scan.events.length >= options.maxCount && last) return { events: scan.events, next: last.position };
    return scan.stoppedAt ? { events: scan.events, next: scan.stoppedAt } : { events: scan.events };
  }

  /**
   * The events after `fromPosition` that match, up to `maxCount`, looking at no more than `budget` log records (then
   * `stoppedAt` is the last position looked at). By stream prefix or event type the server filters (a filtered
   * subscription to $all, read until it has caught up: the 6.2.1 client's readAll cannot send a filter); by time only,
   * or with no filter, the client pages through $all, system records included, and filters.
   */
  private async scanAll(
    options: ReadAllOptions,
    maxCount: number,
    budget: number,
  ): Promise<{ events: RecordedEvent[]; stoppedAt?: GlobalPosition }> {
    const matches = eventMatcher(options);
    const from = options.fromPosition && options.fromPosition.commit >= 0n ? options.fromPosition : undefined;
    try {
      if (options.streamPrefix || (options.eventTypes && options.eventTypes.length > 0))
        return await this.filteredScan(from, serverSideFilter({ ...options, from: 'start' }), matches, maxCount, budget);
      const byTime = [options.occurredFrom, options.occurredTo, options.recordedFrom, options.recordedTo].some((t) => t !== undefined);
      return await this.pagedScan(from, matches, maxCount, budget, byTime);
    } catch (err) {
      // The server's answer to a position that is not where a record starts: see isInvalidPosition.
      if (from && isInvalidPosition(err))
        throw new EventStoreValidationError('fromPosition', 'is not the position of an event in the log (continue from a `next` position)');
      throw toStoreError(err, 'readAll');
    }
  }

  private async pagedScan(
    from: GlobalPosition | undefined,
    matches: (event: RecordedEvent) => boolean,
    maxCount: number,
    budget: number,
    filtered: boolean,
  ): Promise<{ events: RecordedEvent[]; stoppedAt?: GlobalPosition }> {
    // ESDB's readAll fromPosition is inclusive; ours is exclusive, so anything at or before the cursor is dropped.
    let cursor = from;
    let scanned = 0;
    const out: RecordedEvent[] = [];
    for (;;) {
      if (scanned >= budget) return { events: out, stoppedAt: cursor };
      // Small reads stay small; reads filtered by time may skip many records: whole pages.
      const wanted = filtered ? PAGE_SIZE : Math.max(maxCount - out.length + 1, MIN_PAGE_SIZE);
      // +1: the record at the cursor comes back (inclusive) and is dropped.
      const count = Math.min(PAGE_SIZE, wanted, budget - scanned + (cursor ? 1 : 0));
      const page = await collect(
        this.client.readAll({ direction: FORWARDS, fromPosition: toReadPosition(cursor, START), maxCount: count }),
      );
      let advanced = false;
      for (const resolved of page) {
        const raw = resolved.event;
        if (!raw) continue;
        if (cursor && comparePositions(raw.position, cursor) <= 0) continue;
        if (scanned >= budget) return { events: out, stoppedAt: cursor };
        cursor = { commit: raw.position.commit, prepare: raw.position.prepare };
        advanced = true;
        scanned += 1;
        const event = toRecordedEvent(raw);
        if (event && matches(event)) {
          out.push(event);
          if (out.length >= maxCount) return { events: out };
        }
      }
      if (page.length < count || !advanced) return { events: out };
    }
  }

  /**
   * A filtered subscription to $all from `from`, read until the server says it has caught up (CaughtUp, sent by
   * 23.10+) or it passes the log's last record as it was when the read began (older servers: by the events and the
   * filter's checkpoints), then cancelled. The server scans and filters; only matching events travel. Checkpoints
   * come every FILTER_WINDOW records scanned, which is how the budget is counted.
   */
  private async filteredScan(
    from: GlobalPosition | undefined,
    filter: Filter,
    matches: (event: RecordedEvent) => boolean,
    maxCount: number,
    budget: number,
  ): Promise<{ events: RecordedEvent[]; stoppedAt?: GlobalPosition }> {
    const [last] = await collect(this.client.readAll({ direction: BACKWARDS, fromPosition: END, maxCount: 1 }));
    const head = last?.event?.position;
    if (!head || (from && comparePositions(head, from) <= 0)) return { events: [] };
    const out: RecordedEvent[] = [];
    let scanned = 0;
    let stoppedAt: GlobalPosition | undefined;
    let finish: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (finish = resolve));
    const subscription = this.client.subscribeToAll({
      fromPosition: toReadPosition(from, START),
      resolveLinkTos: false,
      filter: {
        ...filter,
        maxSearchWindow: FILTER_WINDOW,
        checkpointInterval: 1,
        checkpointReached: (_subscription, position) => {
          // The server may send End (2^64 - 1) as a first checkpoint when nothing matched yet: no place at all.
          if (position.commit >= 2n ** 63n) return;
          scanned += FILTER_WINDOW;
          if (comparePositions(position, head) >= 0) finish();
          else if (scanned >= budget) {
            stoppedAt = { commit: position.commit, prepare: position.prepare };
            finish();
          }
        },
      },
    });
    let caughtUp = false;
    let failure: unknown;
    subscription.on('data', (resolved: AllStreamResolvedEvent) => {
      const raw = resolved.event;
      if (raw && !(from && comparePositions(raw.position, from) <= 0) && comparePositions(raw.position, head) <= 0) {
        const event = toRecordedEvent(raw);
        if (event && matches(event) && out.length < maxCount) out.push(event);
      }
      if (out.length >= maxCount || (raw && comparePositions(raw.position, head) >= 0) || (caughtUp && subscription.readableLength === 0))
        finish();
    });
    subscription.on('caughtUp', () => {
      caughtUp = true;
      if (subscription.readableLength === 0) finish();
    });
    subscription.on('error', (err: unknown) => {
      failure = err;
      finish();
    });
    subscription.on('end', () => finish());
    try {
      await done;
    } finally {
      await subscription.unsubscribe().catch(() => undefined); // the read is over either way; destroy() ends it locally
      if (!subscription.destroyed) subscription.destroy();
    }
    if (failure !== undefined) throw failure;
    return stoppedAt && out.length < maxCount ? { events: out, stoppedAt } : { events: out };
  }

  async headPosition(): Promise<GlobalPosition | undefined> {
    try {
      // Bounded: behind the last of our events there are only the server's records (subscription checkpoints, parking
      // links, stream metadata), a few per second of activity at most; past HEAD_SCAN_LIMIT of them it answers none.
      const found = await this.scanBackwards((event) => (isSystemEvent(event) ? undefined : 'stop'), HEAD_SCAN_LIMIT, 32);
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
    await this.ensureGroup(group, filter, groupSettings(maxAttempts, retryBackoffMs));

    let subscription: EsdbPersistentSubscription;
    try {
      subscription = await EsdbPersistentSubscription.start({
        client: this.client,
        group,
        handler,
        matches: eventMatcher({ streamPrefix: filter.streamPrefix, eventTypes: filter.eventTypes }),
        maxAttempts,
        retryBackoffMs,
        bufferSize: this.options.subscriptionBufferSize ?? DEFAULT_SUBSCRIPTION_BUFFER_SIZE,
        ownPosition: (event) => this.ownPosition(event),
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
   * Creates the group, or brings an existing one to today's settings: the server fixes a group's settings when it is
   * created, so a changed setting (a new maxAttempts, the consumer strategy) would otherwise never reach it. The update
   * keeps the group's checkpoint and its start point; the server drops the group's consumers, which re-join.
   *
   * No server-side filter (NoFilter): the group gets every record of $all and the consumer acks, unhandled, those that
   * do not match. A filtered group counts the records its filter skips as processed (PersistentSubscription.cs,
   * HandleSkippedEvents), so its checkpoint can land on a skipped record; reloaded from there (a server restart, a
   * settings update) it skips the first event it reads (OnCheckpointLoaded: `_skipFirstEvent`, "skip the checkpointed
   * event"), which is then the first MATCHING event after the checkpoint: lost for good. Unfiltered, the checkpoint
   * is always on a record the group delivered. The cost is traffic: each group receives the whole log.
   */
  private async ensureGroup(group: string, filter: SubscriptionFilter, settings: GroupSettings): Promise<void> {
    try {
      await this.client.createPersistentSubscriptionToAll(
        group,
        persistentSubscriptionToAllSettingsFromDefaults({ ...settings, startFrom: filter.from === 'start' ? START : END }),
      );
      return;
    } catch (err) {
      if (!(err instanceof PersistentSubscriptionExistsError)) throw toStoreError(err, 'createPersistentSubscriptionToAll');
    }
    try {
      const info = await this.client.getPersistentSubscriptionToAllInfo(group);
      const current = info.settings;
      const differs = (Object.keys(settings) as (keyof GroupSettings)[]).some((key) => current[key] !== settings[key]);
      if (differs) await this.client.updatePersistentSubscriptionToAll(group, { ...current, ...settings });
    } catch (err) {
      throw toStoreError(err, 'updatePersistentSubscriptionToAll');
    }
  }

  /** The event's own position (a replayed parked event is delivered with its parking link's position). */
  private async ownPosition(event: RecordedEvent): Promise<GlobalPosition> {
    const [own] = await this.readStream(event.stream, { fromRevision: event.revision, maxCount: 1 });
    if (!own || own.id !== event.id) throw new Error(`event ${event.id} is no longer at ${event.stream}@${event.revision}`);
    return own.position;
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
      const deliveries = await this.attemptsOf(group);
      // Each event's own position, read from its stream: a link resolved by the server need not carry it.
      const targets = parked.flatMap((resolved) => {
        const event = resolved.event ? toRecordedEvent(resolved.event, resolved.commitPosition) : undefined;
        return event ? [{ resolved, event }] : []; // the original event is gone (deleted or scavenged), or is not ours
      });
      const own = await this.readStreams(targets.map(({ event }) => ({ stream: event.stream, fromRevision: event.revision, maxCount: 1 })));
      const out: ParkedEvent[] = [];
      targets.forEach(({ resolved, event }, i) => {
        const found = own[i]?.[0];
        if (!found || found.id !== event.id) return;
        const error = parkedReason(resolved.link) ?? 'parked by EventStoreDB';
        const blocked = error.startsWith(BLOCKED_BY_PARKED);
        // Our own parking says how many handler attempts it made; the server's (too many redeliveries) says nothing.
        const attempts = blocked ? 0 : (attemptsInReason(error) ?? deliveries);
        out.push({
          group,
          event: found,
          error,
          attempts,
          parkedAt: (resolved.link ?? resolved.event)?.created.toISOString() ?? found.recordedAt,
          blocked,
        });
      });
      // The port's order: the log's (the parked stream holds them in the order they were parked).
      return out.sort((a, b) => comparePositions(a.event.position, b.event.position));
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

/**
 * EventStoreDB refuses an append whose events exceed its MaxAppendSize (1,048,576 bytes by default): Streams.Append.cs
 * and Streams.BatchAppend.cs add up Event.SizeOnDisk of each event (src/EventStore.Core/Data/Event.cs). Checked here
 * first, counting data, metadata and the type (stricter than the server, whose sum by operator precedence counts the
 * data alone), so the writer gets a clear validation error and the request is never sent.
 */
export const MAX_APPEND_BYTES = 1_048_576;

function tooLarge(limit: number): string {
  return `exceed EventStoreDB's append size limit of ${limit} bytes (data and metadata of all events of one append); split the write`;
}

function assertWithinAppendLimit(events: readonly NewEvent[]): void {
  let size = 0;
  for (const e of events) {
    size += Buffer.byteLength(JSON.stringify(e.data)) + Buffer.byteLength(JSON.stringify(e.metadata)) + e.type.length * 2;
    // The chain's hash and stamp (under 300 bytes) are added later; kept inside the limit with room to spare.
    size += 512;
  }
  if (size > MAX_APPEND_BYTES) throw new EventStoreValidationError('events', tooLarge(MAX_APPEND_BYTES));
}

/** The chain's keys are the store's: a writer may not set them (they would be taken for the store's own). */
function forbidStoreMetadata(events: readonly NewEvent[]): void {
  events.forEach((e, i) => {
    for (const key of [HASH_METADATA_KEY, PREVIOUS_STAMP_KEY]) {
      if (Object.hasOwn(e.metadata, key))
        throw new EventStoreValidationError(`events[${i}].metadata.${key}`, 'is written by the store (the hash chain), not by a writer');
    }
  });
}

/** A pause before retrying an append pinned to a tail another writer moved: growing, jittered, at most 200 ms. */
function contentionPause(attempt: number): number {
  const ceiling = Math.min(200, 5 * 2 ** Math.min(attempt, 6));
  return Math.floor(Math.random() * ceiling) + 1;
}

/** The group settings the adapter relies on (src/EventStore.Core/Services/PersistentSubscription/PersistentSubscriptionParams.cs). */
interface GroupSettings {
  consumerStrategyName: string;
  maxRetryCount: number;
  messageTimeout: number;
  resolveLinkTos: boolean;
}

/**
 * The server's maxRetryCount: the adapter retries a failing event itself (maxAttempts, see persistent-subscription.ts),
 * so the server's count only rises on redeliveries (a disconnect, a stop, a message timeout); it parks an event on its
 * own only after this many, i.e. a handler that hangs again and again.
 */
export const SERVER_MAX_RETRY_COUNT = 10;

function groupSettings(maxAttempts: number, retryBackoffMs: number): GroupSettings {
  return {
    // Each stream's events to one consumer while it is connected: several consumers keep each stream in order.
    consumerStrategyName: PINNED,
    maxRetryCount: SERVER_MAX_RETRY_COUNT,
    // Above the whole window of in-place retries, so the server does not redeliver an event still being retried.
    messageTimeout: 30_000 + 2 * retryWindowMs(maxAttempts, retryBackoffMs),
    resolveLinkTos: false,
  };
}

/**
 * A read of $all from a position where no record starts: StorageReaderWorker.ReadAllEventsForward answers
 * ReadAllResult.InvalidPosition, which the read enumerator (Enumerator.ReadAllForwards.cs) does not map, so the client
 * gets UNKNOWN "Unexpected ReadAllResult: InvalidPosition" (UnknownError); subscriptions map it to InvalidArgument
 * "Trying to read from an invalid position." (RpcExceptions.InvalidPositionException).
 */
function isInvalidPosition(err: unknown): boolean {
  if (err instanceof InvalidArgumentError) return /invalid position/i.test(err.message);
  return err instanceof Error && /InvalidPosition/.test(err.message);
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
