import type { Decider } from './decider';
import { isValidAmount, type MinorUnits } from './money';
import { accept, reject, type Decision } from './rejection';
import type { AcceptedBy, TransferFailureReason } from './transfer-events';

/**
 * A hold (two-phase transfer, issue 25): money reserved on the source now, moved to the target later by a capture (in
 * full or in part), or released by a void or at its expiry. The hold's own stream `hold-<holdId>` is where each of
 * these is decided, exactly once: the API records the request, a capture or a void there before the hold's saga acts,
 * and the saga records its expiry there, so a capture and the expiry racing have one winner (the expected revision).
 * The captured part is the transfer of the hold's id: it appears in transfer lists and is reversed like any transfer.
 */
export interface HoldRequest {
  holdId: string;
  fromAccountId: string;
  toAccountId: string;
  amount: MinorUnits;
  /** When an open hold is voided by itself. ISO-8601. */
  expiresAt: string;
}

export type HoldEvent =
  | { type: 'HoldRequested'; data: HoldRequest & { accepted: AcceptedBy } }
  /** The money is reserved on the source (its HoldPlaced landed). */
  | { type: 'HoldReserved'; data: { holdId: string; accountId: string; amount: MinorUnits; currency: string } }
  /** The source refused the reservation (e.g. not enough available): nothing is reserved. */
  | { type: 'HoldRefused'; data: { holdId: string; reason: TransferFailureReason; message: string } }
  | { type: 'HoldCaptureRequested'; data: { holdId: string; amount: MinorUnits; accepted: AcceptedBy } }
  | { type: 'HoldVoidRequested'; data: { holdId: string; accepted: AcceptedBy } }
  /** The hold's timer fired with no capture or void decided: it expires (the release follows). */
  | { type: 'HoldExpiryReached'; data: { holdId: string } }
  /** The capture's transfer completed: `amount` reached the target, `released` went back to the source's available. */
  | { type: 'HoldCaptured'; data: { holdId: string; amount: MinorUnits; released: MinorUnits } }
  /** The capture's credit could not land: the source got the money back (as a transfer compensates). */
  | { type: 'HoldCaptureCompensated'; data: { holdId: string; amount: MinorUnits; reason: TransferFailureReason; message: string } }
  /** The reservation ended without moving money (after a void or the expiry). */
  | { type: 'HoldReleased'; data: { holdId: string; amount: MinorUnits; reason: 'voided' | 'expired' } };

export type HoldEventType = HoldEvent['type'];

const HOLD_EVENT_TYPE_SET = {
  HoldRequested: true,
  HoldReserved: true,
  HoldRefused: true,
  HoldCaptureRequested: true,
  HoldVoidRequested: true,
  HoldExpiryReached: true,
  HoldCaptured: true,
  HoldCaptureCompensated: true,
  HoldReleased: true,
} as const satisfies Record<HoldEventType, true>;

export const HOLD_EVENT_TYPES: readonly HoldEventType[] = Object.keys(HOLD_EVENT_TYPE_SET) as HoldEventType[];

export const holdStream = (holdId: string): string => `hold-${holdId}`;
export const HOLD_STREAM_PREFIX = 'hold-';

/**
 * - `pending`: accepted, the reservation not placed yet; `failed`: the source refused it (nothing reserved);
 * - `held`: reserved, waiting for a capture, a void or the expiry;
 * - `capturing`: a capture was accepted and its transfer runs; `captured` / `compensated` (the credit could not land and
 *   the source got the money back);
 * - `voided` / `expired`: decided; `released` is set once the source's reservation has ended.
 */
export type HoldStatus = 'pending' | 'failed' | 'held' | 'capturing' | 'captured' | 'compensated' | 'voided' | 'expired';

export const TERMINAL_HOLD_STATUSES: readonly HoldStatus[] = ['failed', 'captured', 'compensated', 'voided', 'expired'];

