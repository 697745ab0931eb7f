import { terminalStatusOf, TRANSFER_EVENT_TYPES, TRANSFER_STREAM_PREFIX, type TransferEvent } from '../domain/transfer-events';
import { TRANSFER_STEP_BY_EVENT } from '../domain/transfer-state';
import { toDomainEvent } from '../application/event-envelope';
import type { Projection } from './projection';
import { explainSkippedWrite } from './projection';
import { transfersDdl } from './read-model-schema';

/** rm_transfers: one row per transfer with its status and steps, from the transfer's own stream. */
export const transfersProjection: Projection = {
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
        `INSERT INTO ${t} (transfer_id, from_account_id, to_account_id, amount, status, steps, revision, created_at, updated_at, reversal_of)
         VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $7, $8)
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
};
