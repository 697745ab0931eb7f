import { randomUUID } from 'node:crypto';
import { Client, Pool } from 'pg';
import type { RecordedEvent, Subscription } from '../../eventstore/event-store';
import { PostgresEventStore } from '../../eventstore/postgres/postgres-event-store';
import { createServicePool, PG_TIMEOUTS } from '../../infra/pg-pool';
import { createTestDatabase, type TestDatabase } from '../support/test-database';
import { waitUntil } from '../support/wait-until';
import { event } from './event-store-contract';

/**
 * Records every query made through `pool` (pool.query): its text, the rows it returned, and the
 * test's `phase` when it started. What a reader actually read, not what it happened to deliver in time.
 */
function recordQueries(pool: Pool): { phase: string; log: { phase: string; text: string; rows?: Record<string, unknown>[] }[] } {
  const recorder = { phase: 'before', log: [] as { phase: string; text: string; rows?: Record<string, unknown>[] }[] };
  const original = pool.query.bind(pool) as (...args: unknown[]) => Promise<{ rows: Record<string, unknown>[] }>;
  (pool as unknown as { query: (...args: unknown[]) => Promise<unknown> }).query = async (...args: unknown[]) => {
    const first = args[0];
    const entry: { phase: string; text: string; rows?: Record<string, unknown>[] } = {
      phase: recorder.phase,
      text: typeof first === 'string' ? first : String((first as { text?: unknown }).text ?? ''),
    };
    recorder.log.push(entry);
    const result = await original(...args);
    entry.rows = result.rows;
    return result;
  };
  return recorder;
}

/**
 * PostgreSQL-specific: transactions commit out of order. A subscriber must never skip an event
 * whose transaction commits after a later position became visible, and an open transaction that
 * holds subscribers back must show up as lag rather than as silence.
 */