export interface HoldState {
  holdId: string;
  status: HoldStatus;
  request?: HoldRequest;
  accepted?: AcceptedBy;
  reserved?: MinorUnits;
  currency?: string;
  capture?: { amount: MinorUnits; accepted: AcceptedBy };
  voidedBy?: AcceptedBy;
  captured?: MinorUnits;
  /** What went back to the source's available (after a capture in part, a void or the expiry). */
  released?: MinorUnits;
  failureReason?: TransferFailureReason;
  failureMessage?: string;
  /** The reservation on the source has ended (released or captured): nothing more happens to this hold. */
  settled: boolean;
}

export type HoldCommand =
  | { type: 'RequestHold'; request: HoldRequest; accepted: AcceptedBy }
  | { type: 'RecordReserved'; accountId: string; amount: MinorUnits; currency: string }
  | { type: 'RefuseHold'; reason: TransferFailureReason; message: string }
  /** `amount` undefined: all that is held. */
  | { type: 'RequestCapture'; amount?: MinorUnits; accepted: AcceptedBy }
  | { type: 'RequestVoid'; accepted: AcceptedBy }
  | { type: 'ReachExpiry' }
  | { type: 'RecordCaptured'; amount: MinorUnits; released: MinorUnits }
  | { type: 'RecordCaptureCompensated'; amount: MinorUnits; reason: TransferFailureReason; message: string }
  | { type: 'RecordReleased'; amount: MinorUnits; reason: 'voided' | 'expired' };

export const initialHoldState = (holdId = ''): HoldState => ({ holdId, status: 'pending', settled: false });

function sameRequest(a: HoldRequest, b: HoldRequest): boolean {
  return (
    a.holdId === b.holdId &&
    a.fromAccountId === b.fromAccountId &&
    a.toAccountId === b.toAccountId &&
    a.amount === b.amount &&
    Date.parse(a.expiresAt) === Date.parse(b.expiresAt)
  );
}

/** What a request must be before anything is recorded. */
export function checkHoldRequest(request: HoldRequest): Decision<HoldEvent> | undefined {
  if (!isValidAmount(request.amount)) return reject('invalid_amount', 'Amount must be a positive safe integer of minor units');
  if (request.fromAccountId === request.toAccountId) return reject('same_account', 'A hold needs two different accounts');
  if (Number.isNaN(Date.parse(request.expiresAt))) return reject('invalid_date', 'expiresAt must be an ISO-8601 time');
  return undefined;
}

