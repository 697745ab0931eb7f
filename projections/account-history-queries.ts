import type { Pool } from 'pg';

/** The queries of the history read model (rm_account_history, see account-history-projection.ts). */

export interface AccountHistoryRow {
  revision: string;
  kind: string;
  amount: string;
  balance_after: string;
  transfer_id: string | null;
  counterpart_account_id: string | null;
  occurred_at: Date;
  recorded_at: Date;
  batch_id: string | null;
}

/** A movement in the API's shape (the `Movement` schema). */
export function movementView(row: AccountHistoryRow) {
  return {
    revision: Number(row.revision),
    kind: row.kind,
    amount: Number(row.amount),
    balanceAfter: Number(row.balance_after),
    transferId: row.transfer_id,
    counterpartAccountId: row.counterpart_account_id,
    occurredAt: row.occurred_at.toISOString(),
    recordedAt: row.recorded_at.toISOString(),
    ...(row.batch_id ? { batchId: row.batch_id } : {}),
  };
}

/**
 * An account's movements, newest first, by the (account_id, revision) primary key: those before the revision `before`
 * (a keyset cursor), at most `limit`. One more row than `limit` tells whether a next page exists.
 */
export async function accountHistoryPage(
  pool: Pool,
  accountId: string,
  page: { before?: string; limit: number },
): Promise<{ rows: AccountHistoryRow[]; more: boolean }> {
  const result = await pool.query<AccountHistoryRow>(
    `SELECT revision::text AS revision, kind, amount::text AS amount, balance_after::text AS balance_after, transfer_id,
            counterpart_account_id, occurred_at, recorded_at, batch_id
     FROM rm_account_history WHERE account_id = $1 AND ($2::bigint IS NULL OR revision < $2::bigint)
     ORDER BY rm_account_history.revision DESC LIMIT $3`,
    [accountId, page.before ?? null, page.limit + 1],
  );
  return { rows: result.rows.slice(0, page.limit), more: result.rows.length > page.limit };
}
