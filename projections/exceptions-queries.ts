import type { Pool } from 'pg';
import type { HeldRequest } from '../domain/late-record-exception';
import { describeDuration } from '../domain/lateness';
import type { GlobalPosition } from '../eventstore/event-store';

/** Reads of rm_exceptions (business-time-projection.ts): late records held for manual handling. */

export interface ExceptionRow {
  exception_id: string;
  account_id: string;
  kind: 'deposit' | 'withdrawal';
  amount: string;
  /** Null for a time PostgreSQL cannot store (held by an earlier version): the request's occurredAt says it. */
  occurred_at: Date | null;
  late_by_ms: string;
  max_lateness_ms: string;
  request: HeldRequest;
  held_at: Date;
  held_by: string | null;
  held_commit: string;
  held_prepare: string;
  status: 'open' | 'accepting' | 'accepted' | 'rejected';
  decided_by: string | null;
  decided_at: Date | null;
  reject_reason: string | null;
  last_refusal: { reason: string; message: string } | null;
  applied_revision: string | null;
  applied_position: string | null;
}

const COLUMNS = `exception_id, account_id, kind, amount::text AS amount, occurred_at, late_by_ms::text AS late_by_ms, max_lateness_ms::text AS max_lateness_ms,
  request, held_at, held_by, held_commit::text AS held_commit, held_prepare::text AS held_prepare, status, decided_by, decided_at, reject_reason,
  last_refusal, applied_revision::text AS applied_revision, applied_position`;

export async function findException(pool: Pool, exceptionId: string): Promise<ExceptionRow | undefined> {
  return (await pool.query<ExceptionRow>(`SELECT ${COLUMNS} FROM rm_exceptions WHERE exception_id = $1`, [exceptionId])).rows[0];
}

/** Exceptions in the order they were held (by the position of their LateRecordHeld), after a cursor; one more than `limit` tells there is more. */
export async function listExceptions(
  pool: Pool,
  q: { status?: string; accountId?: string; after?: GlobalPosition; limit: number },
): Promise<{ rows: ExceptionRow[]; more: boolean }> {
  const result = await pool.query<ExceptionRow>(
    // Ordered by the table's columns (x.held_commit: bigint), not the output's (held_commit: text, which sorted 10 before 9).
    `SELECT ${COLUMNS} FROM rm_exceptions x
     WHERE ($1::text IS NULL OR x.status = $1) AND ($2::text IS NULL OR x.account_id = $2)
       AND ($3::bigint IS NULL OR (x.held_commit, x.held_prepare) > ($3::bigint, $4::bigint))
     ORDER BY x.held_commit, x.held_prepare LIMIT $5`,
    [q.status ?? null, q.accountId ?? null, q.after?.commit.toString() ?? null, q.after?.prepare.toString() ?? null, q.limit + 1],
  );
  return { rows: result.rows.slice(0, q.limit), more: result.rows.length > q.limit };
}

/** The fields of an exception as the API shows them (GET /exceptions, and the answers of accept and reject). */
export interface ExceptionFields {
  exceptionId: string;
  status: 'open' | 'accepting' | 'accepted' | 'rejected';
  accountId: string;
  kind: 'deposit' | 'withdrawal';
  amount: number;
  occurredAt: string;
  lateByMs: number;
  maxLatenessMs: number;
  heldAt: string;
  request: HeldRequest;
  heldBy: string | null;
  decidedBy: string | null;
  decidedAt: string | null;
  rejectReason: string | null;
  lastRefusal: { reason: string; message: string } | null;
  applied: { revision: number; position: string } | null;
}

export function exceptionView(f: ExceptionFields) {
  return {
    exceptionId: f.exceptionId,
    status: f.status,
    accountId: f.accountId,
    kind: f.kind,
    amount: f.amount,
    occurredAt: f.occurredAt,
    reason: 'too_late' as const,
    lateBy: describeDuration(f.lateByMs),
    maxLateness: describeDuration(f.maxLatenessMs),
    heldAt: f.heldAt,
    request: f.request,
    heldBy: f.heldBy,
    decidedBy: f.decidedBy,
    decidedAt: f.decidedAt,
    rejectReason: f.rejectReason,
    lastRefusal: f.lastRefusal,
    applied: f.applied,
  };
}

export function exceptionRowView(r: ExceptionRow) {
  return exceptionView({
    exceptionId: r.exception_id,
    status: r.status,
    accountId: r.account_id,
    kind: r.kind,
    amount: Number(r.amount),
    occurredAt: r.occurred_at?.toISOString() ?? r.request.body.occurredAt,
    lateByMs: Number(r.late_by_ms),
    maxLatenessMs: Number(r.max_lateness_ms),
    heldAt: r.held_at.toISOString(),
    request: r.request,
    heldBy: r.held_by,
    decidedBy: r.status === 'accepted' || r.status === 'rejected' ? r.decided_by : null,
    decidedAt: r.decided_at ? r.decided_at.toISOString() : null,
    rejectReason: r.reject_reason,
    lastRefusal: r.last_refusal,
    applied:
      r.applied_revision !== null && r.applied_position !== null
        ? { revision: Number(r.applied_revision), position: r.applied_position }
        : null,
  });
}
