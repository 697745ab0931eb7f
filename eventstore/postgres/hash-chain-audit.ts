import { createHash } from 'node:crypto';
import type { Pool, PoolClient, QueryResult } from 'pg';
import {
  BreakCollector,
  encodingFromParts,
  GENESIS_HASH,
  hex,
  StreamChainChecker,
  verifyStreamLinks,
  type AnchorResult,
  type AnchorSummary,
  type ChainAudit,
  type ChainBreak,
  type ChainLink,
  type ChainVerification,
  type VerifyOptions,
} from '../hash-chain';

/**
 * Verifies the PostgreSQL event store's hash chains and writes anchors (see eventstore/hash-chain.ts, migrations 2
 * and 4, and docs/audit.md).
 *
 * verify() reads, in one REPEATABLE READ READ ONLY transaction (one consistent snapshot; read-only, so it takes no
 * transaction id and holds no subscriber back):
 * 1. every event in (stream, revision) order, in pages, recomputing each v2 hash in TypeScript from the stored previous
 *    hash and the event as the database keeps it (data::text and metadata::text are already canonical jsonb text; the
 *    times, transaction id and position are formatted by the database): a missing revision, a missing hash or a hash
 *    that does not match is that stream's first broken link. Events from before migration 4 are also checked against
 *    their v1 hashes, up to the v1 head recorded by the migration (the anchors made before it point at those);
 * 2. each stream's head (revision, last hash and last position) against its last event, and heads without events;
 * 3. the anchors: their own chain, the latest anchor's heads hash against the anchored heads, and every anchored head
 *    against the log now (v1 anchored heads against the v1 hashes): a stream that existed at the anchor and is gone,
 *    shorter, or rewritten is reported.
 *
 * anchor() records the heads as of now (an anchor): refused when a head lost something the previous anchor recorded
 * (so an anchor never launders a deletion), skipped when nothing changed.
 */

const PAGE = 5_000;
const HEAD_CHECK_BATCH = 2_000;
/** Session advisory lock: one anchorer at a time. */
const ANCHOR_LOCK = 7_412_013;

interface EventPageRow {
  stream: string;
  revision: string;
  id: string;
  type: string;
  data: string;
  metadata: string;
  /** YYYY-MM-DDTHH:MM:SS.ffffffZ (v2); its first 23 characters and Z are the v1 form (to_char MS truncates too). */
  occurred_at: string;
  recorded_at: string;
  /** <transaction_id>.<position> */
  place: string;
  position: string;
  hash: Buffer | null;
  hash_v1: Buffer | null;
  /** The stream's v1 head (migration 4), on the first row of each stream in a page; null when it has none. */
  v1_revision: string | null;
  v1_hash: Buffer | null;
  first_of_stream: boolean;
}

interface V1Head {
  revision: string;
  hash: Buffer | null;
}

/** The v1 form of a time the page has in the v2 form (microseconds): milliseconds, truncated as to_char's MS does. */
const millis = (micros: string) => `${micros.slice(0, -4)}Z`;

interface AnchorRow {
  anchor_id: string;
  anchored_at: Date;
  streams: string;
  events: string;
  heads_hash: Buffer;
  previous_hash: Buffer;
  anchor_hash: Buffer;
}

/** One head line of an anchor's heads hash. Stream names cannot hold tabs or newlines (eventstore/validation.ts). */
export const headLine = (stream: string, revision: string, hash: Buffer | null) => `${stream}\t${revision}\t${hex(hash)}\n`;

/** SHA-256(previous anchor hash ‖ its fields), chaining anchors from 32 zero bytes. */
export function anchorHash(
  previous: Buffer,
  a: { anchorId: string; anchoredAt: string; streams: number | string; events: number | string; headsHash: Buffer },
): Buffer {
  return createHash('sha256')
    .update(previous)
    .update(`${a.anchorId}\t${a.anchoredAt}\t${a.streams}\t${a.events}\t${a.headsHash.toString('hex')}`, 'utf8')
    .digest();
}

