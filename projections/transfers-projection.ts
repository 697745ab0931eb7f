import { terminalStatusOf, TRANSFER_EVENT_TYPES, TRANSFER_STREAM_PREFIX, type TransferEvent } from '../domain/transfer-events';
import { TRANSFER_STEP_BY_EVENT } from '../domain/transfer-state';
import { toDomainEvent } from '../application/event-envelope';
import type { RecordedEvent } from '../eventstore/event-store';
import type { BatchPlan, BatchProjection } from './projection';
import { arrayParams, explainSkippedWrite, streamRuns } from './projection';
import { transfersDdl } from './read-model-schema';

/**
 * rm_transfers: one row per transfer with its status and steps, from the transfer's own stream; `batch_id` for an item
 * of a batch (issue 26: its request's accepted.batchId).
 */
export const transfersProjection: BatchProjection = {
  name: 'transfers',
  streamPrefix: TRANSFER_STREAM_PREFIX,
  eventTypes: TRANSFER_EVENT_TYPES,
  tables: { rm_transfers: transfersDdl },
  async apply(client, recorded, tables) {
    const t = tables.rm_transfers!;
    const event = toDomainEvent<TransferEvent>(recorded, TRANSFER_EVENT_TYPES);
    const transferId = event.data.transferId;
    // One guarded write per event (as in account-balances-projection.ts): lands only on the row at the previous
    // revision (or, for the first event, where there is none); when it touches nothing, the row says why.
    const why = (first: string) =>
      explainSkippedWrite(client, `SELECT revision::text AS revision FROM ${t} WHERE transfer_id = $1`, transferId, recorded, first);
    const at = recorded.metadata.occurredAt;
    const step = JSON.stringify([{ name: TRANSFER_STEP_BY_EVENT[event.type], at }]);
    if (event.type === 'TransferRequested') {
      // Only the stream's first event creates the row.
      if (recorded.revision !== 0n) return why(`Transfer ${transferId}: TransferRequested at revision ${recorded.revision}, not the first`);
      const inserted = await client.query(
        `INSERT INTO ${t} (transfer_id, from_account_id, to_account_id, amount, status, steps, revision, created_at, updated_at, reversal_of, batch_id)
         VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $7, $8, $9)
         ON CONFLICT (transfer_id) DO NOTHING`,
        [
          transferId,
          event.data.fromAccountId,
          event.data.toAccountId,
          event.data.amount,
          step,
          recorded.revision.toString(),
          at,
          event.data.reversalOf ?? null,
          event.data.accepted?.batchId ?? null,
        ],
      );
      if (inserted.rowCount === 1) return 'applied';
      return why(`Transfer ${transferId}: its row vanished`); // it exists (the insert did nothing): duplicate
    }
    const status = terminalStatusOf(event.type) ?? null;
    const failure = event.type === 'TransferFailed' || event.type === 'TransferCompensated' ? event.data : undefined;
    const currency = event.type === 'TransferSourceDebited' ? event.data.currency : null;
    // reversed_by: each reversal holding part of this transfer (a released one is marked so).
    const reversedBy =
      event.type === 'TransferReversalReserved' ? JSON.stringify([{ reversalId: event.data.reversalId, amount: event.data.amount }]) : '[]';
    const released = event.type === 'TransferReversalReleased' ? event.data.reversalId : null;
    const updated = await client.query(
      `UPDATE ${t} SET status = COALESCE($2, status), failure_reason = COALESCE($3, failure_reason), failure_message = COALESCE($4, failure_message),
         currency = COALESCE($5, currency), steps = steps || $6::jsonb, revision = $7, updated_at = $8,
         reversed_by = (SELECT COALESCE(jsonb_agg(CASE WHEN r->>'reversalId' = $10 THEN r || '{"released":true}'::jsonb ELSE r END), '[]'::jsonb)
                        FROM jsonb_array_elements(reversed_by || $9::jsonb) r)
       WHERE transfer_id = $1 AND revision = $7::bigint - 1`,
      [
        transferId,
        status,
        failure?.reason ?? null,
        failure?.message ?? null,
        currency,
        step,
        recorded.revision.toString(),
        at,
        reversedBy,
        released,
      ],
    );
    if (updated.rowCount === 1) return 'applied';
    return why(`Transfer ${transferId}: ${event.type} before TransferRequested`);
  },
  planBatch: planTransfers,
};

/** The last value a run's events give a field (later events overwrite, as apply()'s COALESCE does), or null. */
function lastOf<T>(values: (T | undefined)[]): T | null {
  for (let i = values.length - 1; i >= 0; i--) if (values[i] !== undefined && values[i] !== null) return values[i]!;
  return null;
}

