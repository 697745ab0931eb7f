import type { PoolClient } from 'pg';
import type { RecordedEvent } from '../eventstore/event-store';

/** A read-model projection: which events it wants and how one event changes its tables. */
export interface Projection {
  name: string;
  streamPrefix: string;
  eventTypes?: readonly string[];
  /** The tables it owns: logical name -> DDL for a given physical table name. */
  tables: Record<string, (table: string) => string>;
  /**
   * Applies one event inside the caller's transaction. Must be idempotent by stream revision:
   * returns 'applied', 'duplicate' (already applied; skipped) or throws OutOfOrderError when an
   * earlier revision of the stream has not been applied yet (the delivery is retried).
   */
  apply(client: PoolClient, event: RecordedEvent, tables: Record<string, string>): Promise<'applied' | 'duplicate' | 'ignored'>;
}

export class OutOfOrderError extends Error {
  constructor(stream: string, revision: bigint, applied: bigint) {
    super(`Out-of-order delivery on ${stream}: got revision ${revision}, applied up to ${applied}; retrying`);
    this.name = 'OutOfOrderError';
  }
}

/** The revision guard shared by projections that keep one row per stream. */
export function revisionGuard(stream: string, rowRevision: bigint | undefined, eventRevision: bigint): 'apply' | 'duplicate' {
  const applied = rowRevision ?? -1n;
  if (eventRevision <= applied) return 'duplicate';
  if (eventRevision > applied + 1n) throw new OutOfOrderError(stream, eventRevision, applied);
  return 'apply';
}

/**
 * After a guarded write touched no row (the row is not at the revision before this event): why. Reads the row's
 * revision and lets revisionGuard decide, as it did before the write: 'duplicate' (already applied), OutOfOrderError
 * (an earlier revision is missing; retried), or an error when the stream's first event made no row (`missing`).
 */
export async function explainSkippedWrite(
  client: PoolClient,
  sql: string,
  key: string,
  recorded: RecordedEvent,
  missing: string,
): Promise<'duplicate'> {
  const row = await client.query<{ revision: string }>(sql, [key]);
  const current = row.rows[0];
  if (revisionGuard(recorded.stream, current ? BigInt(current.revision) : undefined, recorded.revision) === 'duplicate') return 'duplicate';
  if (!current) throw new Error(missing);
  // The row was not at the previous revision when written, and is now: another runner's transaction applied it
  // meanwhile (a failover). Retried: the next attempt applies this event or finds it applied.
  throw new OutOfOrderError(recorded.stream, recorded.revision, BigInt(current.revision));
}

/** The physical table names a projection uses live. */
export function liveTables(projection: Projection): Record<string, string> {
  return Object.fromEntries(Object.keys(projection.tables).map((name) => [name, name]));
}

/**
 * A batch of a projection's events written by one statement: ProjectionRunner.applyMany's fast path. One round trip
 * (with the checkpoint in the same statement) instead of a transaction of one write per event: the read-model
 * transaction never stays open across round trips, so it does not hold the event log back from readers (they see
 * events only once every older transaction has ended: log-queries.ts), and the projection costs one statement per
 * batch. Folding is per row (one write per stream or per line), so the rows it writes equal those of apply() one
 * event at a time; what it cannot decide alone (a row not at the revision before the batch's first event) it leaves
 * to apply(), which says why (a duplicate, or an earlier event still to come).
 */
export interface BatchPlan {
  /** Data-modifying CTEs (`name AS (...)`) over the parameters $1..$n of `values`. */
  ctes: string[];
  values: unknown[];
  /** A SELECT over those CTEs returning one row (`k`, text) per unit it wrote. */
  written: string;
  /** Events written together (one row's run, or one line), by the key `written` returns for them. */
  units: { key: string; events: RecordedEvent[] }[];
  /**
   * A unit the statement did not write: 'duplicate' (a keyed insert found its line: applied before) or 'one-by-one'
   * (a guarded write found its row at another revision: its events go through apply(), which says why).
   */
  unwritten: 'duplicate' | 'one-by-one';
  /** Events that change nothing here ('ignored'). */
  ignored: RecordedEvent[];
  /** Events the statement leaves to apply(), one by one, after it. */
  rest: RecordedEvent[];
}

/** A projection that can also write a batch in one statement. */
export interface BatchProjection extends Projection {
  planBatch(events: RecordedEvent[], tables: Record<string, string>): BatchPlan;
}

export function canBatch(projection: Projection): projection is BatchProjection {
  return typeof (projection as Partial<BatchProjection>).planBatch === 'function';
}

/**
 * The batch's events by stream, in delivery order, for projections that keep one row per stream. A stream whose
 * events do not follow each other revision by revision (a redelivery mixed in, a gap) is not a run: its events are
 * left to apply() (`broken`), which decides each.
 */
export function streamRuns(events: readonly RecordedEvent[]): { runs: RecordedEvent[][]; broken: RecordedEvent[] } {
  const byStream = new Map<string, RecordedEvent[]>();
  for (const event of events) {
    const run = byStream.get(event.stream);
    if (run) run.push(event);
    else byStream.set(event.stream, [event]);
  }
  const runs: RecordedEvent[][] = [];
  const broken: RecordedEvent[] = [];
  for (const run of byStream.values()) {
    if (run.every((e, i) => i === 0 || e.revision === run[i - 1]!.revision + 1n)) runs.push(run);
    else broken.push(...run);
  }
  return { runs, broken };
}

/**
 * The keyed lines of a batch (projections that add one row per event, keyed): each event's row into parallel columns
 * (for unnest), one unit per key. `lineOf` says what an event is: a row with its key, 'ignored' (changes nothing here)
 * or 'rest' (left to apply()). The same event twice in one batch goes to `rest` too: apply() finds the second a duplicate.
 */
export function keyedLines(
  events: readonly RecordedEvent[],
  width: number,
  lineOf: (event: RecordedEvent) => { row: unknown[]; key: string } | 'ignored' | 'rest',
): { columns: unknown[][] } & Pick<BatchPlan, 'units' | 'ignored' | 'rest'> {
  const columns: unknown[][] = Array.from({ length: width }, () => []);
  const plan = { columns, units: [] as BatchPlan['units'], ignored: [] as RecordedEvent[], rest: [] as RecordedEvent[] };
  const keys = new Set<string>();
  for (const event of events) {
    const line = lineOf(event);
    if (line === 'ignored') plan.ignored.push(event);
    else if (line === 'rest' || keys.has(line.key)) plan.rest.push(event);
    else {
      keys.add(line.key);
      line.row.forEach((v, i) => columns[i]!.push(v));
      plan.units.push({ key: line.key, events: [event] });
    }
  }
  return plan;
}

/** `$<first>, $<first+1>, ...` cast to the given types (for unnest over parallel arrays). */
export function arrayParams(first: number, types: readonly string[]): string {
  return types.map((type, i) => `$${first + i}::${type}[]`).join(', ');
}