export function decideHold(state: HoldState, command: HoldCommand): Decision<HoldEvent> {
  const id = state.holdId || (command.type === 'RequestHold' ? command.request.holdId : '');
  if (command.type !== 'RequestHold' && !state.request) return reject('hold_not_found', `Hold ${id} does not exist`);
  switch (command.type) {
    case 'RequestHold': {
      if (state.request) {
        return sameRequest(state.request, command.request)
          ? accept([])
          : reject('hold_conflict', `Hold ${command.request.holdId} already exists with a different payload`);
      }
      const invalid = checkHoldRequest(command.request);
      if (invalid) return invalid;
      return accept([{ type: 'HoldRequested', data: { ...command.request, accepted: command.accepted } }]);
    }
    case 'RecordReserved':
      if (state.reserved !== undefined || state.status === 'failed') return accept([]);
      return accept([
        { type: 'HoldReserved', data: { holdId: id, accountId: command.accountId, amount: command.amount, currency: command.currency } },
      ]);
    case 'RefuseHold':
      if (state.status !== 'pending' || state.reserved !== undefined) return accept([]);
      return accept([{ type: 'HoldRefused', data: { holdId: id, reason: command.reason, message: command.message } }]);
    case 'RequestCapture': {
      const amount = command.amount ?? state.capture?.amount ?? state.reserved ?? state.request!.amount;
      if (state.capture) {
        // A repeat answers what the first answered; another amount is refused.
        return amount === state.capture.amount
          ? accept([])
          : reject('hold_finished', `Hold ${id} is captured for ${state.capture.amount}, not ${amount}`);
      }
      if (state.status === 'expired')
        return reject('hold_expired', `Hold ${id} expired at ${state.request!.expiresAt}; nothing was captured`);
      if (state.status === 'voided') return reject('hold_finished', `Hold ${id} was voided`);
      if (state.status === 'pending' || state.status === 'failed' || state.reserved === undefined)
        return reject('hold_not_placed', `Hold ${id} reserves nothing (${state.status})`);
      if (!isValidAmount(amount)) return reject('invalid_amount', 'Amount must be a positive safe integer of minor units');
      if (amount > state.reserved) return reject('capture_exceeds_hold', `Hold ${id} reserves ${state.reserved}, cannot capture ${amount}`);
      return accept([{ type: 'HoldCaptureRequested', data: { holdId: id, amount, accepted: command.accepted } }]);
    }
    case 'RequestVoid':
      if (state.status === 'voided') return accept([]);
      if (state.status === 'expired')
        return reject('hold_expired', `Hold ${id} expired at ${state.request!.expiresAt}; it is released already`);
      if (state.capture) return reject('hold_finished', `Hold ${id} was captured`);
      if (state.status === 'failed') return reject('hold_not_placed', `Hold ${id} reserved nothing`);
      return accept([{ type: 'HoldVoidRequested', data: { holdId: id, accepted: command.accepted } }]);
    case 'ReachExpiry':
      // A capture or a void decided before the timer fired wins; so does a hold that never reserved anything.
      if (state.status !== 'held' && state.status !== 'pending') return accept([]);
      return accept([{ type: 'HoldExpiryReached', data: { holdId: id } }]);
    case 'RecordCaptured':
      if (state.settled) return accept([]);
      return accept([{ type: 'HoldCaptured', data: { holdId: id, amount: command.amount, released: command.released } }]);
    case 'RecordCaptureCompensated':
      if (state.settled) return accept([]);
      return accept([
        { type: 'HoldCaptureCompensated', data: { holdId: id, amount: command.amount, reason: command.reason, message: command.message } },
      ]);
    case 'RecordReleased':
      if (state.settled) return accept([]);
      return accept([{ type: 'HoldReleased', data: { holdId: id, amount: command.amount, reason: command.reason } }]);
  }
}

export function evolveHold(state: HoldState, event: HoldEvent): HoldState {
  switch (event.type) {
    case 'HoldRequested': {
      const { accepted, ...request } = event.data;
      return { ...state, holdId: request.holdId, request, accepted, status: 'pending' };
    }
    case 'HoldReserved':
      // A void or the expiry decided while the placement was in flight keeps its status: the release follows.
      return {
        ...state,
        reserved: event.data.amount,
        currency: event.data.currency,
        status: state.status === 'pending' ? 'held' : state.status,
      };
    case 'HoldRefused':
      return { ...state, status: 'failed', failureReason: event.data.reason, failureMessage: event.data.message, settled: true };
    case 'HoldCaptureRequested':
      return { ...state, status: 'capturing', capture: { amount: event.data.amount, accepted: event.data.accepted } };
    case 'HoldVoidRequested':
      return { ...state, status: 'voided', voidedBy: event.data.accepted };
    case 'HoldExpiryReached':
      return { ...state, status: 'expired' };
    case 'HoldCaptured':
      return { ...state, status: 'captured', captured: event.data.amount, released: event.data.released, settled: true };
    case 'HoldCaptureCompensated':
      return {
        ...state,
        status: 'compensated',
        captured: 0,
        released: state.reserved ?? 0,
        failureReason: event.data.reason,
        failureMessage: event.data.message,
        settled: true,
      };
    case 'HoldReleased':
      // After a capture that could not even debit (its transfer refused), the release gives everything back: compensated.
      return {
        ...state,
        released: event.data.amount,
        settled: true,
        ...(state.status === 'capturing' ? { status: 'compensated' as const, captured: 0 } : {}),
      };
  }
}

export const holdDecider: Decider<HoldState, HoldCommand, HoldEvent> = {
  name: 'Hold',
  streamName: holdStream,
  eventTypes: HOLD_EVENT_TYPES,
  initialState: initialHoldState,
  evolve: evolveHold,
  decide: decideHold,
};
