import type { Timed } from './decider';
import type { MinorUnits } from './money';
import { TERMINAL_STATUS_BY_EVENT, type TransferEvent, type TransferRequest, type TransferStatus } from './transfer-events';

/** The step each transfer event records: the one place the names of a transfer's steps live. */
export const TRANSFER_STEP_BY_EVENT = {
  TransferRequested: 'requested',
  TransferSourceDebited: 'source_debited',
  TransferTargetCredited: 'target_credited',
  TransferSourceRefunded: 'source_refunded',
  TransferCompleted: 'completed',
  TransferFailed: 'failed',
  TransferCompensated: 'compensated',
  TransferReversalReserved: 'reversal_reserved',
  TransferReversalReleased: 'reversal_released',
} as const satisfies Record<TransferEvent['type'], string>;

/** A step of a transfer's lifecycle and when it happened. */
export interface TransferStep {
  name: (typeof TRANSFER_STEP_BY_EVENT)[TransferEvent['type']];
  at: string;
}

export interface TransferState {
  status: 'none' | TransferStatus;
  request?: TransferRequest;
  currency?: string;
  debited?: MinorUnits;
  credited?: MinorUnits;
  refunded?: MinorUnits;
  failureReason?: string;
  failureMessage?: string;
  steps: TransferStep[];
  /** Reversals of this (completed) transfer: the amount each holds, and whether it gave it back. */
  reversals: Record<string, { amount: MinorUnits; released?: boolean }>;
}

/** How much of a completed transfer's amount reversals may still take. */
export function reversibleAmount(state: TransferState): MinorUnits {
  if (!state.request) return 0;
  const held = Object.values(state.reversals).reduce((sum, r) => (r.released ? sum : sum + r.amount), 0);
  return state.request.amount - held;
}

export const initialTransferState = (): TransferState => ({ status: 'none', steps: [], reversals: {} });

/** Each step keeps the event's occurrence time (from its metadata; '' while still being decided). */
export function evolveTransfer(state: TransferState, event: Timed<TransferEvent>): TransferState {
  const steps = [...state.steps, { name: TRANSFER_STEP_BY_EVENT[event.type], at: event.occurredAt ?? '' }];
  switch (event.type) {
    case 'TransferRequested':
      return { ...state, status: 'pending', request: event.data, steps };
    case 'TransferSourceDebited':
      return { ...state, debited: event.data.amount, currency: event.data.currency, steps };
    case 'TransferTargetCredited':
      return { ...state, credited: event.data.amount, steps };
    case 'TransferSourceRefunded':
      return { ...state, refunded: event.data.amount, steps };
    case 'TransferCompleted':
      return { ...state, status: TERMINAL_STATUS_BY_EVENT[event.type], steps };
    case 'TransferReversalReserved':
      return { ...state, reversals: { ...state.reversals, [event.data.reversalId]: { amount: event.data.amount } }, steps };
    case 'TransferReversalReleased': {
      const held = state.reversals[event.data.reversalId];
      return held
        ? { ...state, reversals: { ...state.reversals, [event.data.reversalId]: { ...held, released: true } }, steps }
        : { ...state, steps };
    }
    case 'TransferFailed':
    case 'TransferCompensated': {
      const status = TERMINAL_STATUS_BY_EVENT[event.type];
      return { ...state, status, failureReason: event.data.reason, failureMessage: event.data.message, steps };
    }
  }
}
