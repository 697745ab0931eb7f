/** Why a command was refused by the rules of the domain. Nothing is written for a rejected command. */
export type RejectionType =
  | 'invalid_amount'
  | 'invalid_currency'
  | 'account_not_found'
  | 'account_already_exists'
  | 'account_closed'
  | 'account_has_balance'
  | 'insufficient_funds'
  | 'balance_limit_exceeded'
  | 'currency_mismatch'
  | 'same_account'
  | 'transfer_conflict'
  | 'transfer_not_found'
  | 'transfer_finished'
  | 'transfer_not_completed'
  | 'reversal_exceeds_original'
  /** A saga run for a transfer the API never accepted (started straight on Temporal, or under another workflow id): it moves nothing. */
  | 'unauthorized'
  // Business time (issue 14): closing the books, and late records held for manual handling.
  | 'invalid_date'
  | 'day_not_ended'
  | 'books_gap_too_large'
  | 'exception_not_found'
  | 'exception_closed'
  | 'exception_in_progress'
  /** A late record dated (business time) before its account was opened (issue 23). */
  | 'before_account_opened'
  // Holds (two-phase transfers, issue 25).
  | 'hold_not_found'
  /** The hold id exists with another payload, or is taken by a transfer. */
  | 'hold_conflict'
  /** Captured after its expiry: the money went back to the source. */
  | 'hold_expired'
  /** Voided, or captured already (with another amount): nothing more can happen to it. */
  | 'hold_finished'
  /** The money is not reserved yet (or the reservation was refused). */
  | 'hold_not_placed'
  | 'capture_exceeds_hold'
  // Batches (issue 26).
  /** An item of an atomic batch that was itself fine: another item was refused, so nothing of the batch moves. */
  | 'batch_aborted';

/** Every rejection type, derived from the union. */
const REJECTION_TYPE_SET = {
  invalid_amount: true,
  invalid_currency: true,
  account_not_found: true,
  account_already_exists: true,
  account_closed: true,
  account_has_balance: true,
  insufficient_funds: true,
  balance_limit_exceeded: true,
  currency_mismatch: true,
  same_account: true,
  transfer_conflict: true,
  transfer_not_found: true,
  transfer_finished: true,
  transfer_not_completed: true,
  reversal_exceeds_original: true,
  unauthorized: true,
  invalid_date: true,
  day_not_ended: true,
  books_gap_too_large: true,
  exception_not_found: true,
  exception_closed: true,
  exception_in_progress: true,
  before_account_opened: true,
  hold_not_found: true,
  hold_conflict: true,
  hold_expired: true,
  hold_finished: true,
  hold_not_placed: true,
  capture_exceeds_hold: true,
  batch_aborted: true,
} as const satisfies Record<RejectionType, true>;

export function isRejectionType(type: string | null | undefined): type is RejectionType {
  return typeof type === 'string' && Object.hasOwn(REJECTION_TYPE_SET, type);
}

export interface Rejection {
  type: RejectionType;
  message: string;
}

export type Decision<E> = { ok: true; events: E[] } | { ok: false; rejection: Rejection };

export const accept = <E>(events: E[]): Decision<E> => ({ ok: true, events });
export const reject = <E>(type: RejectionType, message: string): Decision<E> => ({ ok: false, rejection: { type, message } });
