import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { Pool } from 'pg';
import type { NewEvent } from '../../eventstore/event-store';
import type { ChainVerification } from '../../eventstore/hash-chain';
import { PostgresEventStore } from '../../eventstore/postgres/postgres-event-store';
import { createTestDatabase, type TestDatabase } from '../support/test-database';

/**
 * Tamper evidence on the PostgreSQL event store: someone with SQL access edits, deletes or reorders events, or drops a
 * whole stream; `audit:verify` (PostgresChainAudit.verify) names the first broken link. Each case gets its own log.
 */

const ROOT = path.resolve(__dirname, '../..');
const run = promisify(execFile);

const ev = (type: string, data: Record<string, number | string>, actor = 'key_ops'): NewEvent => ({
  id: randomUUID(),
  type,
  data,
  metadata: { correlationId: `req-${randomUUID().slice(0, 8)}`, actor },
});

interface Log {
  db: TestDatabase;
  store: PostgresEventStore;
  /** The tamperer's (and the test's) own SQL access to the database: a pool of its own, not the store's. */
  pool: Pool;
  sql: (text: string, params?: unknown[]) => Promise<{ rows: Record<string, unknown>[]; rowCount: number | null }>;
  verify: (stream?: string) => Promise<ChainVerification>;
  hashOf: (stream: string, revision: number) => Promise<string>;
}

const logs: Log[] = [];

/** Three account streams of 5 events (appended one and several at a time) and a transfer stream of 3. */
async function freshLog(): Promise<Log> {
  const db = await createTestDatabase('audit_tamper');
  const store = await PostgresEventStore.connect({ connectionString: db.url, pollIntervalMs: 200 });
  for (const account of ['account-a', 'account-b', 'account-c']) {
    await store.appendToStream(account, [ev('AccountOpened', { ownerId: account.slice(-1) }), ev('Deposited', { amount: 10_000 })], {
      expectedRevision: 'no_stream',
    });
    await store.appendToStream(account, [ev('Withdrawn', { amount: 2_500 })], { expectedRevision: 1n });
    await store.appendToStream(account, [ev('Deposited', { amount: 700 }), ev('Withdrawn', { amount: 300 })], { expectedRevision: 2n });
  }
  await store.appendToStream(
    'transfer-t1',
    [ev('TransferRequested', { amount: 100 }), ev('TransferSourceDebited', { amount: 100 }), ev('TransferCompleted', { amount: 100 })],
    { expectedRevision: 'no_stream' },
  );
  const pool = new Pool({ connectionString: db.url, max: 2 });
  const log: Log = {
    db,
    store,
    pool,
    sql: (text, params) => log.pool.query(text, params),
    verify: (stream) => log.store.chainAudit().verify({ stream }),
    hashOf: async (stream, revision) => {
      const r = await log.pool.query<{ hash: Buffer }>('SELECT hash FROM es_events WHERE stream = $1 AND revision = $2', [
        stream,
        revision,
      ]);
      return r.rows[0]!.hash.toString('hex');
    },
  };
  logs.push(log);
  return log;
}

afterAll(async () => {
  await Promise.all(
    logs.splice(0).map(async (log) => {
      await log.store.close().catch(() => undefined); // closed already when a case failed while reopening it
      await log.pool.end();
      await log.db.drop();
    }),
  );
});

