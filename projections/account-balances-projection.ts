import { ACCOUNT_EVENT_TYPES, ACCOUNT_STREAM_PREFIX, isMovement, type AccountEvent } from '../domain/account-events';
import { toDomainEvent } from '../application/event-envelope';
import type { Projection } from './projection';
import { explainSkippedWrite } from './projection';
import { accountBalancesDdl } from './read-model-schema';

/** rm_account_balances: one row per account, at the revision of the last event applied. */
export const accountBalancesProjection: Projection = {
  name: 'account-balances',
  streamPrefix: ACCOUNT_STREAM_PREFIX,
  eventTypes: ACCOUNT_EVENT_TYPES,
  tables: { rm_account_balances: accountBalancesDdl },
  async apply(client, recorded, tables) {
    const t = tables.rm_account_balances!;
    const event = toDomainEvent<AccountEvent>(recorded, ACCOUNT_EVENT_TYPES);
    const accountId = event.data.accountId;
    const at = recorded.metadata.occurredAt;
    // One guarded write per event: it lands only on the row at the revision just before this event (or, for the
    // first event, where there is no row), so events apply in stream order, once. When it touches nothing, the row
    // says why (explainSkippedWrite): a duplicate, or an earlier event still to come.
    const why = (first: string) =>
      explainSkippedWrite(client, `SELECT revision::text AS revision FROM ${t} WHERE account_id = $1`, accountId, recorded, first);
    if (event.type === 'AccountOpened') {
      // Only the stream's first event creates the row.
      if (recorded.revision !== 0n) return why(`Account ${accountId}: AccountOpened at revision ${recorded.revision}, not the first`);
      const inserted = await client.query(
        `INSERT INTO ${t} (account_id, owner_id, currency, balance, status, revision, opened_at, updated_at)
         VALUES ($1, $2, $3, 0, 'open', $4, $5, $5)
         ON CONFLICT (account_id) DO NOTHING`,
        [accountId, event.data.ownerId, event.data.currency, recorded.revision.toString(), at],
      );
      if (inserted.rowCount === 1) return 'applied';
      return why(`Account ${accountId}: its row vanished`); // it exists (the insert did nothing): duplicate
    }
    // The balance the event carries (the guard applies events in stream order): the domain's own figure, never
    // recomputed here. Events that move no money keep the balance.
    const balanceAfter = isMovement(event) ? event.data.balanceAfter : null;
    const updated = await client.query(
      `UPDATE ${t} SET balance = COALESCE($2, balance), status = CASE WHEN $3 THEN 'closed' ELSE status END, revision = $4, updated_at = $5
       WHERE account_id = $1 AND revision = $4::bigint - 1`,
      [accountId, balanceAfter, event.type === 'AccountClosed', recorded.revision.toString(), at],
    );
    if (updated.rowCount === 1) return 'applied';
    return why(`Account ${accountId}: ${event.type} before AccountOpened`);
  },
};
