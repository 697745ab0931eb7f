import type { Pool } from 'pg';
import { assertTimeLeft } from '../../infra/attempt-deadline';
import { clientSettings, createServicePool, PG_TIMEOUTS, WRITE_BUDGET_MS } from '../../infra/pg-pool';
import { DuplicateEventIdError, EventStoreUnavailableError, EventStoreValidationError, WrongExpectedVersionError } from '../errors';
import type {
  AppendOptions,
  AppendResult,
  BatchHandler,
  BatchSubscriptionOptions,
  EventHandler,
  EventStore,
  ExpectedRevision,
  GlobalPosition,
  ListStreamsOptions,
  NewEvent,
  ParkedEvent,
  ParkedSummary,
  CountEventsOptions,
  EventCount,
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
import { pageOfReadAll } from '../event-store';
import { assertDistinctStreams, validateAppend, validateStreamName } from '../validation';
import { appendInOneTransaction, BULK_APPEND_CHUNK, BULK_APPEND_LANES, type AppendedRow, type AppendStatement } from './bulk-append';
import { AppendNotifier } from './append-notifier';
import { PostgresConsumerGroup } from './consumer-group';
import { SharedLogReads } from './shared-log-reads';
import type { StoreErrorListener } from './store-errors';
import { countEvents, escapeLike, parkedSummary, readHeadPosition, VISIBLE_TO_READERS } from './log-queries';
import { PostgresChainAudit } from './hash-chain-audit';
import { readAllStatement } from './read-all-query';
import { migrateEventStore } from './migrations';
import { prepared } from '../../infra/pg-prepared';
import { EVENT_COLUMNS, eventColumns, toRecordedEvent, type EventRow } from './row-mapping';

const MAX_READ = 10_000;

export interface PostgresEventStoreOptions {
  connectionString: string;
  /**
   * The pool to use instead of one made from connectionString and poolSize (a test that records the store's
   * queries). It stays the caller's: close() does not end it.
   */
  pool?: Pool;
  poolSize?: number;
  /** Run schema migrations on connect (default true). */
  migrate?: boolean;
  /** Subscriber poll interval when no notification arrives (default 1000 ms). */
  pollIntervalMs?: number;
  /** Server-side limit per statement (default PG_TIMEOUTS.statementMs, 5 s: see infra/pg-pool.ts for the time budget). */
  statementTimeoutMs?: number;
  /**
   * Hash-chain every append (default true; see eventstore/hash-chain.ts). `false` is for the benchmark only (the
   * cost of the chain): it appends with the statement as it was before the chain, leaving hashes empty, and such a
   * log does not verify.
   */
  hashChain?: boolean;
  /**
   * Told of the errors the store recovers from on its own, so they can be logged: a lost LISTEN connection (it
   * reconnects), a consumer group's failed round (it backs off and resumes from its checkpoint).
   */
  onError?: StoreErrorListener;
}

export interface OpenTransactionLag {
  /** Visible events that readers cannot deliver yet because an older transaction is still open. */
  eventsHeldBack: number;
  /** Age of the oldest transaction holding readers back, in ms (0 when none). */
  oldestOpenTransactionMs: number;
}

/** readStreams: each stream's own index range (stream, revision), in the order asked. */
const READ_STREAMS = `SELECT r.nth::text AS nth, e.* FROM unnest($1::text[], $2::bigint[], $3::int[]) WITH ORDINALITY AS r(stream, from_revision, max_count, nth)
  CROSS JOIN LATERAL (
    SELECT ${eventColumns('x')}, x.revision AS in_order FROM es_events x WHERE x.stream = r.stream AND x.revision >= r.from_revision
    ORDER BY x.revision LIMIT r.max_count
  ) e
  ORDER BY r.nth, e.in_order`;

export class PostgresEventStore implements EventStore {
  private readonly groups = new Set<PostgresConsumerGroup>();
  /** The consumer groups' log reads, shared (see SharedLogReads). */
  private readonly sharedReads: SharedLogReads;

  private constructor(
    private readonly pool: Pool,
    private readonly ownsPool: boolean,
    private readonly notifier: AppendNotifier,
    private readonly pollIntervalMs: number,
    private readonly hashChain: boolean = true,
    private readonly onError?: StoreErrorListener,
  ) {
    this.sharedReads = new SharedLogReads(pool);
  }

  /** Verify the hash chains and write anchors (eventstore/postgres/hash-chain-audit.ts). */
  chainAudit(): PostgresChainAudit {
    return new PostgresChainAudit(this.pool);
  }

  static async connect(options: PostgresEventStoreOptions): Promise<PostgresEventStore> {
    // Time-limited connection waits and statements (a statement fails instead of landing long after
    // its caller, an activity Temporal already timed out, gave up on it); a dead connection never
    // ends the process, its error surfaces on the next query instead.
    const pool =
      options.pool ??
      createServicePool({
        connectionString: options.connectionString,
        max: options.poolSize ?? 20,
        applicationName: 'transfer-event-store',
        statementTimeoutMs: options.statementTimeoutMs ?? PG_TIMEOUTS.statementMs,
      });
    try {
      if (options.migrate !== false) await migrateEventStore(pool);
    } catch (error) {
      if (!options.pool) await pool.end().catch(() => undefined); // the migration's error is the one to report
      throw asUnavailable(error);
    }
    const notifier = new AppendNotifier(clientSettings(options.connectionString, 'transfer-event-store-listen'), options.onError);
    await notifier.start();
    return new PostgresEventStore(
      pool,
      !options.pool,
      notifier,
      options.pollIntervalMs ?? 1000,
      options.hashChain ?? true,
      options.onError,
    );
  }

  async appendToStream(stream: string, events: readonly NewEvent[], options: AppendOptions): Promise<AppendResult> {
    validateAppend(stream, events, options);
    // In an activity attempt: start only if connection wait + statement fit before its deadline.
    assertTimeLeft('append', WRITE_BUDGET_MS);
    const expected = options.expectedRevision;
    // The head statement both checks the expected revision and takes the stream's row lock; the
    // events are inserted by the same statement, so check and write are one atomic step.
    // It also stamps the append with the database's clock (head.stamp, see STAMP_NEXT): the events' recording
    // time, and their occurrence time unless the writer gave one (business time). No process clock is used.
    const { name, text: sql, values: params } = this.appendStatement(stream, events, expected);
    let conflict: 'revision' | 'event_id' = 'revision';
    // 'any' with several events on a stream another writer creates at the same moment: the statement, which chained
    // from no head, finds the head inserted meanwhile and writes nothing; it runs again and chains from that head.
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await this.pool.query<{ revision: string; position: string; txid: string; recorded_at: Date }>({
          name,
          text: sql,
          values: params,
        });
        const row = result.rows[0];
        if (row) {
          this.notifier.signal();
          return {
            nextExpectedRevision: BigInt(row.revision),
            position: { commit: BigInt(row.txid), prepare: BigInt(row.position) },
            recordedAt: row.recorded_at.toISOString(),
          };
        }
        if (expected === 'any' && this.hashChain && attempt < 5 && (await this.currentRevision(stream)) !== 'no_stream') continue;
      } catch (error) {
        const pgError = error as { code?: string; constraint?: string };
        if (pgError.code === '23505' && pgError.constraint === 'es_events_id') conflict = 'event_id';
        else if (pgError.code === '23505' && pgError.constraint === 'es_streams_pkey') conflict = 'revision';
        else throw asUnavailable(error);
      }
      break;
    }
    // Nothing was written. Either this is a retry of an append that already landed (idempotent
    // success, as on EventStoreDB), or a genuine conflict.
    const earlier = await this.findIdempotentAppend(stream, events, expected);
    if (earlier) return earlier;
    if (conflict === 'event_id') {
      const existing = await this.pool.query<{ id: string }>('SELECT id::text AS id FROM es_events WHERE id = ANY($1::uuid[]) LIMIT 1', [
        events.map((e) => e.id),
      ]);
      throw new DuplicateEventIdError(stream, existing.rows[0]?.id ?? events[0]!.id);
    }
    throw new WrongExpectedVersionError(stream, expected, await this.currentRevision(stream));
  }

  /** The one statement of an append (a named statement per expected-revision kind: each connection plans it once). */
  private appendStatement(stream: string, events: readonly NewEvent[], expected: ExpectedRevision): AppendStatement {
    const n = events.length;
    const head = headStatement(expected);
    const unchainedSql = `
      WITH head AS (${head}),
      ins AS (
        INSERT INTO es_events (stream, revision, id, type, data, metadata, occurred_at, recorded_at)
        SELECT $1, head.revision - $2::bigint + e.ord, e.id, e.type, e.data,
               CASE WHEN e.occurred_at IS NULL
                    THEN e.metadata || jsonb_build_object('occurredAt', to_char(head.stamp AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
                    ELSE e.metadata END,
               coalesce(e.occurred_at, head.stamp), head.stamp
        FROM head, unnest($3::uuid[], $4::text[], $5::jsonb[], $6::jsonb[], $7::timestamptz[])
             WITH ORDINALITY AS e(id, type, data, metadata, occurred_at, ord)
        RETURNING revision, position, transaction_id, recorded_at
      )
      SELECT revision::text AS revision, position::text AS position, transaction_id::text AS txid, recorded_at
      FROM ins ORDER BY ins.revision DESC LIMIT 1`;
    const params: unknown[] = [
      stream,
      n,
      events.map((e) => e.id),
      events.map((e) => e.type),
      events.map((e) => JSON.stringify(e.data)),
      events.map((e) => JSON.stringify(e.metadata)), // an absent occurredAt is left out; the statement adds the stamp
      events.map((e) => e.metadata.occurredAt ?? null),
    ];
    if (typeof expected === 'bigint') params.push(expected.toString());
    const kind = typeof expected === 'bigint' ? 'revision' : expected;
    const [name, sql] = !this.hashChain
      ? [`es_append_${kind}`, unchainedSql]
      : n === 1
        ? [`es_append_chained_one_${kind}`, oneEventAppendStatement(expected)]
        : [`es_append_chained_${kind}`, eventsAppendStatement(expected)];
    return { name, text: sql, values: params };
  }

  /**
   * Many appends: validated first (all or nothing: a bad one throws before any is written), then sent in chunks of
   * BULK_APPEND_CHUNK, each chunk one transaction (one commit), BULK_APPEND_LANES chunks at a time. A chunk in which any
   * append would not land as asked writes nothing, and its appends are then made one by one, each answered exactly as
   * appendToStream answers it.
   */
  async appendToStreams(appends: readonly StreamAppend[]): Promise<StreamAppendOutcome[]> {
    assertDistinctStreams(appends);
    for (const { stream, events, options } of appends) validateAppend(stream, events, options);
    assertTimeLeft('append', WRITE_BUDGET_MS);
    const outcomes = new Array<StreamAppendOutcome>(appends.length);
    const chunks: number[][] = [];
    for (let i = 0; i < appends.length; i += BULK_APPEND_CHUNK)
      chunks.push(Array.from({ length: Math.min(BULK_APPEND_CHUNK, appends.length - i) }, (_, k) => i + k));
    const oneByOne = async (index: number) => {
      const { stream, events, options } = appends[index]!;
      try {
        outcomes[index] = { ok: true, result: await this.appendToStream(stream, events, options) };
      } catch (error) {
        if (!(error instanceof Error)) throw error;
        outcomes[index] = { ok: false, error };
      }
    };
    let next = 0;
    const lane = async () => {
      while (next < chunks.length) {
        const chunk = chunks[next++]!;
        const statements = chunk.map((i) =>
          this.appendStatement(appends[i]!.stream, appends[i]!.events, appends[i]!.options.expectedRevision),
        );
        let rows: AppendedRow[] | undefined;
        try {
          rows = chunk.length > 1 ? await appendInOneTransaction(this.pool, statements, (e) => asUnavailable(e) !== e) : undefined;
        } catch (error) {
          throw asUnavailable(error);
        }
        if (!rows) {
          for (const index of chunk) await oneByOne(index);
          continue;
        }
        this.notifier.signal();
        rows.forEach((row, k) => {
          outcomes[chunk[k]!] = {
            ok: true,
            result: {
              nextExpectedRevision: BigInt(row.revision),
              position: { commit: BigInt(row.txid), prepare: BigInt(row.position) },
              recordedAt: row.recorded_at.toISOString(),
            },
          };
        });
      }
    };
    await Promise.all(Array.from({ length: Math.min(BULK_APPEND_LANES, chunks.length) }, lane));
    return outcomes;
  }

  /** The same events, in the same order, already sit at the place this append would have put them. */
  private async findIdempotentAppend(
    stream: string,
    events: readonly NewEvent[],
    expected: ExpectedRevision,
  ): Promise<AppendResult | undefined> {
    const ids = events.map((e) => e.id.toLowerCase());
    const found = await this.pool.query<{
      id: string;
      stream: string;
      revision: string;
      position: string;
      txid: string;
      recorded_at: Date;
    }>(
      `SELECT id::text AS id, stream, revision::text AS revision, position::text AS position, transaction_id::text AS txid, recorded_at
       FROM es_events WHERE id = ANY($1::uuid[])`,
      [ids],
    );
    if (found.rows.length !== ids.length) return undefined;
    const byId = new Map(found.rows.map((r) => [r.id, r]));
    const rows = ids.map((id) => byId.get(id)!);
    const first = BigInt(rows[0]!.revision);
    const consecutive = rows.every((r, i) => r.stream === stream && BigInt(r.revision) === first + BigInt(i));
    if (!consecutive) return undefined;
    if (expected === 'no_stream' && first !== 0n) return undefined;
    if (typeof expected === 'bigint' && first !== expected + 1n) return undefined;
    const last = rows[rows.length - 1]!;
    return {
      nextExpectedRevision: BigInt(last.revision),
      position: { commit: BigInt(last.txid), prepare: BigInt(last.position) },
      recordedAt: last.recorded_at.toISOString(),
    };
  }

  private async currentRevision(stream: string): Promise<bigint | 'no_stream'> {
    const head = await this.pool.query<{ revision: string }>('SELECT revision::text AS revision FROM es_streams WHERE stream = $1', [
      stream,
    ]);
    return head.rows[0] ? BigInt(head.rows[0].revision) : 'no_stream';
  }

  async readStream(stream: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    validateStreamName(stream);
    const maxCount = clampCount(options.maxCount);
    const backwards = options.direction === 'backwards';
    const params: unknown[] = [stream, maxCount];
    let bound = '';
    if (options.fromRevision !== undefined) {
      params.push(options.fromRevision.toString());
      bound = backwards ? 'AND revision <= $3' : 'AND revision >= $3';
    }
    try {
      const result = await this.pool.query<EventRow>(
        prepared(
          `SELECT ${EVENT_COLUMNS} FROM es_events WHERE stream = $1 ${bound}
           ORDER BY es_events.revision ${backwards ? 'DESC' : 'ASC'} LIMIT $2`,
          params,
        ),
      );
      return result.rows.map(toRecordedEvent);
    } catch (error) {
      throw asUnavailable(error);
    }
  }

  async readStreams(reads: readonly StreamRead[]): Promise<RecordedEvent[][]> {
    for (const read of reads) validateStreamName(read.stream);
    if (reads.length === 0) return [];
    try {
      const result = await this.pool.query<EventRow & { nth: string }>(
        prepared(READ_STREAMS, [
          reads.map((r) => r.stream),
          reads.map((r) => (r.fromRevision !== undefined && r.fromRevision > 0n ? r.fromRevision.toString() : '0')),
          reads.map((r) => clampCount(r.maxCount)),
        ]),
      );
      const out: RecordedEvent[][] = reads.map(() => []);
      for (const row of result.rows) out[Number(row.nth) - 1]!.push(toRecordedEvent(row));
      return out;
    } catch (error) {
      throw asUnavailable(error);
    }
  }

  readAllPage(options: ReadAllPageOptions): Promise<ReadAllPage> {
    return pageOfReadAll(this, options);
  }

  async readAll(options: ReadAllOptions = {}): Promise<RecordedEvent[]> {
    const { text, values } = readAllStatement(options, clampCount(options.maxCount));
    try {
      const result = await this.pool.query<EventRow>(text, values);
      return result.rows.map(toRecordedEvent);
    } catch (error) {
      throw asUnavailable(error);
    }
  }

  async headPosition(): Promise<GlobalPosition | undefined> {
    return readHeadPosition(this.pool);
  }

  async listStreams(options: ListStreamsOptions = {}): Promise<StreamSummary[]> {
    const params: unknown[] = [clampCount(options.limit ?? 100), options.after ?? ''];
    let prefix = '';
    if (options.prefix) {
      params.push(`${escapeLike(options.prefix)}%`);
      prefix = 'AND stream LIKE $3';
    }
    const result = await this.pool.query<{ stream: string; revision: string; updated_at: Date }>(
      `SELECT stream, revision::text AS revision, updated_at FROM es_streams WHERE stream > $2 ${prefix} ORDER BY stream LIMIT $1`,
      params,
    );
    return result.rows.map((r) => ({ stream: r.stream, revision: BigInt(r.revision), lastRecordedAt: r.updated_at.toISOString() }));
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
    const consumer = new PostgresConsumerGroup(this.pool, this.notifier, this.sharedReads, group, filter, handler, {
      maxAttempts: options.maxAttempts ?? 5,
      retryBackoffMs: options.retryBackoffMs ?? 100,
      pollIntervalMs: this.pollIntervalMs,
      maxBatchSize: Math.max(1, Math.floor(options.maxBatchSize ?? 100)),
      onError: this.onError,
    });
    await consumer.start();
    this.groups.add(consumer);
    return {
      group,
      stop: async () => {
        this.groups.delete(consumer);
        await consumer.stop();
      },
    };
  }

  async listParked(group: string): Promise<ParkedEvent[]> {
    const result = await this.pool.query<EventRow & { error: string; attempts: number; parked_at: Date }>(
      `SELECT ${eventColumns('e')},
              p.error, p.attempts, p.parked_at
       FROM es_parked_events p JOIN es_events e ON e.position = p.event_position
       WHERE p.group_name = $1 ORDER BY e.transaction_id, e.position`,
      [group],
    );
    return result.rows.map((r) => ({
      group,
      event: toRecordedEvent(r),
      error: r.error,
      attempts: r.attempts,
      parkedAt: r.parked_at.toISOString(),
      blocked: r.attempts === 0,
    }));
  }

  async parkedSummary(group: string, upTo?: GlobalPosition): Promise<ParkedSummary> {
    return parkedSummary(this.pool, group, upTo);
  }

  async countEvents(options?: CountEventsOptions): Promise<EventCount> {
    return countEvents(this.pool, options);
  }

  async replayParked(group: string): Promise<number> {
    const result = await this.pool.query(
      `UPDATE es_parked_events SET replay_requested_at = now() WHERE group_name = $1 AND replay_requested_at IS NULL`,
      [group],
    );
    for (const consumer of this.groups) if (consumer.group === group) consumer.replayRequested();
    this.notifier.signal();
    return result.rowCount ?? 0;
  }

  /** How far an open transaction holds readers back (the failure mode of the xmin technique). */
  async openTransactionLag(): Promise<OpenTransactionLag> {
    const result = await this.pool.query<{ held: string; oldest_ms: string | null }>(
      `SELECT (SELECT count(*) FROM es_events WHERE NOT (${VISIBLE_TO_READERS}))::text AS held,
              (SELECT (extract(epoch FROM now() - min(xact_start)) * 1000)::bigint::text FROM pg_stat_activity
                WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()) AS oldest_ms`,
    );
    const row = result.rows[0]!;
    return { eventsHeldBack: Number(row.held), oldestOpenTransactionMs: row.oldest_ms ? Math.max(0, Number(row.oldest_ms)) : 0 };
  }

  async close(): Promise<void> {
    await Promise.all([...this.groups].map((g) => g.stop()));
    this.groups.clear();
    await this.notifier.close();
    if (this.ownsPool) await this.pool.end();
  }
}

