import { execFile } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { Pool } from 'pg';
import type { NewEvent } from '../../eventstore/event-store';
import { GENESIS_HASH, type ChainVerification } from '../../eventstore/hash-chain';
import { anchorHash, headLine } from '../../eventstore/postgres/hash-chain-audit';
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

  // Issue 23, item 7: the recorded time and the place in the log were outside the chain; editing recorded_at changed a
  // basis=recorded balance while verify still said ok, for the stream and for the whole log.
  test('the recorded time edited (recorded_at): caught at that event, for the stream and for the whole log', async () => {
    const log = await freshLog();
    const stored = await log.hashOf('account-b', 2);
    const edited = await log.sql(
      `UPDATE es_events SET recorded_at = recorded_at - interval '3 days' WHERE stream = 'account-b' AND revision = 2`,
    );
    expect(edited.rowCount).toBe(1);
    const expected = { stream: 'account-b', revision: '2', problem: 'hash_mismatch', found: stored };
    const one = await log.verify('account-b');
    expect(one).toMatchObject({ ok: false, firstBroken: expected });
    const all = await log.verify();
    expect(all).toMatchObject({ ok: false, firstBroken: expected });
    expect(all.broken).toHaveLength(1);
    // Below the millisecond too (the store stamps whole milliseconds; the chain keeps microseconds).
    const subtle = await freshLog();
    await subtle.sql(
      `UPDATE es_events SET recorded_at = recorded_at + interval '1 microsecond' WHERE stream = 'account-c' AND revision = 1`,
    );
    expect((await subtle.verify('account-c')).firstBroken).toMatchObject({ stream: 'account-c', revision: '1', problem: 'hash_mismatch' });
  });

  test('the place in the log edited (transaction_id, position renumbered, positions swapped): caught, for each stream and the whole log', async () => {
    const log = await freshLog();
    // account-a@1 moved earlier in the log: its transaction id set to the one before the first append's.
    await log.sql(`UPDATE es_events SET transaction_id = ((SELECT min(transaction_id)::text::bigint FROM es_events) - 1)::text::xid8
                   WHERE stream = 'account-a' AND revision = 1`);
    // account-b@3 moved to the end of the log: a new position from the sequence (the only update an identity column takes).
    await log.sql(`UPDATE es_events SET position = DEFAULT WHERE stream = 'account-b' AND revision = 3`);
    // account-c@3 and @4 (one append: one transaction) swap places in the log.
    await log.sql(`ALTER TABLE es_events ALTER COLUMN position SET GENERATED BY DEFAULT`);
    await log.sql(`
      WITH two AS (SELECT position FROM es_events WHERE stream = 'account-c' AND revision IN (3, 4)),
      bounds AS (SELECT min(position) AS lo, max(position) AS hi FROM two)
      UPDATE es_events e SET position = CASE WHEN e.position = b.lo THEN -b.hi ELSE -b.lo END
      FROM bounds b WHERE e.position IN (b.lo, b.hi)`);
    await log.sql(`UPDATE es_events SET position = -position WHERE position < 0`);
    const order = await log.sql(
      `SELECT revision::int AS revision FROM es_events WHERE stream = 'account-c' ORDER BY transaction_id, position`,
    );
    expect(order.rows.map((r) => r.revision)).toEqual([0, 1, 2, 4, 3]); // the log now delivers 4 before 3

    const expected = [
      ['account-a', '1', 'hash_mismatch'],
      ['account-b', '3', 'hash_mismatch'],
      ['account-c', '3', 'hash_mismatch'],
    ];
    const all = await log.verify();
    expect(all.ok).toBe(false);
    // account-c@4 is that stream's last event: its head no longer names its position either.
    expect(all.broken.map((b) => [b.stream, b.revision, b.problem])).toEqual([...expected, ['account-c', '4', 'head_mismatch']]);
    for (const [stream, revision, problem] of expected) {
      const one = await log.verify(stream);
      expect(one.ok).toBe(false);
      expect(one.firstBroken).toMatchObject({ stream, revision, problem });
    }
    expect(await log.verify('transfer-t1')).toMatchObject({ ok: true });
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
      `UPDATE es_streams s SET revision = 3, last_hash = e.hash, last_position = e.position FROM es_events e
       WHERE s.stream = 'account-a' AND e.stream = s.stream AND e.revision = 3`,
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
        SELECT position,
               es_chain(decode(repeat('00', 32), 'hex'),
                        es_event_encoding_v2(id, type, stream, revision, data, metadata, occurred_at, recorded_at, transaction_id, position))
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

/** The v1 chains as migration 2 computed them (and the v1 appends wrote them). */
const V1_BACKFILL = `
  WITH chained AS (
    SELECT position, es_chain(decode(repeat('00', 32), 'hex'), es_event_encoding(id, type, stream, revision, data, metadata, occurred_at))
             OVER (PARTITION BY stream ORDER BY revision) AS hash
    FROM es_events)
  UPDATE es_events e SET hash = chained.hash FROM chained WHERE e.position = chained.position;
  UPDATE es_streams s SET last_hash = e.hash FROM es_events e WHERE e.stream = s.stream AND e.revision = s.revision;`;

/** Back to the schema of the previous release (migrations 1-3: v1 chains), with the log's v1 hashes as it had them. */
async function downgradeToV1(log: Log): Promise<void> {
  await log.store.close();
  await log.sql(`
    ALTER TABLE es_events DROP COLUMN hash;
    ALTER TABLE es_events RENAME COLUMN hash_v1 TO hash;
    ALTER TABLE es_streams DROP COLUMN last_position;
    ALTER TABLE es_audit_anchored_heads DROP COLUMN form;
    DROP TABLE es_audit_v1_heads;
    DROP FUNCTION es_event_encoding_v2(uuid, text, text, bigint, jsonb, jsonb, timestamptz, timestamptz, xid8, bigint);
    DROP FUNCTION es_next_position();
    DELETE FROM es_schema_migrations WHERE version = 4;
    ${V1_BACKFILL}`);
}

/** An anchor as the previous release wrote it (v1 heads), computed here as its anchor() did. */
async function v1Anchor(log: Log): Promise<string> {
  await log.sql(
    `INSERT INTO es_audit_anchored_heads (stream, revision, hash, anchor_id) SELECT stream, revision, last_hash, 1 FROM es_streams`,
  );
  const heads = await log.pool.query<{ stream: string; revision: string; hash: Buffer | null }>(
    `SELECT stream, revision::text AS revision, hash FROM es_audit_anchored_heads ORDER BY stream COLLATE "C"`,
  );
  const sha = createHash('sha256');
  for (const h of heads.rows) sha.update(headLine(h.stream, h.revision, h.hash), 'utf8');
  const headsHash = sha.digest();
  const events = heads.rows.reduce((n, h) => n + Number(h.revision) + 1, 0);
  const anchoredAt = new Date(Math.floor(Date.now()));
  const hash = anchorHash(GENESIS_HASH, {
    anchorId: '1',
    anchoredAt: anchoredAt.toISOString(),
    streams: heads.rows.length,
    events,
    headsHash,
  });
  await log.sql(
    `INSERT INTO es_audit_anchors (anchor_id, anchored_at, streams, events, heads_hash, previous_hash, anchor_hash) VALUES (1, $1, $2, $3, $4, $5, $6)`,
    [anchoredAt, heads.rows.length, events, headsHash, GENESIS_HASH, hash],
  );
  return hash.toString('hex');
}

describe('hash chain: existing databases get their chains by the migrations', () => {
  test('migrations 2 and 4 fill every stream in revision order with exactly the hashes the append writes', async () => {
    const log = await freshLog();
    const written = await log.sql(`SELECT stream, revision, encode(hash, 'hex') AS hash FROM es_events ORDER BY stream, revision`);
    const heads = await log.sql(`SELECT stream, revision, encode(last_hash, 'hex') AS hash, last_position FROM es_streams ORDER BY stream`);
    // Back to the schema before the chain (migration 1 only), as a database of an older release has it.
    await log.store.close();
    await log.sql(`
      ALTER TABLE es_events DROP COLUMN hash, DROP COLUMN hash_v1;
      ALTER TABLE es_streams DROP COLUMN last_hash, DROP COLUMN last_position;
      DROP AGGREGATE es_chain(bytea, bytea);
      DROP FUNCTION es_chain_step(bytea, bytea, bytea);
      DROP FUNCTION es_chain_hashes(bytea, bytea[]);
      DROP FUNCTION es_event_encoding(uuid, text, text, bigint, jsonb, jsonb, timestamptz);
      DROP FUNCTION es_event_encoding_v2(uuid, text, text, bigint, jsonb, jsonb, timestamptz, timestamptz, xid8, bigint);
      DROP FUNCTION es_next_position();
      DROP TABLE es_audit_anchors, es_audit_anchored_heads, es_audit_v1_heads;
      DELETE FROM es_schema_migrations WHERE version IN (2, 4);`);
    log.store = await PostgresEventStore.connect({ connectionString: log.db.url });
    const migrated = await log.sql(`SELECT stream, revision, encode(hash, 'hex') AS hash FROM es_events ORDER BY stream, revision`);
    expect(migrated.rows).toEqual(written.rows);
    expect(
      (await log.sql(`SELECT stream, revision, encode(last_hash, 'hex') AS hash, last_position FROM es_streams ORDER BY stream`)).rows,
    ).toEqual(heads.rows);
    const report = await log.verify();
    expect(report).toMatchObject({ ok: true, events: 18, streams: 4, form: 'v2', v1Links: 18 });
    // And appends continue the migrated chains.
    await log.store.appendToStream('account-c', [ev('Deposited', { amount: 5 })], { expectedRevision: 4n });
    await log.store.appendToStream('account-c', [ev('Deposited', { amount: 6 }), ev('Deposited', { amount: 7 })], { expectedRevision: 5n });
    expect(await log.verify()).toMatchObject({ ok: true, events: 21, v1Links: 18 });
  });

  test('from v1 chains with an anchor: the v1 hashes stay verified, the old anchor still holds, and nothing found before is laundered', async () => {
    const log = await freshLog();
    await downgradeToV1(log);
    const v1Head = (await log.sql(`SELECT encode(hash, 'hex') AS hash FROM es_events WHERE stream = 'account-b' AND revision = 4`)).rows[0]!
      .hash;
    const oldAnchor = await v1Anchor(log);
    // Tampered while the chain was v1: the v1 verifier would have said hash_mismatch at account-a@2.
    await log.sql(`UPDATE es_events SET data = jsonb_set(data, '{amount}', '1') WHERE stream = 'account-a' AND revision = 2`);

    log.store = await PostgresEventStore.connect({ connectionString: log.db.url }); // migration 4 runs
    const v1Kept = await log.sql(`SELECT encode(hash_v1, 'hex') AS hash FROM es_events WHERE stream = 'account-b' AND revision = 4`);
    expect(v1Kept.rows[0]!.hash).toBe(v1Head);
    expect(await log.hashOf('account-b', 4)).not.toBe(v1Head); // the link itself is v2 now

    // The migration recomputed the v2 links over the edited event, but the v1 link still shows the edit.
    const report = await log.verify();
    expect(report).toMatchObject({ ok: false, events: 18, form: 'v2', v1Links: 18, anchor: { anchorId: '1', anchorHash: oldAnchor } });
    expect(report.broken).toEqual([expect.objectContaining({ stream: 'account-a', revision: '2', problem: 'hash_mismatch', form: 'v1' })]);
    // The anchor hash kept outside the database before the migration is still found in the anchors' chain.
    expect((await log.store.chainAudit().verify({ stream: 'account-b', anchorHash: oldAnchor })).ok).toBe(true);

    // Anchoring again records v2 heads, chained from the old anchor.
    await log.store.appendToStream('account-b', [ev('Deposited', { amount: 5 })], { expectedRevision: 4n });
    const anchored = await log.store.chainAudit().anchor();
    expect(anchored.anchor).toMatchObject({ anchorId: '2', streams: 4, events: 19 });
    expect((await log.sql(`SELECT DISTINCT form FROM es_audit_anchored_heads`)).rows).toEqual([{ form: 2 }]);
    const after = await log.store.chainAudit().verify({ anchorHash: oldAnchor });
    expect(after.broken).toEqual([expect.objectContaining({ stream: 'account-a', revision: '2', form: 'v1' })]);
    expect(after.anchor).toMatchObject({ anchorId: '2' });
  });

  test('after the migration: a v1 hash edited, a v1 head removed, or a pre-migration event rewritten in v2 to the end: caught', async () => {
    const log = await freshLog();
    await downgradeToV1(log);
    const oldAnchor = await v1Anchor(log);
    log.store = await PostgresEventStore.connect({ connectionString: log.db.url });
    expect(await log.verify()).toMatchObject({ ok: true, v1Links: 18 });

    // A careful tamperer edits account-b@1 and rewrites its v2 chain and head to the end: the v1 link shows it, and the
    // anchor made before the migration (v1) still names the v1 hash it recorded.
    await log.sql(`UPDATE es_events SET data = jsonb_set(data, '{amount}', '1') WHERE stream = 'account-b' AND revision = 1`);
    await log.sql(`
      WITH chained AS (
        SELECT position,
               es_chain(decode(repeat('00', 32), 'hex'),
                        es_event_encoding_v2(id, type, stream, revision, data, metadata, occurred_at, recorded_at, transaction_id, position))
                 OVER (ORDER BY revision) AS hash
        FROM es_events WHERE stream = 'account-b')
      UPDATE es_events e SET hash = chained.hash FROM chained WHERE e.position = chained.position`);
    await log.sql(
      `UPDATE es_streams s SET last_hash = e.hash FROM es_events e WHERE s.stream = 'account-b' AND e.stream = s.stream AND e.revision = s.revision`,
    );
    expect((await log.verify('account-b')).broken).toEqual([
      expect.objectContaining({ stream: 'account-b', revision: '1', problem: 'hash_mismatch', form: 'v1' }),
    ]);
    // ...and then rewrites the v1 hashes and the v1 head too: the old anchor names the stream.
    await log.sql(`
      WITH chained AS (
        SELECT position, es_chain(decode(repeat('00', 32), 'hex'), es_event_encoding(id, type, stream, revision, data, metadata, occurred_at))
                 OVER (ORDER BY revision) AS hash
        FROM es_events WHERE stream = 'account-b')
      UPDATE es_events e SET hash_v1 = chained.hash FROM chained WHERE e.position = chained.position`);
    await log.sql(
      `UPDATE es_audit_v1_heads h SET hash = e.hash_v1 FROM es_events e WHERE h.stream = 'account-b' AND e.stream = h.stream AND e.revision = h.revision`,
    );
    expect((await log.verify('account-b')).broken).toEqual([
      expect.objectContaining({ stream: 'account-b', revision: '4', problem: 'anchor_mismatch', form: 'v1' }),
    ]);
    expect((await log.store.chainAudit().anchor()).refused).toEqual([expect.objectContaining({ stream: 'account-b', form: 'v1' })]);
    expect((await log.store.chainAudit().verify({ anchorHash: oldAnchor })).ok).toBe(false);

    // Dropping a stream's v1 head, or nulling a v1 hash, does not hide the v1 links either.
    await log.sql(`DELETE FROM es_audit_v1_heads WHERE stream = 'account-c'`);
    await log.sql(`UPDATE es_events SET hash_v1 = NULL WHERE stream = 'transfer-t1' AND revision = 1`);
    const all = await log.verify();
    expect(all.broken.map((b) => [b.stream, b.revision, b.problem, b.form])).toEqual(
      expect.arrayContaining([
        ['account-c', '0', 'head_mismatch', 'v1'],
        ['transfer-t1', '1', 'missing_hash', 'v1'],
      ]),
    );
  });
});
