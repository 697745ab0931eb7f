import type { Pool, PoolClient } from 'pg';

/**
 * Runs `work` in a transaction on a connection of its own: COMMIT when it resolves, ROLLBACK when
 * it throws (the error propagates). A connection killed meanwhile emits 'error' on the checked-out
 * client; without a listener that would crash the process, while the failed query rejects anyway.
 */
export async function withTransaction<T>(pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  const ignore = () => undefined;
  client.on('error', ignore);
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined); // the error below is the one to report; a failed rollback dies with its connection
    throw error;
  } finally {
    client.off('error', ignore);
    client.release();
  }
}

/**
 * Runs DDL (CREATE ... IF NOT EXISTS) in one transaction under a transaction-scoped advisory lock, so that several
 * processes starting at once create a table once and none sees it half made.
 */
export async function createTablesOnce(pool: Pool, lockKey: number, statements: readonly string[]): Promise<void> {
  await withTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [lockKey]);
    for (const statement of statements) await client.query(statement);
  });
}