describe('PostgreSQL event store: commit order', () => {
  let db: TestDatabase;
  let store: PostgresEventStore;
  const subs: Subscription[] = [];

  beforeAll(async () => {
    db = await createTestDatabase('es_commit_order');
    store = await PostgresEventStore.connect({ connectionString: db.url, pollIntervalMs: 100 });
  });
  afterEach(async () => Promise.all(subs.splice(0).map((s) => s.stop())));
  afterAll(async () => {
    await store.close();
    await db.drop();
  });

  test('an event committed after a later position became visible is still delivered, and first; while its transaction is open, readers read nothing past it', async () => {
    const prefix = `late-${randomUUID().slice(0, 8)}`;
    // The subscriber reads through its own store, whose every query is recorded (what it returned, and
    // in which phase of this test it started), so "it did not run ahead" is checked on its actual reads.
    // Its pool is made here (the one connect() makes by default: 20 connections) and passed in, so its queries can be recorded.
    const readerPool = createServicePool({
      connectionString: db.url,
      max: 20,
      applicationName: 'transfer-event-store',
      statementTimeoutMs: PG_TIMEOUTS.statementMs,
    });
    const reader = await PostgresEventStore.connect({ connectionString: db.url, pollIntervalMs: 100, pool: readerPool }).catch(
      async (error: unknown) => {
        await readerPool.end();
        throw error;
      },
    );
    const reads = recordQueries(readerPool);
    try {
      const seen: RecordedEvent[] = [];
      subs.push(await reader.subscribe(`g-${prefix}`, { streamPrefix: prefix, from: 'start' }, async (e) => void seen.push(e)));

      // A slow writer takes a lower global position and keeps its transaction open.
      const slow = new Client({ connectionString: db.url });
      await slow.connect();
      const slowEvent = event('Slow');
      await slow.query('BEGIN');
      await slow.query(`INSERT INTO es_streams (stream, revision) VALUES ($1, 0)`, [`${prefix}-slow`]);
      await slow.query(
        `INSERT INTO es_events (stream, revision, id, type, data, metadata, occurred_at) VALUES ($1, 0, $2, 'Slow', '{}', $3, now())`,
        [`${prefix}-slow`, slowEvent.id, JSON.stringify(slowEvent.metadata)],
      );

      // A fast writer commits a later position meanwhile.
      const fastEvent = event('Fast');
      const fast = await store.appendToStream(`${prefix}-fast`, [fastEvent], { expectedRevision: 'no_stream' });
      reads.phase = 'slow open, fast committed';
      const slowPosition = await slow.query<{ position: string }>('SELECT position::text AS position FROM es_events WHERE id = $1', [
        slowEvent.id,
      ]);
      expect(BigInt(slowPosition.rows[0]!.position)).toBeLessThan(fast.position.prepare);
      expect(await store.readStream(`${prefix}-fast`)).toHaveLength(1); // committed: a stream read sees it

      // While the slow transaction is open, a reader of the log reads nothing past it: not Fast, though committed.
      expect(await store.readAll({ streamPrefix: prefix })).toEqual([]);
      expect(await reader.readAll({ streamPrefix: prefix })).toEqual([]);
      const head = await store.headPosition();
      expect(head === undefined || head.commit < fast.position.commit).toBe(true);
      // The subscriber, too: wait until it has read the log after Fast committed (woken by the append,
      // or by its poll), then check that none of its reads so far returned an event of ours.
      await waitUntil(
        'the subscriber to read the log after Fast committed',
        () => reads.log.some((r) => r.phase === 'slow open, fast committed' && /\bes_events\b/.test(r.text) && r.rows !== undefined),
        20_000,
        20,
      );
      const ranAhead = reads.log
        .filter((r) => r.phase !== 'slow committed')
        .flatMap((r) => (r.rows ?? []).filter((row) => String(row.stream ?? '').startsWith(prefix)));
      expect(ranAhead).toEqual([]);
      expect(seen).toEqual([]);
      // ...and the hold-up is visible as lag, not silent.
      const lag = await store.openTransactionLag();
      expect(lag.eventsHeldBack).toBeGreaterThanOrEqual(1);
      expect(lag.oldestOpenTransactionMs).toBeGreaterThan(0);

      reads.phase = 'slow committed';
      await slow.query('COMMIT');
      await slow.end();
      await waitUntil('the subscriber to deliver both events', () => seen.length >= 2, 20_000, 20);
      expect(seen.map((e) => e.type)).toEqual(['Slow', 'Fast']);
      expect((await store.readAll({ streamPrefix: prefix })).map((e) => e.type)).toEqual(['Slow', 'Fast']);
      expect((await store.openTransactionLag()).eventsHeldBack).toBe(0);
    } finally {
      await Promise.all(subs.splice(0).map((s) => s.stop()));
      await reader.close();
      await readerPool.end();
    }
  });

  test('64 concurrent writers with random commit delays: the subscriber sees every event exactly once', async () => {
    const prefix = `storm-${randomUUID().slice(0, 8)}`;
    const seen: string[] = [];
    subs.push(await store.subscribe(`g-${prefix}`, { streamPrefix: prefix, from: 'start' }, async (e) => void seen.push(e.id)));
    const ids: string[] = [];
    // Raw transactions that sleep between insert and commit, so commits land out of position order.
    await Promise.all(
      Array.from({ length: 64 }, async (_, i) => {
        const c = new Client({ connectionString: db.url });
        await c.connect();
        const e = event('Storm', { i });
        ids.push(e.id);
        await c.query('BEGIN');
        await c.query(`INSERT INTO es_streams (stream, revision) VALUES ($1, 0)`, [`${prefix}-${i}`]);
        await c.query(
          `INSERT INTO es_events (stream, revision, id, type, data, metadata, occurred_at) VALUES ($1, 0, $2, 'Storm', '{}', $3, now())`,
          [`${prefix}-${i}`, e.id, JSON.stringify(e.metadata)],
        );
        await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 300)));
        await c.query('COMMIT');
        await c.end();
      }),
    );
    const deadline = Date.now() + 20_000;
    while (seen.length < ids.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(seen.length).toBe(ids.length);
    expect(new Set(seen)).toEqual(new Set(ids));
  });

  test('versioned migrations run once, even when several processes start at once', async () => {
    // A fresh database: four processes race to migrate it.
    const fresh = await createTestDatabase('es_migrations_race');
    let racers: PostgresEventStore[] = [];
    // The test's own reads of es_schema_migrations: a pool of its own on each database.
    const freshSql = new Pool({ connectionString: fresh.url, max: 1 });
    const fileSql = new Pool({ connectionString: db.url, max: 1 });
    const versions = async (pool: Pool) =>
      (await pool.query<{ version: number }>('SELECT version FROM es_schema_migrations ORDER BY version')).rows.map((r) => r.version);
    try {
      racers = await Promise.all(Array.from({ length: 4 }, () => PostgresEventStore.connect({ connectionString: fresh.url })));
      const applied = await versions(freshSql);
      // Each migration recorded exactly once (whatever their number): 1..n, no duplicates.
      expect(applied.length).toBeGreaterThanOrEqual(1);
      expect(applied).toEqual(applied.map((_, i) => i + 1));
      // ...the same list as this file's store (migrated alone), and the schema works.
      expect(applied).toEqual(await versions(fileSql));
      await racers[1]!.appendToStream(`migrated-${randomUUID().slice(0, 8)}`, [event('Works')], { expectedRevision: 'no_stream' });
      await Promise.all(racers.splice(0).map((r) => r.close()));
      // Starting again migrates nothing more.
      const again = await PostgresEventStore.connect({ connectionString: fresh.url });
      expect(await versions(freshSql)).toEqual(applied);
      await again.close();
    } finally {
      await Promise.all(racers.map((r) => r.close()));
      await freshSql.end();
      await fileSql.end();
      await fresh.drop();
    }
  });
});