/**
 * The time of an append, by the database's clock: clock_timestamp() (the moment the statement runs, not
 * the start of its transaction), at millisecond precision (what RecordedEvent.recordedAt and JSON carry),
 * and never before the stream's previous append (es_streams.updated_at is its stamp), so a stream's
 * events stay in time order even when the database clock is set back. The head statement, which holds
 * the stream's row lock, computes it once and returns it as `stamp`.
 */
const STAMP_FIRST = `date_trunc('milliseconds', clock_timestamp())`;
const STAMP_NEXT = `date_trunc('milliseconds', greatest(clock_timestamp(), es_streams.updated_at))`;

/**
 * The appends with the hash chain (eventstore/hash-chain.ts): the same parameters and answer as the statement in
 * appendToStream, one statement, so the expected-revision check, the chain and the write stay one atomic step.
 *
 * Where the hash is computed, and why there: inside the statement, by PostgreSQL (sha256(), es_chain_hashes from
 * migration 2, es_event_encoding_v2 and es_next_position from migration 4), serialised by the stream's head row like
 * the revision itself. The hash covers the occurredAt, metadata and recorded time the statement stamps with the
 * database clock, and the event's place in the log (this transaction's id and the position, taken from the sequence
 * after the head row is locked and inserted as taken), which no client knows before the statement runs; a
 * client-side hash would also need the previous hash read first (another round trip per append).
 * So the canonical encoding is defined as PostgreSQL's jsonb text, which hash-chain.ts reproduces for the verifier
 * and the other adapters.
 *
 * One event (the common case): the head UPDATE (or INSERT for a new stream) computes the new head in its SET from
 * the row it locked: revision + 1, the stamp (never before the previous one), the event's position, and last_hash =
 * SHA-256(the row's last_hash ‖ encoding of the event as it will be stored). A concurrent writer's commit makes
 * PostgreSQL re-evaluate the SET on the newest row (READ COMMITTED), so the chain always continues from the hash
 * actually last written; the event row is inserted with the head's returned hash, stamp and position (the metadata is
 * rebuilt from the same stamp, so it is the metadata that was hashed).
 */
