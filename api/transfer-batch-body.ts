import type { z } from 'zod';
import { HttpProblem, problemType, type FieldError } from './problem';
import { CreateTransferBatchBody } from './schemas';
import { parse } from './validate';

export type TransferBatchBody = z.infer<typeof CreateTransferBatchBody>;

/** The most field errors one refused batch names (a batch of a thousand bad items would otherwise answer thousands). */
const MAX_FIELD_ERRORS = 100;

/**
 * The body of POST /transfer-batches, validated as every body is (validate.ts: storable text, then the zod schema), with
 * the fields of its items named as the API names them, `items[3].amount` (zod's path would read `items.3.amount`).
 * More than `maxItems` items is refused before the items are looked at. Used by the route and by access control (which
 * reads the body before the route), so both refuse the same body alike.
 */
export function parseTransferBatchBody(body: unknown, maxItems: number): TransferBatchBody {
  const items = (body as { items?: unknown } | null | undefined)?.items;
  if (Array.isArray(items) && items.length > maxItems) {
    throw new HttpProblem(400, problemType('validation-error'), 'Invalid request body', `items holds more than ${maxItems} transfers`, [
      { field: 'items', message: `must hold at most ${maxItems} transfers (TRANSFER_BATCH_MAX_ITEMS)` },
    ]);
  }
  try {
    return parse(CreateTransferBatchBody, body, 'body');
  } catch (error) {
    if (!(error instanceof HttpProblem) || !error.errors) throw error;
    const errors: FieldError[] = error.errors.map((e) => ({ field: itemField(e.field), message: e.message }));
    const shown = errors.slice(0, MAX_FIELD_ERRORS);
    const more = errors.length - shown.length;
    const detail = shown.map((e) => `${e.field} ${e.message}`).join('; ') + (more > 0 ? `; and ${more} more` : '');
    throw new HttpProblem(error.status, error.type, error.title, detail, shown, error.extra);
  }
}

/** `items.3.amount` -> `items[3].amount` (also inside a list of unknown fields, `items.3.a, items.3.b`). */
export function itemField(field: string): string {
  return field.replace(/(^|, )items\.(\d+)(?=\.|,|$)/g, '$1items[$2]');
}
