/**
 * The event store port. Both adapters (PostgreSQL, EventStoreDB) implement it and pass
 * the same contract suite (test/eventstore/event-store-contract.ts).
 *
 * Contract highlights:
 * - Every append names an expected revision; a mismatch throws WrongExpectedVersionError.
 * - The event id is the idempotency key: re-sending the same events with the same *specific*
 *   expected revision after they were committed succeeds and writes nothing (with 'any' it is
 *   best effort only, as on EventStoreDB). Our writers always pass a specific revision.
 * - Global positions are ordered pairs { commit, prepare } (EventStoreDB's shape): readAll and
 *   subscriptions deliver in ascending position, and a subscriber never skips an event that
 *   commits after a later one became visible.
 */

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

export type ExpectedRevision = 'no_stream' | 'stream_exists' | 'any' | bigint;

/** Metadata as a writer proposes it. */
export interface NewEventMetadata {
  /**
   * When the fact happened in the world, ISO-8601: only for a time that is not the moment of recording
   * (business time, e.g. a branch reporting a deposit a day late). Leave it out and the store sets it to
   * the time it records the event, by its own clock. Never set it from the writing process's clock:
   * processes' clocks disagree, and the store's is the one clock every event shares.
   */
  occurredAt?: string;
  correlationId?: string;
  causationId?: string;
  [key: string]: JsonValue | undefined;
}

/** Metadata of a recorded event: occurredAt is always there (the recording time unless the writer set one). */
export interface EventMetadata extends NewEventMetadata {
  occurredAt: string;
}

/** An event as a writer proposes it. */
export interface NewEvent<Type extends string = string, Data extends JsonObject = JsonObject> {
  id: string;
  type: Type;
  data: Data;
  metadata: NewEventMetadata;
}

export interface GlobalPosition {
  commit: bigint;
  prepare: bigint;
}

/** An event as the store recorded it. */
export interface RecordedEvent<Type extends string = string, Data extends JsonObject = JsonObject> extends NewEvent<Type, Data> {
  stream: string;
  revision: bigint;
  position: GlobalPosition;
  metadata: EventMetadata;
  /**
   * When the store recorded it, ISO-8601, millisecond precision, by the store's clock: PostgreSQL stamps it
   * with the database's clock inside the append, never before the previous event of the stream (even when
   * that clock is set back); EventStoreDB with the server's `created`.
   */
  recordedAt: string;
}

export interface AppendOptions {
  expectedRevision: ExpectedRevision;
  /**
   * The writer vouches that the ids are new random UUIDs, never re-sent (e.g. a best-effort snapshot): a store that
   * must read a stream to find re-sent ids (EventStoreDB) may skip that. Never for deterministic ids.
   */
  freshIds?: boolean;
}

export interface AppendResult {
  /** Revision of the last event now in the stream. */
  nextExpectedRevision: bigint;
  /** Global position of the last event appended (or found, for an idempotent re-append). */
  position: GlobalPosition;
  /**
   * The store's recording time of the appended events (of the first append, for an idempotent re-append).
   * Absent when the adapter cannot tell without another read (EventStoreDB does not return it).
   */
  recordedAt?: string;
}

/** One append of appendToStreams: a stream, its events and its expected revision. */
export interface StreamAppend {
  stream: string;
  events: readonly NewEvent[];
  options: AppendOptions;
}

/** What one append of appendToStreams came to: its result, or the error appendToStream would have thrown. */
export type StreamAppendOutcome = { ok: true; result: AppendResult } | { ok: false; error: Error };

export interface ReadStreamOptions {
  /** Inclusive. Forwards default 0; backwards default the end of the stream. */
  fromRevision?: bigint;
  maxCount?: number;
  direction?: 'forwards' | 'backwards';
}

export interface ReadAllOptions {
  /** Exclusive: events strictly after this position. */
  fromPosition?: GlobalPosition;
  maxCount?: number;
  streamPrefix?: string;
  eventTypes?: readonly string[];
  /** Inclusive bounds on metadata.occurredAt. ISO-8601. */
  occurredFrom?: string;
  occurredTo?: string;
  /** Inclusive bounds on recordedAt (the store's clock). ISO-8601. */
  recordedFrom?: string;
  recordedTo?: string;
}