const summary = (a: AnchorRow): AnchorSummary => ({
  anchorId: a.anchor_id,
  anchoredAt: a.anchored_at.toISOString(),
  streams: Number(a.streams),
  events: Number(a.events),
  headsHash: a.heads_hash.toString('hex'),
  anchorHash: a.anchor_hash.toString('hex'),
});

export class PostgresChainAudit implements ChainAudit {
  /** The hash covers the recorded time and the place in the log: the append statement knows both when it hashes. */
  readonly coversStoreStamps = true;

  constructor(private readonly pool: Pool) {}

  async linksOf(events: readonly { stream: string; revision: bigint }[]): Promise<(ChainLink | undefined)[]> {
    if (events.length === 0) return [];
    const result = await this.pool.query<{ hash: Buffer | null; previous: Buffer | null; found: boolean }>(
      `SELECT e.hash, CASE WHEN t.revision = 0 THEN decode(repeat('00', 32), 'hex') ELSE p.hash END AS previous, e.stream IS NOT NULL AS found
       FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS t(stream, revision, ord)
       LEFT JOIN es_events e ON e.stream = t.stream AND e.revision = t.revision
       LEFT JOIN es_events p ON p.stream = t.stream AND p.revision = t.revision - 1
       ORDER BY t.ord`,
      [events.map((e) => e.stream), events.map((e) => e.revision.toString())],
    );
    return result.rows.map((r) =>
      r.found ? { hash: r.hash ? hex(r.hash) : null, previousHash: r.previous ? hex(r.previous) : null, hashForm: 'v2' } : undefined,
    );
  }

