import type { Pool } from 'pg';
import { withTransaction } from '../../infra/pg-transaction';

/**
 * Every event's v2 link, in revision order per stream, and each head's last hash and position (migration 4; the
 * benchmark times it on a generated log).
 */
export const HASH_CHAIN_V2_BACKFILL = `
      WITH chained AS (
        SELECT position,
               es_chain(decode(repeat('00', 32), 'hex'),
                        es_event_encoding_v2(id, type, stream, revision, data, metadata, occurred_at, recorded_at, transaction_id, position))
                 OVER (PARTITION BY stream ORDER BY revision) AS hash
        FROM es_events
      )
      UPDATE es_events e SET hash = chained.hash FROM chained WHERE e.position = chained.position;
      UPDATE es_streams s SET last_hash = e.hash, last_position = e.position FROM es_events e WHERE e.stream = s.stream AND e.revision = s.revision;`;

/**
 * Versioned schema migrations for the PostgreSQL event store, applied in order at start under an
 * advisory lock (several processes may start at once). Applied versions are recorded; a version
 * is never edited once released: add a new one.
 */
const MIGRATIONS: { version: number; name: string; sql: string }[] = [
  {
    version: 1,
    name: 'events, stream heads, consumer groups',
    sql: `
      -- One row per stream: its current revision. Every append updates (or creates) this row in the
      -- same statement that inserts the events, so the expected-revision check and the write are atomic.
      CREATE TABLE es_streams (
        stream      text PRIMARY KEY,
        revision    bigint NOT NULL,
        updated_at  timestamptz NOT NULL DEFAULT now()
      );

      CREATE TABLE es_events (
        -- Global sequence, assigned at insert time (NOT commit order; see transaction_id).
        position        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        -- The writing transaction. Readers order by (transaction_id, position) and only read rows
        -- whose transaction is older than every transaction still running, so they never skip an
        -- event that commits after a later one became visible.
        transaction_id  xid8 NOT NULL DEFAULT pg_current_xact_id(),
        stream          text NOT NULL,
        revision        bigint NOT NULL,
        id              uuid NOT NULL,
        type            text NOT NULL,
        data            jsonb NOT NULL,
        metadata        jsonb NOT NULL,
        occurred_at     timestamptz NOT NULL,
        recorded_at     timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT es_events_stream_revision UNIQUE (stream, revision),
        CONSTRAINT es_events_id UNIQUE (id)
      );
      CREATE INDEX es_events_global_order ON es_events (transaction_id, position);
      CREATE INDEX es_events_type_order ON es_events (type, transaction_id, position);
      CREATE INDEX es_events_occurred_at ON es_events (occurred_at);

      CREATE TABLE es_consumer_groups (
        group_name          text PRIMARY KEY,
        stream_prefix       text,
        event_types         text[],
        checkpoint_commit   bigint NOT NULL,
        checkpoint_prepare  bigint NOT NULL,
        created_at          timestamptz NOT NULL DEFAULT now(),
        updated_at          timestamptz NOT NULL DEFAULT now()
      );

      CREATE TABLE es_parked_events (
        group_name           text NOT NULL REFERENCES es_consumer_groups (group_name) ON DELETE CASCADE,
        event_position       bigint NOT NULL REFERENCES es_events (position),
        error                text NOT NULL,
        attempts             integer NOT NULL,
        parked_at            timestamptz NOT NULL DEFAULT now(),
        replay_requested_at  timestamptz,
        PRIMARY KEY (group_name, event_position)
      );
    `,
  },
  {
    version: 2,
    name: 'hash chain: event hashes, stream heads keep their last hash, anchors',
    sql: `
      -- Tamper evidence (eventstore/hash-chain.ts): hash = SHA-256(previous hash in the stream || canonical encoding).
      ALTER TABLE es_events ADD COLUMN hash bytea;
      ALTER TABLE es_streams ADD COLUMN last_hash bytea;

      -- The canonical encoding: [id, type, stream, revision, data, metadata, occurredAt] as jsonb text, UTF-8.
      -- Reproduced byte for byte by canonicalEncoding() in eventstore/hash-chain.ts. Never edit: add a new migration.
      CREATE FUNCTION es_event_encoding(p_id uuid, p_type text, p_stream text, p_revision bigint, p_data jsonb, p_metadata jsonb, p_occurred_at timestamptz)
      RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $$
        SELECT convert_to(jsonb_build_array(p_id::text, p_type, p_stream, p_revision::text, p_data, p_metadata,
                 to_char(p_occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))::text, 'UTF8')
      $$;

      -- A running chain: es_chain(previous, encoding) OVER (ORDER BY revision) hashes each row from the one before it,
      -- starting from \`previous\` (the stream's last hash, or 32 zero bytes before revision 0).
      CREATE FUNCTION es_chain_step(p_state bytea, p_previous bytea, p_encoding bytea)
      RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT sha256(coalesce(p_state, p_previous) || p_encoding) $$;
      CREATE AGGREGATE es_chain(bytea, bytea) (SFUNC = es_chain_step, STYPE = bytea);
      -- The hashes of consecutive events from \`previous\`, one call (appends of several events).
      CREATE FUNCTION es_chain_hashes(p_previous bytea, p_encodings bytea[]) RETURNS bytea[]
      LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
        DECLARE
          hashes bytea[] := '{}';
          hash bytea := p_previous;
          encoding bytea;
        BEGIN
          FOREACH encoding IN ARRAY p_encodings LOOP
            hash := sha256(hash || encoding);
            hashes := hashes || hash;
          END LOOP;
          RETURN hashes;
        END
      $$;

      -- Existing streams get their chains, in revision order.
      WITH chained AS (
        SELECT position,
               es_chain(decode(repeat('00', 32), 'hex'), es_event_encoding(id, type, stream, revision, data, metadata, occurred_at))
                 OVER (PARTITION BY stream ORDER BY revision) AS hash
        FROM es_events
      )
      UPDATE es_events e SET hash = chained.hash FROM chained WHERE e.position = chained.position;
      UPDATE es_streams s SET last_hash = e.hash FROM es_events e WHERE e.stream = s.stream AND e.revision = s.revision;

      -- Anchors over every stream head (eventstore/postgres/hash-chain-audit.ts): each anchor hashes all
      -- (stream, revision, last hash) in stream order and chains from the previous anchor; the anchored heads are kept
      -- (as of the latest anchor), so a stream deleted or cut short later is named by verify.
      CREATE TABLE es_audit_anchors (
        anchor_id      bigint PRIMARY KEY,
        anchored_at    timestamptz NOT NULL,
        streams        bigint NOT NULL,
        events         bigint NOT NULL,
        heads_hash     bytea NOT NULL,
        previous_hash  bytea NOT NULL,
        anchor_hash    bytea NOT NULL
      );
      CREATE TABLE es_audit_anchored_heads (
        stream     text PRIMARY KEY,
        revision   bigint NOT NULL,
        hash       bytea,
        anchor_id  bigint NOT NULL
      );
      -- Anchors hash the heads in byte order of the stream names, whatever the database's collation.
      CREATE INDEX es_audit_anchored_heads_bytes ON es_audit_anchored_heads (stream COLLATE "C");
    `,
  },
  {
    version: 3,
    name: 'GET /events by recorded time and stream prefix',
    sql: `
      -- Recorded-time ranges (GET /events?from=&to=) find their first event without scanning the log.
      CREATE INDEX IF NOT EXISTS es_events_recorded_at ON es_events (recorded_at);
      -- Stream-prefix filters in log order (LIKE 'account-%' needs byte order to use an index).
      CREATE INDEX IF NOT EXISTS es_events_stream_order ON es_events (stream text_pattern_ops, transaction_id, position);
    `,
  },
  {
    version: 4,
    name: 'hash chain v2: the links cover the recorded time and the place in the log; v1 hashes kept for the anchors before it',
    sql: `
      -- The v1 links (eventstore/hash-chain.ts) left recorded_at, transaction_id and position out: an edit of the
      -- recorded time or of the order went unseen. Every link is recomputed in the v2 form below. The v1 hashes stay,
      -- beside them, with the v1 heads as they were now: verify still checks them (the anchors made before this
      -- migration recorded v1 hashes, and an auditor may keep those anchors' hashes outside the database).
      ALTER TABLE es_events RENAME COLUMN hash TO hash_v1;
      ALTER TABLE es_events ADD COLUMN hash bytea;
      CREATE TABLE es_audit_v1_heads (
        stream    text PRIMARY KEY,
        revision  bigint NOT NULL,
        hash      bytea
      );
      INSERT INTO es_audit_v1_heads (stream, revision, hash) SELECT stream, revision, last_hash FROM es_streams;
      -- The head keeps the position of its last event too (the one-event append hashes the position it takes there).
      ALTER TABLE es_streams ADD COLUMN last_position bigint;
      -- Anchored heads recorded before this migration hold v1 hashes (form 1); later ones v2 (form 2).
      ALTER TABLE es_audit_anchored_heads ADD COLUMN form smallint NOT NULL DEFAULT 1;
      ALTER TABLE es_audit_anchored_heads ALTER COLUMN form SET DEFAULT 2;

      -- The v2 canonical encoding: ["v2", id, type, stream, revision, data, metadata, occurredAt, recordedAt,
      -- "<transaction_id>.<position>"] as jsonb text, UTF-8, times with microseconds. Reproduced byte for byte by
      -- canonicalEncoding() in eventstore/hash-chain.ts. Never edit: add a new migration.
      CREATE FUNCTION es_event_encoding_v2(p_id uuid, p_type text, p_stream text, p_revision bigint, p_data jsonb, p_metadata jsonb,
                                           p_occurred_at timestamptz, p_recorded_at timestamptz, p_transaction_id xid8, p_position bigint)
      RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $$
        SELECT convert_to(jsonb_build_array('v2', p_id::text, p_type, p_stream, p_revision::text, p_data, p_metadata,
                 to_char(p_occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                 to_char(p_recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                 p_transaction_id::text || '.' || p_position::text)::text, 'UTF8')
      $$;

      -- The next position of es_events, taken by the append before it hashes (the position is part of the hash), and
      -- inserted with OVERRIDING SYSTEM VALUE. The sequence is named once, here.
      DO $do$ BEGIN
        EXECUTE format('CREATE FUNCTION es_next_position() RETURNS bigint LANGUAGE sql VOLATILE AS %L',
                       format('SELECT nextval(%L::regclass)', pg_get_serial_sequence('es_events', 'position')));
      END $do$;

      ${HASH_CHAIN_V2_BACKFILL}
    `,
  },
  {
    version: 5,
    name: 'GET /events by time without scanning the log: time marks; stream names by prefix',
    sql: `
      -- Time marks (eventstore/postgres/read-all-query.ts): where in the log the events of a stretch of recorded time
      -- ('r') or business time ('o') can start. A mark says: every event whose time falls in [bucket, bucket + width)
      -- has transaction_id >= from_txid. A page filtered by time reads the log in order from the least mark of the
      -- stretch asked for (es_time_floor) instead of from the cursor. Buckets nest (each width divides the next), so
      -- a stretch of any length is covered by a few hundred marks at most.
      CREATE TABLE es_time_marks (
        kind       "char" NOT NULL,
        width_ms   integer NOT NULL,
        bucket     timestamptz NOT NULL,
        from_txid  xid8 NOT NULL
      );
      -- Not unique: two writers may each add a mark for the same bucket (both hold, the least one counts), so no
      -- writer ever waits for another's mark.
      CREATE INDEX es_time_marks_bucket ON es_time_marks (kind, width_ms, bucket, from_txid);

      -- The widths of the buckets, finest first (the insert trigger below names the finest of each).
      CREATE FUNCTION es_time_mark_widths(p_kind "char") RETURNS integer[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT CASE p_kind WHEN 'r' THEN ARRAY[1000, 60000, 3600000, 86400000] ELSE ARRAY[60000, 3600000, 86400000] END
      $$;
      -- The bucket of a time (any time zone setting gives the same one); an infinite time is its own bucket.
      CREATE FUNCTION es_time_bucket(p_width_ms integer, p_at timestamptz) RETURNS timestamptz LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT CASE WHEN isfinite(p_at) THEN date_bin(p_width_ms * interval '1 millisecond', p_at, timestamptz '2000-01-01 00:00:00+00') ELSE p_at END
      $$;
      -- The first bucket boundary at or after a time.
      CREATE FUNCTION es_time_bucket_ceil(p_width_ms integer, p_at timestamptz) RETURNS timestamptz LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT CASE WHEN es_time_bucket(p_width_ms, p_at) = p_at THEN p_at ELSE es_time_bucket(p_width_ms, p_at) + p_width_ms * interval '1 millisecond' END
      $$;

      -- Every event written (inserted, or its time or transaction changed) is covered: each of its buckets (both
      -- times, every width) holds a mark at or below its transaction_id, one its writer can see (committed) or one
      -- the writer adds (committed with the event, or gone with it). So every event a reader may see is covered by a
      -- mark the same reader sees, whatever the clocks did and in whatever order writers commit. A trigger, so that
      -- every way of writing events keeps the marks (the store's appends, a test's raw INSERT, an UPDATE).
      -- A new mark holds the oldest transaction still running (the snapshot's xmin) when it is lower than the event's:
      -- every writer that looks later is at or above it, so one mark per bucket serves all concurrent writers.
      CREATE FUNCTION es_time_marks_of_row() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO es_time_marks (kind, width_ms, bucket, from_txid)
        SELECT t.kind, w.width_ms, es_time_bucket(w.width_ms, t.at), least(NEW.transaction_id, pg_snapshot_xmin(pg_current_snapshot()))
        FROM (VALUES ('r'::"char", NEW.recorded_at), ('o'::"char", NEW.occurred_at)) AS t(kind, at)
        CROSS JOIN LATERAL unnest(es_time_mark_widths(t.kind)) AS w(width_ms)
        WHERE NOT EXISTS (SELECT 1 FROM es_time_marks m
                          WHERE m.kind = t.kind AND m.width_ms = w.width_ms AND m.bucket = es_time_bucket(w.width_ms, t.at)
                            AND m.from_txid <= NEW.transaction_id);
        -- What this session now knows: both buckets are marked at or below this transaction, so at or below every
        -- later transaction of the session too. The insert trigger's WHEN skips events of these buckets written by
        -- this session's own transactions. A setting: undone with this transaction (or savepoint) if it rolls back.
        -- (The keys: the insert trigger's WHEN computes them alike, with built-in functions only, which it prepares for
        -- every statement.)
        IF TG_OP = 'INSERT' THEN
          PERFORM set_config('es.time_marks_r', coalesce(extract(epoch FROM CASE WHEN isfinite(NEW.recorded_at)
                    THEN date_bin('1 second', NEW.recorded_at, timestamptz '2000-01-01 00:00:00+00') END)::text, ''), false),
                  set_config('es.time_marks_o', coalesce(extract(epoch FROM CASE WHEN isfinite(NEW.occurred_at)
                    THEN date_bin('1 minute', NEW.occurred_at, timestamptz '2000-01-01 00:00:00+00') END)::text, ''), false);
        END IF;
        RETURN NEW;
      END
      $$;
      -- The triggers first: CREATE TRIGGER waits for appends in progress and holds new ones until this migration
      -- commits, so the events counted below are all there are without a trigger. Row by row, but the function runs only
      -- for an event of a bucket this session has not marked yet (or of another transaction than the one writing it):
      -- the WHEN costs an append a few microseconds. BEFORE the row, so that what the function remembers already
      -- spares the next rows of the same statement (an AFTER trigger would run it once per row, at the statement's end).
      CREATE TRIGGER es_events_time_marks_insert BEFORE INSERT ON es_events FOR EACH ROW
        WHEN (extract(epoch FROM CASE WHEN isfinite(NEW.recorded_at)
                THEN date_bin('1 second', NEW.recorded_at, timestamptz '2000-01-01 00:00:00+00') END)::text
                IS DISTINCT FROM current_setting('es.time_marks_r', true)
              OR extract(epoch FROM CASE WHEN isfinite(NEW.occurred_at)
                THEN date_bin('1 minute', NEW.occurred_at, timestamptz '2000-01-01 00:00:00+00') END)::text
                IS DISTINCT FROM current_setting('es.time_marks_o', true)
              OR NEW.transaction_id IS DISTINCT FROM pg_current_xact_id())
        EXECUTE FUNCTION es_time_marks_of_row();
      -- Only when a time or the transaction changes (not the hash backfills, which update every row).
      CREATE TRIGGER es_events_time_marks_update BEFORE UPDATE OF recorded_at, occurred_at, transaction_id ON es_events FOR EACH ROW
        WHEN (OLD.recorded_at IS DISTINCT FROM NEW.recorded_at OR OLD.occurred_at IS DISTINCT FROM NEW.occurred_at
              OR OLD.transaction_id IS DISTINCT FROM NEW.transaction_id)
        EXECUTE FUNCTION es_time_marks_of_row();
      INSERT INTO es_time_marks (kind, width_ms, bucket, from_txid)
      SELECT t.kind, w.width_ms, es_time_bucket(w.width_ms, t.at), min(t.transaction_id)
      FROM (SELECT 'r'::"char" AS kind, recorded_at AS at, transaction_id FROM es_events
            UNION ALL
            SELECT 'o'::"char", occurred_at, transaction_id FROM es_events) t
      CROSS JOIN LATERAL unnest(es_time_mark_widths(t.kind)) AS w(width_ms)
      GROUP BY 1, 2, 3;

      -- The least mark of the buckets that cover [p_from, p_to] (NULL: unbounded on that side; both NULL is not
      -- asked): a transaction_id at or below every event of that stretch of time, or NULL when no event falls in it.
      -- The coarsest width covers the whole buckets inside the stretch; each finer width covers, at each end, the part
      -- up to the next boundary of the width above it (at most 60, 60, 24 buckets per end).
      CREATE FUNCTION es_time_floor(p_kind "char", p_from timestamptz, p_to timestamptz) RETURNS xid8 LANGUAGE sql STABLE PARALLEL SAFE AS $$
        WITH levels AS (
          SELECT w AS width_ms, lead(w) OVER (ORDER BY w) AS parent_ms, min(w) OVER () AS finest_ms
          FROM unnest(es_time_mark_widths(p_kind)) AS w
        ),
        bounds AS (
          SELECT width_ms, parent_ms, width_ms * interval '1 millisecond' AS width,
                 coalesce(es_time_bucket(finest_ms, p_from), '-infinity') AS lo,
                 coalesce(es_time_bucket(finest_ms, p_to) + finest_ms * interval '1 millisecond', 'infinity') AS hi
          FROM levels
        ),
        ranges AS (
          SELECT width_ms, lo AS first_bucket, hi - width AS last_bucket FROM bounds WHERE parent_ms IS NULL
          UNION ALL
          SELECT width_ms, lo, least(hi, es_time_bucket_ceil(parent_ms, lo)) - width FROM bounds WHERE parent_ms IS NOT NULL AND isfinite(lo)
          UNION ALL
          SELECT width_ms, greatest(lo, es_time_bucket(parent_ms, hi)), hi - width FROM bounds WHERE parent_ms IS NOT NULL AND isfinite(hi)
        )
        SELECT min(m.floor) FROM ranges r
        CROSS JOIN LATERAL (SELECT min(from_txid) AS floor FROM es_time_marks
                            WHERE kind = p_kind AND width_ms = r.width_ms AND bucket BETWEEN r.first_bucket AND r.last_bucket) m
      $$;

      -- Stream names by prefix in byte order (LIKE 'transfer-%' on es_streams, whatever the database's collation).
      CREATE INDEX IF NOT EXISTS es_streams_stream_pattern ON es_streams (stream text_pattern_ops);
    `,
  },
];

const MIGRATION_LOCK = 7_412_001; // arbitrary, constant advisory lock key for schema changes

export async function migrateEventStore(pool: Pool): Promise<void> {
  await withTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query(`CREATE TABLE IF NOT EXISTS es_schema_migrations (
      version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const applied = await client.query<{ version: number }>('SELECT version FROM es_schema_migrations');
    const done = new Set(applied.rows.map((r) => r.version));
    for (const migration of MIGRATIONS) {
      if (done.has(migration.version)) continue;
      await client.query(migration.sql);
      await client.query('INSERT INTO es_schema_migrations (version, name) VALUES ($1, $2)', [migration.version, migration.name]);
    }
  });
}
