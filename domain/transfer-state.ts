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
}

export const initialTransferState = (): TransferState => ({ status: 'none', steps: [] });

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
    case 'TransferFailed':
    case 'TransferCompensated': {
      const status = TERMINAL_STATUS_BY_EVENT[event.type];
      return { ...state, status, failureReason: event.data.reason, failureMessage: event.data.message, steps };
    }
  }
}
