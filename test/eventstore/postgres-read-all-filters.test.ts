import { randomUUID } from 'node:crypto';
import { Client, Pool } from 'pg';
import type { NewEvent, ReadAllOptions, RecordedEvent } from '../../eventstore/event-store';
import { PostgresEventStore } from '../../eventstore/postgres/postgres-event-store';
import { FEW_IN_OCCURRED_RANGE, FEW_STREAMS } from '../../eventstore/postgres/read-all-query';
import { createTestDatabase, type TestDatabase } from '../support/test-database';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

function ev(type: string, occurredAt?: string, data: Record<string, unknown> = {}): NewEvent {
  return { id: randomUUID(), type, data: data as NewEvent['data'], metadata: occurredAt ? { occurredAt } : {} };
}

/** What the filters of readAll mean, checked in JavaScript on an event of the whole log. */
function matches(e: RecordedEvent, o: ReadAllOptions): boolean {
  const at = (s: string) => Date.parse(s);
  if (o.streamPrefix !== undefined && !e.stream.startsWith(o.streamPrefix)) return false;
  if (o.eventTypes !== undefined && !o.eventTypes.includes(e.type)) return false;
  const occurred = at(e.metadata.occurredAt);
  const recorded = at(e.recordedAt);
  if (o.occurredFrom !== undefined && occurred < at(o.occurredFrom)) return false;
  if (o.occurredTo !== undefined && occurred > at(o.occurredTo)) return false;
  if (o.recordedFrom !== undefined && recorded < at(o.recordedFrom)) return false;
  if (o.recordedTo !== undefined && recorded > at(o.recordedTo)) return false;
  return true;
}

const key = (e: RecordedEvent) => `${e.position.commit}.${e.position.prepare} ${e.stream}#${e.revision} ${e.type}`;

/**
 * readAll's filters choose where it reads (time marks, an index range per stream, per type, the business-time index:
 * eventstore/postgres/read-all-query.ts). Whatever it reads, every page must be the page a plain scan gives: the whole
 * log read in order without filters, filtered here, cut into pages. The log is built so that a read starting anywhere
 * but the right place shows: matches interleaved with non-matches; transactions that commit out of position order; a
 * stream stamped an hour ahead (the database clock set back) before events stamped now; recording times moved by an
 * UPDATE; business times reported late, scattered over the log; more than FEW_IN_OCCURRED_RANGE events in one
 * business day; prefixes of fewer and of more than FEW_STREAMS streams.
 */