  async verify(options: VerifyOptions = {}): Promise<ChainVerification> {
    const started = performance.now();
    const breaks = new BreakCollector(options.maxProblems ?? 20);
    /** Walk order of each stream with a problem, so the first broken link is the first in the order verified. */
    const order = new Map<string, number>();
    const client = await this.pool.connect();
    let events = 0;
    let streams = 0;
    let v1Links = 0;
    let anchor: AnchorSummary | undefined;
    let lastHash: string | undefined;
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      await client.query('SET LOCAL statement_timeout = 0');

      // 1. The chains, stream by stream.
      let heads: { stream: string; revision: string; hash: string | null; position: string | null }[] = [];
      const flushHeads = async () => {
        if (heads.length === 0) return;
        await checkHeads(client, heads, breaks);
        heads = [];
      };
      let current: { stream: string; rows: EventPageRow[]; v1?: V1Head | null } | undefined;
      const finishStream = async () => {
        if (!current) return;
        const { stream, rows } = current;
        order.set(stream, streams);
        streams += 1;
        const parts = (r: EventPageRow) => ({
          id: r.id,
          type: r.type,
          stream: r.stream,
          revision: r.revision,
          dataJson: r.data,
          metadataJson: r.metadata,
          occurredAt: r.occurred_at,
          recordedAt: r.recorded_at,
          position: r.place,
        });
        const links = verifyStreamLinks(
          stream,
          rows.map((r) => ({ revision: BigInt(r.revision), hash: r.hash, encoding: encodingFromParts(parts(r), 'v2') })),
          breaks,
        );
        events += links.count;
        v1Links += checkV1Links(stream, rows, current.v1 ?? null, breaks, (r) =>
          encodingFromParts({ ...parts(r), occurredAt: millis(r.occurred_at) }, 'v1'),
        );
        if (options.stream !== undefined) lastHash = links.lastHash?.toString('hex');
        const last = rows[rows.length - 1]!;
        heads.push({
          stream,
          revision: String(links.lastRevision),
          hash: links.lastHash ? links.lastHash.toString('hex') : null,
          position: last.revision === String(links.lastRevision) ? last.position : null,
        });
        current = undefined;
        if (heads.length >= HEAD_CHECK_BATCH) await flushHeads();
      };
      // Keyset pages over the (stream, revision) unique index. A stream's events are kept until the stream ends (a
      // stream longer than memory allows would need its chain carried across pages; accounts are snapshotted long before).
      // The next page is asked for before this one is hashed, so the database and this process work at the same time.
      const fetchPage = (after: [string, string] | undefined): Promise<QueryResult<EventPageRow>> => {
        const params: unknown[] = [PAGE];
        const where: string[] = [];
        if (options.stream !== undefined) {
          params.push(options.stream);
          where.push(`stream = $${params.length}`);
        }
        if (after) {
          params.push(after[0], after[1]);
          where.push(`(stream, revision) > ($${params.length - 1}, $${params.length}::bigint)`);
        }
        return client.query<EventPageRow>(
          // The v1 head (migration 4) is looked up once per stream and page: on the stream's first row in the page.
          `SELECT p.*, h.revision::text AS v1_revision, h.hash AS v1_hash
           FROM (SELECT stream, revision::text AS revision, id::text AS id, type, data::text AS data, metadata::text AS metadata,
                        to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS occurred_at,
                        to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS recorded_at,
                        transaction_id::text || '.' || position::text AS place, position::text AS position, hash, hash_v1,
                        lag(stream) OVER (ORDER BY es_events.stream, es_events.revision) IS DISTINCT FROM stream AS first_of_stream,
                        es_events.stream AS order_stream, es_events.revision AS order_revision
                 FROM es_events ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
                 ORDER BY es_events.stream, es_events.revision LIMIT $1) p
           LEFT JOIN LATERAL (SELECT v.revision, v.hash FROM es_audit_v1_heads v WHERE p.first_of_stream AND v.stream = p.order_stream) h ON true
           ORDER BY p.order_stream, p.order_revision`,
          params,
        );
      };
      let next: Promise<QueryResult<EventPageRow>> | undefined = fetchPage(undefined);
      while (next) {
        const page: QueryResult<EventPageRow> = await next;
        const last = page.rows[page.rows.length - 1];
        next = last && page.rows.length === PAGE ? fetchPage([last.stream, last.revision]) : undefined;
        for (const row of page.rows) {
          if (current && current.stream !== row.stream) await finishStream();
          if (!current) current = { stream: row.stream, rows: [] };
          if (row.first_of_stream && current.v1 === undefined)
            current.v1 = row.v1_revision === null ? null : { revision: row.v1_revision, hash: row.v1_hash };
          current.rows.push(row);
        }
        if (breaks.full) {
          await next?.catch(() => undefined); // a page read ahead and no longer needed: its result and error are moot
          break;
        }
      }
      await finishStream();
      await flushHeads();

      // Heads without any event (their events deleted).
      const emptyHeads = await client.query<{ stream: string; revision: string; last_hash: Buffer | null }>(
        `SELECT stream, revision::text AS revision, last_hash FROM es_streams s
         WHERE ${options.stream !== undefined ? 's.stream = $1 AND' : ''} NOT EXISTS (SELECT 1 FROM es_events e WHERE e.stream = s.stream)
         ORDER BY stream LIMIT 100`,
        options.stream !== undefined ? [options.stream] : [],
      );
      for (const h of emptyHeads.rows) {
        breaks.add({
          stream: h.stream,
          revision: '0',
          problem: 'missing_event',
          expected: `events 0..${h.revision} (head ${hex(h.last_hash)})`,
          found: 'no events',
        });
      }
      const emptyV1Heads = await client.query<{ stream: string; revision: string; hash: Buffer | null }>(
        `SELECT stream, revision::text AS revision, hash FROM es_audit_v1_heads h
         WHERE ${options.stream !== undefined ? 'h.stream = $1 AND' : ''} NOT EXISTS (SELECT 1 FROM es_events e WHERE e.stream = h.stream)
         ORDER BY stream LIMIT 100`,
        options.stream !== undefined ? [options.stream] : [],
      );
      for (const h of emptyV1Heads.rows) {
        breaks.add({
          stream: h.stream,
          revision: '0',
          problem: 'missing_event',
          expected: `events 0..${h.revision} (v1 head ${hex(h.hash)})`,
          found: 'no events',
          form: 'v1',
        });
      }

      // 3. Anchors.
      anchor = await this.checkAnchors(client, breaks, options);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined); // the error below is the one to report; a failed rollback dies with its connection
      throw error;
    } finally {
      client.release();
    }
    const rank = (b: ChainBreak) => order.get(b.stream) ?? Number.MAX_SAFE_INTEGER;
    const broken = [...breaks.broken].sort(
      (a, b) =>
        rank(a) - rank(b) ||
        (a.stream < b.stream ? -1 : a.stream > b.stream ? 1 : 0) ||
        Number(a.revision ?? -1) - Number(b.revision ?? -1),
    );
    return {
      ok: broken.length === 0,
      events,
      streams,
      ms: Math.round(performance.now() - started),
      firstBroken: broken[0],
      broken,
      anchor,
      ...(lastHash !== undefined ? { lastHash } : {}),
      form: 'v2',
      ...(v1Links > 0 ? { v1Links } : {}),
    };
  }

  private async checkAnchors(client: PoolClient, breaks: BreakCollector, options: VerifyOptions): Promise<AnchorSummary | undefined> {
    const anchors = await client.query<AnchorRow>('SELECT * FROM es_audit_anchors ORDER BY anchor_id');
    let previous = GENESIS_HASH;
    let expectedId = 1n;
    for (const a of anchors.rows) {
      const recomputed = anchorHash(previous, {
        anchorId: a.anchor_id,
        anchoredAt: a.anchored_at.toISOString(),
        streams: a.streams,
        events: a.events,
        headsHash: a.heads_hash,
      });
      if (BigInt(a.anchor_id) !== expectedId) {
        breaks.add({
          stream: '(anchors)',
          revision: null,
          problem: 'anchor_chain',
          expected: `anchor #${expectedId}`,
          found: `anchor #${a.anchor_id}`,
        });
      } else if (!a.previous_hash.equals(previous) || !recomputed.equals(a.anchor_hash)) {
        breaks.add({
          stream: '(anchors)',
          revision: null,
          problem: 'anchor_chain',
          expected: `anchor #${a.anchor_id} hash ${recomputed.toString('hex')} after ${previous.toString('hex')}`,
          found: `${a.anchor_hash.toString('hex')} after ${a.previous_hash.toString('hex')}`,
        });
      }
      previous = a.anchor_hash;
      expectedId = BigInt(a.anchor_id) + 1n;
    }
    if (
      options.anchorHash !== undefined &&
      !anchors.rows.some((a) => a.anchor_hash.toString('hex') === options.anchorHash!.toLowerCase())
    ) {
      breaks.add({
        stream: '(anchors)',
        revision: null,
        problem: 'anchor_chain',
        expected: `an anchor with hash ${options.anchorHash}`,
        found: 'none',
      });
    }
    const latest = anchors.rows.at(-1);
    if (!latest) return undefined;

    if (options.stream === undefined) {
      // The anchored heads are what the latest anchor hashed.
      const { hash, streams, events } = await headsHash(client, 'es_audit_anchored_heads', 'hash');
      if (!hash.equals(latest.heads_hash) || streams !== Number(latest.streams) || events !== Number(latest.events)) {
        breaks.add({
          stream: '(anchors)',
          revision: null,
          problem: 'anchor_chain',
          expected: `anchor #${latest.anchor_id}: ${latest.streams} streams, ${latest.events} events, heads hash ${latest.heads_hash.toString('hex')}`,
          found: `anchored heads: ${streams} streams, ${events} events, heads hash ${hash.toString('hex')}`,
        });
      }
    }

    // Every anchored head must still be in the log: the stream there, at least as long, the same hash at that revision.
    const lost = await client.query<{
      stream: string;
      revision: string;
      hash: Buffer | null;
      anchor_id: string;
      head_revision: string | null;
      event_hash: Buffer | null;
      event_found: boolean;
      form: number;
    }>(
      // Anchored heads of form 1 (anchors made before migration 4) hold v1 hashes: checked against the v1 hashes kept.
      `SELECT a.stream, a.revision::text AS revision, a.hash, a.anchor_id::text AS anchor_id, s.revision::text AS head_revision,
              CASE WHEN a.form = 1 THEN e.hash_v1 ELSE e.hash END AS event_hash, e.stream IS NOT NULL AS event_found, a.form
       FROM es_audit_anchored_heads a
       LEFT JOIN es_streams s ON s.stream = a.stream
       LEFT JOIN es_events e ON e.stream = a.stream AND e.revision = a.revision
       WHERE ${options.stream !== undefined ? 'a.stream = $2 AND' : ''}
             (s.stream IS NULL OR s.revision < a.revision OR (CASE WHEN a.form = 1 THEN e.hash_v1 ELSE e.hash END) IS DISTINCT FROM a.hash)
       ORDER BY a.stream LIMIT $1`,
      options.stream !== undefined ? [100, options.stream] : [100],
    );
    for (const r of lost.rows) {
      const expected = `revision ${r.revision} with ${r.form === 1 ? 'v1 hash' : 'hash'} ${hex(r.hash)} (anchor #${r.anchor_id})`;
      const found =
        r.head_revision === null
          ? 'no such stream'
          : BigInt(r.head_revision) < BigInt(r.revision)
            ? `the stream ends at revision ${r.head_revision}`
            : r.event_found
              ? `${r.form === 1 ? 'v1 hash' : 'hash'} ${hex(r.event_hash)} at revision ${r.revision}`
              : `no event at revision ${r.revision}`;
      breaks.add({
        stream: r.stream,
        revision: r.revision,
        problem: 'anchor_mismatch',
        expected,
        found,
        ...(r.form === 1 ? { form: 'v1' as const } : {}),
      });
    }
    return summary(latest);
  }

  /**
   * Anchors every stream head as of now. Refused (nothing written) when a head lost something the previous anchor
   * recorded; skipped when no head changed since. Runs under a session advisory lock (one anchorer at a time), in one
   * REPEATABLE READ transaction, so the heads hashed are one snapshot.
   */
  async anchor(options: { skipIfWithinMs?: number } = {}): Promise<AnchorResult> {
    const client = await this.pool.connect();
    try {
      await client.query('SELECT pg_advisory_lock($1)', [ANCHOR_LOCK]);
      try {
        await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
        try {
          await client.query('SET LOCAL statement_timeout = 0');
          const result = await this.anchorInTransaction(client, options.skipIfWithinMs);
          await client.query(result.anchor ? 'COMMIT' : 'ROLLBACK');
          return result;
        } catch (error) {
          await client.query('ROLLBACK').catch(() => undefined); // the error below is the one to report; a failed rollback dies with its connection
          throw error;
        }
      } finally {
        await client.query('SELECT pg_advisory_unlock($1)', [ANCHOR_LOCK]).catch(() => undefined); // a session lock ends with its session anyway
      }
    } finally {
      client.release();
    }
  }

  private async anchorInTransaction(client: PoolClient, skipIfWithinMs?: number): Promise<AnchorResult> {
    if (skipIfWithinMs !== undefined) {
      const recent = await client.query(
        `SELECT 1 FROM es_audit_anchors WHERE anchored_at > clock_timestamp() - make_interval(secs => $1::double precision / 1000) LIMIT 1`,
        [skipIfWithinMs],
      );
      if (recent.rows.length > 0) return { recent: true };
    }
    // Form 1 (anchored before migration 4, v1 hashes): the event at the anchored revision must still have that v1 hash.
    const lost = await client.query<{
      stream: string;
      revision: string;
      hash: Buffer | null;
      head_revision: string | null;
      head_hash: Buffer | null;
      form: number;
    }>(
      `SELECT a.stream, a.revision::text AS revision, a.hash, s.revision::text AS head_revision,
              CASE WHEN a.form = 1 THEN (SELECT e.hash_v1 FROM es_events e WHERE e.stream = a.stream AND e.revision = a.revision) ELSE s.last_hash END AS head_hash,
              a.form
       FROM es_audit_anchored_heads a LEFT JOIN es_streams s ON s.stream = a.stream
       WHERE s.stream IS NULL OR s.revision < a.revision
          OR (a.form <> 1 AND s.revision = a.revision AND s.last_hash IS DISTINCT FROM a.hash)
          OR (a.form = 1 AND (SELECT e.hash_v1 FROM es_events e WHERE e.stream = a.stream AND e.revision = a.revision) IS DISTINCT FROM a.hash)
       ORDER BY a.stream LIMIT 100`,
    );
    if (lost.rows.length > 0) {
      return {
        refused: lost.rows.map((r) => ({
          stream: r.stream,
          revision: r.revision,
          problem: 'anchor_mismatch',
          expected: `revision ${r.revision} with ${r.form === 1 ? 'v1 hash' : 'hash'} ${hex(r.hash)} (anchored)`,
          found:
            r.head_revision === null
              ? 'no such stream'
              : r.form === 1
                ? `v1 hash ${hex(r.head_hash)} at revision ${r.revision} (head at revision ${r.head_revision})`
                : `head at revision ${r.head_revision} with hash ${hex(r.head_hash)}`,
          ...(r.form === 1 ? { form: 'v1' as const } : {}),
        })),
      };
    }
    const changed = await client.query(
      `INSERT INTO es_audit_anchored_heads (stream, revision, hash, anchor_id)
       SELECT s.stream, s.revision, s.last_hash, (SELECT coalesce(max(anchor_id), 0) + 1 FROM es_audit_anchors) FROM es_streams s
       ON CONFLICT (stream) DO UPDATE SET revision = excluded.revision, hash = excluded.hash, anchor_id = excluded.anchor_id, form = 2
       WHERE (es_audit_anchored_heads.revision, es_audit_anchored_heads.hash, es_audit_anchored_heads.form) IS DISTINCT FROM (excluded.revision, excluded.hash, 2)`,
    );
    const previous = await client.query<AnchorRow>('SELECT * FROM es_audit_anchors ORDER BY anchor_id DESC LIMIT 1');
    const prev = previous.rows[0];
    if ((changed.rowCount ?? 0) === 0 && prev) return { unchanged: true };
    const { hash, streams, events } = await headsHash(client, 'es_audit_anchored_heads', 'hash');
    const anchorId = String(prev ? BigInt(prev.anchor_id) + 1n : 1n);
    const at = await client.query<{ at: Date }>(`SELECT date_trunc('milliseconds', clock_timestamp()) AS at`);
    const anchoredAt = at.rows[0]!.at;
    const previousHash = prev ? prev.anchor_hash : GENESIS_HASH;
    const own = anchorHash(previousHash, { anchorId, anchoredAt: anchoredAt.toISOString(), streams, events, headsHash: hash });
    const inserted = await client.query<AnchorRow>(
      `INSERT INTO es_audit_anchors (anchor_id, anchored_at, streams, events, heads_hash, previous_hash, anchor_hash)
       VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *`,
      [anchorId, anchoredAt, streams, events, hash, previousHash, own],
    );
    return { anchor: summary(inserted.rows[0]!) };
  }
}

