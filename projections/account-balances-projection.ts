import { ACCOUNT_EVENT_TYPES, ACCOUNT_STREAM_PREFIX, isMovement, type AccountEvent } from '../domain/account-events';
import { toDomainEvent } from '../application/event-envelope';
import type { Projection } from './projection';
import { revisionGuard } from './projection';
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
    const row = await client.query<{ revision: string; balance: string }>(
      `SELECT revision::text AS revision, balance::text AS balance FROM ${t} WHERE account_id = $1 FOR UPDATE`,
      [accountId],
    );
    const current = row.rows[0];
    if (revisionGuard(recorded.stream, current ? BigInt(current.revision) : undefined, recorded.revision) === 'duplicate')
      return 'duplicate';
    const at = recorded.metadata.occurredAt;
    if (event.type === 'AccountOpened') {
      await client.query(
        `INSERT INTO ${t} (account_id, owner_id, currency, balance, status, revision, opened_at, updated_at)
         VALUES ($1, $2, $3, 0, 'open', $4, $5, $5)`,
        [accountId, event.data.ownerId, event.data.currency, recorded.revision.toString(), at],
      );
      return 'applied';
    }
    if (!current) throw new Error(`Account ${accountId}: ${event.type} before AccountOpened`);
    // The balance the event carries (the revision guard applies events in stream order): the domain's
    // own figure, never recomputed here. Events that move no money keep the balance.
    const balanceAfter = isMovement(event) ? event.data.balanceAfter : null;
    await client.query(
      `UPDATE ${t} SET balance = COALESCE($2, balance), status = CASE WHEN $3 THEN 'closed' ELSE status END, revision = $4, updated_at = $5
       WHERE account_id = $1`,
      [accountId, balanceAfter, event.type === 'AccountClosed', recorded.revision.toString(), at],
    );
    return 'applied';
  },
};
