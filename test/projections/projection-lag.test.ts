import { randomUUID } from 'node:crypto';
import { Pool } from 'pg';
import type { NewEvent } from '../../eventstore/event-store';
import { PostgresEventStore } from '../../eventstore/postgres/postgres-event-store';
import { accountBalancesProjection } from '../../projections/account-balances-projection';
import { projectionLag } from '../../projections/projection-runner';
import { accountBalancesDdl, ensureReadModelSchema } from '../../projections/read-model-schema';
import { createTestDatabase, type TestDatabase } from '../support/test-database';

/** Deposits on `account-<id>` streams, as the balances projection would see them (their content is not applied here). */
function deposits(accountId: string, n: number, from: number): NewEvent[] {
  return Array.from({ length: n }, (_, i) => ({
    id: randomUUID(),
    type: 'MoneyDeposited',
    data: { accountId, amount: 1, balanceAfter: from + i + 1 },
    metadata: { occurredAt: new Date().toISOString(), correlationId: 'lag-test' },
  }));
}

describe('projection lag: counted exactly with one query, however far behind', () => {
  let db: TestDatabase;
  let store: PostgresEventStore;
  let pool: Pool;

  beforeAll(async () => {
    db = await createTestDatabase('proj_lag');
    store = await PostgresEventStore.connect({ connectionString: db.url, pollIntervalMs: 200 });
    pool = new Pool({ connectionString: db.url, max: 2 });
    await ensureReadModelSchema(pool, [accountBalancesDdl('rm_account_balances')]);
  });
  afterAll(async () => {
    await pool?.end();
    await store?.close();
    await db?.drop();
  });

  test('12,000 events behind reads as 12,000 (it used to saturate at 10,000 after reading them all on every scrape)', async () => {
    const accounts = 24;
    for (let a = 0; a < accounts; a++) {
      const id = `lag-${a}`;
      await store.appendToStream(`account-${id}`, deposits(id, 500, 0), { expectedRevision: 'no_stream' });
    }
    // Events the projection does not want (another prefix) are not counted.
    await store.appendToStream(
      'transfer-lag',
      [{ id: randomUUID(), type: 'TransferRequested', data: {}, metadata: { occurredAt: new Date().toISOString() } }],
      { expectedRevision: 'no_stream' },
    );

    const started = process.hrtime.bigint();
    const lag = await projectionLag(store, pool, accountBalancesProjection);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    expect(lag.eventsBehind).toBe(12_000);
    expect(lag.parkedEvents).toBe(0);
    expect(lag.caughtUp).toBe(false);
    expect(lag.lagSeconds).toBeGreaterThanOrEqual(0);

    // Caught up to the 6,000th event: 6,000 left.
    const all = await store.readAll({ streamPrefix: 'account-', maxCount: 6_000 });
    await pool.query('INSERT INTO rm_checkpoints (projection, commit, prepare) VALUES ($1, $2, $3)', [
      accountBalancesProjection.name,
      all.at(-1)!.position.commit.toString(),
      all.at(-1)!.position.prepare.toString(),
    ]);
    expect((await projectionLag(store, pool, accountBalancesProjection)).eventsBehind).toBe(6_000);

    // The count is one indexed range scan from the checkpoint, not a read of the events.
    const plan = await pool.query<{ 'QUERY PLAN': string }>(
      `EXPLAIN SELECT count(*) FROM es_events WHERE (transaction_id, position) > ($1::text::xid8, $2::bigint)
         AND transaction_id < pg_snapshot_xmin(pg_current_snapshot()) AND stream LIKE 'account-%' AND type = ANY($3::text[])`,
      [all.at(-1)!.position.commit.toString(), all.at(-1)!.position.prepare.toString(), [...accountBalancesProjection.eventTypes!]],
    );
    process.stdout.write(
      `[lag] projectionLag over 12,000 pending events: ${ms.toFixed(1)} ms\n[lag] plan:\n${plan.rows.map((r) => r['QUERY PLAN']).join('\n')}\n`,
    );
  });
});
