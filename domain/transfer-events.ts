import type { MinorUnits } from './money';
import type { RejectionType } from './rejection';

export interface TransferRequest {
  transferId: string;
  fromAccountId: string;
  toAccountId: string;
  amount: MinorUnits;
}

/** Why a transfer did not complete: a business rule, the infrastructure (retries exhausted), or an operator's cancel. */
export type TransferFailureReason = RejectionType | 'infrastructure' | 'cancelled';

/** Events of a transfer's own stream `transfer-<transferId>`: its whole lifecycle, step by step. */
export type TransferEvent =
  | { type: 'TransferRequested'; data: TransferRequest }
  | { type: 'TransferSourceDebited'; data: { transferId: string; accountId: string; amount: MinorUnits; currency: string } }
  | { type: 'TransferTargetCredited'; data: { transferId: string; accountId: string; amount: MinorUnits } }
  | { type: 'TransferSourceRefunded'; data: { transferId: string; accountId: string; amount: MinorUnits } }
  | { type: 'TransferCompleted'; data: { transferId: string } }
  | { type: 'TransferFailed'; data: { transferId: string; reason: TransferFailureReason; message: string } }
  | { type: 'TransferCompensated'; data: { transferId: string; reason: TransferFailureReason; message: string } };

export type TransferEventType = TransferEvent['type'];

export const transferStream = (transferId: string): string => `transfer-${transferId}`;
export const TRANSFER_STREAM_PREFIX = 'transfer-';

export type TransferStatus = 'pending' | 'completed' | 'failed' | 'compensated';
export const TERMINAL_STATUSES: readonly TransferStatus[] = ['completed', 'failed', 'compensated'];
