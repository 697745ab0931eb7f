import type { MinorUnits } from './money';
import type { TransferEvent, TransferRequest, TransferStatus } from './transfer-events';

export interface TransferStep {
  name: 'requested' | 'source_debited' | 'target_credited' | 'source_refunded' | 'completed' | 'failed' | 'compensated';
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

/** `at` is the event's occurrence time (from its metadata), supplied by the caller. */
export function evolveTransfer(state: TransferState, event: TransferEvent, at: string): TransferState {
  const step = (name: TransferStep['name']) => [...state.steps, { name, at }];
  switch (event.type) {
    case 'TransferRequested':
      return { ...state, status: 'pending', request: event.data, steps: step('requested') };
    case 'TransferSourceDebited':
      return { ...state, debited: event.data.amount, currency: event.data.currency, steps: step('source_debited') };
    case 'TransferTargetCredited':
      return { ...state, credited: event.data.amount, steps: step('target_credited') };
    case 'TransferSourceRefunded':
      return { ...state, refunded: event.data.amount, steps: step('source_refunded') };
    case 'TransferCompleted':
      return { ...state, status: 'completed', steps: step('completed') };
    case 'TransferFailed':
      return { ...state, status: 'failed', failureReason: event.data.reason, failureMessage: event.data.message, steps: step('failed') };
    case 'TransferCompensated':
      return { ...state, status: 'compensated', failureReason: event.data.reason, failureMessage: event.data.message, steps: step('compensated') };
  }
}