describe('PostgreSQL event store: a filtered readAll page is the page a plain scan gives', () => {
  let db: TestDatabase;
  let store: PostgresEventStore;
  let sql: Pool;
  let log: RecordedEvent[];
  const day = Date.UTC(2031, 4, 10); // business days of this log: D-1, D, D+1 (late reports of D-3 too)
  const iso = (ms: number) => new Date(ms).toISOString();
  let recordedMarks: string[] = [];

  beforeAll(async () => {
    db = await createTestDatabase('es_read_all_filters');
    store = await PostgresEventStore.connect({ connectionString: db.url, pollIntervalMs: 200 });
    sql = new Pool({ connectionString: db.url, max: 2 });

    const revisions = new Map<string, bigint>();
    const append = async (stream: string, events: NewEvent[]) => {
      const expected = revisions.get(stream);
      const result = await store.appendToStream(stream, events, { expectedRevision: expected ?? 'no_stream' });
      revisions.set(stream, result.nextExpectedRevision);
      return result;
    };
    const types = ['Opened', 'Deposited', 'Withdrawn', 'Rare'];
    let n = 0;
    const round = async (count: number, businessDay: number) => {
      for (let i = 0; i < count; i++, n++) {
        const stream = n % 7 === 0 ? `xfer-${n % 3}` : `acct-${n % (FEW_STREAMS + 9)}`;
        const type = n % 17 === 0 ? 'Rare' : types[n % 3]!;
        // Most events happen on their round's business day; every 11th is reported late (three days before).
        const occurred = n % 11 === 0 ? businessDay - 3 * DAY + n * 1000 : businessDay + (n % 1440) * 60_000;
        await append(stream, [ev(type, iso(occurred), { n })]);
      }
    };

    await round(60, day - DAY);
    recordedMarks.push((await store.appendToStream('marker-a', [ev('Marker')], { expectedRevision: 'no_stream' })).recordedAt!);

    // A transaction that began before the appends below writes its events after them and commits last: in the log
    // (transaction, position) it comes before them, with higher positions (committed out of position order).
    const slow = new Client({ connectionString: db.url });
    await slow.connect();
    await slow.query('BEGIN');
    await slow.query('SELECT pg_current_xact_id()');
    // More than FEW_IN_OCCURRED_RANGE events on day D, in two appends with others between.
    const bulk = (from: number, count: number) =>
      Array.from({ length: count }, (_, i) => ev(i % 2 === 0 ? 'Deposited' : 'Opened', iso(day + ((from + i) % 1440) * 60_000 + i)));
    await append('bulk-1', bulk(0, 700));
    await round(40, day);
    await slow.query(`INSERT INTO es_streams (stream, revision) VALUES ('xfer-slow', 1)`);
    await slow.query(
      `INSERT INTO es_events (stream, revision, id, type, data, metadata, occurred_at)
       SELECT 'xfer-slow', r, gen_random_uuid(), 'Rare', '{}', $1, $2 FROM generate_series(0, 1) r`,
      [JSON.stringify({ occurredAt: iso(day + 5 * HOUR) }), iso(day + 5 * HOUR)],
    );
    await slow.query('COMMIT');
    await slow.end();
    await append('bulk-1', bulk(700, 600));
    await round(40, day);
    recordedMarks.push((await store.appendToStream('marker-b', [ev('Marker')], { expectedRevision: 'no_stream' })).recordedAt!);

    // The database clock set back an hour: a stream whose last append was stamped an hour ahead stamps its next
    // appends an hour ahead too (never before its previous one), with positions before the events stamped now.
    await append('xfer-0', [ev('Deposited', iso(day + DAY + HOUR))]);
    await sql.query(`UPDATE es_streams SET updated_at = updated_at + interval '1 hour' WHERE stream = 'xfer-0'`);
    await append('xfer-0', [ev('Withdrawn', iso(day + DAY + 2 * HOUR)), ev('Rare', iso(day + DAY + 2 * HOUR))]);
    await round(50, day + DAY);
    // Recording times edited in place: one event of the first round to a day earlier, one of the last an hour later.
    await sql.query(
      `UPDATE es_events SET recorded_at = recorded_at - interval '1 day' WHERE id = (SELECT id FROM es_events WHERE stream LIKE 'acct-%' ORDER BY position LIMIT 1 OFFSET 5)`,
    );
    await sql.query(
      `UPDATE es_events SET recorded_at = recorded_at + interval '2 hours' WHERE id = (SELECT id FROM es_events WHERE stream LIKE 'acct-%' ORDER BY position DESC LIMIT 1 OFFSET 3)`,
    );
    await round(30, day + DAY);

    // A session remembers the buckets it has marked (migration 5's insert trigger skips events of those buckets).
    // What it remembers from a transaction or savepoint rolled back is forgotten with it, and an event carrying
    // another transaction's id is always checked. The raw rows share their buckets exactly (times given).
    const session = new Client({ connectionString: db.url });
    await session.connect();
    const raw = (stream: string, revision: number, occurred: string, recorded: string, transactionId?: string) =>
      session.query(
        `INSERT INTO es_events (stream, revision, id, type, data, metadata, occurred_at, recorded_at${transactionId ? ', transaction_id' : ''})
         VALUES ($1, $2, gen_random_uuid(), 'Raw', '{}', jsonb_build_object('occurredAt', $3::text), $3::timestamptz, $4::timestamptz${transactionId ? ', $5::xid8' : ''})`,
        [stream, revision, occurred, recorded, ...(transactionId ? [transactionId] : [])],
      );
    await session.query(`INSERT INTO es_streams (stream, revision) VALUES ('raw-a', 3), ('raw-b', 1)`);
    await session.query('BEGIN');
    await raw('raw-a', 0, '2040-01-01T00:00:10.000Z', '2040-01-01T00:00:00.050Z');
    await session.query('ROLLBACK');
    await raw('raw-a', 0, '2040-01-01T00:00:20.000Z', '2040-01-01T00:00:00.060Z');
    await raw('raw-a', 1, '2040-01-01T00:00:30.000Z', '2040-01-01T00:00:00.070Z', '3');
    await session.query('BEGIN');
    await session.query('SAVEPOINT s');
    await raw('raw-b', 0, '2041-01-01T00:00:10.000Z', '2041-01-01T00:00:00.050Z');
    await session.query('ROLLBACK TO SAVEPOINT s');
    await raw('raw-b', 0, '2041-01-01T00:00:20.000Z', '2041-01-01T00:00:00.060Z');
    await session.query('COMMIT');
    await session.end();

    // The whole log, unfiltered, in pages.
    log = [];
    for (;;) {
      const page = await store.readAll({ fromPosition: log.at(-1)?.position, maxCount: 500 });
      if (page.length === 0) break;
      log.push(...page);
    }
    recordedMarks = recordedMarks.sort();
  }, 120_000);

  afterAll(async () => {
    await store?.close();
    await sql?.end();
    await db?.drop();
  });

  /** Every page of the filter at this page size, paged as GET /events pages (`next`), against the plain scan's pages. */
  async function expectSamePages(filter: ReadAllOptions, limit: number): Promise<number> {
    const expected = log.filter((e) => matches(e, filter)).map(key);
    const pages: string[][] = [];
    let from: RecordedEvent['position'] | undefined;
    for (let guard = 0; guard < 5000; guard++) {
      const page = await store.readAllPage({ ...filter, fromPosition: from, maxCount: limit });
      pages.push(page.events.map(key));
      if (page.next === undefined) break;
      expect(page.next).toEqual(page.events.at(-1)!.position);
      from = page.next;
    }
    const expectedPages: string[][] = [];
    for (let i = 0; ; i += limit) {
      expectedPages.push(expected.slice(i, i + limit));
      if (expected.length - i < limit) break;
    }
    expect({ filter, limit, pages }).toEqual({ filter, limit, pages: expectedPages });
    return expected.length;
  }

  const filters = (): [string, ReadAllOptions][] => {
    const [markA, markB] = recordedMarks as [string, string];
    const aheadFrom = iso(Date.parse(markB) + 30 * 60_000);
    return [
      ['no filter', {}],
      ['one type', { eventTypes: ['Rare'] }],
      ['two types', { eventTypes: ['Rare', 'Withdrawn'] }],
      ['a type named twice', { eventTypes: ['Rare', 'Withdrawn', 'Rare'] }],
      ['prefix of more than FEW_STREAMS streams', { streamPrefix: 'acct-' }],
      ['prefix of a few streams', { streamPrefix: 'xfer-' }],
      ['prefix of one stream', { streamPrefix: 'bulk-' }],
      ['prefix of no stream', { streamPrefix: 'nobody-' }],
      ['prefix and type', { streamPrefix: 'xfer-', eventTypes: ['Rare', 'Deposited'] }],
      ['many streams and a type', { streamPrefix: 'acct-', eventTypes: ['Withdrawn'] }],
      ['recorded from the middle', { recordedFrom: markA }],
      ['recorded up to the middle', { recordedTo: markA }],
      ['recorded between two marks', { recordedFrom: markA, recordedTo: markB }],
      ['recorded from half an hour ahead (stamped ahead: early positions)', { recordedFrom: aheadFrom }],
      ['recorded a day back (an edited time)', { recordedTo: iso(Date.parse(markA) - 12 * HOUR) }],
      ['recorded in no stretch with events', { recordedFrom: iso(Date.parse(markB) + 10 * DAY) }],
      ['business day D (more than FEW_IN_OCCURRED_RANGE)', { occurredFrom: iso(day), occurredTo: iso(day + DAY - 1) }],
      ['business day D-3 (late reports, scattered)', { occurredFrom: iso(day - 3 * DAY), occurredTo: iso(day - 2 * DAY - 1) }],
      ['business time from D+1', { occurredFrom: iso(day + DAY) }],
      ['business time up to D-1 noon', { occurredTo: iso(day - DAY + 12 * HOUR) }],
      ['business hour within day D', { occurredFrom: iso(day + 5 * HOUR), occurredTo: iso(day + 6 * HOUR) }],
      [
        'business minute of events written in a transaction rolled back',
        { occurredFrom: '2040-01-01T00:00:00Z', occurredTo: '2040-01-01T00:00:59.999Z' },
      ],
      [
        'business minute of events written after a savepoint rolled back',
        { occurredFrom: '2041-01-01T00:00:00Z', occurredTo: '2041-01-01T00:00:59.999Z' },
      ],
      ['recorded in the second of those events', { recordedFrom: '2040-01-01T00:00:00.000Z', recordedTo: '2040-01-01T00:00:00.999Z' }],
      ['business day and a prefix of few streams', { occurredFrom: iso(day), occurredTo: iso(day + DAY - 1), streamPrefix: 'xfer-' }],
      ['business day and types', { occurredFrom: iso(day), occurredTo: iso(day + DAY - 1), eventTypes: ['Rare', 'Opened'] }],
      [
        'every filter',
        {
          streamPrefix: 'acct-',
          eventTypes: ['Deposited', 'Opened'],
          occurredFrom: iso(day - DAY),
          recordedFrom: markA,
          recordedTo: aheadFrom,
        },
      ],
    ];
  };

  test('the log is what the filters need: interleaved, out of order, stamped ahead, edited, late, big days', () => {
    const positions = log.map((e) => e.position.prepare);
    expect(positions.some((p, i) => i > 0 && p < positions[i - 1]!)).toBe(true); // committed out of position order
    const recorded = log.map((e) => Date.parse(e.recordedAt));
    expect(recorded.some((t, i) => i > 0 && t < recorded[i - 1]!)).toBe(true); // recording times not in log order
    const dayD = log.filter((e) => matches(e, { occurredFrom: iso(day), occurredTo: iso(day + DAY - 1) }));
    expect(dayD.length).toBeGreaterThan(FEW_IN_OCCURRED_RANGE);
    const lateD3 = log.filter((e) => matches(e, { occurredFrom: iso(day - 3 * DAY), occurredTo: iso(day - 2 * DAY - 1) }));
    expect(lateD3.length).toBeGreaterThan(3);
    expect(lateD3.length).toBeLessThanOrEqual(FEW_IN_OCCURRED_RANGE);
    expect(new Set(log.filter((e) => e.stream.startsWith('acct-')).map((e) => e.stream)).size).toBeGreaterThan(FEW_STREAMS);
    expect(new Set(log.filter((e) => e.stream.startsWith('xfer-')).map((e) => e.stream)).size).toBeLessThanOrEqual(FEW_STREAMS);
    // Stamped ahead with positions before events stamped now; an edited time a day back late in the log.
    expect(log.filter((e) => matches(e, { recordedFrom: iso(Date.parse(recordedMarks[1]!) + 30 * 60_000) })).length).toBeGreaterThan(0);
    expect(log.filter((e) => matches(e, { recordedTo: iso(Date.parse(recordedMarks[0]!) - 12 * HOUR) })).length).toBe(1);
    // The raw events: one after a rollback, one after a savepoint rolled back, one of an old transaction id, first.
    expect(log.filter((e) => e.type === 'Raw').map((e) => e.metadata.occurredAt)).toEqual([
      '2040-01-01T00:00:30.000Z',
      '2040-01-01T00:00:20.000Z',
      '2041-01-01T00:00:20.000Z',
    ]);
    expect(log[0]!.position.commit).toBe(3n);
  });

  test.each([7, 100, 1000])('every filter, pages of %i', async (limit) => {
    let matched = 0;
    for (const [, filter] of filters()) matched += await expectSamePages(filter, limit);
    expect(matched).toBeGreaterThan(0);
  });

  test('a log written before the time marks gets them from the migration: the same pages', async () => {
    // As before migration 5: no marks, no trigger. Connecting migrates again (the backfill from the events).
    await sql.query(`DROP TABLE es_time_marks CASCADE`);
    await sql.query(`DROP TRIGGER es_events_time_marks_insert ON es_events`);
    await sql.query(`DROP TRIGGER es_events_time_marks_update ON es_events`);
    await sql.query(`DROP FUNCTION es_time_floor, es_time_marks_of_row, es_time_bucket_ceil, es_time_bucket, es_time_mark_widths`);
    await sql.query(`DROP INDEX es_streams_stream_pattern`);
    await sql.query(`DELETE FROM es_schema_migrations WHERE version = 5`);
    const migrated = await PostgresEventStore.connect({ connectionString: db.url });
    await migrated.close();
    expect(Number((await sql.query<{ n: string }>(`SELECT count(*)::text AS n FROM es_time_marks`)).rows[0]!.n)).toBeGreaterThan(0);
    for (const [, filter] of filters()) await expectSamePages(filter, 100);
  });

  test('a page from a cursor in the middle of a filter', async () => {
    for (const [, filter] of filters()) {
      const all = log.filter((e) => matches(e, filter));
      if (all.length < 3) continue;
      const cursor = all[Math.floor(all.length / 2)]!.position;
      const page = await store.readAll({ ...filter, fromPosition: cursor, maxCount: 5 });
      expect({ filter, page: page.map(key) }).toEqual({
        filter,
        page: all
          .slice(Math.floor(all.length / 2) + 1)
          .slice(0, 5)
          .map(key),
      });
    }
  });
});