/** Compares the last event of each walked stream with its head row. */
async function checkHeads(
  client: PoolClient,
  heads: { stream: string; revision: string; hash: string | null; position: string | null }[],
  breaks: BreakCollector,
): Promise<void> {
  const result = await client.query<{
    stream: string;
    revision: string;
    hash: string | null;
    position: string | null;
    head_revision: string | null;
    head_hash: Buffer | null;
    head_position: string | null;
  }>(
    `SELECT t.stream, t.revision, t.hash, t.position, s.revision::text AS head_revision, s.last_hash AS head_hash,
            s.last_position::text AS head_position
     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS t(stream, revision, hash, position)
     LEFT JOIN es_streams s ON s.stream = t.stream
     WHERE s.revision IS DISTINCT FROM t.revision::bigint OR s.last_hash IS DISTINCT FROM decode(t.hash, 'hex')
        OR s.last_position IS DISTINCT FROM t.position::bigint`,
    [heads.map((h) => h.stream), heads.map((h) => h.revision), heads.map((h) => h.hash), heads.map((h) => h.position)],
  );
  for (const r of result.rows) {
    const position = (p: string | null) =>
      r.hash !== null && r.head_hash !== null && r.head_revision === r.revision ? ` at position ${p ?? 'none'}` : '';
    breaks.add({
      stream: r.stream,
      revision: r.head_revision ?? r.revision,
      problem: 'head_mismatch',
      expected: `head at revision ${r.revision} with hash ${r.hash ?? 'none'}${position(r.position)} (the last event)`,
      found:
        r.head_revision === null
          ? 'no head row'
          : `head at revision ${r.head_revision} with hash ${hex(r.head_hash)}${position(r.head_position)}`,
    });
  }
}

