import type { z } from 'zod';
import { HttpProblem, problemType, validationProblem } from './problem';

/**
 * Validates outside input (a body, query, path parameters or headers) with its schema: 400 naming the field, else
 * the parsed value. Before the schema, every string in it (keys too) must be text PostgreSQL can store and compare
 * (isStorableText): so no field, present or future, carries a NUL or a lone surrogate to the database
 * (docs/input-validation.md).
 */
export function parse<S extends z.ZodType>(schema: S, value: unknown, where: 'body' | 'query' | 'path' | 'header'): z.infer<S> {
  const input = value ?? (where === 'body' ? undefined : {});
  const unstorable = unstorableField(input);
  if (unstorable !== undefined) {
    const field = unstorable || where;
    throw new HttpProblem(400, problemType('validation-error'), `Invalid request ${where}`, `${field} ${UNSTORABLE_MESSAGE}`, [
      { field, message: UNSTORABLE_MESSAGE },
    ]);
  }
  const result = schema.safeParse(input);
  if (!result.success) throw validationProblem(where, result.error);
  return result.data;
}

export const UNSTORABLE_MESSAGE = 'must not contain NUL or unpaired surrogate characters';

/** A lone (unpaired) UTF-16 surrogate: not Unicode text, refused by PostgreSQL's text and jsonb. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Text PostgreSQL stores and compares as sent: no NUL (text and jsonb refuse it) and no lone surrogate. */
export function isStorableText(text: string): boolean {
  return !text.includes('\u0000') && !LONE_SURROGATE.test(text);
}

/**
 * The dotted path of the first string (value or key) in `value` that is not storable text ('' for `value` itself),
 * or undefined when all are. Iterative, so a deeply nested body cannot overflow the stack.
 */
export function unstorableField(value: unknown): string | undefined {
  const pending: { value: unknown; path: string }[] = [{ value, path: '' }];
  while (pending.length > 0) {
    const { value: v, path } = pending.pop()!;
    if (typeof v === 'string') {
      if (!isStorableText(v)) return path;
    } else if (Array.isArray(v)) {
      v.forEach((item, i) => pending.push({ value: item, path: join(path, String(i)) }));
    } else if (v !== null && typeof v === 'object') {
      for (const key of Object.keys(v)) {
        if (!isStorableText(key)) return path || '(a field name)';
        pending.push({ value: (v as Record<string, unknown>)[key], path: join(path, key) });
      }
    }
  }
  return undefined;
}

const join = (path: string, key: string) => (path ? `${path}.${key}` : key);

/** The largest value of PostgreSQL's bigint (2^63 - 1): positions, revisions and cursors compared there. */
export const MAX_BIGINT = 9_223_372_036_854_775_807n;

/** Decimal digits (1-19) whose value fits PostgreSQL's bigint. */
export function isBigintText(text: string): boolean {
  return /^\d{1,19}$/.test(text) && BigInt(text) <= MAX_BIGINT;
}
