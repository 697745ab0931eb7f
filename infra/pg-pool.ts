import { Pool, type ClientConfig, type PoolClient } from 'pg';

/**
 * Every PostgreSQL connection of the service is made here, with the same time limits, and no
 * connection can end the process when it dies (a database restart, a killed backend).
 *
 * The time budget of one activity attempt (start-to-close timeout 15 s in workflows/transfer-saga.ts):
 * - the attempt's deadline is its start + 15 s - 1 s of margin (infra/attempt-deadline.ts);
 * - waiting for a connection (a free pool slot or a new connection) gives up after CONNECT_MS (2 s);
 * - one statement, lock waits included, is cancelled by the server after STATEMENT_MS (5 s), so it
 *   never completes later than that;
 * - an append starts only while CONNECT_MS + STATEMENT_MS (7 s) are left before the deadline, so it
 *   commits before the attempt times out or fails without writing;
 * - conflict re-decide loops stop after 3 s (application/conflict-retry.ts) or at the deadline.
 * A session idle inside an open transaction for IDLE_IN_TRANSACTION_MS (10 s) is ended by the
 * server: it would hold locks and hold back every event-store reader (the snapshot xmin).
 */
export const PG_TIMEOUTS = {
  connectMs: 2_000,
  statementMs: 5_000,
  idleInTransactionMs: 10_000,
} as const;

/** The longest an append can take from asking for a connection to its commit. */
export const WRITE_BUDGET_MS = PG_TIMEOUTS.connectMs + PG_TIMEOUTS.statementMs;

export interface ServicePoolOptions {
  connectionString: string;
  max: number;
  /** Shown in pg_stat_activity (a connection string's own application_name wins). */
  applicationName?: string;
  /** Per-statement limit; default PG_TIMEOUTS.statementMs; 0 = none (administrative scripts). */
  statementTimeoutMs?: number;
  /** Told about connections that died (they are replaced on the next use). */
  onConnectionError?: (error: Error) => void;
}

/** Settings for a single long-lived client (LISTEN): time-limited connect, TCP keepalive to notice a vanished server. */
export function clientSettings(connectionString: string, applicationName?: string): ClientConfig {
  return {
    connectionString,
    connectionTimeoutMillis: PG_TIMEOUTS.connectMs,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    ...(applicationName ? { application_name: applicationName } : {}),
  };
}

export function createServicePool(options: ServicePoolOptions): Pool {
  const pool = new Pool({
    ...clientSettings(options.connectionString, options.applicationName),
    max: options.max,
    statement_timeout: options.statementTimeoutMs ?? PG_TIMEOUTS.statementMs,
    idle_in_transaction_session_timeout: PG_TIMEOUTS.idleInTransactionMs,
  });
  guardPool(pool, options.onConnectionError);
  return pool;
}

/**
 * A pg client emits 'error' when its connection dies (server restart, backend terminated, network).
 * Without a listener that event ends the process. Idle clients are covered by the pool's 'error'
 * event; a checked-out client (a transaction, a LISTEN or advisory-lock holder) needs its own
 * listener: every client of the pool gets one for its whole life. The failed query still rejects,
 * and the pool drops the dead client when it is released.
 */
export function guardPool(pool: Pool, onConnectionError: (error: Error) => void = () => undefined): Pool {
  pool.on('error', () => undefined); // the client's own listener below reports it
  pool.on('connect', (client: PoolClient) => {
    client.on('error', (error: Error) => onConnectionError(error));
  });
  return pool;
}