/**
 * SHA-256 over every head line of `table` in byte order of the stream names (the table's primary key is ordered
 * that way: COLLATE "C"), in keyset pages; with the number of streams and of events (sum of revision + 1).
 */
async function headsHash(
  client: PoolClient,
  table: 'es_audit_anchored_heads',
  hashColumn: 'hash',
): Promise<{ hash: Buffer; streams: number; events: number }> {
  const sha = createHash('sha256');
  let streams = 0;
  let events = 0;
  let after: string | undefined;
  for (;;) {
    const page = await client.query<{ stream: string; revision: string; hash: Buffer | null }>(
      `SELECT stream, revision::text AS revision, ${hashColumn} AS hash FROM ${table}
       ${after !== undefined ? 'WHERE stream COLLATE "C" > $2' : ''} ORDER BY stream COLLATE "C" LIMIT $1`,
      after !== undefined ? [PAGE * 4, after] : [PAGE * 4],
    );
    for (const r of page.rows) {
      sha.update(headLine(r.stream, r.revision, r.hash), 'utf8');
      streams += 1;
      events += Number(r.revision) + 1;
    }
    if (page.rows.length < PAGE * 4) break;
    after = page.rows[page.rows.length - 1]!.stream;
  }
  return { hash: sha.digest(), streams, events };
}