function oneEventAppendStatement(expected: ExpectedRevision): string {
  const at = (stamp: string) => `date_trunc('milliseconds', greatest(clock_timestamp(), ${stamp}))`;
  const metadata = (stamp: string) => `CASE WHEN ($7::timestamptz[])[1] IS NULL
      THEN ($6::jsonb[])[1] || jsonb_build_object('occurredAt', to_char(${stamp} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
      ELSE ($6::jsonb[])[1] END`;
  /** (revision, updated_at, last_position, last_hash) of the head after the append ($2, the number of events, is 1), from the head before it. */
  const next = (revision: string, updatedAt: string, lastHash: string) => `(
      SELECT ${revision} + $2::bigint, x.at, x.position,
             sha256(coalesce(${lastHash}, decode(repeat('00', 32), 'hex')) ||
                    es_event_encoding_v2(($3::uuid[])[1], ($4::text[])[1], $1, ${revision} + $2::bigint, ($5::jsonb[])[1], ${metadata('x.at')},
                                         coalesce(($7::timestamptz[])[1], x.at), x.at, pg_current_xact_id(), x.position))
      FROM (SELECT ${at(updatedAt)} AS at, es_next_position() AS position) x)`;
  const returning = 'RETURNING revision, updated_at AS stamp, last_position AS position, last_hash AS hash';
  const created = `INSERT INTO es_streams (stream, revision, updated_at, last_position, last_hash) SELECT $1, h.* FROM ${next('-1::bigint', 'NULL::timestamptz', 'NULL::bytea')} h`;
  const head =
    expected === 'no_stream'
      ? `${created} ON CONFLICT (stream) DO NOTHING ${returning}`
      : expected === 'any'
        ? `${created} ON CONFLICT (stream) DO UPDATE SET (revision, updated_at, last_position, last_hash) = ${next('es_streams.revision', 'es_streams.updated_at', 'es_streams.last_hash')} ${returning}`
        : `UPDATE es_streams SET (revision, updated_at, last_position, last_hash) = ${next('es_streams.revision', 'es_streams.updated_at', 'es_streams.last_hash')}
           WHERE stream = $1 ${typeof expected === 'bigint' ? 'AND revision = $8::bigint' : ''} ${returning}`;
  return `
    WITH head AS (${head}),
    ins AS (
      INSERT INTO es_events (position, stream, revision, id, type, data, metadata, occurred_at, recorded_at, hash) OVERRIDING SYSTEM VALUE
      SELECT head.position, $1, head.revision, ($3::uuid[])[1], ($4::text[])[1], ($5::jsonb[])[1], ${metadata('head.stamp')},
             coalesce(($7::timestamptz[])[1], head.stamp), head.stamp, head.hash
      FROM head
      RETURNING revision, position, transaction_id, recorded_at
    )
    SELECT revision::text AS revision, position::text AS position, transaction_id::text AS txid, recorded_at FROM ins`;
}

