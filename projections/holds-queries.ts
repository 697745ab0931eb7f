import type { Pool } from 'pg';
import type { HoldStatus } from '../domain/hold';

/** The queries of the holds read model (rm_holds, see holds-projection.ts): the API calls these, never SQL of its own. */

export interface HoldRow {
  hold_id: string;
  from_account_id: string;
  to_account_id: string;
  /** What was asked (bigint as text). */
  amount: string;
  /** The source's currency, once the reservation is placed. */
  currency: string | null;
  /** What the source reserved (null until placed). */
  reserved: string | null;
  /** What reached the target (0 when compensated; null until known). */
  captured: string | null;
  /** What went back to the source's available (null until the reservation ended). */
  released: string | null;
  status: HoldStatus;
  failure_reason: string | null;
  expires_at: Date;
  revision: string;
  /** The position of the last event applied. */
  pos_commit: string;
  pos_prepare: string;
  created_at: Date;
  updated_at: Date;
}

/** A hold as the read model holds it, in the API's shape. */
export function holdRowView(row: HoldRow): {
  holdId: string;
  fromAccountId: string;
  toAccountId: string;
  amount: number;
  captured?: number;
  released?: number;
  status: HoldStatus;
  expiresAt: string;
  createdAt: string;
} {
  return {
    holdId: row.hold_id,
    fromAccountId: row.from_account_id,
    toAccountId: row.to_account_id,
    amount: Number(row.amount),
    ...(row.captured !== null ? { captured: Number(row.captured) } : {}),
    ...(row.released !== null ? { released: Number(row.released) } : {}),
    status: row.status,
    expiresAt: row.expires_at.toISOString(),
    createdAt: row.created_at.toISOString(),
  };
}

const HOLD_COLUMNS = `h.hold_id, h.from_account_id, h.to_account_id, h.amount::text AS amount, h.currency, h.reserved::text AS reserved,
  h.captured::text AS captured, h.released::text AS released, h.status, h.failure_reason, h.expires_at, h.revision::text AS revision,
  h.pos_commit::text AS pos_commit, h.pos_prepare::text AS pos_prepare, h.created_at, h.updated_at`;

/** One hold by id (undefined when the read model has none). */
export async function findHold(pool: Pool, holdId: string): Promise<HoldRow | undefined> {
  return (await pool.query<HoldRow>(`SELECT ${HOLD_COLUMNS} FROM rm_holds h WHERE h.hold_id = $1`, [holdId])).rows[0];
}

export interface HoldListFilter {
  /** From or to this account. */
  accountId?: string;
  status?: HoldStatus;
  /** Only holds from or to accounts of this owner (a customer's view). */
  ownerId?: string;
  /** After this (created_at, hold_id) in the list's order. */
  after?: { at: string; id: string };
  limit: number;
}

/**
 * Oldest first by (created_at, hold_id): a keyset page, indexed (read-model-schema.ts), as listTransfers pages. One more
 * row than `limit` tells whether a next page exists.
 */
export async function listHolds(pool: Pool, filter: HoldListFilter): Promise<{ rows: HoldRow[]; more: boolean }> {
  const where: string[] = [];
  const params: unknown[] = [];
  const param = (value: unknown) => {
    params.push(value);
    return `$${params.length}`;
  };
  if (filter.accountId !== undefined) {
    const p = param(filter.accountId);
    where.push(`(h.from_account_id = ${p} OR h.to_account_id = ${p})`);
  }
  if (filter.ownerId !== undefined) {
    const owner = param(filter.ownerId);
    where.push(
      `(EXISTS (SELECT 1 FROM rm_account_balances a WHERE a.account_id = h.from_account_id AND a.owner_id = ${owner})` +
        ` OR EXISTS (SELECT 1 FROM rm_account_balances a WHERE a.account_id = h.to_account_id AND a.owner_id = ${owner}))`,
    );
  }
  if (filter.status !== undefined) where.push(`h.status = ${param(filter.status)}`);
  if (filter.after) where.push(`(h.created_at, h.hold_id) > (${param(filter.after.at)}::timestamptz, ${param(filter.after.id)})`);
  const sql = `SELECT ${HOLD_COLUMNS} FROM rm_holds h ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY h.created_at, h.hold_id LIMIT ${param(filter.limit + 1)}`;
  const rows = (await pool.query<HoldRow>(sql, params)).rows;
  return { rows: rows.slice(0, filter.limit), more: rows.length > filter.limit };
}

/**
 * The holds that reserved money on an account at an instant (a statement's end of day): placed before it (a reservation
 * recorded), and still open then (not settled, or settled at or after it). Times are the hold stream's (when its events
 * were recorded): holds have no business time of their own. Oldest first.
 */
export async function holdsOpenAt(pool: Pool, accountId: string, at: Date): Promise<HoldRow[]> {
  return (
    await pool.query<HoldRow>(
      `SELECT ${HOLD_COLUMNS} FROM rm_holds h
       WHERE h.from_account_id = $1 AND h.reserved IS NOT NULL AND h.created_at < $2
         AND (h.status IN ('pending', 'held', 'capturing') OR h.updated_at >= $2)
       ORDER BY h.created_at, h.hold_id`,
      [accountId, at],
    )
  ).rows;
}
