import type { Pool, PoolClient } from 'pg';

/** One append's statement, exactly as appendToStream would run it (its named statement, text and values). */
export interface AppendStatement {
  name: string;
  text: string;
  values: unknown[];
}

export interface AppendedRow {
  revision: string;
  position: string;
  txid: string;
  recorded_at: Date;
}

/** Appends per transaction in appendToStreams (a longer transaction holds the log's readers back longer). */
export const BULK_APPEND_CHUNK = 250;
/** Transactions of one appendToStreams call in flight at once. */
export const BULK_APPEND_LANES = 4;

/**
 * Runs the appends' statements in one transaction on one connection: one commit (one WAL flush) for all of them
 * instead of one per stream. All or nothing: the rows of every append, or undefined when any of them would not land
 * as asked (a conflict, an id taken, a stream created meanwhile) — then nothing of them is written, and the caller
 * appends them one by one, which answers each exactly (idempotent retries, conflicts). An unreachable store throws.
 */
export async function appendInOneTransaction(
  pool: Pool,
  statements: readonly AppendStatement[],
  isUnavailable: (error: unknown) => boolean,
): Promise<AppendedRow[] | undefined> {
  const client: PoolClient = await pool.connect();
  let broken: unknown;
  try {
    await client.query('BEGIN');
    const rows: AppendedRow[] = [];
    for (const statement of statements) {
      const result = await client.query<AppendedRow>({ name: statement.name, text: statement.text, values: statement.values });
      // A multi-event append answers one row per event; the last revision is the append's.
      const last = result.rows.reduce<AppendedRow | undefined>(
        (best, row) => (best === undefined || BigInt(row.revision) > BigInt(best.revision) ? row : best),
        undefined,
      );
      if (!last) {
        await client.query('ROLLBACK');
        return undefined;
      }
      rows.push(last);
    }
    await client.query('COMMIT');
    return rows;
  } catch (error) {
    await client.query('ROLLBACK').catch((rollbackError: unknown) => {
      broken = rollbackError; // the connection is unusable: do not hand it back to the pool
    });
    if (isUnavailable(error)) throw error;
    return undefined;
  } finally {
    client.release(broken instanceof Error ? broken : undefined);
  }
}
