import type { Rejection } from '../domain/rejection';
import { HttpProblem, problemType } from './problem';

/** A hold's state refuses it (docs/holds.md): 409, as a conflict with what the hold's stream decided already. */
const HOLD_CONFLICTS: ReadonlySet<Rejection['type']> = new Set(['hold_conflict', 'hold_expired', 'hold_finished', 'hold_not_placed']);

/**
 * A refused domain rule: 404 when the account (or the hold) does not exist, 409 for a conflicting id or a hold's state
 * that refuses it (expired, finished, not placed), 422 for every other rule.
 */
export function rejectionProblem(rejection: Rejection, field?: string): HttpProblem {
  const status =
    rejection.type === 'account_not_found' || rejection.type === 'hold_not_found'
      ? 404
      : rejection.type === 'transfer_conflict' || HOLD_CONFLICTS.has(rejection.type)
        ? 409
        : 422;
  const title = rejection.type.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());
  return new HttpProblem(
    status,
    problemType(rejection.type),
    title,
    rejection.message,
    field ? [{ field, message: rejection.message }] : undefined,
  );
}

/**
 * The field a refused account write names: the account (the path parameter `id`, as the API names it in every
 * problem about a path's id) when the account itself refuses (unknown, closed, still holding money); the currency
 * for a currency; else the amount field of the request (`amount`, or `initialDeposit` when opening).
 */
export function accountWriteField(rejection: Rejection, amountField?: string): string | undefined {
  switch (rejection.type) {
    case 'account_not_found':
    case 'account_closed':
    case 'account_has_balance':
      return 'id';
    case 'invalid_currency':
      return 'currency';
    default:
      return amountField;
  }
}
