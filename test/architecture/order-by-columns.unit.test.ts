import fs from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT, sourceFiles } from '../support/source-files';

/**
 * Issue 23, item 9: in PostgreSQL an ORDER BY name refers to an output column before a table column, so a query that
 * selects `revision::text AS revision` and orders `BY revision` sorts revisions as text (10 before 9: a statement's
 * running balance went below zero for an account that never did; the corrections and exceptions pages skipped rows).
 * The rule that keeps the class closed: in a file that selects a number as text under a name (`...::text AS name`),
 * no ORDER BY uses that name unqualified; it orders by the table's column (`m.revision`) instead.
 */
const ROOT = PROJECT_ROOT;
const SOURCE_FOLDERS = ['api', 'application', 'eventstore', 'infra', 'main', 'projections', 'scripts', 'stores', 'temporal', 'bench'];

/** The SQL texts of a source file: its template literals, with `${NAME}` replaced by the file's string constant NAME. */
export function sqlTexts(source: string): string[] {
  const constants = new Map<string, string>();
  for (const m of source.matchAll(/const\s+([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(`[^`]*`|'[^']*')/g)) constants.set(m[1]!, m[2]!.slice(1, -1));
  return [...source.matchAll(/`[^`]*`/g)]
    .map((m) => m[0].slice(1, -1).replace(/\$\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}/g, (_all, name: string) => constants.get(name) ?? ''))
    .filter((text) => /\bORDER\s+BY\b/i.test(text));
}

/** The text with everything inside parentheses blanked: what remains is the outer query (a subquery's names are its own). */
function outerLevel(sql: string): string {
  let depth = 0;
  let out = '';
  for (const c of sql) {
    if (c === '(') depth += 1;
    if (depth === 0) out += c;
    else out += c === '\n' ? '\n' : ' ';
    if (c === ')') depth = Math.max(0, depth - 1);
  }
  return out;
}

/** For one query: the names of its outer ORDER BY that are values it selects as text (`x::text AS name`). */
export function textOrderings(sql: string): string[] {
  const outer = outerLevel(sql.replace(/\$\{[^}]*\}/g, ''));
  // Aliases may be written inside a function call's parentheses' neighbour (`(a)::text AS name`): look for them in the whole text.
  const aliases = new Set([...sql.matchAll(/::text\s+AS\s+([a-z_][a-z0-9_]*)/gi)].map((m) => m[1]!.toLowerCase()));
  const names: string[] = [];
  for (const m of outer.matchAll(/ORDER\s+BY\s+([\s\S]*?)(?=\s+LIMIT\b|\s+OFFSET\b|\s+FOR\s+UPDATE\b|$)/gi)) {
    for (const term of m[1]!.split(',')) {
      const first = (term.trim().split(/\s+/)[0] ?? '').toLowerCase();
      if (aliases.has(first)) names.push(first);
    }
  }
  return names;
}

describe('ORDER BY sorts by table columns, never by a number selected as text', () => {
  test('the rule finds the bug it is for', () => {
    const buggy = 'const q = `SELECT revision::text AS revision, kind FROM t WHERE a = $1 ORDER BY occurred_at, revision LIMIT 5`';
    expect(sqlTexts(buggy).flatMap(textOrderings)).toEqual(['revision']);
    const fixed = 'const q = `SELECT revision::text AS revision, kind FROM t m WHERE a = $1 ORDER BY m.occurred_at, m.revision LIMIT 5`';
    expect(sqlTexts(fixed).flatMap(textOrderings)).toEqual([]);
    // Through a constant of columns, as exceptions-queries.ts writes them.
    const viaColumns =
      'const COLUMNS = `held_commit::text AS held_commit`;\nconst q = `SELECT ${COLUMNS} FROM x ORDER BY held_commit LIMIT $1`;';
    expect(sqlTexts(viaColumns).flatMap(textOrderings)).toEqual(['held_commit']);
    // A subquery orders by its own columns.
    const sub = 'const q = `SELECT f.position::text AS position FROM (SELECT position FROM p ORDER BY position LIMIT 1) f`';
    expect(sqlTexts(sub).flatMap(textOrderings)).toEqual([]);
  });

  test('no source file orders by a name it selects as text', () => {
    const offenders: string[] = [];
    for (const file of SOURCE_FOLDERS.flatMap(sourceFiles)) {
      for (const name of sqlTexts(fs.readFileSync(file, 'utf8')).flatMap(textOrderings))
        offenders.push(`${path.relative(ROOT, file)}: ORDER BY ${name} (selected as text)`);
    }
    expect(offenders).toEqual([]);
  });
});
