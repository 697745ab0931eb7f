import type { Pool, PoolClient } from 'pg';

/**
 * Read models (CQRS) in PostgreSQL. Each projection owns its tables, named with a suffix so a
 * rebuild can fill fresh copies and swap them in. Every row keeps the stream revision it has
 * applied, so a duplicate or out-of-order delivery is skipped or retried, never applied twice.
 */
export const accountBalancesDdl = (t: string) => `
  CREATE TABLE IF NOT EXISTS ${t} (
    account_id  text PRIMARY KEY,
    owner_id    text NOT NULL,
    currency    text NOT NULL,
    balance     bigint NOT NULL,
    status      text NOT NULL,
    revision    bigint NOT NULL,
    opened_at   timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
  );
  -- Holds (issue 25): what open holds reserve (HoldPlaced/HoldReleased carry it as heldAfter); available = balance - held.
  -- A constant default: added without rewriting the table. Rows of accounts with holds placed before this column
  -- existed read 0 until 'npm run projections:rebuild -- account-balances' (docs/holds-read-model.md).
  ALTER TABLE ${t} ADD COLUMN IF NOT EXISTS held bigint NOT NULL DEFAULT 0;
  CREATE INDEX IF NOT EXISTS ${t}_owner ON ${t} (owner_id, account_id)`;

export const accountHistoryDdl = (t: string) => `
  CREATE TABLE IF NOT EXISTS ${t} (
    account_id              text NOT NULL,
    revision                bigint NOT NULL,
    event_id                uuid NOT NULL,
    kind                    text NOT NULL,
    amount                  bigint NOT NULL,
    balance_after           bigint NOT NULL,
    transfer_id             text,
    counterpart_account_id  text,
    occurred_at             timestamptz NOT NULL,
    recorded_at             timestamptz NOT NULL,
    PRIMARY KEY (account_id, revision)
  );
  -- Batches (issue 26): the batch a movement belongs to (its event's metadata.batchId). Nullable, no default: added
  -- without rewriting the table; lines recorded before this column existed read NULL until
  -- 'npm run projections:rebuild -- account-history'.
  ALTER TABLE ${t} ADD COLUMN IF NOT EXISTS batch_id text`;

export const transfersDdl = (t: string) => `
  CREATE TABLE IF NOT EXISTS ${t} (
    transfer_id      text PRIMARY KEY,
    from_account_id  text NOT NULL,
    to_account_id    text NOT NULL,
    amount           bigint NOT NULL,
    currency         text,
    status           text NOT NULL,
    failure_reason   text,
    failure_message  text,
    steps            jsonb NOT NULL DEFAULT '[]',
    revision         bigint NOT NULL,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
  );
  ALTER TABLE ${t} ADD COLUMN IF NOT EXISTS reversal_of text;
  ALTER TABLE ${t} ADD COLUMN IF NOT EXISTS reversed_by jsonb NOT NULL DEFAULT '[]';
  -- Batches (issue 26): the batch a transfer is an item of (TransferRequested.data.accepted.batchId), NULL for the others.
  ALTER TABLE ${t} ADD COLUMN IF NOT EXISTS batch_id text;
  CREATE INDEX IF NOT EXISTS ${t}_batch_created ON ${t} (batch_id, created_at, transfer_id) WHERE batch_id IS NOT NULL;
  CREATE INDEX IF NOT EXISTS ${t}_from_created ON ${t} (from_account_id, created_at, transfer_id);
  CREATE INDEX IF NOT EXISTS ${t}_to_created ON ${t} (to_account_id, created_at, transfer_id);
  CREATE INDEX IF NOT EXISTS ${t}_status_created ON ${t} (status, created_at, transfer_id);
  CREATE INDEX IF NOT EXISTS ${t}_created ON ${t} (created_at, transfer_id)`;

/**
 * rm_holds (issue 25): one row per hold, from its stream `hold-<id>` (holds-projection.ts). `amount` is what was asked;
 * `reserved` what the source reserved; `captured` / `released` once known; `pos_commit` / `pos_prepare` the position of
 * the last event applied. Listed oldest first by (created_at, hold_id), per account (source or target) and per status.
 */
