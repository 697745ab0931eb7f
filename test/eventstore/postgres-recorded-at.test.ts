import { randomUUID } from 'node:crypto';
import { Pool } from 'pg';
import type { ExpectedRevision, NewEvent } from '../../eventstore/event-store';
import { PostgresEventStore } from '../../eventstore/postgres/postgres-event-store';
import { withClockOffset } from '../support/clock-offset';
import { createTestDatabase, type TestDatabase } from '../support/test-database';

/** An event as the service writes one it causes: no occurrence time of its own. */
function serviceEvent(type = 'ThingHappened'): NewEvent {
  return { id: randomUUID(), type, data: {}, metadata: { correlationId: randomUUID() } };
}

const HOUR = 3_600_000;

describe('PostgreSQL event store: the database stamps the time of every append', () => {
  let db: TestDatabase;
  let store: PostgresEventStore;
  /** The test's own SQL (the database clock, the stored rows, setting recording times back): a pool of its own. */
  let pool: Pool;

  beforeAll(async () => {
    db = await createTestDatabase('es_recorded_at');
    store = await PostgresEventStore.connect({ connectionString: db.url, pollIntervalMs: 200 });
    pool = new Pool({ connectionString: db.url, max: 2 });
  });
  afterAll(async () => {
    await store?.close();
    await pool?.end();
    await db?.drop();
  });

  async function databaseNow(): Promise<number> {
    const result = await pool.query<{ now: Date }>('SELECT clock_timestamp() AS now');
    return result.rows[0]!.now.getTime();
  }

  test("a writer whose clock is an hour off does not move an event's time: it is the database's", async () => {
    const stream = `skewed-${randomUUID().slice(0, 8)}`;
    const before = await databaseNow();
    const behind = await withClockOffset(-HOUR, () => store.appendToStream(stream, [serviceEvent()], { expectedRevision: 'no_stream' }));
    const ahead = await withClockOffset(HOUR, () =>
      store.appendToStream(stream, [serviceEvent()], { expectedRevision: behind.nextExpectedRevision }),
    );
    const after = await databaseNow();

    const events = await store.readStream(stream);
    expect(events.map((e) => e.recordedAt)).toEqual([behind.recordedAt, ahead.recordedAt]);
    for (const e of events) {
      // Millisecond precision: `before` may carry the sub-millisecond part the stamp dropped.
      expect(Date.parse(e.recordedAt)).toBeGreaterThanOrEqual(before - 1);
      expect(Date.parse(e.recordedAt)).toBeLessThanOrEqual(after);
      expect(e.metadata.occurredAt).toBe(e.recordedAt);
    }
    // The stored row agrees (projections and readAll's occurrence filter read it).
    const rows = await pool.query<{ occurred_at: Date; recorded_at: Date; meta: string }>(
      `SELECT occurred_at, recorded_at, metadata->>'occurredAt' AS meta FROM es_events WHERE stream = $1 ORDER BY revision`,
      [stream],
    );
    for (const [i, row] of rows.rows.entries()) {
      expect([row.occurred_at.toISOString(), row.recorded_at.toISOString(), row.meta]).toEqual(Array(3).fill(events[i]!.recordedAt));
    }
  });

  test('time never goes backwards within a stream, even when the database clock is set back', async () => {
    for (const kind of ['revision', 'stream_exists', 'any'] as const) {
      const stream = `stepped-back-${kind}-${randomUUID().slice(0, 8)}`;
      const first = await store.appendToStream(stream, [serviceEvent(), serviceEvent()], { expectedRevision: 'no_stream' });
      // As if the database clock was an hour ahead when these were recorded and has since been set back.
      await pool.query(`UPDATE es_events SET recorded_at = recorded_at + interval '1 hour' WHERE stream = $1`, [stream]);
      await pool.query(`UPDATE es_streams SET updated_at = updated_at + interval '1 hour' WHERE stream = $1`, [stream]);
      const previous = (await store.readStream(stream)).at(-1)!;
      expect(Date.parse(previous.recordedAt)).toBeGreaterThan(Date.parse(first.recordedAt!) + HOUR - 1_000);

      const expected: ExpectedRevision = kind === 'revision' ? first.nextExpectedRevision : kind;
      const next = await store.appendToStream(stream, [serviceEvent(), serviceEvent()], { expectedRevision: expected });
      const events = await store.readStream(stream);
      expect(events).toHaveLength(4);
      for (let i = 1; i < events.length; i++) {
        expect({ kind, revision: i, at: Date.parse(events[i]!.recordedAt) >= Date.parse(events[i - 1]!.recordedAt) }).toEqual({
          kind,
          revision: i,
          at: true,
        });
      }
      expect(next.recordedAt).toBe(events[3]!.recordedAt);
      expect(events[3]!.metadata.occurredAt).toBe(events[3]!.recordedAt);
      expect((await store.listStreams({ prefix: stream }))[0]!.lastRecordedAt).toBe(events[3]!.recordedAt);
    }
  });

  test('a retried append (lost acknowledgement) answers with the time the events were first recorded', async () => {
    const stream = `retried-${randomUUID().slice(0, 8)}`;
    const events = [serviceEvent(), serviceEvent()];
    const first = await store.appendToStream(stream, events, { expectedRevision: 'no_stream' });
    await new Promise((resolve) => setTimeout(resolve, 20));
    const again = await store.appendToStream(stream, events, { expectedRevision: 'no_stream' });
    expect(again).toEqual(first);
    expect((await store.readStream(stream)).map((e) => e.recordedAt)).toEqual([first.recordedAt, first.recordedAt]);
  });

  test('an explicit occurrence time (business time, e.g. a deposit reported late) is kept; the recording time is still the store', async () => {
    const stream = `late-${randomUUID().slice(0, 8)}`;
    const occurredAt = '2025-06-01T12:00:00.000Z';
    const late: NewEvent = { ...serviceEvent('Late'), metadata: { occurredAt } };
    const result = await withClockOffset(-HOUR, () => store.appendToStream(stream, [late], { expectedRevision: 'no_stream' }));
    const [recorded] = await store.readStream(stream);
    expect(recorded!.metadata.occurredAt).toBe(occurredAt);
    expect(recorded!.recordedAt).toBe(result.recordedAt);
    expect(Math.abs(Date.parse(recorded!.recordedAt) - (await databaseNow()))).toBeLessThan(HOUR / 2);
    expect((await store.readAll({ streamPrefix: stream, occurredFrom: occurredAt, occurredTo: occurredAt })).map((e) => e.id)).toEqual([
      late.id,
    ]);
  });
});
