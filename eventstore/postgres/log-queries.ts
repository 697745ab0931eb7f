import type { Client, Pool } from 'pg';
import type { CountEventsOptions, EventCount, GlobalPosition, ParkedSummary, RecordedEvent } from '../event-store';
import { START_POSITION } from '../event-store';
import { prepared } from '../../infra/pg-prepared';
import { EVENT_COLUMNS, toRecordedEvent, type EventRow } from './row-mapping';

/**
 * Reading the log after a position: the SQL the store's reads and its consumer groups share (each is given the pool).
 *
 * Rows readers may see: written by transactions older than every transaction still in progress.
 * Postgres hands out `position` at insert time, but transactions commit in any order, so position
 * N+1 can be visible while N is still uncommitted. A reader that advanced past N+1 would skip N
 * forever. Every transaction still running has an id >= pg_snapshot_xmin(current snapshot), and
 * every later one gets a larger id, so once a reader has read all rows with transaction_id below
 * that xmin, nothing can ever appear behind it. Readers order by (transaction_id, position) and
 * checkpoint that pair (our GlobalPosition { commit, prepare }).
 * The price: one long-open writing transaction holds every reader back. The store exposes that as lag
 * (`openTransactionLag()`), rather than silently waiting.
 */
export const VISIBLE_TO_READERS = 'transaction_id < pg_snapshot_xmin(pg_current_snapshot())';

/** Events after the position given as the statement's first two parameters ($1 commit, $2 prepare: see positionParams). */
export const AFTER_POSITION = '(transaction_id, position) > ($1::text::xid8, $2::bigint)';

/** The log's order. */
export const LOG_ORDER = 'es_events.transaction_id, es_events.position';

/** $1 and $2 of AFTER_POSITION. */
export function positionParams(from: GlobalPosition = START_POSITION): [string, string] {
  return [from.commit < 0n ? '0' : from.commit.toString(), from.prepare.toString()];
}

export function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/** What a consumer group's read finds: the next events it may see, and whether events are held back behind them. */
export interface LogRead {
  events: RecordedEvent[];
  /**
   * Events are in the log that readers may not see yet (written by a transaction newer than one still open). They
   * become visible when that older transaction ends, which sends no notification unless it was an append itself: a
   * caught-up reader looks again shortly instead of waiting for its poll.
   */
  heldBack: boolean;
}

/** A pool or a single connection. */
export type Queryable = Pick<Pool, 'query'> | Pick<Client, 'query'>;

/** The next `limit` events readers may see after `from`, unfiltered, in the log's order, and whether any are held back. */
export async function readEventsAfter(pool: Queryable, from: GlobalPosition, limit: number): Promise<LogRead> {
  // One statement (one snapshot): the held-back probe is one step into es_events_global_order from the snapshot's xmin.
  const result = await pool.query<EventRow & { held_back: boolean }>(
    prepared(
      `SELECT h.held_back, v.* FROM (
         SELECT EXISTS (SELECT 1 FROM es_events WHERE transaction_id >= pg_snapshot_xmin(pg_current_snapshot())) AS held_back
       ) h
       LEFT JOIN LATERAL (
         SELECT ${EVENT_COLUMNS}, es_events.transaction_id AS in_order_tx, es_events.position AS in_order_pos FROM es_events
         WHERE ${AFTER_POSITION} AND ${VISIBLE_TO_READERS} ORDER BY ${LOG_ORDER} LIMIT ${Math.floor(limit)}
       ) v ON true
       ORDER BY v.in_order_tx, v.in_order_pos`,
      positionParams(from),
    ),
  );
  const rows = result.rows;
  return { events: rows.filter((r) => r.position !== null).map(toRecordedEvent), heldBack: rows[0]?.held_back === true };
}

/** The position of the last event readers may see (undefined for an empty log). */
export async function readHeadPosition(pool: Pool): Promise<GlobalPosition | undefined> {
  const result = await pool.query<{ txid: string; position: string }>(
    `SELECT transaction_id::text AS txid, position::text AS position FROM es_events WHERE ${VISIBLE_TO_READERS}
     ORDER BY es_events.transaction_id DESC, es_events.position DESC LIMIT 1`,
  );
  const row = result.rows[0];
  return row ? { commit: BigInt(row.txid), prepare: BigInt(row.position) } : undefined;
}

/** One indexed query: a range scan of es_events_global_order from the position (the filters are applied on the way). */
export async function countEvents(pool: Pool, options: CountEventsOptions = {}): Promise<EventCount> {
  const params: unknown[] = positionParams(options.fromPosition);
  const where = [AFTER_POSITION, VISIBLE_TO_READERS];
  if (options.streamPrefix !== undefined) {
    params.push(`${escapeLike(options.streamPrefix)}%`);
    where.push(`stream LIKE $${params.length}`);
  }
  if (options.eventTypes !== undefined) {
    params.push([...options.eventTypes]);
    where.push(`type = ANY($${params.length}::text[])`);
  }
  const result = await pool.query<{ n: string; oldest: Date | null }>(
    `SELECT count(*)::text AS n, min(recorded_at) AS oldest FROM es_events WHERE ${where.join(' AND ')}`,
    params,
  );
  const row = result.rows[0]!;
  return { count: Number(row.n), oldestRecordedAt: row.oldest?.toISOString(), saturated: false };
}

/** A group's parked events (up to a position): how many, the first, the oldest recording time. */
export async function parkedSummary(pool: Pool, group: string, upTo?: GlobalPosition): Promise<ParkedSummary> {
  const result = await pool.query<{ n: string; oldest: Date | null; txid: string | null; position: string | null }>(
    `WITH parked AS (
       SELECT e.transaction_id, e.position, e.recorded_at FROM es_parked_events p JOIN es_events e ON e.position = p.event_position
       WHERE p.group_name = $1 AND ($2::text IS NULL OR (e.transaction_id, e.position) <= ($2::text::xid8, $3::bigint)))
     SELECT (SELECT count(*) FROM parked)::text AS n, (SELECT min(recorded_at) FROM parked) AS oldest,
            f.transaction_id::text AS txid, f.position::text AS position
     FROM (SELECT 1) one LEFT JOIN LATERAL (SELECT transaction_id, position FROM parked ORDER BY transaction_id, position LIMIT 1) f ON true`,
    [group, ...(upTo ? positionParams(upTo) : [null, null])],
  );
  const row = result.rows[0]!;
  return {
    count: Number(row.n),
    first: row.txid !== null && row.position !== null ? { commit: BigInt(row.txid), prepare: BigInt(row.position) } : undefined,
    oldestRecordedAt: row.oldest?.toISOString(),
  };
}
