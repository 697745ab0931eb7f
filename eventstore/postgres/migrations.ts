import type { Pool } from 'pg';
import { withTransaction } from '../../infra/pg-transaction';

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