export const holdsDdl = (t: string) => `
  CREATE TABLE IF NOT EXISTS ${t} (
    hold_id          text PRIMARY KEY,
    from_account_id  text NOT NULL,
    to_account_id    text NOT NULL,
    amount           bigint NOT NULL,
    currency         text,
    reserved         bigint,
    captured         bigint,
    released         bigint,
    status           text NOT NULL,
    failure_reason   text,
    expires_at       timestamptz NOT NULL,
    revision         bigint NOT NULL,
    pos_commit       bigint NOT NULL,
    pos_prepare      bigint NOT NULL,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
  );
  CREATE INDEX IF NOT EXISTS ${t}_from_created ON ${t} (from_account_id, created_at, hold_id);
  CREATE INDEX IF NOT EXISTS ${t}_to_created ON ${t} (to_account_id, created_at, hold_id);
  CREATE INDEX IF NOT EXISTS ${t}_status_created ON ${t} (status, created_at, hold_id);
  CREATE INDEX IF NOT EXISTS ${t}_created ON ${t} (created_at, hold_id)`;

/**
 * Batches (issue 26), three tables of one projection (transfer-batches-projection.ts):
 * - rm_transfer_batches: one row per batch, from its stream `batch-<id>`, at the revision and position of the last event
 *   of that stream applied. `settled_counts`: what its TransferBatchSettled recorded (the counts shown come from the
 *   items). Listed newest first by (accepted_at, batch_id).
 * - rm_transfer_batch_items: one row per item, from the batch's TransferBatchAccepted; `status` is `pending`, or `failed`
 *   for an item refused at registration (TransferBatchItemsRejected: its id belongs to another transfer, so it has no
 *   stream of its own).
 * - rm_transfer_batch_outcomes: an item's end on its own stream `transfer-<id>` (TransferCompleted / TransferFailed /
 *   TransferCompensated, whose metadata names the batch), at that stream's revision and the event's position.
 * An item's outcome is its outcome row's, else its item row's. The two come from different streams and never write the
 * same row, so they may be applied in either order.
 */
export const transferBatchesDdl = (t: string) => `
  CREATE TABLE IF NOT EXISTS ${t} (
    batch_id        text PRIMARY KEY,
    atomic          boolean NOT NULL,
    item_count      integer NOT NULL,
    status          text NOT NULL,
    actor           text NOT NULL,
    correlation_id  text,
    accepted_at     timestamptz NOT NULL,
    settled_at      timestamptz,
    settled_counts  jsonb,
    message         text,
    revision        bigint NOT NULL,
    pos_commit      bigint NOT NULL,
    pos_prepare     bigint NOT NULL
  );
  CREATE INDEX IF NOT EXISTS ${t}_accepted ON ${t} (accepted_at, batch_id);
  CREATE INDEX IF NOT EXISTS ${t}_status_accepted ON ${t} (status, accepted_at, batch_id)`;

export const transferBatchItemsDdl = (t: string) => `
  CREATE TABLE IF NOT EXISTS ${t} (
    batch_id         text NOT NULL,
    item_index       integer NOT NULL,
    transfer_id      text NOT NULL,
    from_account_id  text NOT NULL,
    to_account_id    text NOT NULL,
    amount           bigint NOT NULL,
    status           text NOT NULL,
    failure_reason   text,
    failure_message  text,
    PRIMARY KEY (batch_id, item_index)
  );
  CREATE UNIQUE INDEX IF NOT EXISTS ${t}_transfer ON ${t} (batch_id, transfer_id)`;

export const transferBatchOutcomesDdl = (t: string) => `
  CREATE TABLE IF NOT EXISTS ${t} (
    batch_id         text NOT NULL,
    transfer_id      text NOT NULL,
    status           text NOT NULL,
    failure_reason   text,
    failure_message  text,
    revision         bigint NOT NULL,
    pos_commit       bigint NOT NULL,
    pos_prepare      bigint NOT NULL,
    PRIMARY KEY (batch_id, transfer_id)
  )`;

export const CHECKPOINTS_DDL = `
  CREATE TABLE IF NOT EXISTS rm_checkpoints (
    projection  text PRIMARY KEY,
    commit      bigint NOT NULL,
    prepare     bigint NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
  )`;

const SCHEMA_LOCK = 7_412_002;

export async function ensureReadModelSchema(pool: Pool | PoolClient, ddl: string[]): Promise<void> {
  const client = 'release' in pool ? pool : await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [SCHEMA_LOCK]);
    try {
      for (const statement of [CHECKPOINTS_DDL, ...ddl]) await client.query(statement);
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [SCHEMA_LOCK]);
    }
  } finally {
    if (!('release' in pool)) (client as PoolClient).release();
  }
}
