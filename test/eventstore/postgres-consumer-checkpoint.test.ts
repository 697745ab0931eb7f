import { randomUUID } from 'node:crypto';
import { Pool } from 'pg';
import type { RecordedEvent } from '../../eventstore/event-store';
import { PostgresEventStore } from '../../eventstore/postgres/postgres-event-store';
import { createTestDatabase, type TestDatabase } from '../support/test-database';
import { waitUntil } from '../support/wait-until';
import { event } from './event-store-contract';

/**
 * A PostgreSQL consumer group saves its checkpoint at most every 100 events or 250 ms (not after every batch), so
 * a crash redelivers at most that much. An orderly stop saves what was delivered: a restart redelivers nothing.
 */
describe('PostgreSQL consumer group checkpoints', () => {
  let db: TestDatabase;
  let store: PostgresEventStore;
  let sql: Pool;
  beforeAll(async () => {
    db = await createTestDatabase('es_checkpoint');
    store = await PostgresEventStore.connect({ connectionString: db.url, pollIntervalMs: 100 });
    sql = new Pool({ connectionString: db.url, max: 2 });
  });
  afterAll(async () => {
    await store.close();
    await sql.end();
    await db.drop();
  });

  const savedCheckpoint = async (group: string) => {
    const row = await sql.query<{ c: string; p: string }>(
      'SELECT checkpoint_commit::text AS c, checkpoint_prepare::text AS p FROM es_consumer_groups WHERE group_name = $1',
      [group],
    );
    return row.rows[0] ? { commit: BigInt(row.rows[0].c), prepare: BigInt(row.rows[0].p) } : undefined;
  };

  test('a stop right after delivery saves the checkpoint: a new subscriber of the group gets nothing again', async () => {
    const prefix = `cp-${randomUUID().slice(0, 8)}`;
    const group = `g-${prefix}`;
    const seen: RecordedEvent[] = [];
    const first = await store.subscribe(group, { streamPrefix: prefix, from: 'start' }, async (e) => void seen.push(e));
    for (let i = 0; i < 3; i++)
      await store.appendToStream(`${prefix}-s`, [event('Tick')], { expectedRevision: i === 0 ? 'no_stream' : BigInt(i - 1) });
    await waitUntil('the three events to be delivered', () => seen.length === 3, 10_000, 5);
    await first.stop(); // at once: well within the 250 ms a caught-up group waits before saving
    expect(await savedCheckpoint(group)).toEqual(seen.at(-1)!.position);

    const again: RecordedEvent[] = [];
    const second = await store.subscribe(group, { streamPrefix: prefix, from: 'start' }, async (e) => void again.push(e));
    await store.appendToStream(`${prefix}-s`, [event('Tock')], { expectedRevision: 2n });
    await waitUntil('the new event', () => again.length >= 1, 10_000, 5);
    await second.stop();
    expect(again.map((e) => e.type)).toEqual(['Tock']);
  });

  test('while running, a caught-up group saves its checkpoint within about 250 ms, not after every batch', async () => {
    const prefix = `cp-${randomUUID().slice(0, 8)}`;
    const group = `g-${prefix}`;
    const seen: RecordedEvent[] = [];
    const sub = await store.subscribe(group, { streamPrefix: prefix, from: 'start' }, async (e) => void seen.push(e));
    try {
      await store.appendToStream(`${prefix}-s`, [event('Tick')], { expectedRevision: 'no_stream' });
      await waitUntil('the event to be delivered', () => seen.length === 1, 10_000, 5);
      await waitUntil(
        'the checkpoint to be saved',
        async () => (await savedCheckpoint(group))?.prepare === seen[0]!.position.prepare,
        5_000,
        20,
      );
    } finally {
      await sub.stop();
    }
  });
});