/**
 * Several events: their hashes chain through each other, so they are computed before the head is written.
 * 1. `cur` locks the stream's head row (SELECT ... FOR UPDATE, with the expected revision in its WHERE for a specific
 *    revision): after waiting for a concurrent writer it sees that writer's head (READ COMMITTED re-reads the locked
 *    row), so the chain continues from the hash actually last written. No row: no_stream, a stale revision, or a
 *    missing stream.
 * 2. `stamp` is the recording time, taken after the lock, never before the stream's previous append (as before).
 * 3. `ev` numbers the events from the locked revision and takes their positions (after the lock, in revision order);
 *    `chain` hashes them in order from the head's last hash (es_chain_hashes: one call, a loop over the encodings).
 * 4. `head` writes the new head (revision, stamp, last hash): an UPDATE of the locked row, or for no_stream (and
 *    'any' on a missing stream) an INSERT that does nothing when the stream exists (for 'any' appendToStream then
 *    runs the statement again: the stream now has a head to lock); the events are inserted only when `head`
 *    returned a row, exactly as before.
 */
function eventsAppendStatement(expected: ExpectedRevision): string {
  const locked = `SELECT revision, updated_at, last_hash FROM es_streams WHERE stream = $1`;
  const cur =
    expected === 'no_stream'
      ? `SELECT NULL::bigint AS revision, NULL::timestamptz AS updated_at, NULL::bytea AS last_hash WHERE false`
      : typeof expected === 'bigint'
        ? `${locked} AND revision = $8::bigint FOR UPDATE`
        : `${locked} FOR UPDATE`;
  const update = `UPDATE es_streams s SET revision = t.revision, updated_at = t.at, last_position = t.position, last_hash = t.hash
                  FROM tail t, cur WHERE s.stream = $1 RETURNING s.revision, s.updated_at AS stamp`;
  const insert = (onlyIfMissing: boolean) => `INSERT INTO es_streams (stream, revision, updated_at, last_position, last_hash)
                  SELECT $1, t.revision, t.at, t.position, t.hash FROM tail t ${onlyIfMissing ? 'WHERE NOT EXISTS (SELECT 1 FROM cur)' : ''}
                  ON CONFLICT (stream) DO NOTHING RETURNING revision, updated_at AS stamp`;
  const head =
    expected === 'no_stream'
      ? `head AS (${insert(false)})`
      : expected === 'any'
        ? `updated AS (${update}), created AS (${insert(true)}), head AS (SELECT * FROM updated UNION ALL SELECT * FROM created)`
        : `head AS (${update})`;
  return `
    WITH cur AS (${cur}),
    stamp AS (SELECT date_trunc('milliseconds', greatest(clock_timestamp(), (SELECT updated_at FROM cur))) AS at),
    ev AS (
      SELECT e.ord, e.id, e.type, e.data,
             CASE WHEN e.occurred_at IS NULL
                  THEN e.metadata || jsonb_build_object('occurredAt', to_char(stamp.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
                  ELSE e.metadata END AS metadata,
             coalesce(e.occurred_at, stamp.at) AS occurred_at,
             coalesce((SELECT revision FROM cur), -1) + e.ord AS revision,
             stamp.at AS recorded_at, es_next_position() AS position
      FROM stamp, unnest($3::uuid[], $4::text[], $5::jsonb[], $6::jsonb[], $7::timestamptz[])
           WITH ORDINALITY AS e(id, type, data, metadata, occurred_at, ord)
      WHERE e.ord <= $2::bigint
    ),
    chain AS (
      SELECT ev.*, h.hash
      FROM ev JOIN unnest(es_chain_hashes(coalesce((SELECT last_hash FROM cur), decode(repeat('00', 32), 'hex')),
                                          (SELECT array_agg(es_event_encoding_v2(ev.id, ev.type, $1, ev.revision, ev.data, ev.metadata, ev.occurred_at,
                                                                                 ev.recorded_at, pg_current_xact_id(), ev.position) ORDER BY ev.ord) FROM ev)))
                  WITH ORDINALITY AS h(hash, ord) ON h.ord = ev.ord
    ),
    tail AS (SELECT chain.revision, chain.hash, chain.position, stamp.at FROM chain, stamp ORDER BY chain.ord DESC LIMIT 1),
    ${head},
    ins AS (
      INSERT INTO es_events (position, stream, revision, id, type, data, metadata, occurred_at, recorded_at, hash) OVERRIDING SYSTEM VALUE
      SELECT c.position, $1, c.revision, c.id, c.type, c.data, c.metadata, c.occurred_at, head.stamp, c.hash
      FROM head, chain c
      RETURNING revision, position, transaction_id, recorded_at
    )
    SELECT revision::text AS revision, position::text AS position, transaction_id::text AS txid, recorded_at
    FROM ins ORDER BY ins.revision DESC LIMIT 1`;
}