/** One page of the log for a caller that pages (GET /events): what matched, and where to go on from. */
export interface ReadAllPage {
  events: RecordedEvent[];
  /**
   * Where the next page starts (exclusive), present when there may be more: the page is full, or the store stopped
   * looking at its scan budget (EventStoreDB, filtering by time on the client) before it found `maxCount` matches, in
   * which case the page may be short, even empty, and still have a `next`.
   */
  next?: GlobalPosition;
}

export interface ReadAllPageOptions extends ReadAllOptions {
  maxCount: number;
  /**
   * Most log records to look at for this page, matching or not (EventStoreDB, whose reads filtered by time or
   * unfiltered by the server scan on the client; default 10 000). PostgreSQL's indexes answer without scanning: it
   * ignores this.
   */
  scanBudget?: number;
}

/** readAllPage for a store whose reads do not scan: a page is full or the end. */
export async function pageOfReadAll(store: Pick<EventStore, 'readAll'>, options: ReadAllPageOptions): Promise<ReadAllPage> {
  const events = await store.readAll(options);
  const last = events.at(-1);
  return { events, ...(events.length >= options.maxCount && last ? { next: last.position } : {}) };
}

export interface SubscriptionFilter {
  streamPrefix?: string;
  eventTypes?: readonly string[];
  /** Where a new group starts. Ignored when the group already exists (it resumes from its checkpoint). */
  from: 'start' | 'end';
}

export interface SubscriptionOptions {
  /** Attempts before an event is parked. Default 5. */
  maxAttempts?: number;
  /** Delay before the first retry of a failed event; doubles each attempt. Default 100 ms. */
  retryBackoffMs?: number;
}

export type EventHandler = (event: RecordedEvent) => Promise<void>;
/** Receives several events at once (in delivery order), e.g. to apply them in one transaction. */
export type BatchHandler = (events: RecordedEvent[]) => Promise<void>;

export interface BatchSubscriptionOptions extends SubscriptionOptions {
  /** Most events per handler call (default 100). */
  maxBatchSize?: number;
}

export interface Subscription {
  readonly group: string;
  /** Stops delivery; resolves once the in-flight event is done. Idempotent. */
  stop(): Promise<void>;
}

export interface ParkedEvent {
  group: string;
  event: RecordedEvent;
  error: string;
  /** Handler attempts made before it was parked (0 when it was parked behind an earlier parked event of its stream). */
  attempts: number;
  parkedAt: string;
  /**
   * Parked without being handed to the handler, because an earlier event of the same stream is parked for this
   * group: delivering it would break the stream's order (and fail every projection's revision guard), so it waits
   * behind that one and a replay delivers the stream's parked events in order.
   */
  blocked: boolean;
}

/** The reason recorded for an event parked behind an earlier parked event of its stream (both adapters). */
export const BLOCKED_BY_PARKED = 'blocked by a parked event';

export function blockedReason(stream: string, revision: bigint): string {
  return `${BLOCKED_BY_PARKED}: revision ${revision} of ${stream} is parked; not attempted, replayed in stream order after it`;
}

export interface ParkedSummary {
  /** Parked events of the group (those at or before `upTo` when given), blocked ones included. */
  count: number;
  /** Position of the first of them in the global order. */
  first?: GlobalPosition;
  /** When the oldest of them was recorded in the log. ISO-8601. */
  oldestRecordedAt?: string;
}

export interface CountEventsOptions {
  /** Exclusive: events strictly after this position. */
  fromPosition?: GlobalPosition;
  streamPrefix?: string;
  eventTypes?: readonly string[];
}

export interface EventCount {
  count: number;
  /** When the oldest counted event was recorded. ISO-8601. */
  oldestRecordedAt?: string;
  /** The adapter stopped counting at a limit: `count` is a lower bound (EventStoreDB only; PostgreSQL counts exactly). */
  saturated: boolean;
}

export interface StreamSummary {
  stream: string;
  revision: bigint;
  lastRecordedAt: string;
}

export interface ListStreamsOptions {
  prefix?: string;
  /** Exclusive: streams whose name sorts after this. */
  after?: string;
  limit?: number;
}

