import type { Decider } from './decider';
import { isValidAmount, type MinorUnits } from './money';
import { accept, reject, type Decision } from './rejection';
import type { AcceptedBy, TransferFailureReason, TerminalTransferStatus } from './transfer-events';

/**
 * A batch of transfers (issue 26): up to MAX_BATCH_ITEMS transfers accepted in one request and moved by one saga,
 * `batch-<batchId>`, which decides each account's legs together (one load and one append per account per phase).
 * Every item is a transfer of its own: its own id, its own stream `transfer-<id>` (its request, marked with the batch's
 * id, then its outcome), its own legs on the accounts, and so it appears in transfer lists, histories and statements as
 * any transfer does. The batch's own stream `batch-<batchId>` holds what the API accepted (the one source every run of
 * its saga executes), the items that could not be registered, and the batch's end.
 *
 * - Atomic: all or nothing. Any item refused (funds, a closed account, the currency, an id taken by another transfer)
 *   and nothing moves; whatever had moved comes back.
 * - Not atomic: each item settles on its own.
 */
export interface BatchItem {
  transferId: string;
  fromAccountId: string;
  toAccountId: string;
  amount: MinorUnits;
}

export interface BatchRequest {
  batchId: string;
  atomic: boolean;
  items: BatchItem[];
}

/** Why an item did not complete, as recorded for it. */
export interface ItemFailure {
  transferId: string;
  reason: TransferFailureReason;
  message: string;
}

export interface BatchCounts {
  completed: number;
  failed: number;
  compensated: number;
}

/**
 * - `completed`: every item completed;
 * - `failed`: no item moved money (or all that moved came back): an atomic batch refused, or every item refused;
 * - `partially_completed`: some items completed, others did not (a batch that is not atomic; an atomic one only when
 *   its all-or-nothing could not be kept, which is reported for a person to look at).
 */
export type BatchOutcome = 'completed' | 'failed' | 'partially_completed';
export type BatchStatus = 'pending' | BatchOutcome;

export type TransferBatchEvent =
  | { type: 'TransferBatchAccepted'; data: BatchRequest & { accepted: AcceptedBy } }
  /** Items whose transfer id was taken by another transfer: they have no stream of their own, so their end is here. */
  | { type: 'TransferBatchItemsRejected'; data: { batchId: string; items: ItemFailure[] } }
  | { type: 'TransferBatchSettled'; data: { batchId: string; outcome: BatchOutcome; counts: BatchCounts; message?: string } };

export type TransferBatchEventType = TransferBatchEvent['type'];

const BATCH_EVENT_TYPE_SET = {
  TransferBatchAccepted: true,
  TransferBatchItemsRejected: true,
  TransferBatchSettled: true,
} as const satisfies Record<TransferBatchEventType, true>;

export const TRANSFER_BATCH_EVENT_TYPES: readonly TransferBatchEventType[] = Object.keys(BATCH_EVENT_TYPE_SET) as TransferBatchEventType[];

export const batchStream = (batchId: string): string => `batch-${batchId}`;
export const BATCH_STREAM_PREFIX = 'batch-';

/** The most items a batch may hold unless configured higher (TRANSFER_BATCH_MAX_ITEMS). */
export const MAX_BATCH_ITEMS = 1_000;

export interface TransferBatchState {
  batchId: string;
  status: BatchStatus;
  request?: BatchRequest;
  accepted?: AcceptedBy;
  /** Items refused at registration (their id belongs to another transfer), by transfer id. */
  rejected: Map<string, ItemFailure>;
  counts?: BatchCounts;
  message?: string;
}

export type TransferBatchCommand =
  | { type: 'AcceptBatch'; request: BatchRequest; accepted: AcceptedBy }
  | { type: 'RejectItems'; items: ItemFailure[] }
  | { type: 'SettleBatch'; outcome: BatchOutcome; counts: BatchCounts; message?: string };

export const initialBatchState = (): TransferBatchState => ({ batchId: '', status: 'pending', rejected: new Map() });

export function evolveBatch(state: TransferBatchState, event: TransferBatchEvent): TransferBatchState {
  switch (event.type) {
    case 'TransferBatchAccepted': {
      const { accepted, ...request } = event.data;
      return { ...state, batchId: request.batchId, request, accepted };
    }
    case 'TransferBatchItemsRejected': {
      const rejected = new Map(state.rejected);
      for (const item of event.data.items) rejected.set(item.transferId, item);
      return { ...state, rejected };
    }
    case 'TransferBatchSettled':
      return {
        ...state,
        status: event.data.outcome,
        counts: event.data.counts,
        ...(event.data.message ? { message: event.data.message } : {}),
      };
  }
}

