import { createHash } from 'node:crypto';

const names = new Map<string, string>();

/**
 * A statement run often, as a named (prepared) statement: each connection parses and plans it once, not on every
 * execution. The name is derived from the text, so the same text always has the same name and different texts never
 * share one (a name is bound to its text on each connection). For statements whose text is one of a few fixed
 * variants; never for text that embeds values.
 */
export function prepared(text: string, values: unknown[]): { name: string; text: string; values: unknown[] } {
  let name = names.get(text);
  if (name === undefined) {
    name = `q_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
    if (names.size < 10_000) names.set(text, name);
  }
  return { name, text, values };
}
