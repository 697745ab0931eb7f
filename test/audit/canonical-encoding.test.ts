import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { Pool } from 'pg';
import type { JsonObject, JsonValue } from '../../eventstore/event-store';
import { canonicalEncoding, canonicalJson, canonicalMicros, canonicalPosition, pgJsonNumber } from '../../eventstore/hash-chain';
import { PostgresEventStore } from '../../eventstore/postgres/postgres-event-store';
import { createTestDatabase, type TestDatabase } from '../support/test-database';

/**
 * The canonical encoding of the hash chain is defined as PostgreSQL's jsonb text (the PostgreSQL adapter hashes inside
 * its append statement); eventstore/hash-chain.ts reproduces it in TypeScript for the verifier and the other adapters.
 * These cases hold the two to the same bytes.
 */
describe('canonical encoding: TypeScript reproduces PostgreSQL byte for byte', () => {
  let db: TestDatabase;
  let store: PostgresEventStore;
  /** The test's own SQL (what PostgreSQL makes of the values) runs on its own pool of the same database. */
  let pool: Pool;

  beforeAll(async () => {
    db = await createTestDatabase('audit_encoding');
    store = await PostgresEventStore.connect({ connectionString: db.url });
    pool = new Pool({ connectionString: db.url, max: 2 });
  });
  afterAll(async () => {
    await store?.close();
    await pool?.end();
    await db?.drop();
  });

  const pgText = async (values: readonly JsonValue[]): Promise<string[]> => {
    const result = await pool.query<{ t: string }>(
      'SELECT t::jsonb::text AS t FROM unnest($1::text[]) WITH ORDINALITY AS u(t, n) ORDER BY n',
      [values.map((v) => JSON.stringify(v))],
    );
    return result.rows.map((r) => r.t);
  };

  test.each<[string, JsonValue]>([
    ['key order: by UTF-8 length, then bytes', { b: 1, aa: 2, a: 3, é: 4, z: 5, B: 6, '': 7, 'ü€': 8 }],
    ['numbers without exponent', [1e21, 1.5e-7, 123.456, -0, 0.1, 1 / 3, -1e-10, 5e-324, 1.7976931348623157e308, 2 ** 53, -(2 ** 60)]],
    ['escapes: quotes, backslash, control characters; "/" and non-ASCII as is', ['"\\/\b\f\n\r\t\u0001\u001f\u007f', 'é€𝄞', '\u2028']],
    ['nesting, empty containers, null and booleans', { x: [[], {}, [null, true, false]], y: { z: { w: [1, [2, [3]]] } } }],
  ])('%s', async (_name, value) => {
    expect(canonicalJson(value)).toBe((await pgText([value]))[0]);
  });

  test('any JSON value (property, 300 values of every shape)', async () => {
    const noNul = (v: JsonValue) => !JSON.stringify(v).includes('\\u0000') && !/\p{Cs}/u.test(JSON.stringify(v));
    const values = fc.sample(
      fc.jsonValue({ maxDepth: 4, stringUnit: 'grapheme' }).filter((v) => noNul(v as JsonValue)),
      { numRuns: 300, seed: 20261126 },
    ) as JsonValue[];
    const binary = fc.sample(
      fc.jsonValue({ maxDepth: 2, stringUnit: 'binary' }).filter((v) => noNul(v as JsonValue)),
      { numRuns: 100, seed: 7 },
    ) as JsonValue[];
    const all = [...values, ...binary];
    const pg = await pgText(all);
    all.forEach((v, i) => expect([canonicalJson(v), JSON.stringify(v)]).toEqual([pg[i], JSON.stringify(v)]));
  });

  test('pgJsonNumber: plain decimal notation', () => {
    expect([1e21, 1.5e-7, -2.5e-8, 1.2345e25, 100, -0].map(pgJsonNumber)).toEqual([
      '1000000000000000000000',
      '0.00000015',
      '-0.000000025',
      '12345000000000000000000000',
      '100',
      '0',
    ]);
  });

  const data: JsonObject = { amount: 2500, note: 'café "x"\n', nested: { b: [1.5, null], a: true } };
  const metadata: JsonObject = { correlationId: 'req-1', actor: 'key_1', occurredAt: '2026-03-03T10:00:00.123Z' };

  test("the whole event, v2: es_event_encoding_v2 (the append's) equals canonicalEncoding", async () => {
    const id = randomUUID().toUpperCase();
    const result = await pool.query<{ e: Buffer }>(
      `SELECT es_event_encoding_v2($1::uuid, $2, $3, $4::bigint, $5::jsonb, $6::jsonb, $7::timestamptz, $8::timestamptz, $9::xid8, $10::bigint) AS e`,
      [
        id,
        'TransferDebited',
        'account-a1',
        '41',
        JSON.stringify(data),
        JSON.stringify(metadata),
        '2026-03-03T11:00:00.123456+01:00',
        '2026-03-03T10:00:01.007Z',
        '8812',
        '90071',
      ],
    );
    const ours = canonicalEncoding({
      id,
      type: 'TransferDebited',
      stream: 'account-a1',
      revision: 41n,
      data,
      metadata,
      occurredAt: '2026-03-03T11:00:00.123456+01:00',
      recordedAt: '2026-03-03T10:00:01.007Z',
      position: canonicalPosition({ commit: 8812n, prepare: 90071n }),
    });
    expect(ours).toBe(result.rows[0]!.e.toString('utf8'));
    expect(ours.startsWith(`["v2", "${id.toLowerCase()}", "TransferDebited", "account-a1", "41", {`)).toBe(true);
    expect(ours.endsWith(', "2026-03-03T10:00:00.123456Z", "2026-03-03T10:00:01.007000Z", "8812.90071"]')).toBe(true);
  });

  test("the whole event, v1 (kept for the links from before migration 4): es_event_encoding equals canonicalEncoding(…, 'v1')", async () => {
    const id = randomUUID().toUpperCase();
    const result = await pool.query<{ e: Buffer }>(
      `SELECT es_event_encoding($1::uuid, $2, $3, $4::bigint, $5::jsonb, $6::jsonb, $7::timestamptz) AS e`,
      [id, 'TransferDebited', 'account-a1', '41', JSON.stringify(data), JSON.stringify(metadata), '2026-03-03T11:00:00.123456+01:00'],
    );
    const ours = canonicalEncoding(
      {
        id,
        type: 'TransferDebited',
        stream: 'account-a1',
        revision: 41n,
        data,
        metadata,
        occurredAt: '2026-03-03T11:00:00.123+01:00',
        recordedAt: null,
        position: null,
      },
      'v1',
    );
    expect(ours).toBe(result.rows[0]!.e.toString('utf8'));
    expect(ours.startsWith(`["${id.toLowerCase()}", "TransferDebited", "account-a1", "41", {`)).toBe(true);
    expect(ours.endsWith(', "2026-03-03T10:00:00.123Z"]')).toBe(true);
  });

  test('times with microseconds: canonicalMicros writes what PostgreSQL keeps and to_char(… US) prints', async () => {
    const inputs = [
      '2026-03-03T10:00:00Z',
      '2026-03-03T10:00:00.5Z',
      '2026-03-03T10:00:00.123Z',
      '2026-03-03T10:00:00.123456Z',
      '2026-03-03T10:00:00.1234564Z',
      '2026-03-03T10:00:00.1234567Z',
      '2026-03-03T23:59:59.9999996Z',
      '2026-03-03T11:00:00.000001+01:00',
      '2026-03-03T05:30:00.25-04:30',
      '1999-12-31T23:59:59.999999Z',
    ];
    const result = await pool.query<{ t: string }>(
      `SELECT to_char(t::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS t FROM unnest($1::text[]) WITH ORDINALITY AS u(t, n) ORDER BY n`,
      [inputs],
    );
    expect(inputs.map(canonicalMicros)).toEqual(result.rows.map((r) => r.t));
  });
});
