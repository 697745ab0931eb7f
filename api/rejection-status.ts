import type { Rejection } from '../domain/rejection';
import { HttpProblem, problemType } from './problem';

/** A refused domain rule: 404 when the account does not exist, 422 for every other rule. */
export function rejectionProblem(rejection: Rejection, field?: string): HttpProblem {
  const status = rejection.type === 'account_not_found' ? 404 : rejection.type === 'transfer_conflict' ? 409 : 422;
  const title = rejection.type.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());
  return new HttpProblem(
    status,
    problemType(rejection.type),
    title,
    rejection.message,
    field ? [{ field, message: rejection.message }] : undefined,
  );
}