/**
 * The v1 links of one stream (migration 4 kept them, with the stream's v1 head as it was then): the events up to the
 * v1 head must carry v1 hashes that chain, the last one equal to the v1 head. Problems are tagged `form: 'v1'`.
 * A stream without a v1 head (written after the migration) must carry no v1 hash. Returns the events checked.
 */
function checkV1Links(
  stream: string,
  rows: readonly EventPageRow[],
  head: V1Head | null,
  breaks: BreakCollector,
  encoding: (row: EventPageRow) => string,
): number {
  if (head === null) {
    const stray = rows.find((r) => r.hash_v1 !== null);
    if (stray)
      breaks.add({
        stream,
        revision: stray.revision,
        problem: 'head_mismatch',
        expected: 'no v1 hash (the stream has no v1 head)',
        found: `v1 hash ${hex(stray.hash_v1)}`,
        form: 'v1',
      });
    return 0;
  }
  const headRevision = BigInt(head.revision);
  const checker = new StreamChainChecker(stream, breaks, false, 'v1');
  for (const r of rows) {
    if (BigInt(r.revision) > headRevision) break;
    checker.feed({ revision: BigInt(r.revision), hash: r.hash_v1, encoding: encoding(r) });
  }
  if (checker.lastRevision !== headRevision || !(checker.lastHash ?? Buffer.alloc(0)).equals(head.hash ?? Buffer.alloc(0))) {
    breaks.add({
      stream,
      revision: head.revision,
      problem: 'head_mismatch',
      expected: `v1 head at revision ${head.revision} with hash ${hex(head.hash)}`,
      found: `v1 links end at revision ${checker.lastRevision ?? 'none'} with hash ${hex(checker.lastHash)}`,
      form: 'v1',
    });
  }
  return checker.count;
}
