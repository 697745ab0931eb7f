import type { MinorUnits } from './money';
import type { RejectionType } from './rejection';

export interface TransferRequest {
  transferId: string;
  fromAccountId: string;
  toAccountId: string;
  amount: MinorUnits;
  /** This transfer reverses (part of) that completed transfer: it moves money back from its target to its source. */
  reversalOf?: string;
}

/**
 * Who the API accepted a transfer request from: recorded with the request, before its saga starts. Every run of the
 * saga (the first, a retry, a reconciler's rerun) executes the recorded request and writes its events as this actor.
 */
export interface AcceptedBy {
  /** The API key id of the request (or `env-operator`). */
  actor: string;
  correlationId?: string;
  /**
   * The transfer is the captured part of this hold (its id): its debit is the hold's capture (CaptureHold, in the hold's
   * saga), never a transfer saga's debit leg.
   */
  holdId?: string;
  /**
   * The transfer is an item of this batch (its id): the batch's saga moves and settles it (domain/transfer-batch.ts),
   * never a transfer saga of its own.
   */
  batchId?: string;
}

/** Why a transfer did not complete: a business rule, the infrastructure (retries exhausted), or an operator's cancel. */
export type TransferFailureReason = RejectionType | 'infrastructure' | 'cancelled';

/** Events of a transfer's own stream `transfer-<transferId>`: its whole lifecycle, step by step. */
export type TransferEvent =
  /** `accepted`: recorded by the API as it accepts the request (absent on requests recorded by the sagas of earlier releases). */
  | { type: 'TransferRequested'; data: TransferRequest & { accepted?: AcceptedBy } }
  | { type: 'TransferSourceDebited'; data: { transferId: string; accountId: string; amount: MinorUnits; currency: string } }
  | { type: 'TransferTargetCredited'; data: { transferId: string; accountId: string; amount: MinorUnits } }
  | { type: 'TransferSourceRefunded'; data: { transferId: string; accountId: string; amount: MinorUnits } }
  | { type: 'TransferCompleted'; data: { transferId: string } }
  | { type: 'TransferFailed'; data: { transferId: string; reason: TransferFailureReason; message: string } }
  | { type: 'TransferCompensated'; data: { transferId: string; reason: TransferFailureReason; message: string } }
  /** On a completed transfer: a reversal holds this much of its amount (never more than what is left). */
  | { type: 'TransferReversalReserved'; data: { transferId: string; reversalId: string; amount: MinorUnits } }
  /** On a completed transfer: a reversal that moved nothing gives its hold back. */
  | { type: 'TransferReversalReleased'; data: { transferId: string; reversalId: string } };

export type TransferEventType = TransferEvent['type'];

export const transferStream = (transferId: string): string => `transfer-${transferId}`;
export const TRANSFER_STREAM_PREFIX = 'transfer-';

export type TransferStatus = 'pending' | 'completed' | 'failed' | 'compensated';
export type TerminalTransferStatus = Exclude<TransferStatus, 'pending'>;

/** The event that ends a transfer, and the status it ends it in: the one place this mapping lives. */
export const TERMINAL_STATUS_BY_EVENT = {
  TransferCompleted: 'completed',
  TransferFailed: 'failed',
  TransferCompensated: 'compensated',
} as const satisfies Partial<Record<TransferEventType, TerminalTransferStatus>>;

export const TERMINAL_STATUSES: readonly TerminalTransferStatus[] = Object.values(TERMINAL_STATUS_BY_EVENT);

export function isTerminalStatus(status: string): status is TerminalTransferStatus {
  return (TERMINAL_STATUSES as readonly string[]).includes(status);
}

/** The terminal status an event puts its transfer in, if it is a terminal event. */
export function terminalStatusOf(eventType: string): TerminalTransferStatus | undefined {
  return Object.hasOwn(TERMINAL_STATUS_BY_EVENT, eventType)
    ? TERMINAL_STATUS_BY_EVENT[eventType as keyof typeof TERMINAL_STATUS_BY_EVENT]
    : undefined;
}

/** Every transfer event type, derived from the union: a type missing here fails to compile. */
const TRANSFER_EVENT_TYPE_SET = {
  TransferRequested: true,
  TransferSourceDebited: true,
  TransferTargetCredited: true,
  TransferSourceRefunded: true,
  TransferCompleted: true,
  TransferFailed: true,
  TransferCompensated: true,
  TransferReversalReserved: true,
  TransferReversalReleased: true,
} as const satisfies Record<TransferEventType, true>;

export const TRANSFER_EVENT_TYPES: readonly TransferEventType[] = Object.keys(TRANSFER_EVENT_TYPE_SET) as TransferEventType[];
