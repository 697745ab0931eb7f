import type { Pool } from 'pg';
import type { BatchStatus } from '../domain/transfer-batch';
import type { TransferStatus } from '../domain/transfer-events';

/**
 * The queries of the batches read model (issue 26; rm_transfer_batches, rm_transfer_batch_items and
 * rm_transfer_batch_outcomes, see transfer-batches-projection.ts): the API calls these, never SQL of its own.
 *
 * The contract of /tmp/batch-spec.md, with what it left open filled in:
 * - `Queryable` is `Pool` (pg), as in holds-queries.ts and transfers-queries.ts.
 * - listBatches' page: `before` is the keyset cursor of the last row of the previous page, `{ acceptedAt, batchId }`
 *   (newest first by (acceptedAt, batchId)); `status` filters by the batch's status; `ownerId` (added) keeps the batches
 *   with an item from or to an account of that owner (a customer's view, as listTransfers' ownerId).
 * - listBatchItems and listBatches return at most `limit` rows and do not say whether more exist: ask for limit + 1 to
 *   know.
 * - An item's status is its outcome on its own stream once projected, else `failed` for an item refused at registration
 *   (reason `transfer_conflict`), else `pending`. The counts of a batch are its items', by that status.
 */

export interface BatchRow {
  batchId: string;
  atomic: boolean;
  status: BatchStatus;
  itemCount: number;
  counts: { completed: number; failed: number; compensated: number; pending: number };
  actor: string;
  /** ISO-8601: when its acceptance was recorded. */
  acceptedAt: string;
  settledAt?: string;
  message?: string;
  /** The log position (`commit.prepare`) of the last event applied to the batch or to one of its items' outcomes. */
  position: string;
}

export interface BatchItemRow {
  index: number;
  transferId: string;
  fromAccountId: string;
  toAccountId: string;
  amount: number;
  status: TransferStatus;
  failureReason?: string;
  failureMessage?: string;
}

interface BatchSqlRow {
  batch_id: string;
  atomic: boolean;
  status: BatchStatus;
  item_count: number;
  actor: string;
  accepted_at: Date;
  settled_at: Date | null;
  message: string | null;
  pos_commit: string;
  pos_prepare: string;
  completed: number;
  failed: number;
  compensated: number;
  pending: number;
  /** The latest outcome's position, as a bigint[2] (text), or null when none. */
  last_outcome: string[] | null;
}

interface ItemSqlRow {
  item_index: number;
  transfer_id: string;
  from_account_id: string;
  to_account_id: string;
  amount: string;
  status: TransferStatus;
  failure_reason: string | null;
  failure_message: string | null;
}

/**
 * A batch's columns (alias b) with its items' counts by status (COUNTS: one pass over its items and their outcomes, by
 * their (batch_id, ...) keys) and the position of its latest outcome.
 */
const BATCH_COLUMNS = `b.batch_id, b.atomic, b.status, b.item_count, b.actor, b.accepted_at, b.settled_at, b.message,
  b.pos_commit::text AS pos_commit, b.pos_prepare::text AS pos_prepare, c.completed, c.failed, c.compensated, c.pending,
  (SELECT ARRAY[x.pos_commit::text, x.pos_prepare::text] FROM rm_transfer_batch_outcomes x
    WHERE x.batch_id = b.batch_id ORDER BY x.pos_commit DESC, x.pos_prepare DESC LIMIT 1) AS last_outcome`;
const COUNTS = `LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE COALESCE(o.status, i.status) = 'completed')::int AS completed,
           count(*) FILTER (WHERE COALESCE(o.status, i.status) = 'failed')::int AS failed,
           count(*) FILTER (WHERE COALESCE(o.status, i.status) = 'compensated')::int AS compensated,
           count(*) FILTER (WHERE COALESCE(o.status, i.status) = 'pending')::int AS pending
    FROM rm_transfer_batch_items i
    LEFT JOIN rm_transfer_batch_outcomes o ON o.batch_id = i.batch_id AND o.transfer_id = i.transfer_id
    WHERE i.batch_id = b.batch_id
  ) c ON true`;

function later(a: [bigint, bigint], b: [bigint, bigint]): [bigint, bigint] {
  return a[0] > b[0] || (a[0] === b[0] && a[1] >= b[1]) ? a : b;
}

