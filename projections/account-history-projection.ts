import {
  ACCOUNT_EVENT_TYPES,
  ACCOUNT_STREAM_PREFIX,
  balanceChange,
  isMovement,
  MOVEMENT_TYPES,
  type AccountEvent,
} from '../domain/account-events';
import { toDomainEvent } from '../application/event-envelope';
import type { RecordedEvent } from '../eventstore/event-store';
import type { BatchProjection } from './projection';
import { arrayParams, keyedLines } from './projection';
import { accountHistoryDdl } from './read-model-schema';

/**
 * rm_account_history: one line per movement, keyed by (account, revision), so a redelivered
 * event inserts nothing and lines may arrive in any order. `batch_id`: the batch the movement
 * belongs to (issue 26; its metadata.batchId), else null.
 */
export const accountHistoryProjection: BatchProjection = {
  name: 'account-history',
  streamPrefix: ACCOUNT_STREAM_PREFIX,
  eventTypes: MOVEMENT_TYPES,
  tables: { rm_account_history: accountHistoryDdl },
  async apply(client, recorded, tables) {
    const line = historyLine(recorded);
    if (!line) return 'ignored';
    const result = await client.query(
      `INSERT INTO ${tables.rm_account_history!} (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
       ON CONFLICT (account_id, revision) DO NOTHING`,
      line,
    );
    return result.rowCount === 1 ? 'applied' : 'duplicate';
  },
  planBatch(events, tables) {
    const { columns, units, ignored, rest } = keyedLines(events, 11, (recorded) => {
      const line = historyLine(recorded);
      return line ? { row: line, key: `${line[0]}:${line[1]}` } : 'ignored';
    });
    return {
      ctes: [
        `lines AS (
          INSERT INTO ${tables.rm_account_history!} (${COLUMNS})
          SELECT * FROM unnest(${arrayParams(1, ['text', 'bigint', 'uuid', 'text', 'bigint', 'bigint', 'text', 'text', 'timestamptz', 'timestamptz', 'text'])})
          ON CONFLICT (account_id, revision) DO NOTHING
          RETURNING account_id || ':' || revision AS k
        )`,
      ],
      values: columns,
      written: 'SELECT k FROM lines',
      units,
      unwritten: 'duplicate', // its line is there: applied before
      ignored,
      rest,
    };
  },
};

const COLUMNS =
  'account_id, revision, event_id, kind, amount, balance_after, transfer_id, counterpart_account_id, occurred_at, recorded_at, batch_id';

/** The line a movement adds (in COLUMNS' order); undefined for an event that moves no money. */
function historyLine(recorded: RecordedEvent): unknown[] | undefined {
  const event = toDomainEvent<AccountEvent>(recorded, ACCOUNT_EVENT_TYPES);
  if (!isMovement(event)) return undefined;
  const d: { accountId: string; balanceAfter: number; transferId?: string; toAccountId?: string; fromAccountId?: string } = event.data;
  return [
    d.accountId,
    recorded.revision.toString(),
    recorded.id,
    event.type,
    balanceChange(event),
    d.balanceAfter,
    d.transferId ?? null,
    d.toAccountId ?? d.fromAccountId ?? null,
    recorded.metadata.occurredAt,
    recorded.recordedAt,
    batchIdOf(recorded),
  ];
}

/** The batch a movement belongs to (issue 26): a batch's legs carry its id in their metadata. */
export function batchIdOf(recorded: RecordedEvent): string | null {
  const batchId = recorded.metadata.batchId;
  return typeof batchId === 'string' && batchId !== '' ? batchId : null;
}
