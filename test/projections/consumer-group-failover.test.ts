import { randomUUID } from 'node:crypto';
import { Client, type Pool } from 'pg';
import { handleAccountCommand } from '../../application/account-commands';
import { AccountRepository } from '../../application/account-repository';
import { lockApplicationName, LOCK_SESSION_SETTINGS } from '../../eventstore/postgres/consumer-group';
import { PostgresEventStore } from '../../eventstore/postgres/postgres-event-store';
import { createServicePool, PG_TIMEOUTS } from '../../infra/pg-pool';
import { ALL_PROJECTIONS } from '../../projections/all-projections';
import { groupName, projectionLag, ProjectionRunner } from '../../projections/projection-runner';
import { DeliveryLog, resilientPool } from '../support/api-stack';
import { expectReadModelsToMatchStore, readWholeLog, seededRandom } from '../support/read-model-checks';
import { createTestDatabase, type TestDatabase } from '../support/test-database';
import { waitUntil } from '../support/wait-until';

/**
 * A store on a pool made here (the one connect() makes for `poolSize`) and passed in, so that the test can count the
 * clients checked out of the store's own pool. The pool stays the test's: end it after closing the store.
 */
async function storeWithOwnPool(url: string, poolSize: number): Promise<{ store: PostgresEventStore; storePool: Pool }> {
  const storePool = createServicePool({
    connectionString: url,
    max: poolSize,
    applicationName: 'transfer-event-store',
    statementTimeoutMs: PG_TIMEOUTS.statementMs,
  });
  try {
    return { store: await PostgresEventStore.connect({ connectionString: url, pollIntervalMs: 200, pool: storePool }), storePool };
  } catch (error) {
    await storePool.end();
    throw error;
  }
}

/** One `projections` process: its own event store connection (the consumer groups) and read-model pool. */
async function projectionsProcess(url: string) {
  const { store, storePool } = await storeWithOwnPool(url, 5);
  const pool = resilientPool(url, 5);
  const deliveries = new DeliveryLog();
  const runner = new ProjectionRunner(store, pool, ALL_PROJECTIONS, deliveries.observer());
  await runner.start();
  return { store, storePool, pool, deliveries, runner };
}

