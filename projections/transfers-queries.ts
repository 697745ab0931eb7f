import type { Pool } from 'pg';
import type { TransferStatus } from '../domain/transfer-events';

/** The queries of the transfers read model (rm_transfers, see transfers-projection.ts): the API calls these, never SQL of its own. */

export interface TransferRow {
  transfer_id: string;
  from_account_id: string;
  to_account_id: string;
  amount: string;
  status: TransferStatus;
  failure_reason: string | null;
  steps: { name: string; at: string }[];
  created_at: Date;
  updated_at: Date;
  reversal_of: string | null;
  reversed_by: { reversalId: string; amount: number; released?: boolean }[] | null;
  /** The batch this transfer is an item of (issue 26), or null. */
  batch_id: string | null;
}

/** A transfer as the read model holds it, in the API's shape. */
export function transferRowView(row: TransferRow) {
  return {
    transferId: row.transfer_id,
    fromAccountId: row.from_account_id,
    toAccountId: row.to_account_id,
    amount: Number(row.amount),
    status: row.status,
    ...(row.failure_reason ? { failureReason: row.failure_reason } : {}),
    steps: row.steps,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
    ...(row.reversal_of ? { reversalOf: row.reversal_of } : {}),
    ...(row.reversed_by?.length ? { reversedBy: row.reversed_by } : {}),
    ...(row.batch_id ? { batchId: row.batch_id } : {}),
  };
}

export async function findTransfer(pool: Pool, transferId: string): Promise<TransferRow | undefined> {
  return (await pool.query<TransferRow>('SELECT * FROM rm_transfers WHERE transfer_id = $1', [transferId])).rows[0];
}

export interface TransferListFilter {
  /** From or to this account. */
  accountId?: string;
  /** Only transfers from or to accounts of this owner (a customer's view). */
  ownerId?: string;
  status?: TransferStatus;
  /** Only the items of this batch (issue 26), or of any of these ids. */
  batchId?: string | readonly string[];
  /** Created at or after (ISO-8601). */
  from?: string;
  /** Created before (ISO-8601). */
  to?: string;
  /** After this (created_at, transfer_id) in the list's order. */
  after?: { at: string; id: string };
  limit: number;
}

/** Oldest first by (created_at, transfer_id): a keyset page, indexed (read-model-schema.ts). One more row than `limit` tells whether a next page exists. */
export async function listTransfers(pool: Pool, filter: TransferListFilter): Promise<{ rows: TransferRow[]; more: boolean }> {
  const where: string[] = [];
  const params: unknown[] = [];
  const param = (value: unknown) => {
    params.push(value);
    return `$${params.length}`;
  };
  if (filter.accountId) {
    const p = param(filter.accountId);
    where.push(`(t.from_account_id = ${p} OR t.to_account_id = ${p})`);
  }
  if (filter.ownerId !== undefined) {
    const owner = param(filter.ownerId);
    where.push(
      `(EXISTS (SELECT 1 FROM rm_account_balances a WHERE a.account_id = t.from_account_id AND a.owner_id = ${owner})` +
        ` OR EXISTS (SELECT 1 FROM rm_account_balances a WHERE a.account_id = t.to_account_id AND a.owner_id = ${owner}))`,
    );
  }
  if (filter.status) where.push(`t.status = ${param(filter.status)}`);
  if (filter.batchId !== undefined)
    // IS NOT NULL: lets the planner use the partial index on batch_id (read-model-schema.ts).
    where.push(
      `t.batch_id IS NOT NULL AND t.batch_id = ANY(${param(typeof filter.batchId === 'string' ? [filter.batchId] : [...filter.batchId])}::text[])`,
    );
  if (filter.from) where.push(`t.created_at >= ${param(filter.from)}`);
  if (filter.to) where.push(`t.created_at < ${param(filter.to)}`);
  if (filter.after) where.push(`(t.created_at, t.transfer_id) > (${param(filter.after.at)}::timestamptz, ${param(filter.after.id)})`);
  const sql = `SELECT t.* FROM rm_transfers t ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY t.created_at, t.transfer_id LIMIT ${param(filter.limit + 1)}`;
  const rows = (await pool.query<TransferRow>(sql, params)).rows;
  return { rows: rows.slice(0, filter.limit), more: rows.length > filter.limit };
}
