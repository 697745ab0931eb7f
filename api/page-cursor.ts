import { HttpProblem, problemType } from './problem';
import { StrictTime } from './schemas';
import { isStorableText } from './validate';

/** Page cursors of GET /transfers and GET /holds: opaque to clients (base64url of the last row's creation time and id). */
export function encodeCursor(cursor: { at: string; id: string }): string {
  return Buffer.from(JSON.stringify([cursor.at, cursor.id])).toString('base64url');
}

export function decodeCursor(text: string): { at: string; id: string } {
  try {
    const [at, id] = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as [unknown, unknown];
    // What PostgreSQL compares: a strict ISO-8601 time in the business range, an id of storable text (issue 23, item 11).
    const validId = typeof id === 'string' && id.length > 0 && id.length <= 300 && isStorableText(id);
    if (typeof at === 'string' && StrictTime.safeParse(at).success && validId) return { at, id };
  } catch {
    // not a cursor of ours: refused below
  }
  throw new HttpProblem(400, problemType('validation-error'), 'Invalid cursor', 'after must be a cursor returned by a previous page', [
    { field: 'after', message: 'is not a cursor returned by a previous page' },
  ]);
}