describe('consumer groups: failover when the leader loses its lock connection', () => {
  let db: TestDatabase;
  let admin: Client;
  /** What a failed test leaves running is stopped here (the normal path stops it itself; these then do nothing). */
  const leftovers: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    db = await createTestDatabase('group_failover');
    admin = new Client({ connectionString: db.url });
    await admin.connect();
  });
  afterAll(async () => {
    for (const stop of leftovers.splice(0)) await stop().catch(() => undefined);
    await admin?.end();
    await db?.drop();
  });

  /** The backend holding a group's advisory lock (the leader's lock connection), if any. */
  const leaderPid = async (group: string): Promise<number | undefined> => {
    const result = await admin.query<{ pid: number }>(
      `WITH k AS (SELECT hashtextextended('es_group:' || $1, 0) AS key)
       SELECT l.pid FROM pg_locks l, k
       WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
         AND l.classid::bigint = ((k.key >> 32) & 4294967295) AND l.objid::bigint = (k.key & 4294967295)`,
      [group],
    );
    return result.rows[0]?.pid;
  };

  test('lock connections: named per group, with server-side TCP keepalive (a vanished leader host frees the lock in ~25 s, not hours)', async () => {
    const { store, storePool } = await storeWithOwnPool(db.url, 2);
    const group = `keepalive-${randomUUID().slice(0, 8)}`;
    const subscription = await store.subscribe(group, { streamPrefix: 'none-', from: 'start' }, async () => undefined);
    try {
      // The group's lock connection is its own (not a pool client) and says whose it is.
      const lockPid = await waitUntil('the group to take its lock', () => leaderPid(group));
      const named = await admin.query<{ application_name: string }>('SELECT application_name FROM pg_stat_activity WHERE pid = $1', [
        lockPid,
      ]);
      expect(named.rows[0]!.application_name).toBe(lockApplicationName(group));
      expect(storePool.totalCount - storePool.idleCount).toBe(0);
      // The session settings it runs are accepted by the server and take effect on a TCP connection.
      const probe = new Client({ connectionString: db.url });
      await probe.connect();
      try {
        await probe.query(LOCK_SESSION_SETTINGS);
        const shown = await probe.query<{ idle: string; interval: string; count: string; user_timeout: string }>(
          `SELECT current_setting('tcp_keepalives_idle') AS idle, current_setting('tcp_keepalives_interval') AS interval,
                  current_setting('tcp_keepalives_count') AS count, current_setting('tcp_user_timeout') AS user_timeout`,
        );
        const unixSocket = (await probe.query<{ addr: string | null }>('SELECT inet_client_addr()::text AS addr')).rows[0]!.addr === null;
        if (!unixSocket) expect(shown.rows[0]).toEqual({ idle: '10', interval: '5', count: '3', user_timeout: '25000' });
      } finally {
        await probe.end();
      }
    } finally {
      await subscription.stop();
      await store.close();
      await storePool.end();
    }
  });

  test('pg_terminate_backend on the leaders: a standby takes over within seconds, no event skipped or applied twice, no connection leaked', async () => {
    const writer = await PostgresEventStore.connect({ connectionString: db.url, poolSize: 5 });
    const accounts = new AccountRepository(writer, 50);
    const ids = Array.from({ length: 6 }, () => randomUUID());
    for (const accountId of ids) {
      const opened = await handleAccountCommand(accounts, accountId, {
        type: 'OpenAccount',
        accountId,
        ownerId: 'failover',
        currency: 'EUR',
        initialDeposit: 10_000,
      });
      expect(opened.ok).toBe(true);
    }
    leftovers.push(() => writer.close());
    const a = await projectionsProcess(db.url);
    const b = await projectionsProcess(db.url);
    for (const p of [a, b])
      leftovers.unshift(async () => (await p.runner.stop(), await p.store.close(), await p.storePool.end(), await p.pool.end()));

    // Writes keep coming while the leaders are killed.
    const random = seededRandom(7_2026);
    let writing = true;
    let written = 0;
    const writeErrors: string[] = [];
    leftovers.unshift(async () => (writing = false));
    const writes = (async () => {
      while (writing) {
        const accountId = ids[Math.floor(random() * ids.length)]!;
        const amount = 1 + Math.floor(random() * 100);
        try {
          const result = await handleAccountCommand(
            accounts,
            accountId,
            random() < 0.7 ? { type: 'Deposit', amount } : { type: 'Withdraw', amount },
          );
          if (result.ok) written += 1;
        } catch (error) {
          writeErrors.push(error instanceof Error ? error.message : String(error));
        }
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();

    const groups = ALL_PROJECTIONS.map(groupName);
    const takeovers: number[] = [];
    for (let round = 0; round < 3; round++) {
      const leaders = await waitUntil('every group to have a leader', async () => {
        const pids: (number | undefined)[] = [];
        for (const group of groups) pids.push(await leaderPid(group)); // one query at a time on the admin connection
        return pids.every((p) => p !== undefined) ? (pids as number[]) : undefined;
      });
      const before = written;
      const killedAt = Date.now();
      await admin.query('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [leaders]);
      for (const [i, group] of groups.entries()) {
        await waitUntil(
          `a new leader of ${group}`,
          async () => {
            const pid = await leaderPid(group);
            return pid !== undefined && pid !== leaders[i];
          },
          30_000,
          20,
        );
        takeovers.push(Date.now() - killedAt);
      }
      await waitUntil('more writes after the takeover', () => {
        if (writeErrors.length > 0) throw new Error(`a write failed: ${writeErrors[0]}`);
        return written > before + 5;
      });
    }
    writing = false;
    await writes;
    expect(writeErrors).toEqual([]);

    // Every projection catches up; the read models equal the folds of the log.
    await waitUntil(
      'the projections to catch up',
      async () => (await Promise.all(ALL_PROJECTIONS.map((p) => projectionLag(writer, a.pool, p)))).every((l) => l.caughtUp),
      60_000,
    );
    await expectReadModelsToMatchStore(writer, a.pool);
    // Each event changed its read model exactly once, across both processes (a redelivery finds it applied: 'duplicate').
    const log = await readWholeLog(writer);
    for (const projection of ALL_PROJECTIONS) {
      const relevant = log.filter(
        (e) => e.stream.startsWith(projection.streamPrefix) && (!projection.eventTypes || projection.eventTypes.includes(e.type)),
      );
      const applied = new Map<string, number>();
      for (const entry of [...a.deliveries.entries, ...b.deliveries.entries]) {
        if (entry.projection === projection.name && entry.outcome === 'applied')
          applied.set(entry.event.id, (applied.get(entry.event.id) ?? 0) + 1);
      }
      expect(relevant.filter((e) => applied.get(e.id) !== 1).map((e) => [e.stream, e.revision, applied.get(e.id) ?? 0])).toEqual([]);
      expect(applied.size).toBe(relevant.length);
    }
    expect(await writer.listParked(groups[0]!)).toEqual([]);

    await a.runner.stop();
    await b.runner.stop();
    // No pool connection was kept by a lost lock: once stopped, nothing is checked out of the stores' pools.
    for (const p of [a, b]) expect(p.storePool.totalCount - p.storePool.idleCount).toBe(0);
    await Promise.all([a, b].map(async (p) => (await p.store.close(), await p.storePool.end(), await p.pool.end())));
    await writer.close();
    leftovers.length = 0;
    // And no connection of any of them lingers on the server (lock connections included).
    await waitUntil(
      'every connection to be closed',
      async () => {
        const left = await admin.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`,
        );
        return left.rows[0]!.n === 0;
      },
      15_000,
    );
    process.stdout.write(`[failover] ${written} writes; takeover after pg_terminate_backend (ms): ${takeovers.join(', ')}\n`);
    expect(Math.max(...takeovers)).toBeLessThan(15_000);
  });
});