/** `npm run audit:verify` as an operator runs it, against this log's database. */
async function cli(log: Log, ...args: string[]): Promise<{ code: number; stdout: string }> {
  try {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'scripts/audit-verify.ts', ...args], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: log.db.url, EVENT_STORE: 'postgres' },
      timeout: 60_000,
    });
    return { code: 0, stdout };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw error;
    return { code: e.code, stdout: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

describe('hash chain: tampering with the PostgreSQL log is caught', () => {
  test('a clean log verifies: every stream, each stream, and with an anchor; the CLI says so and exits 0', async () => {
    const log = await freshLog();
    expect(await log.verify()).toMatchObject({ ok: true, events: 18, streams: 4, broken: [] });
    expect(await log.verify('account-b')).toMatchObject({ ok: true, events: 5, streams: 1 });
    const anchored = await log.store.chainAudit().anchor();
    expect(anchored.anchor).toMatchObject({ anchorId: '1', streams: 4, events: 18 });
    expect(await log.store.chainAudit().anchor()).toEqual({ unchanged: true });
    const report = await log.verify();
    expect(report).toMatchObject({ ok: true, anchor: { anchorId: '1', streams: 4, events: 18 } });

    const { code, stdout } = await cli(log);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^verified 18 events in 4 streams in \d+ ms$/m);
    expect(stdout).toContain(`latest anchor #1`);
  });

  test("an event's data edited with SQL: caught at that event, with the hash expected and the one found", async () => {
    const log = await freshLog();
    const stored = await log.hashOf('account-b', 2);
    await log.sql(`UPDATE es_events SET data = jsonb_set(data, '{amount}', '25') WHERE stream = 'account-b' AND revision = 2`);
    const report = await log.verify();
    expect(report.ok).toBe(false);
    expect(report.firstBroken).toMatchObject({ stream: 'account-b', revision: '2', problem: 'hash_mismatch', found: stored });
    expect(report.firstBroken!.expected).toMatch(/^[0-9a-f]{64}$/);
    expect(report.firstBroken!.expected).not.toBe(stored);
    // Only that link: the others, each checked against the stored hash before it, still hold.
    expect(report.broken).toHaveLength(1);
    expect(await log.verify('account-a')).toMatchObject({ ok: true });

    const { code, stdout } = await cli(log);
    expect(code).toBe(1);
    expect(stdout).toContain('BROKEN: first broken link: stream account-b, revision 2 (hash_mismatch)');
    expect(stdout).toContain(`found:    ${stored}`);
  });

  test('metadata (who did it) or the occurrence time edited: caught', async () => {
    const log = await freshLog();
    await log.sql(
      `UPDATE es_events SET metadata = jsonb_set(metadata, '{actor}', '"key_someone_else"') WHERE stream = 'account-a' AND revision = 1`,
    );
    await log.sql(`UPDATE es_events SET occurred_at = occurred_at - interval '1 day' WHERE stream = 'account-c' AND revision = 3`);
    const report = await log.verify();
    expect(report.broken.map((b) => [b.stream, b.revision, b.problem])).toEqual([
      ['account-a', '1', 'hash_mismatch'],
      ['account-c', '3', 'hash_mismatch'],
    ]);
  });

  test('an event deleted: caught at the missing revision', async () => {
    const log = await freshLog();
    await log.sql(`DELETE FROM es_events WHERE stream = 'account-c' AND revision = 2`);
    expect((await log.verify()).firstBroken).toEqual({
      stream: 'account-c',
      revision: '2',
      problem: 'missing_event',
      expected: 'revision 2',
      found: 'revision 3',
    });
  });

  test('the last event deleted: caught at the head; with the head rolled back as well: caught by the anchor', async () => {
    const log = await freshLog();
    await log.store.chainAudit().anchor();
    const last = await log.hashOf('account-a', 4);
    await log.sql(`DELETE FROM es_events WHERE stream = 'account-a' AND revision = 4`);
    const headLeft = await log.verify();
    expect(headLeft.firstBroken).toMatchObject({ stream: 'account-a', revision: '4', problem: 'head_mismatch' });
    expect(headLeft.firstBroken!.expected).toContain('head at revision 3');
    expect(headLeft.firstBroken!.found).toContain(`head at revision 4 with hash ${last}`);

    // A careful tamperer also moves the head back to the event before: the chain is whole again, the anchor is not.
    await log.sql(
      `UPDATE es_streams s SET revision = 3, last_hash = e.hash FROM es_events e WHERE s.stream = 'account-a' AND e.stream = s.stream AND e.revision = 3`,
    );
    const report = await log.verify();
    expect(report.broken).toEqual([
      {
        stream: 'account-a',
        revision: '4',
        problem: 'anchor_mismatch',
        expected: `revision 4 with hash ${last} (anchor #1)`,
        found: 'the stream ends at revision 3',
      },
    ]);
  });

  test('two events swapped: caught', async () => {
    const log = await freshLog();
    await log.sql(`UPDATE es_events SET revision = -1 WHERE stream = 'account-b' AND revision = 1`);
    await log.sql(`UPDATE es_events SET revision = 1 WHERE stream = 'account-b' AND revision = 2`);
    await log.sql(`UPDATE es_events SET revision = 2 WHERE stream = 'account-b' AND revision = -1`);
    expect((await log.verify()).firstBroken).toMatchObject({ stream: 'account-b', revision: '1', problem: 'hash_mismatch' });
  });

  test('an edit whose chain was rewritten to the end (hashes and head recomputed with the database functions): caught by the anchor', async () => {
    const log = await freshLog();
    await log.store.chainAudit().anchor();
    const anchored = await log.hashOf('account-b', 4);
    await log.sql(`UPDATE es_events SET data = jsonb_set(data, '{amount}', '1') WHERE stream = 'account-b' AND revision = 1`);
    await log.sql(`
      WITH chained AS (
        SELECT position, es_chain(decode(repeat('00', 32), 'hex'), es_event_encoding(id, type, stream, revision, data, metadata, occurred_at))
                 OVER (ORDER BY revision) AS hash
        FROM es_events WHERE stream = 'account-b')
      UPDATE es_events e SET hash = chained.hash FROM chained WHERE e.position = chained.position`);
    await log.sql(
      `UPDATE es_streams s SET last_hash = e.hash FROM es_events e WHERE s.stream = 'account-b' AND e.stream = s.stream AND e.revision = s.revision`,
    );
    const rewritten = await log.hashOf('account-b', 4);
    expect(rewritten).not.toBe(anchored);
    const report = await log.verify();
    expect(report.broken).toEqual([
      {
        stream: 'account-b',
        revision: '4',
        problem: 'anchor_mismatch',
        expected: `revision 4 with hash ${anchored} (anchor #1)`,
        found: `hash ${rewritten} at revision 4`,
      },
    ]);
  });

  test('a whole stream deleted: caught by the anchor, anchoring again is refused, and hiding it in the anchored heads breaks the anchor', async () => {
    const log = await freshLog();
    const first = await log.store.chainAudit().anchor();
    const deletedHead = await log.hashOf('transfer-t1', 2);
    await log.sql(`DELETE FROM es_events WHERE stream = 'transfer-t1'`);
    await log.sql(`DELETE FROM es_streams WHERE stream = 'transfer-t1'`);
    const report = await log.verify();
    expect(report.firstBroken).toEqual({
      stream: 'transfer-t1',
      revision: '2',
      problem: 'anchor_mismatch',
      expected: `revision 2 with hash ${deletedHead} (anchor #1)`,
      found: 'no such stream',
    });
    expect(report).toMatchObject({ events: 15, streams: 3 });

    const again = await log.store.chainAudit().anchor();
    expect(again.anchor).toBeUndefined();
    expect(again.refused).toEqual([
      expect.objectContaining({ stream: 'transfer-t1', problem: 'anchor_mismatch', found: 'no such stream' }),
    ]);

    // The tamperer removes the stream from the anchored heads too: the latest anchor's heads hash no longer matches.
    await log.sql(`DELETE FROM es_audit_anchored_heads WHERE stream = 'transfer-t1'`);
    const hidden = await log.verify();
    expect(hidden.firstBroken).toMatchObject({ stream: '(anchors)', problem: 'anchor_chain' });
    expect(hidden.firstBroken!.expected).toContain(`anchor #1: 4 streams, 18 events, heads hash ${first.anchor!.headsHash}`);
    expect(hidden.firstBroken!.found).toContain('anchored heads: 3 streams, 15 events');

    // ...and rewrites the anchor to match: the anchor hash kept outside the database no longer appears.
    await log.sql(`DELETE FROM es_audit_anchors`);
    await log.sql(`DELETE FROM es_audit_anchored_heads`);
    expect(await log.store.chainAudit().anchor()).toMatchObject({ anchor: { anchorId: '1', streams: 3 } });
    expect(await log.store.chainAudit().verify()).toMatchObject({ ok: true });
    const outside = await log.store.chainAudit().verify({ anchorHash: first.anchor!.anchorHash });
    expect(outside.firstBroken).toEqual({
      stream: '(anchors)',
      revision: null,
      problem: 'anchor_chain',
      expected: `an anchor with hash ${first.anchor!.anchorHash}`,
      found: 'none',
    });
  });

  test('events appended without the chain (an old writer) are reported as missing their hash', async () => {
    const log = await freshLog();
    const unchained = await PostgresEventStore.connect({ connectionString: log.db.url, hashChain: false });
    try {
      await unchained.appendToStream('account-a', [ev('Deposited', { amount: 1 })], { expectedRevision: 4n });
    } finally {
      await unchained.close();
    }
    expect((await log.verify()).firstBroken).toEqual({
      stream: 'account-a',
      revision: '5',
      problem: 'missing_hash',
      expected: 'a hash',
      found: 'none',
    });
  });
});

