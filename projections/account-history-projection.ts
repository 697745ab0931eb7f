import {
  ACCOUNT_EVENT_TYPES,
  ACCOUNT_STREAM_PREFIX,
  balanceChange,
  isMovement,
  MOVEMENT_TYPES,
  type AccountEvent,
} from '../domain/account-events';
import { toDomainEvent } from '../application/event-envelope';
import type { Projection } from './projection';
import { accountHistoryDdl } from './read-model-schema';

/**
 * rm_account_history: one line per movement, keyed by (account, revision), so a redelivered
 * event inserts nothing and lines may arrive in any order.
 */
export const accountHistoryProjection: Projection = {
  name: 'account-history',
  streamPrefix: ACCOUNT_STREAM_PREFIX,
  eventTypes: MOVEMENT_TYPES,
  tables: { rm_account_history: accountHistoryDdl },
  async apply(client, recorded, tables) {
    const event = toDomainEvent<AccountEvent>(recorded, ACCOUNT_EVENT_TYPES);
    if (!isMovement(event)) return 'ignored';
    const d: { accountId: string; balanceAfter: number; transferId?: string; toAccountId?: string; fromAccountId?: string } = event.data;
    const signed = balanceChange(event);
    const result = await client.query(
      `INSERT INTO ${tables.rm_account_history!} (account_id, revision, event_id, kind, amount, balance_after, transfer_id,
         counterpart_account_id, occurred_at, recorded_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (account_id, revision) DO NOTHING`,
      [
        d.accountId,
        recorded.revision.toString(),
        recorded.id,
        event.type,
        signed,
        d.balanceAfter,
        d.transferId ?? null,
        d.toAccountId ?? d.fromAccountId ?? null,
        recorded.metadata.occurredAt,
        recorded.recordedAt,
      ],
    );
    return result.rowCount === 1 ? 'applied' : 'duplicate';
  },
};
