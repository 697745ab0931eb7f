import { randomUUID } from 'node:crypto';
import { Client, Pool } from 'pg';
import type { RecordedEvent, Subscription } from '../../eventstore/event-store';
import { PostgresEventStore } from '../../eventstore/postgres/postgres-event-store';
import { createTestDatabase, type TestDatabase } from '../support/test-database';
import { waitUntil } from '../support/wait-until';
import { event } from './event-store-contract';

/**
 * The consumer groups of one store share their reads of the log: groups that stand at the same position and are woken
 * by the same append send one query between them, not one each; and none of them misses an event for it.
 */
describe('PostgreSQL consumer groups of one store share their log reads', () => {
  let db: TestDatabase;
  let pool: Pool;
  let store: PostgresEventStore;
  let logReads = 0;
  let restore = () => {};
  beforeAll(async () => {
    db = await createTestDatabase('es_shared_reads');
    pool = new Pool({ connectionString: db.url, max: 10 });
    // Count the statements that read the log after a position (the consumer groups' reads), on any connection (the
    // pool's, or a group's own lock connection).
    const proto = Client.prototype as unknown as { query: (...a: unknown[]) => unknown };
    const query = proto.query;
    proto.query = function (this: unknown, ...a: unknown[]) {
      const text = typeof a[0] === 'string' ? a[0] : (a[0] as { text?: string } | undefined)?.text;
      if (text?.includes('AS held_back') && text.includes('LIMIT')) logReads += 1;
      return query.apply(this, a);
    };
    restore = () => (proto.query = query);
    store = await PostgresEventStore.connect({ connectionString: db.url, pool, pollIntervalMs: 60_000 });
  });
  afterAll(async () => {
    restore();
    await store.close();
    await pool.end();
    await db.drop();
  });

  test('four caught-up groups woken by each append read the log about once per append, and each sees every event in order', async () => {
    const prefix = `sr-${randomUUID().slice(0, 8)}`;
    const groups = ['a', 'b', 'c', 'd'];
    const seen = new Map<string, RecordedEvent[]>(groups.map((g) => [g, []]));
    const subscriptions: Subscription[] = [];
    for (const g of groups)
      subscriptions.push(
        await store.subscribeInBatches(`sr-${prefix}-${g}`, { streamPrefix: prefix, from: 'end' }, async (events) => {
          seen.get(g)!.push(...events);
        }),
      );
    try {
      // Let every group take its lock and catch up (the poll interval is a minute: only appends wake them).
      await store.appendToStream(`${prefix}-warmup`, [event('Warm')], { expectedRevision: 'no_stream' });
      await waitUntil('every group to see the warm-up event', () => groups.every((g) => seen.get(g)!.length === 1), 10_000, 5);
      const appends = 40;
      logReads = 0;
      for (let i = 0; i < appends; i++) {
        await store.appendToStream(`${prefix}-s`, [event('Tick', { i })], { expectedRevision: i === 0 ? 'no_stream' : BigInt(i - 1) });
        // One append at a time, each delivered to all four before the next: the worst case for sharing.
        await waitUntil(`append ${i} everywhere`, () => groups.every((g) => seen.get(g)!.length === i + 2), 10_000, 2);
      }
      // Unshared, each group reads at least once per append: 160 reads or more.
      expect(logReads).toBeLessThan(appends * 2);
      for (const g of groups)
        expect(
          seen
            .get(g)!
            .slice(1)
            .map((e) => (e.data as { i: number }).i),
        ).toEqual([...Array(appends).keys()]);

      // Concurrent appenders: nobody misses an event.
      const writers = 8;
      const perWriter = 15;
      const before = new Map(groups.map((g) => [g, seen.get(g)!.length]));
      await Promise.all(
        Array.from({ length: writers }, async (_, w) => {
          for (let i = 0; i < perWriter; i++)
            await store.appendToStream(`${prefix}-w${w}`, [event('Tock', { w, i })], {
              expectedRevision: i === 0 ? 'no_stream' : BigInt(i - 1),
            });
        }),
      );
      await waitUntil(
        'every concurrent append everywhere',
        () => groups.every((g) => seen.get(g)!.length === before.get(g)! + writers * perWriter),
        10_000,
        5,
      );
      const order = (g: string) => seen.get(g)!.map((e) => e.id);
      for (const g of groups.slice(1)) expect(order(g)).toEqual(order('a'));
    } finally {
      await Promise.all(subscriptions.map((s) => s.stop()));
    }
  });

  test('an event held back behind an older open transaction (which sends no notification when it ends) is delivered soon after it ends, not at the next poll', async () => {
    const prefix = `hb-${randomUUID().slice(0, 8)}`;
    const seen: RecordedEvent[] = [];
    const sub = await store.subscribeInBatches(`hb-${prefix}`, { streamPrefix: prefix, from: 'end' }, async (events) => {
      seen.push(...events);
    });
    const other = await pool.connect();
    try {
      await store.appendToStream(`${prefix}-warmup`, [event('Warm')], { expectedRevision: 'no_stream' });
      await waitUntil('the group to lead and catch up', () => seen.length === 1, 10_000, 5);
      // An older transaction that writes (so it has a transaction id) and stays open: a read-model write, say.
      await other.query('BEGIN');
      await other.query('CREATE TEMP TABLE held_back_probe (x int)');
      await other.query('INSERT INTO held_back_probe VALUES (1)');
      await store.appendToStream(`${prefix}-s`, [event('Held')], { expectedRevision: 'no_stream' });
      // Its notification came and went while the event was held back: nothing delivered yet.
      await new Promise((r) => setTimeout(r, 300));
      expect(seen).toHaveLength(1);
      const ended = Date.now();
      await other.query('COMMIT');
      // The poll interval is a minute: only the group's own recheck can deliver it now.
      await waitUntil('the held-back event', () => seen.length === 2, 5_000, 5);
      expect(Date.now() - ended).toBeLessThan(1_000);
      expect(seen[1]!.type).toBe('Held');
    } finally {
      await other.query('ROLLBACK').catch(() => undefined); // committed above unless the test failed before
      other.release();
      await sub.stop();
    }
  });
});
