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
