import { createHash } from 'node:crypto';
import type { Response } from 'express';
import type { Principal } from '../stores/api-keys';
import { HttpProblem, problemType } from './problem';

/**
 * Transfer ids a customer chooses are scoped to its owner (as Stripe scopes idempotency keys per account):
 * the id stored (the transfer's stream `transfer-<id>`, its saga's workflow id, the read model) is
 * `o_<owner tag>_<client id>`, where the owner tag is 12 base64url characters of SHA-256 of the owner id.
 * Two owners choosing the same id make two transfers; a customer's answers about its ids never depend on
 * another owner's. Customers see and use their own id (in answers, Location and GET /transfers/{id});
 * operators see the stored id. Ids of this form are made only by the API for customer keys: an operator
 * choosing one (a transfer or a reversal id) is refused, so no operator's id lands in a customer's space.
 * See docs/access-control.md.
 */
const PREFIX = 'o_';
const TAG_LENGTH = 12;
const SCOPE_LENGTH = PREFIX.length + TAG_LENGTH + 1;
/** The longest transfer id a customer may choose: the stored id stays within the 64 characters of a transfer id. */
export const MAX_CUSTOMER_TRANSFER_ID_LENGTH = 64 - SCOPE_LENGTH;
const RESERVED = new RegExp(`^${PREFIX}[A-Za-z0-9_-]{${TAG_LENGTH}}_`);

function scopeOf(ownerId: string): string {
  return `${PREFIX}${createHash('sha256').update(`transfer-id-scope\u0000${ownerId}`).digest('base64url').slice(0, TAG_LENGTH)}_`;
}

/** The stored id of a customer's own transfer id (undefined when the id is too long to be one). */
export function scopedTransferId(ownerId: string, clientId: string): string | undefined {
  return clientId.length > MAX_CUSTOMER_TRANSFER_ID_LENGTH ? undefined : scopeOf(ownerId) + clientId;
}

/** The id an owner's customer sees for a stored id: its own id for its scoped transfers, the stored id for every other. */
export function shownTransferId(ownerId: string, storedId: string): string {
  const scope = scopeOf(ownerId);
  return storedId.startsWith(scope) ? storedId.slice(scope.length) : storedId;
}

/** True for ids of the customer-scoped form, which only the API makes. */
export function isCustomerScopedId(id: string): boolean {
  return RESERVED.test(id);
}

/** The owner of the calling customer key, or undefined for operators. */
export function customerOwnerOf(res: Response): string | undefined {
  const principal = res.locals.principal as Principal | undefined;
  return principal?.role === 'customer' && principal.ownerId !== undefined ? principal.ownerId : undefined;
}

/**
 * Maps the ids of a transfer view (its own, `reversalOf`, `reversedBy`, and `batchId`: batch ids are scoped as transfer
 * ids are) to what the caller sees.
 */
export function viewForCaller<
  V extends {
    transferId: string;
    reversalOf?: string | undefined;
    reversedBy?: { reversalId: string }[] | undefined;
    batchId?: string | undefined;
  },
>(res: Response, view: V): V {
  const ownerId = customerOwnerOf(res);
  if (ownerId === undefined) return view;
  const show = (id: string) => shownTransferId(ownerId, id);
  return {
    ...view,
    transferId: show(view.transferId),
    ...(view.reversalOf !== undefined ? { reversalOf: show(view.reversalOf) } : {}),
    ...(view.reversedBy !== undefined ? { reversedBy: view.reversedBy.map((r) => ({ ...r, reversalId: show(r.reversalId) })) } : {}),
    ...(view.batchId !== undefined ? { batchId: show(view.batchId) } : {}),
  };
}

/**
 * The stored id of a transfer id in a request: for a customer, its own id scoped to its owner (400 when too
 * long); for an operator, the id as given, refused (400) when it has the customer-scoped form.
 */
export function storedTransferIdFor(res: Response, clientId: string, field: string): string {
  const ownerId = customerOwnerOf(res);
  if (ownerId === undefined) {
    if (isCustomerScopedId(clientId))
      throw new HttpProblem(
        400,
        problemType('validation-error'),
        'Invalid transfer id',
        `${field} has a form reserved for customers' ids`,
        [{ field, message: `must not start with ${PREFIX}, 12 characters and _ (ids of that form are made for customer keys)` }],
      );
    return clientId;
  }
  const stored = scopedTransferId(ownerId, clientId);
  if (stored === undefined)
    throw new HttpProblem(400, problemType('validation-error'), 'Invalid transfer id', `${field} is too long for a customer key`, [
      { field, message: `must be at most ${MAX_CUSTOMER_TRANSFER_ID_LENGTH} characters with a customer key` },
    ]);
  return stored;
}