/**
 * A batch in one statement (see BatchPlan): per transfer, its run of events folded into one write, as apply() would
 * leave the row. A transfer requested in the batch is inserted; the others are updated only where the row is at the
 * revision before the run's first event. Reversal reservations and releases (rare) and anything that cannot be
 * folded (TransferRequested not first) go to apply().
 */
function planTransfers(events: RecordedEvent[], tables: Record<string, string>): BatchPlan {
  const t = tables.rm_transfers!;
  const { runs, broken } = streamRuns(events);
  const rest = [...broken];
  const units: BatchPlan['units'] = [];
  const ins: unknown[][] = Array.from({ length: 14 }, () => []);
  const upd: unknown[][] = Array.from({ length: 9 }, () => []);
  for (const run of runs) {
    const domain = run.map((e) => toDomainEvent<TransferEvent>(e, TRANSFER_EVENT_TYPES));
    const requested = domain[0]!.type === 'TransferRequested' ? domain[0] : undefined;
    const unfoldable = domain.some(
      (e, i) =>
        e.type === 'TransferReversalReserved' ||
        e.type === 'TransferReversalReleased' ||
        (e.type === 'TransferRequested' && (i > 0 || run[0]!.revision !== 0n)),
    );
    if (unfoldable || (requested === undefined && run[0]!.revision === 0n)) {
      rest.push(...run);
      continue;
    }
    const transferId = domain[0]!.data.transferId;
    const steps = JSON.stringify(
      run.map((e) => ({ name: TRANSFER_STEP_BY_EVENT[e.type as TransferEvent['type']], at: e.metadata.occurredAt })),
    );
    const failures = domain.map((e) => (e.type === 'TransferFailed' || e.type === 'TransferCompensated' ? e.data : undefined));
    const status = lastOf(domain.map((e) => terminalStatusOf(e.type)));
    const reason = lastOf(failures.map((f) => f?.reason));
    const message = lastOf(failures.map((f) => f?.message));
    const currency = lastOf(domain.map((e) => (e.type === 'TransferSourceDebited' ? e.data.currency : undefined)));
    const last = run.at(-1)!;
    if (requested?.type === 'TransferRequested') {
      const r = requested.data;
      const row = [transferId, r.fromAccountId, r.toAccountId, r.amount, currency, status ?? 'pending', reason, message, steps];
      row.push(last.revision.toString(), run[0]!.metadata.occurredAt, last.metadata.occurredAt, r.reversalOf ?? null);
      row.push(r.accepted?.batchId ?? null);
      row.forEach((v, i) => ins[i]!.push(v));
    } else {
      const row = [transferId, run[0]!.revision.toString(), last.revision.toString(), status, reason, message, currency, steps];
      row.push(last.metadata.occurredAt);
      row.forEach((v, i) => upd[i]!.push(v));
    }
    units.push({ key: transferId, events: run });
  }
  return {
    ctes: [
      `ins AS (
        INSERT INTO ${t} (transfer_id, from_account_id, to_account_id, amount, currency, status, failure_reason, failure_message, steps,
          revision, created_at, updated_at, reversal_of, batch_id)
        SELECT * FROM unnest(${arrayParams(1, ['text', 'text', 'text', 'bigint', 'text', 'text', 'text', 'text', 'jsonb', 'bigint', 'timestamptz', 'timestamptz', 'text', 'text'])})
        ON CONFLICT (transfer_id) DO NOTHING
        RETURNING transfer_id
      )`,
      `upd AS (
        UPDATE ${t} SET status = COALESCE(u.status, ${t}.status), failure_reason = COALESCE(u.reason, ${t}.failure_reason),
          failure_message = COALESCE(u.message, ${t}.failure_message), currency = COALESCE(u.currency, ${t}.currency),
          steps = ${t}.steps || u.steps, revision = u.last, updated_at = u.at
        FROM unnest(${arrayParams(15, ['text', 'bigint', 'bigint', 'text', 'text', 'text', 'text', 'jsonb', 'timestamptz'])})
             AS u(id, first, last, status, reason, message, currency, steps, at)
        WHERE ${t}.transfer_id = u.id AND ${t}.revision = u.first - 1
        RETURNING ${t}.transfer_id
      )`,
    ],
    values: [...ins, ...upd],
    written: 'SELECT transfer_id AS k FROM ins UNION ALL SELECT transfer_id FROM upd',
    units,
    unwritten: 'one-by-one',
    ignored: [],
    rest,
  };
}
