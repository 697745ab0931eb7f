import { randomUUID } from 'node:crypto';
import { Client, type Pool } from 'pg';
import { retryOnConflict } from '../../application/conflict-retry';
import { WrongExpectedVersionError } from '../../eventstore/errors';
import { PostgresEventStore } from '../../eventstore/postgres/postgres-event-store';
import { Context } from '@temporalio/activity';
import { AttemptDeadlineError, DEADLINE_MARGIN_MS, runWithDeadline, timeLeftMs } from '../../infra/attempt-deadline';
import { createServicePool, PG_TIMEOUTS, WRITE_BUDGET_MS } from '../../infra/pg-pool';
import { createTestDatabase, type TestDatabase } from '../support/test-database';
import { TransferStack } from '../support/transfer-stack';

/**
 * The time budget of an activity attempt (infra/pg-pool.ts): bounded connection waits and
 * statements, appends that never start when they could land after the attempt's deadline, conflict
 * loops bounded in time, and PostgreSQL connections that die under a checked-out client without
 * ending the process.
 */
const event = (type = 'Happened') => ({
  id: randomUUID(),
  type,
  data: { n: 1 },
  metadata: { correlationId: 'time-budget', occurredAt: new Date().toISOString() },
});

describe('the time budget of an activity attempt', () => {
  let db: TestDatabase;
  let store: PostgresEventStore;
  /** The store's own pool (size 2, as connect() makes it for poolSize 2), made here and passed in: the tests hold and kill its clients. */
  let storePool: Pool;
  let admin: Client;

  beforeAll(async () => {
    db = await createTestDatabase('time_budget');
    storePool = createServicePool({
      connectionString: db.url,
      max: 2,
      applicationName: 'transfer-event-store',
      statementTimeoutMs: PG_TIMEOUTS.statementMs,
    });
    store = await PostgresEventStore.connect({ connectionString: db.url, poolSize: 2, pollIntervalMs: 200, pool: storePool });
    admin = new Client({ connectionString: db.url });
    await admin.connect();
  });
  afterAll(async () => {
    await admin.end();
    await store.close();
    await storePool.end();
    await db.drop();
  });

  test('every event-store session has a statement timeout and an idle-in-transaction timeout', async () => {
    const client = await storePool.connect();
    try {
      const settings = await client.query<{ name: string; setting: string }>(
        `SELECT name, setting FROM pg_settings WHERE name IN ('statement_timeout', 'idle_in_transaction_session_timeout')`,
      );
      expect(Object.fromEntries(settings.rows.map((r) => [r.name, Number(r.setting)]))).toEqual({
        statement_timeout: PG_TIMEOUTS.statementMs,
        idle_in_transaction_session_timeout: PG_TIMEOUTS.idleInTransactionMs,
      });
    } finally {
      client.release();
    }
  });

  test('a checked-out connection killed under its holder fails its query and does not end the process', async () => {
    const client = await storePool.connect(); // as the consumer groups' lock holders do
    const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    const sleeping = client.query('SELECT pg_sleep(30)');
    const outcome = sleeping.then(
      () => 'resolved',
      (error: Error) => error.message,
    );
    await admin.query('SELECT pg_terminate_backend($1)', [pid]);
    expect(await outcome).toMatch(/terminat/i);
    // Give an unhandled 'error' event the chance to surface (it would fail this test as an uncaught exception).
    await new Promise((r) => setTimeout(r, 300));
    client.release(true);
    // The pool replaced it: the store still works.
    await expect(store.appendToStream(`budget-${randomUUID()}`, [event()], { expectedRevision: 'no_stream' })).resolves.toBeDefined();
  });

  test('an append waits for a pool connection at most the connection timeout, and writes nothing', async () => {
    const held = [await storePool.connect(), await storePool.connect()]; // the whole pool (size 2)
    const stream = `budget-${randomUUID()}`;
    const started = Date.now();
    try {
      await expect(store.appendToStream(stream, [event()], { expectedRevision: 'no_stream' })).rejects.toThrow(/timeout|unavailable/i);
      const waited = Date.now() - started;
      expect(waited).toBeGreaterThanOrEqual(PG_TIMEOUTS.connectMs - 100);
      expect(waited).toBeLessThan(PG_TIMEOUTS.connectMs + 5_000);
    } finally {
      for (const c of held) c.release();
    }
    expect(await store.readStream(stream)).toEqual([]);
  });

  test('in an activity attempt, an append that could land after the deadline is not started', async () => {
    const late = `budget-${randomUUID()}`;
    const inTime = `budget-${randomUUID()}`;
    // Less than connection wait + statement timeout left: refused before touching the database.
    await expect(
      runWithDeadline(Date.now() + WRITE_BUDGET_MS - 500, () => store.appendToStream(late, [event()], { expectedRevision: 'no_stream' })),
    ).rejects.toBeInstanceOf(AttemptDeadlineError);
    expect(await store.readStream(late)).toEqual([]);
    // Enough time left: written.
    await runWithDeadline(Date.now() + WRITE_BUDGET_MS + 2_000, () =>
      store.appendToStream(inTime, [event()], { expectedRevision: 'no_stream' }),
    );
    expect(await store.readStream(inTime)).toHaveLength(1);
  });

  test('conflict re-decide loops are bounded in time, not only in count', async () => {
    const slowConflict = jest.fn(async () => {
      await new Promise((r) => setTimeout(r, 300));
      throw new WrongExpectedVersionError('account-x', 1n, 2n);
    });
    const started = Date.now();
    await expect(retryOnConflict(slowConflict, { maxRetries: 1_000, maxElapsedMs: 1_000 })).rejects.toBeInstanceOf(
      WrongExpectedVersionError,
    );
    // It stopped on time (one attempt may be running when the time is up), long before 1000 retries.
    expect(Date.now() - started).toBeLessThan(1_000 + 300 + 1_000);
    expect(slowConflict.mock.calls.length).toBeLessThanOrEqual(5);

    // ...and by the attempt's deadline, whichever comes first.
    slowConflict.mockClear();
    const inAttempt = Date.now();
    await expect(
      runWithDeadline(Date.now() + 700, () => retryOnConflict(slowConflict, { maxRetries: 1_000, maxElapsedMs: 60_000 })),
    ).rejects.toBeInstanceOf(WrongExpectedVersionError);
    expect(Date.now() - inAttempt).toBeLessThan(700 + 300 + 1_000);
    expect(slowConflict.mock.calls.length).toBeLessThanOrEqual(4);
  });

  test("the worker runs every activity attempt with its deadline: the attempt's start-to-close timeout minus the margin", async () => {
    const stack = await TransferStack.create('deadline');
    try {
      const seen: { left: number; timeout: number }[] = [];
      const real = stack.realActivities();
      await stack.startWorker({
        ...real,
        requestAndDebit: async (input) => {
          seen.push({ left: timeLeftMs(), timeout: Context.current().info.startToCloseTimeoutMs });
          return real.requestAndDebit(input);
        },
      });
      const from = await stack.openAccount(100);
      const to = await stack.openAccount(0);
      const result = await stack.transfer(from, to, 40);
      expect(result.status).toBe('completed');
      expect(seen.length).toBeGreaterThanOrEqual(1);
      // Start-to-close (workflows/transfer-saga.ts) minus the margin, minus the moments since the attempt began.
      const { left, timeout } = seen[0]!;
      expect(timeout).toBeGreaterThan(DEADLINE_MARGIN_MS + WRITE_BUDGET_MS);
      expect(left).toBeLessThanOrEqual(timeout - DEADLINE_MARGIN_MS);
      expect(left).toBeGreaterThan(timeout - DEADLINE_MARGIN_MS - 2_000);
    } finally {
      await stack.close();
    }
  });
});
