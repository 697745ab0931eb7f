import type { Pool } from 'pg';
import type { GlobalPosition } from '../eventstore/event-store';
import { formatPosition } from '../eventstore/event-store';

/** Reads of the business-time read model (business-time-projection.ts): statements and correction notices. */

export interface ClosedDayRow {
  timezone: string;
  business_date: string;
  starts_at: Date;
  ends_at: Date;
  closed_at: Date;
  closed_by: string | null;
  pos_commit: string;
  pos_prepare: string;
}

export interface StatementMovementRow {
  account_id: string;
  occurred_at: Date;
  revision: string;
  kind: string;
  amount: string;
  transfer_id: string | null;
  counterpart_account_id: string | null;
  recorded_at: Date;
  pos_commit: string;
  pos_prepare: string;
  batch_id: string | null;
}

export interface CorrectionNoticeRow {
  timezone: string;
  pos_commit: string;
  pos_prepare: string;
  account_id: string;
  revision: string;
  business_date: string;
  kind: string;
  amount: string;
  occurred_at: Date;
  recorded_at: Date;
  closed_at: Date;
  transfer_id: string | null;
  counterpart_account_id: string | null;
}

export async function findClosedDay(pool: Pool, timezone: string, date: string): Promise<ClosedDayRow | undefined> {
  const result = await pool.query<ClosedDayRow>(
    `SELECT timezone, business_date, starts_at, ends_at, closed_at, closed_by, pos_commit::text AS pos_commit, pos_prepare::text AS pos_prepare
     FROM rm_closed_days WHERE timezone = $1 AND business_date = $2`,
    [timezone, date],
  );
  return result.rows[0];
}

export interface StatementLineView {
  revision: number;
  kind: string;
  amount: number;
  balanceAfter: number;
  belowZero: boolean;
  occurredAt: string;
  recordedAt: string;
  transferId: string | null;
  counterpartAccountId: string | null;
  /** The batch the movement belongs to (issue 26), when it does. */
  batchId?: string;
}

export interface StatementCorrectionView {
  revision: number;
  kind: string;
  amount: number;
  occurredAt: string;
  recordedAt: string;
  transferId: string | null;
  counterpartAccountId: string | null;
  batchId?: string;
  cursor: string;
}

export interface StatementView {
  accountId: string;
  date: string;
  timezone: string;
  from: string;
  to: string;
  status: 'open' | 'closed';
  closedAt: string | null;
  openingBalance: number;
  movements: StatementLineView[];
  closingBalance: number;
  belowZero: boolean;
  corrections: StatementCorrectionView[];
  correctedOpeningBalance: number;
  correctedClosingBalance: number;
}

const positionOf = (r: { pos_commit: string; pos_prepare: string }): GlobalPosition => ({
  commit: BigInt(r.pos_commit),
  prepare: BigInt(r.pos_prepare),
});
const before = (a: GlobalPosition, b: GlobalPosition) => a.commit < b.commit || (a.commit === b.commit && a.prepare < b.prepare);

/*
 * Ordering: the queries below select numbers as text (`revision::text AS revision`), and an ORDER BY name refers to
 * the output column first: `ORDER BY revision` sorted revisions as text (10 before 9, issue 23). They order by the
 * table's columns, qualified (`m.revision`), so bigint columns sort as numbers.
 */

/**
 * One account's statement of one business day ([startsAt, endsAt) in its zone). Open day: everything
 * known now. Closed day: as published, i.e. only records the log held before the close (by position),
 * opening balance included; records of the day that came after the close are its corrections (in
 * recorded order), and the corrected balances count every record known now.
 */
