import { isValidAmount } from './money';
import { accept, reject, type Decision } from './rejection';
import type { Decider } from './decider';
import {
  TRANSFER_EVENT_TYPES,
  transferStream,
  type AcceptedBy,
  type TransferEvent,
  type TransferFailureReason,
  type TransferRequest,
} from './transfer-events';
import { evolveTransfer, initialTransferState, reversibleAmount, type TransferState } from './transfer-state';

export type TransferCommand =
  /** `accepted`: who the API accepted it from (the API records it before the saga starts; a saga never invents one). */
  | { type: 'RequestTransfer'; request: TransferRequest; accepted?: AcceptedBy }
  | { type: 'RecordSourceDebited'; accountId: string; amount: number; currency: string }
  | { type: 'RecordTargetCredited'; accountId: string; amount: number }
  | { type: 'RecordSourceRefunded'; accountId: string; amount: number }
  | { type: 'CompleteTransfer' }
  | { type: 'FailTransfer'; reason: TransferFailureReason; message: string }
  | { type: 'CompensateTransfer'; reason: TransferFailureReason; message: string }
  /** On the transfer being reversed: hold `amount` of it for the reversal (only a completed transfer, never beyond its amount). */
  | { type: 'ReserveReversal'; reversalId: string; amount: number }
  /** On the transfer being reversed: the reversal moved nothing; its hold goes back. */
  | { type: 'ReleaseReversal'; reversalId: string };

export function sameRequest(a: TransferRequest, b: TransferRequest): boolean {
  return (
    a.transferId === b.transferId &&
    a.fromAccountId === b.fromAccountId &&
    a.toAccountId === b.toAccountId &&
    a.amount === b.amount &&
    (a.reversalOf ?? null) === (b.reversalOf ?? null)
  );
}

/** Validates a transfer request on its own (before any account is read). */
export function checkTransferRequest(request: TransferRequest): Decision<never> | undefined {
  if (!isValidAmount(request.amount)) return reject('invalid_amount', 'Amount must be a positive safe integer of minor units');
  if (request.fromAccountId === request.toAccountId) return reject('same_account', 'A transfer needs two different accounts');
  return undefined;
}

const TERMINAL_BY_COMMAND = { CompleteTransfer: 'completed', FailTransfer: 'failed', CompensateTransfer: 'compensated' } as const;

/** A retried step or outcome that is already on the stream (deciding it again is a no-op). */
function alreadyRecorded(state: TransferState, command: TransferCommand): boolean {
  switch (command.type) {
    case 'RecordSourceDebited':
      return state.debited !== undefined;
    case 'RecordTargetCredited':
      return state.credited !== undefined;
    case 'RecordSourceRefunded':
      return state.refunded !== undefined;
    case 'CompleteTransfer':
    case 'FailTransfer':
    case 'CompensateTransfer':
      return TERMINAL_BY_COMMAND[command.type] === state.status;
    default:
      return false;
  }
}

/**
 * Every step is recorded once: deciding a step already recorded yields no events (retries are
 * harmless). A finished transfer is final: it takes no further step and no other outcome.
 */
export function decideTransfer(state: TransferState, command: TransferCommand): Decision<TransferEvent> {
  const transferId = state.request?.transferId ?? '';
  if (command.type === 'ReserveReversal' || command.type === 'ReleaseReversal') return decideReversal(state, command);
  if (command.type !== 'RequestTransfer') {
    if (!state.request) return reject('transfer_not_found', 'The transfer was never requested');
    if (state.status !== 'pending' && !alreadyRecorded(state, command)) {
      return reject('transfer_finished', `Transfer ${transferId} already finished as ${state.status}`);
    }
  }
  switch (command.type) {
    case 'RequestTransfer': {
      if (state.request) {
        return sameRequest(state.request, command.request)
          ? accept([])
          : reject('transfer_conflict', `Transfer ${command.request.transferId} already exists with a different payload`);
      }
      return (
        checkTransferRequest(command.request) ??
        accept([{ type: 'TransferRequested', data: { ...command.request, ...(command.accepted ? { accepted: command.accepted } : {}) } }])
      );
    }
    case 'RecordSourceDebited':
      return state.debited !== undefined
        ? accept([])
        : accept([
            {
              type: 'TransferSourceDebited',
              data: { transferId, accountId: command.accountId, amount: command.amount, currency: command.currency },
            },
          ]);
    case 'RecordTargetCredited':
      return state.credited !== undefined
        ? accept([])
        : accept([{ type: 'TransferTargetCredited', data: { transferId, accountId: command.accountId, amount: command.amount } }]);
    case 'RecordSourceRefunded':
      return state.refunded !== undefined
        ? accept([])
        : accept([{ type: 'TransferSourceRefunded', data: { transferId, accountId: command.accountId, amount: command.amount } }]);
    case 'CompleteTransfer':
      return state.status === 'completed' ? accept([]) : accept([{ type: 'TransferCompleted', data: { transferId } }]);
    case 'FailTransfer':
      return state.status === 'failed'
        ? accept([])
        : accept([{ type: 'TransferFailed', data: { transferId, reason: command.reason, message: command.message } }]);
    case 'CompensateTransfer':
      return state.status === 'compensated'
        ? accept([])
        : accept([{ type: 'TransferCompensated', data: { transferId, reason: command.reason, message: command.message } }]);
  }
}

/** Reversal holds on a completed transfer: the sum of the holds never passes its amount. */
function decideReversal(
  state: TransferState,
  command: Extract<TransferCommand, { type: 'ReserveReversal' | 'ReleaseReversal' }>,
): Decision<TransferEvent> {
  const transferId = state.request?.transferId ?? '';
  const held = state.reversals.get(command.reversalId);
  if (command.type === 'ReleaseReversal') {
    return !held || held.released
      ? accept([])
      : accept([{ type: 'TransferReversalReleased', data: { transferId, reversalId: command.reversalId } }]);
  }
  if (!state.request) return reject('transfer_not_found', 'The transfer to reverse was never requested');
  if (held && !held.released) {
    return held.amount === command.amount
      ? accept([])
      : reject('transfer_conflict', `Reversal ${command.reversalId} already holds ${held.amount}`);
  }
  // A hold given back is final: the reversal moved nothing and ended; run again, it may not hold anew.
  if (held) return reject('transfer_finished', `Reversal ${command.reversalId} gave its hold back: it cannot hold again`);
  if (state.status !== 'completed')
    return reject('transfer_not_completed', `Transfer ${transferId} is ${state.status}: only a completed transfer can be reversed`);
  if (!isValidAmount(command.amount)) return reject('invalid_amount', 'Amount must be a positive safe integer of minor units');
  const left = reversibleAmount(state);
  if (command.amount > left) {
    return reject(
      'reversal_exceeds_original',
      `Transfer ${transferId} has ${left} of ${state.request.amount} left to reverse, not ${command.amount}`,
    );
  }
  return accept([{ type: 'TransferReversalReserved', data: { transferId, reversalId: command.reversalId, amount: command.amount } }]);
}

/** Transfers as a decider: the stream `transfer-<id>`, the lifecycle's events, its fold and its rules. */
export const transferDecider: Decider<TransferState, TransferCommand, TransferEvent> = {
  name: 'Transfer',
  streamName: transferStream,
  eventTypes: TRANSFER_EVENT_TYPES,
  initialState: () => initialTransferState(),
  evolve: evolveTransfer,
  decide: decideTransfer,
};