export function sameBatch(a: BatchRequest, b: BatchRequest): boolean {
  return (
    a.batchId === b.batchId &&
    a.atomic === b.atomic &&
    a.items.length === b.items.length &&
    a.items.every((x, i) => {
      const y = b.items[i]!;
      return (
        x.transferId === y.transferId && x.fromAccountId === y.fromAccountId && x.toAccountId === y.toAccountId && x.amount === y.amount
      );
    })
  );
}

/**
 * A batch on its own (before any account is read): at least one item, distinct transfer ids, each a valid amount
 * between two different accounts. `index` names the first offending item.
 */
export function checkBatchRequest(request: BatchRequest, maxItems = MAX_BATCH_ITEMS): { field: string; message: string } | undefined {
  if (request.items.length === 0) return { field: 'items', message: 'A batch needs at least one item' };
  if (request.items.length > maxItems) return { field: 'items', message: `A batch holds at most ${maxItems} items` };
  const seen = new Set<string>();
  for (const [i, item] of request.items.entries()) {
    if (!isValidAmount(item.amount))
      return { field: `items[${i}].amount`, message: 'Amount must be a positive safe integer of minor units' };
    if (item.fromAccountId === item.toAccountId)
      return { field: `items[${i}].toAccountId`, message: 'A transfer needs two different accounts' };
    if (seen.has(item.transferId))
      return { field: `items[${i}].transferId`, message: `Transfer id ${item.transferId} appears twice in the batch` };
    seen.add(item.transferId);
  }
  return undefined;
}

export function decideBatch(state: TransferBatchState, command: TransferBatchCommand): Decision<TransferBatchEvent> {
  switch (command.type) {
    case 'AcceptBatch': {
      if (state.request) {
        return sameBatch(state.request, command.request)
          ? accept([])
          : reject('transfer_conflict', `Batch ${command.request.batchId} already exists with a different payload`);
      }
      const bad = checkBatchRequest(command.request, Number.MAX_SAFE_INTEGER);
      if (bad) return reject('invalid_amount', `${bad.field}: ${bad.message}`);
      return accept([{ type: 'TransferBatchAccepted', data: { ...command.request, accepted: command.accepted } }]);
    }
    case 'RejectItems': {
      if (!state.request) return reject('transfer_not_found', 'The batch was never accepted');
      const known = new Set(state.request.items.map((i) => i.transferId));
      const fresh = command.items.filter((i) => known.has(i.transferId) && !state.rejected.has(i.transferId));
      if (fresh.length === 0) return accept([]);
      if (state.status !== 'pending') return reject('transfer_finished', `Batch ${state.batchId} already ended as ${state.status}`);
      return accept([{ type: 'TransferBatchItemsRejected', data: { batchId: state.batchId, items: fresh } }]);
    }
    case 'SettleBatch': {
      if (!state.request) return reject('transfer_not_found', 'The batch was never accepted');
      if (state.status !== 'pending') return accept([]); // settled once; a retry finds it settled
      return accept([
        {
          type: 'TransferBatchSettled',
          data: {
            batchId: state.batchId,
            outcome: command.outcome,
            counts: command.counts,
            ...(command.message ? { message: command.message } : {}),
          },
        },
      ]);
    }
  }
}

/** The batch's outcome from its items' outcomes. */
export function batchOutcome(counts: BatchCounts): BatchOutcome {
  if (counts.completed === 0) return 'failed';
  return counts.failed + counts.compensated === 0 ? 'completed' : 'partially_completed';
}

export function countOutcomes(outcomes: Iterable<TerminalTransferStatus>): BatchCounts {
  const counts: BatchCounts = { completed: 0, failed: 0, compensated: 0 };
  for (const outcome of outcomes) counts[outcome] += 1;
  return counts;
}

export const transferBatchDecider: Decider<TransferBatchState, TransferBatchCommand, TransferBatchEvent> = {
  name: 'TransferBatch',
  streamName: batchStream,
  eventTypes: TRANSFER_BATCH_EVENT_TYPES,
  initialState: initialBatchState,
  evolve: evolveBatch,
  decide: decideBatch,
};
