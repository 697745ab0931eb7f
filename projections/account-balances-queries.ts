import type { Pool } from 'pg';

/** The queries of the balances read model (rm_account_balances, see account-balances-projection.ts): one account, and lists. */

export interface AccountBalanceRow {
  account_id: string;
  owner_id: string;
  currency: string;
  balance: string;
  /** Reserved by open holds (issue 25): part of the balance that cannot be paid out. */
  held: string;
  status: string;
  revision: string;
  updated_at: Date;
}

/** An account as the read model holds it, in the API's shape (the `Account` schema). */
export function accountRowView(row: AccountBalanceRow) {
  return {
    accountId: row.account_id,
    ownerId: row.owner_id,
    currency: row.currency,
    balance: Number(row.balance),
    held: Number(row.held),
    available: Number(row.balance) - Number(row.held),
    status: row.status,
    revision: Number(row.revision),
    updatedAt: row.updated_at.toISOString(),
  };
}

const ACCOUNT_COLUMNS =
  'account_id, owner_id, currency, balance::text AS balance, held::text AS held, status, revision::text AS revision, updated_at';

/** One account by id (undefined when the read model has none). */
export async function findAccount(pool: Pool, accountId: string): Promise<AccountBalanceRow | undefined> {
  const result = await pool.query<AccountBalanceRow>(`SELECT ${ACCOUNT_COLUMNS} FROM rm_account_balances WHERE account_id = $1`, [
    accountId,
  ]);
  return result.rows[0];
}

export interface AccountListFilter {
  /** Only this owner's accounts. */
  ownerId?: string;
  /** After this account id, in the list's order. */
  after?: string;
  limit: number;
}

/**
 * Accounts by account id (one owner's: by the (owner_id, account_id) index, see read-model-schema.ts; all: by the
 * primary key), a keyset page. One more row than `limit` tells whether a next page exists.
 */
export async function listAccounts(pool: Pool, filter: AccountListFilter): Promise<{ rows: AccountBalanceRow[]; more: boolean }> {
  const where: string[] = [];
  const params: unknown[] = [];
  const param = (value: unknown) => {
    params.push(value);
    return `$${params.length}`;
  };
  if (filter.ownerId !== undefined) where.push(`owner_id = ${param(filter.ownerId)}`);
  if (filter.after !== undefined) where.push(`account_id > ${param(filter.after)}`);
  const sql =
    `SELECT ${ACCOUNT_COLUMNS} FROM rm_account_balances` +
    `${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY ${filter.ownerId !== undefined ? 'owner_id, ' : ''}account_id LIMIT ${param(filter.limit + 1)}`;
  const rows = (await pool.query<AccountBalanceRow>(sql, params)).rows;
  return { rows: rows.slice(0, filter.limit), more: rows.length > filter.limit };
}