describe('hash chain: existing databases get their chains by the migration', () => {
  test('the migration fills every stream in revision order with exactly the hashes the append writes', async () => {
    const log = await freshLog();
    const written = await log.sql(`SELECT stream, revision, encode(hash, 'hex') AS hash FROM es_events ORDER BY stream, revision`);
    // Back to the schema before the chain (migration 1 only), as a database of the previous release has it.
    await log.sql(`
      ALTER TABLE es_events DROP COLUMN hash;
      ALTER TABLE es_streams DROP COLUMN last_hash;
      DROP AGGREGATE es_chain(bytea, bytea);
      DROP FUNCTION es_chain_step(bytea, bytea, bytea);
      DROP FUNCTION es_chain_hashes(bytea, bytea[]);
      DROP FUNCTION es_event_encoding(uuid, text, text, bigint, jsonb, jsonb, timestamptz);
      DROP TABLE es_audit_anchors, es_audit_anchored_heads;
      DELETE FROM es_schema_migrations WHERE version = 2;`);
    await log.store.close();
    log.store = await PostgresEventStore.connect({ connectionString: log.db.url });
    const migrated = await log.sql(`SELECT stream, revision, encode(hash, 'hex') AS hash FROM es_events ORDER BY stream, revision`);
    expect(migrated.rows).toEqual(written.rows);
    expect(await log.verify()).toMatchObject({ ok: true, events: 18, streams: 4 });
    // And appends continue the migrated chains.
    await log.store.appendToStream('account-c', [ev('Deposited', { amount: 5 })], { expectedRevision: 4n });
    expect(await log.verify()).toMatchObject({ ok: true, events: 19 });
  });
});