function batchView(row: BatchSqlRow): BatchRow {
  let position: [bigint, bigint] = [BigInt(row.pos_commit), BigInt(row.pos_prepare)];
  if (row.last_outcome) position = later(position, [BigInt(row.last_outcome[0]!), BigInt(row.last_outcome[1]!)]);
  return {
    batchId: row.batch_id,
    atomic: row.atomic,
    status: row.status,
    itemCount: row.item_count,
    counts: {
      completed: row.completed ?? 0,
      failed: row.failed ?? 0,
      compensated: row.compensated ?? 0,
      pending: row.pending ?? 0,
    },
    actor: row.actor,
    acceptedAt: row.accepted_at.toISOString(),
    ...(row.settled_at ? { settledAt: row.settled_at.toISOString() } : {}),
    ...(row.message !== null ? { message: row.message } : {}),
    position: `${position[0]}.${position[1]}`,
  };
}

function itemView(row: ItemSqlRow): BatchItemRow {
  return {
    index: row.item_index,
    transferId: row.transfer_id,
    fromAccountId: row.from_account_id,
    toAccountId: row.to_account_id,
    amount: Number(row.amount),
    status: row.status,
    ...(row.failure_reason !== null ? { failureReason: row.failure_reason } : {}),
    ...(row.failure_message !== null ? { failureMessage: row.failure_message } : {}),
  };
}

/** One batch with its items' counts (undefined when the read model has none). */
export async function getBatch(pool: Pool, batchId: string): Promise<BatchRow | undefined> {
  const result = await pool.query<BatchSqlRow>(`SELECT ${BATCH_COLUMNS} FROM rm_transfer_batches b ${COUNTS} WHERE b.batch_id = $1`, [
    batchId,
  ]);
  const row = result.rows[0];
  return row ? batchView(row) : undefined;
}

/**
 * A batch's items in their order in the batch, those after `afterIndex` (a keyset cursor), at most `limit`, optionally
 * only those of one status. Empty for a batch the read model does not have.
 */
export async function listBatchItems(
  pool: Pool,
  batchId: string,
  page: { afterIndex?: number; limit: number; status?: BatchItemRow['status'] },
): Promise<BatchItemRow[]> {
  const result = await pool.query<ItemSqlRow>(
    `SELECT i.item_index, i.transfer_id, i.from_account_id, i.to_account_id, i.amount::text AS amount,
            COALESCE(o.status, i.status) AS status,
            CASE WHEN o.batch_id IS NULL THEN i.failure_reason ELSE o.failure_reason END AS failure_reason,
            CASE WHEN o.batch_id IS NULL THEN i.failure_message ELSE o.failure_message END AS failure_message
     FROM rm_transfer_batch_items i
     LEFT JOIN rm_transfer_batch_outcomes o ON o.batch_id = i.batch_id AND o.transfer_id = i.transfer_id
     WHERE i.batch_id = $1 AND ($2::integer IS NULL OR i.item_index > $2::integer)
       AND ($3::text IS NULL OR COALESCE(o.status, i.status) = $3::text)
     ORDER BY i.item_index LIMIT $4`,
    [batchId, page.afterIndex ?? null, page.status ?? null, page.limit],
  );
  return result.rows.map(itemView);
}

export interface BatchListPage {
  limit: number;
  /** The last row of the previous page: this page holds the batches accepted before it (newest first). */
  before?: { acceptedAt: string; batchId: string };
  status?: BatchStatus;
  /** Only batches with an item from or to an account of this owner (a customer's view). */
  ownerId?: string;
}

/** Batches newest first by (accepted_at, batch_id), a keyset page of at most `limit`. */
export async function listBatches(pool: Pool, page: BatchListPage): Promise<BatchRow[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  const param = (value: unknown) => {
    params.push(value);
    return `$${params.length}`;
  };
  if (page.status !== undefined) where.push(`b.status = ${param(page.status)}`);
  if (page.before)
    where.push(`(b.accepted_at, b.batch_id) < (${param(page.before.acceptedAt)}::timestamptz, ${param(page.before.batchId)})`);
  if (page.ownerId !== undefined) {
    const owner = param(page.ownerId);
    where.push(
      `EXISTS (SELECT 1 FROM rm_transfer_batch_items oi JOIN rm_account_balances a ON a.account_id IN (oi.from_account_id, oi.to_account_id)
               WHERE oi.batch_id = b.batch_id AND a.owner_id = ${owner})`,
    );
  }
  const sql = `SELECT ${BATCH_COLUMNS} FROM rm_transfer_batches b ${COUNTS}
    ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
    ORDER BY b.accepted_at DESC, b.batch_id DESC LIMIT ${param(page.limit)}`;
  return (await pool.query<BatchSqlRow>(sql, params)).rows.map(batchView);
}