export async function statementOf(
  pool: Pool,
  q: { accountId: string; date: string; timezone: string; startsAt: Date; endsAt: Date; closed?: ClosedDayRow },
): Promise<StatementView> {
  const closedAt = q.closed ? positionOf(q.closed) : undefined;
  const sums = await pool.query<{ published_opening: string; corrected_opening: string; corrected_closing: string }>(
    `SELECT COALESCE(SUM(amount) FILTER (WHERE occurred_at < $2 AND ($4::bigint IS NULL OR (pos_commit, pos_prepare) < ($4::bigint, $5::bigint))), 0)::text AS published_opening,
            COALESCE(SUM(amount) FILTER (WHERE occurred_at < $2), 0)::text AS corrected_opening,
            COALESCE(SUM(amount), 0)::text AS corrected_closing
     FROM rm_statement_movements WHERE account_id = $1 AND occurred_at < $3`,
    [q.accountId, q.startsAt, q.endsAt, closedAt?.commit.toString() ?? null, closedAt?.prepare.toString() ?? null],
  );
  const lines = await pool.query<StatementMovementRow>(
    `SELECT account_id, occurred_at, revision::text AS revision, kind, amount::text AS amount, transfer_id, counterpart_account_id, recorded_at,
            pos_commit::text AS pos_commit, pos_prepare::text AS pos_prepare, batch_id
     FROM rm_statement_movements m WHERE m.account_id = $1 AND m.occurred_at >= $2 AND m.occurred_at < $3
     ORDER BY m.occurred_at, m.revision`,
    [q.accountId, q.startsAt, q.endsAt],
  );
  const s = sums.rows[0]!;
  const opening = Number(s.published_opening);
  const published = lines.rows.filter((r) => !closedAt || before(positionOf(r), closedAt));
  const late = closedAt ? lines.rows.filter((r) => !before(positionOf(r), closedAt)) : [];
  late.sort((a, b) => (before(positionOf(a), positionOf(b)) ? -1 : 1));
  let running = opening;
  const movements = published.map((r) => {
    running += Number(r.amount);
    return {
      revision: Number(r.revision),
      kind: r.kind,
      amount: Number(r.amount),
      balanceAfter: running,
      belowZero: running < 0,
      occurredAt: r.occurred_at.toISOString(),
      recordedAt: r.recorded_at.toISOString(),
      transferId: r.transfer_id,
      counterpartAccountId: r.counterpart_account_id,
      ...(r.batch_id ? { batchId: r.batch_id } : {}),
    };
  });
  return {
    accountId: q.accountId,
    date: q.date,
    timezone: q.timezone,
    from: q.startsAt.toISOString(),
    to: q.endsAt.toISOString(),
    status: q.closed ? 'closed' : 'open',
    closedAt: q.closed ? q.closed.closed_at.toISOString() : null,
    openingBalance: opening,
    movements,
    closingBalance: running,
    belowZero: opening < 0 || movements.some((m) => m.belowZero),
    corrections: late.map((r) => ({
      revision: Number(r.revision),
      kind: r.kind,
      amount: Number(r.amount),
      occurredAt: r.occurred_at.toISOString(),
      recordedAt: r.recorded_at.toISOString(),
      transferId: r.transfer_id,
      counterpartAccountId: r.counterpart_account_id,
      ...(r.batch_id ? { batchId: r.batch_id } : {}),
      cursor: formatPosition(positionOf(r)),
    })),
    correctedOpeningBalance: Number(s.corrected_opening),
    correctedClosingBalance: Number(s.corrected_closing),
  };
}

/** Correction notices of a zone's books after a cursor (a position), in the order they arose. */
export async function correctionsAfter(
  pool: Pool,
  timezone: string,
  after: GlobalPosition | undefined,
  limit: number,
): Promise<CorrectionNoticeRow[]> {
  const result = await pool.query<CorrectionNoticeRow>(
    `SELECT timezone, pos_commit::text AS pos_commit, pos_prepare::text AS pos_prepare, account_id, revision::text AS revision, business_date, kind,
            amount::text AS amount, occurred_at, recorded_at, closed_at, transfer_id, counterpart_account_id
     FROM rm_correction_notices n
     WHERE n.timezone = $1 AND ($2::bigint IS NULL OR (n.pos_commit, n.pos_prepare) > ($2::bigint, $3::bigint))
     ORDER BY n.pos_commit, n.pos_prepare LIMIT $4`,
    [timezone, after?.commit.toString() ?? null, after?.prepare.toString() ?? null, limit],
  );
  return result.rows;
}

export function correctionNoticeView(r: CorrectionNoticeRow) {
  return {
    cursor: formatPosition(positionOf(r)),
    accountId: r.account_id,
    date: r.business_date,
    timezone: r.timezone,
    revision: Number(r.revision),
    kind: r.kind,
    amount: Number(r.amount),
    occurredAt: r.occurred_at.toISOString(),
    recordedAt: r.recorded_at.toISOString(),
    closedAt: r.closed_at.toISOString(),
    transferId: r.transfer_id,
    counterpartAccountId: r.counterpart_account_id,
  };
}