/** One stream of a readStreams call: forwards from `fromRevision` (default 0), at most `maxCount` events. */
export interface StreamRead {
  stream: string;
  fromRevision?: bigint;
  maxCount?: number;
}

export interface EventStore {
  appendToStream(stream: string, events: readonly NewEvent[], options: AppendOptions): Promise<AppendResult>;
  /**
   * Many appends at once (a batch's thousand transfer streams, say), each to a stream of its own (a stream at most once),
   * each checked and answered exactly as appendToStream would answer it, in the order given: one append's conflict
   * never undoes another's. Where the store can, they are committed together: PostgreSQL writes them in one
   * transaction (one commit instead of one per stream), and when any of them would not land as asked it writes them one
   * by one instead; EventStoreDB appends them side by side; the in-memory store one after the other.
   */
  appendToStreams(appends: readonly StreamAppend[]): Promise<StreamAppendOutcome[]>;
  /** Events of one stream; an empty array when the stream does not exist. */
  readStream(stream: string, options?: ReadStreamOptions): Promise<RecordedEvent[]>;
  /**
   * Several streams read forwards at once, each answered as readStream would, in the order asked: one round trip
   * where the adapter can (PostgreSQL), so a command that needs several streams does not wait for each in turn or
   * hold a connection per stream.
   */
  readStreams(reads: readonly StreamRead[]): Promise<RecordedEvent[][]>;
  readAll(options?: ReadAllOptions): Promise<RecordedEvent[]>;
  /** A bounded page of readAll, for callers that page on (see ReadAllPage): never an unbounded scan. */
  readAllPage(options: ReadAllPageOptions): Promise<ReadAllPage>;
  /** The position of the most recent event any reader can see (undefined when the log is empty). */
  headPosition(): Promise<GlobalPosition | undefined>;
  listStreams(options?: ListStreamsOptions): Promise<StreamSummary[]>;

  /**
   * Joins (creating when absent) a durable consumer group and delivers its events, at least once. A failing event is
   * retried (maxAttempts, with backoff), then parked with its error; from then on the later events of its stream are
   * parked behind it at once, unattempted (no retry budget spent on events that cannot apply before it), while other
   * streams keep flowing. Parked events are listed, counted and replayed through this port.
   */
  subscribe(group: string, filter: SubscriptionFilter, handler: EventHandler, options?: SubscriptionOptions): Promise<Subscription>;
  /**
   * The same consumer group semantics, with events handed over in batches of what is ready. When a
   * batch fails, its events are delivered again one at a time (with retries), so a poison event is
   * parked alone and the others are handled.
   */
  subscribeInBatches(
    group: string,
    filter: SubscriptionFilter,
    handler: BatchHandler,
    options?: BatchSubscriptionOptions,
  ): Promise<Subscription>;
  /** The group's parked events, in the log's order. */
  listParked(group: string): Promise<ParkedEvent[]>;
  /** How many events the group has parked (only those at or before `upTo` when given): cheap, for metrics and readiness. */
  parkedSummary(group: string, upTo?: GlobalPosition): Promise<ParkedSummary>;
  /**
   * Delivers the group's parked events again (to its running subscribers), each stream's in revision order; returns
   * how many were queued. An event that fails again is parked again (and its stream's later events stay parked behind it).
   */
  replayParked(group: string): Promise<number>;
  /** Counts the events after a position that match a filter (projection lag), without reading them. */
  countEvents(options?: CountEventsOptions): Promise<EventCount>;

  close(): Promise<void>;
}

export const START_POSITION: GlobalPosition = { commit: -1n, prepare: -1n };

export function comparePositions(a: GlobalPosition, b: GlobalPosition): number {
  if (a.commit !== b.commit) return a.commit < b.commit ? -1 : 1;
  if (a.prepare !== b.prepare) return a.prepare < b.prepare ? -1 : 1;
  return 0;
}

/** A compact text form ("commit.prepare") for HTTP and logs. */
export function formatPosition(p: GlobalPosition): string {
  return `${p.commit}.${p.prepare}`;
}

export function parsePosition(text: string): GlobalPosition | undefined {
  const match = /^(\d{1,19})\.(\d{1,19})$/.exec(text);
  if (!match) return undefined;
  return { commit: BigInt(match[1]!), prepare: BigInt(match[2]!) };
}
