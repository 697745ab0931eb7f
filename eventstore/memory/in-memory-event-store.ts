import { DuplicateEventIdError, EventStoreUnavailableError, EventStoreValidationError, WrongExpectedVersionError } from '../errors';
import type {
  AppendOptions,
  AppendResult,
  BatchHandler,
  BatchSubscriptionOptions,
  CountEventsOptions,
  EventCount,
  EventHandler,
  EventStore,
  ExpectedRevision,
  GlobalPosition,
  JsonObject,
  ListStreamsOptions,
  NewEvent,
  ParkedEvent,
  ParkedSummary,
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
import { comparePositions, pageOfReadAll, START_POSITION } from '../event-store';
import { assertDistinctStreams, validateAppend, validateStreamName } from '../validation';
import { copyEvent } from './copy';
import { GroupState, InMemoryConsumerGroup } from './in-memory-consumer-group';

/** The store's clock: epoch milliseconds or a Date. */
export type StoreClock = () => number | Date;

export interface InMemoryEventStoreOptions {
  /**
   * The store's clock: it stamps recordedAt (never before the stream's previous event, as PostgreSQL does), the
   * occurredAt of events written without one, and parkedAt. Default: the wall clock as this module found it when it
   * loaded, so a test that fakes the process's `Date` to play a writer with a skewed clock (test/support/clock-offset.ts)
   * does not move the store's clock, just as it would not move a database server's.
   */
  clock?: StoreClock;
}

/** Most events one read returns (as the PostgreSQL adapter). */
const MAX_READ = 10_000;

/** Captured at load (see InMemoryEventStoreOptions.clock). Date.now does not use `this`. */
const wallClock: StoreClock = Date.now;

interface StreamState {
  events: RecordedEvent[];
  /** The stamp of the stream's last append, epoch ms. */
  lastRecordedMs: number;
}

/**
 * The event store port in memory, for the fast test tier and for experiments: single process, nothing persisted
 * beyond the object's life. It passes the same contract suite as the PostgreSQL adapter
 * (test/eventstore/event-store-contract.ts).
 * - An append's checks (validation, expected revision, event ids) and its write happen in one synchronous step, so
 *   concurrent appenders cannot both win; a retry of a landed append with the same specific expected revision
 *   succeeds and writes nothing.
 * - Global positions: `commit` numbers the appends, `prepare` the events (unique in the log); both only grow.
 * - Events are copied in (through JSON, as a database stores them) and out, so callers never share objects with the log.
 * - Consumer groups are durable for the store's life (see in-memory-consumer-group.ts) and woken by appends.
 */
export class InMemoryEventStore implements EventStore {
  private readonly log: RecordedEvent[] = [];
  private readonly streams = new Map<string, StreamState>();
  private readonly byId = new Map<string, RecordedEvent>();
  private readonly groups = new Map<string, GroupState>();
  private readonly consumers = new Set<InMemoryConsumerGroup>();
  private readonly clock: StoreClock;
  private appends = 0n;
  private closed = false;

  constructor(options: InMemoryEventStoreOptions = {}) {
    this.clock = options.clock ?? wallClock;
  }

  async appendToStream(stream: string, events: readonly NewEvent[], options: AppendOptions): Promise<AppendResult> {
    this.assertOpen();
    validateAppend(stream, events, options);
    const expected = options.expectedRevision;
    const state = this.streams.get(stream);
    const current: bigint | 'no_stream' = state ? BigInt(state.events.length - 1) : 'no_stream';
    const revisionOk =
      expected === 'any' ||
      (expected === 'no_stream' && state === undefined) ||
      (expected === 'stream_exists' && state !== undefined) ||
      (typeof expected === 'bigint' && current === expected);
    const taken = events.find((e) => this.byId.has(e.id.toLowerCase()));
    if (!revisionOk || taken) {
      // Nothing is written. A retry of an append that already landed succeeds (as on EventStoreDB); else a conflict.
      const earlier = this.findIdempotentAppend(stream, events, expected);
      if (earlier) return earlier;
      if (!revisionOk) throw new WrongExpectedVersionError(stream, expected, current);
      throw new DuplicateEventIdError(stream, taken!.id.toLowerCase());
    }

    const target = state ?? { events: [], lastRecordedMs: Number.NEGATIVE_INFINITY };
    const stampMs = Math.max(this.nowMs(), target.lastRecordedMs);
    const recordedAt = new Date(stampMs).toISOString();
    const commit = this.appends;
    const recorded = events.map((e, i): RecordedEvent => {
      const metadata = jsonCopy(e.metadata) as RecordedEvent['metadata'];
      // An absent occurredAt: the event occurred when the store recorded it.
      if (metadata.occurredAt === undefined) metadata.occurredAt = recordedAt;
      return {
        id: e.id.toLowerCase(),
        type: e.type,
        data: jsonCopy(e.data),
        metadata,
        stream,
        revision: BigInt(target.events.length + i),
        position: { commit, prepare: BigInt(this.log.length + i) },
        recordedAt,
      };
    });
    // The write: synchronous, right after the checks.
    this.appends += 1n;
    target.events.push(...recorded);
    target.lastRecordedMs = stampMs;
    if (!state) this.streams.set(stream, target);
    for (const e of recorded) {
      this.log.push(e);
      this.byId.set(e.id, e);
    }
    for (const consumer of this.consumers) consumer.notify('append');
    const last = recorded.at(-1)!;
    return { nextExpectedRevision: last.revision, position: { ...last.position }, recordedAt };
  }

  async appendToStreams(appends: readonly StreamAppend[]): Promise<StreamAppendOutcome[]> {
    assertDistinctStreams(appends);
    for (const { stream, events, options } of appends) validateAppend(stream, events, options); // all checked before any is written
    const outcomes: StreamAppendOutcome[] = [];
    for (const { stream, events, options } of appends) {
      try {
        outcomes.push({ ok: true, result: await this.appendToStream(stream, events, options) });
      } catch (error) {
        if (!(error instanceof Error)) throw error;
        outcomes.push({ ok: false, error });
      }
    }
    return outcomes;
  }

  /** The same events, in the same order, already sit at the place this append would have put them. */
  private findIdempotentAppend(stream: string, events: readonly NewEvent[], expected: ExpectedRevision): AppendResult | undefined {
    const found = events.map((e) => this.byId.get(e.id.toLowerCase()));
    if (found.some((e) => e === undefined)) return undefined;
    const rows = found as RecordedEvent[];
    const first = rows[0]!.revision;
    if (!rows.every((r, i) => r.stream === stream && r.revision === first + BigInt(i))) return undefined;
    if (expected === 'no_stream' && first !== 0n) return undefined;
    if (typeof expected === 'bigint' && first !== expected + 1n) return undefined;
    const last = rows.at(-1)!;
    return { nextExpectedRevision: last.revision, position: { ...last.position }, recordedAt: last.recordedAt };
  }

  /** In memory: each stream as readStream answers it. */
  async readStreams(reads: readonly StreamRead[]): Promise<RecordedEvent[][]> {
    return Promise.all(reads.map((r) => this.readStream(r.stream, { fromRevision: r.fromRevision, maxCount: r.maxCount })));
  }

  async readStream(stream: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    this.assertOpen();
    validateStreamName(stream);
    const maxCount = clampCount(options.maxCount);
    const events = this.streams.get(stream)?.events ?? [];
    const out: RecordedEvent[] = [];
    if (options.direction === 'backwards') {
      const from = options.fromRevision === undefined ? events.length - 1 : Number(bigMin(options.fromRevision, BigInt(events.length - 1)));
      for (let i = from; i >= 0 && out.length < maxCount; i--) out.push(events[i]!);
    } else {
      const from =
        options.fromRevision === undefined || options.fromRevision < 0n
          ? 0
          : options.fromRevision >= BigInt(events.length)
            ? events.length
            : Number(options.fromRevision);
      for (let i = from; i < events.length && out.length < maxCount; i++) out.push(events[i]!);
    }
    return out.map(copyEvent);
  }

  readAllPage(options: ReadAllPageOptions): Promise<ReadAllPage> {
    return pageOfReadAll(this, options);
  }

  async readAll(options: ReadAllOptions = {}): Promise<RecordedEvent[]> {
    this.assertOpen();
    const maxCount = clampCount(options.maxCount);
    const from = bound(options.occurredFrom, 'occurredFrom');
    const to = bound(options.occurredTo, 'occurredTo');
    const recordedFrom = bound(options.recordedFrom, 'recordedFrom');
    const recordedTo = bound(options.recordedTo, 'recordedTo');
    const out: RecordedEvent[] = [];
    for (let i = this.indexAfter(options.fromPosition ?? START_POSITION); i < this.log.length && out.length < maxCount; i++) {
      const e = this.log[i]!;
      if (!matchesFilter(e, options)) continue;
      const occurred = Date.parse(e.metadata.occurredAt);
      if ((from !== undefined && occurred < from) || (to !== undefined && occurred > to)) continue;
      const recorded = Date.parse(e.recordedAt);
      if ((recordedFrom !== undefined && recorded < recordedFrom) || (recordedTo !== undefined && recorded > recordedTo)) continue;
      out.push(e);
    }
    return out.map(copyEvent);
  }

  async headPosition(): Promise<GlobalPosition | undefined> {
    this.assertOpen();
    const last = this.log.at(-1);
    return last ? { ...last.position } : undefined;
  }

  async listStreams(options: ListStreamsOptions = {}): Promise<StreamSummary[]> {
    this.assertOpen();
    const limit = clampCount(options.limit ?? 100);
    const after = options.after ?? '';
    const names = [...this.streams.keys()].filter((s) => s > after && (!options.prefix || s.startsWith(options.prefix))).sort();
    return names.slice(0, limit).map((stream) => {
      const state = this.streams.get(stream)!;
      return { stream, revision: BigInt(state.events.length - 1), lastRecordedAt: new Date(state.lastRecordedMs).toISOString() };
    });
  }

  async subscribe(
    group: string,
    filter: SubscriptionFilter,
    handler: EventHandler,
    options: SubscriptionOptions = {},
  ): Promise<Subscription> {
    return this.subscribeInBatches(group, filter, (events) => handler(events[0]!), { ...options, maxBatchSize: 1 });
  }

  async subscribeInBatches(
    group: string,
    filter: SubscriptionFilter,
    handler: BatchHandler,
    options: BatchSubscriptionOptions = {},
  ): Promise<Subscription> {
    this.assertOpen();
    validateStreamName(group);
    if (filter.from !== 'start' && filter.from !== 'end') throw new Error("subscription 'from' must be 'start' or 'end'");
    let state = this.groups.get(group);
    if (!state) {
      state = new GroupState(group, filter.from === 'end' ? { ...(this.log.at(-1)?.position ?? START_POSITION) } : START_POSITION);
      this.groups.set(group, state);
    }
    const consumer = new InMemoryConsumerGroup(
      { eventsAfter: (position, max) => this.eventsAfter(position, max), now: () => new Date(this.nowMs()).toISOString() },
      state,
      { ...filter, eventTypes: filter.eventTypes ? [...filter.eventTypes] : undefined },
      handler,
      {
        maxAttempts: options.maxAttempts ?? 5,
        retryBackoffMs: options.retryBackoffMs ?? 100,
        maxBatchSize: Math.max(1, Math.floor(options.maxBatchSize ?? 100)),
      },
    );
    this.consumers.add(consumer);
    consumer.start();
    return {
      group,
      stop: async () => {
        await consumer.stop();
        this.consumers.delete(consumer);
      },
    };
  }

  async listParked(group: string): Promise<ParkedEvent[]> {
    this.assertOpen();
    return this.groups.get(group)?.listParked() ?? [];
  }

  async parkedSummary(group: string, upTo?: GlobalPosition): Promise<ParkedSummary> {
    this.assertOpen();
    return this.groups.get(group)?.summary(upTo) ?? { count: 0 };
  }

  async replayParked(group: string): Promise<number> {
    this.assertOpen();
    return this.groups.get(group)?.requestReplay() ?? 0;
  }

  async countEvents(options: CountEventsOptions = {}): Promise<EventCount> {
    this.assertOpen();
    let count = 0;
    let oldest: number | undefined;
    for (let i = this.indexAfter(options.fromPosition ?? START_POSITION); i < this.log.length; i++) {
      const e = this.log[i]!;
      if (!matchesFilter(e, options)) continue;
      count += 1;
      const at = Date.parse(e.recordedAt);
      if (oldest === undefined || at < oldest) oldest = at;
    }
    return { count, oldestRecordedAt: oldest === undefined ? undefined : new Date(oldest).toISOString(), saturated: false };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.consumers].map((c) => c.stop()));
    this.consumers.clear();
  }

  // --- internals ---------------------------------------------------------------------------------------------------

  /** Index in the log of the first event strictly after `position`. */
  private indexAfter(position: GlobalPosition): number {
    let lo = 0;
    let hi = this.log.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (comparePositions(this.log[mid]!.position, position) <= 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private eventsAfter(position: GlobalPosition, max: number): RecordedEvent[] {
    const start = this.indexAfter(position);
    return this.log.slice(start, start + max).map(copyEvent);
  }

  private nowMs(): number {
    const now = this.clock();
    const ms = typeof now === 'number' ? now : now.getTime();
    if (!Number.isFinite(ms)) throw new Error(`the in-memory event store's clock returned an invalid time: ${String(now)}`);
    return Math.floor(ms);
  }

  private assertOpen(): void {
    if (this.closed) throw new EventStoreUnavailableError('in-memory event store is closed');
  }
}

function matchesFilter(e: RecordedEvent, filter: { streamPrefix?: string; eventTypes?: readonly string[] }): boolean {
  if (filter.streamPrefix !== undefined && !e.stream.startsWith(filter.streamPrefix)) return false;
  if (filter.eventTypes !== undefined && !filter.eventTypes.includes(e.type)) return false;
  return true;
}

function bound(value: string | undefined, field: 'occurredFrom' | 'occurredTo' | 'recordedFrom' | 'recordedTo'): number | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new EventStoreValidationError(field, 'must be an ISO-8601 timestamp');
  return ms;
}

function clampCount(count: number | undefined): number {
  if (count === undefined) return MAX_READ;
  if (!Number.isInteger(count) || count < 1) throw new EventStoreValidationError('maxCount', 'must be a positive integer');
  return Math.min(count, MAX_READ);
}

function bigMin(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

/** As a database stores JSON: undefined members dropped, no shared references. */
function jsonCopy<T extends JsonObject | NewEvent['metadata']>(value: T): JsonObject {
  return JSON.parse(JSON.stringify(value)) as JsonObject;
}
