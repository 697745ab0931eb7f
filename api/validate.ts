import type { z } from 'zod';
import { validationProblem } from './problem';

export function parse<S extends z.ZodType>(schema: S, value: unknown, where: 'body' | 'query' | 'path' | 'header'): z.infer<S> {
  const result = schema.safeParse(value ?? (where === 'body' ? undefined : {}));
  if (!result.success) throw validationProblem(where, result.error);
  return result.data;
}