function headStatement(expected: ExpectedRevision): string {
  if (expected === 'no_stream') {
    return `INSERT INTO es_streams (stream, revision, updated_at) VALUES ($1, $2::bigint - 1, ${STAMP_FIRST})
            ON CONFLICT (stream) DO NOTHING RETURNING revision, updated_at AS stamp`;
  }
  if (expected === 'stream_exists') {
    return `UPDATE es_streams SET revision = revision + $2::bigint, updated_at = ${STAMP_NEXT} WHERE stream = $1 RETURNING revision, updated_at AS stamp`;
  }
  if (expected === 'any') {
    return `INSERT INTO es_streams (stream, revision, updated_at) VALUES ($1, $2::bigint - 1, ${STAMP_FIRST})
            ON CONFLICT (stream) DO UPDATE SET revision = es_streams.revision + $2::bigint, updated_at = ${STAMP_NEXT}
            RETURNING revision, updated_at AS stamp`;
  }
  return `UPDATE es_streams SET revision = $8::bigint + $2::bigint, updated_at = ${STAMP_NEXT}
          WHERE stream = $1 AND revision = $8::bigint RETURNING revision, updated_at AS stamp`;
}

function clampCount(count: number | undefined): number {
  if (count === undefined) return MAX_READ;
  if (!Number.isInteger(count) || count < 1) throw new EventStoreValidationError('maxCount', 'must be a positive integer');
  return Math.min(count, MAX_READ);
}

const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EPIPE', '57P01', '57P02', '57P03', '53300']);

export function asUnavailable(error: unknown): unknown {
  const code = (error as { code?: string }).code;
  const message = error instanceof Error ? error.message : String(error);
  if (
    (code && (UNAVAILABLE_CODES.has(code) || code.startsWith('08'))) ||
    /Connection terminated|connect ECONNREFUSED|timeout/i.test(message)
  ) {
    return new EventStoreUnavailableError(`PostgreSQL event store unavailable: ${message}`, { cause: error });
  }
  return error;
}
