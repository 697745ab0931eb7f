import type { Timed } from './decider';
import type { MinorUnits } from './money';
import {
  TERMINAL_STATUS_BY_EVENT,
  type AcceptedBy,
  type TransferEvent,
  type TransferRequest,
  type TransferStatus,
} from './transfer-events';

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
  /** Who the API accepted the request from (requests recorded by earlier releases' sagas have none). */
  accepted?: AcceptedBy;
  currency?: string;
  debited?: MinorUnits;
  credited?: MinorUnits;
  refunded?: MinorUnits;
  failureReason?: string;
  failureMessage?: string;
  steps: TransferStep[];
  /**
   * Reversals of this (completed) transfer by reversal id: the amount each holds, and whether it gave it back. A Map:
   * reversal ids are chosen by clients, and a plain object would answer `constructor` or `__proto__` from its prototype.
   */
  reversals: ReadonlyMap<string, { amount: MinorUnits; released?: boolean }>;
}

/** How much of a completed transfer's amount reversals may still take. */
export function reversibleAmount(state: TransferState): MinorUnits {
  if (!state.request) return 0;
  let held = 0;
  for (const r of state.reversals.values()) if (!r.released) held += r.amount;
  return state.request.amount - held;
}

export const initialTransferState = (): TransferState => ({ status: 'none', steps: [], reversals: new Map() });

/** Each step keeps the event's occurrence time (from its metadata; '' while still being decided). */
export function evolveTransfer(state: TransferState, event: Timed<TransferEvent>): TransferState {
  const steps = [...state.steps, { name: TRANSFER_STEP_BY_EVENT[event.type], at: event.occurredAt ?? '' }];
  switch (event.type) {
    case 'TransferRequested': {
      const { accepted, ...request } = event.data;
      return { ...state, status: 'pending', request, ...(accepted ? { accepted } : {}), steps };
    }
    case 'TransferSourceDebited':
      return { ...state, debited: event.data.amount, currency: event.data.currency, steps };
    case 'TransferTargetCredited':
      return { ...state, credited: event.data.amount, steps };
    case 'TransferSourceRefunded':
      return { ...state, refunded: event.data.amount, steps };
    case 'TransferCompleted':
      return { ...state, status: TERMINAL_STATUS_BY_EVENT[event.type], steps };
    case 'TransferReversalReserved':
      return { ...state, reversals: new Map(state.reversals).set(event.data.reversalId, { amount: event.data.amount }), steps };
    case 'TransferReversalReleased': {
      const held = state.reversals.get(event.data.reversalId);
      return held
        ? { ...state, reversals: new Map(state.reversals).set(event.data.reversalId, { ...held, released: true }), steps }
        : { ...state, steps };
    }
    case 'TransferFailed':
    case 'TransferCompensated': {
      const status = TERMINAL_STATUS_BY_EVENT[event.type];
      return { ...state, status, failureReason: event.data.reason, failureMessage: event.data.message, steps };
    }
  }
}
