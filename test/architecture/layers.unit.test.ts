import fs from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT, sourceFiles } from '../support/source-files';

/**
 * The code's shape, checked (issue 10, item 4): routes call read-model query functions instead of running SQL, the
 * API never tests which event-store adapter it was given, every bare catch says why it drops its error, and no two
 * modules import each other, directly or round a longer cycle.
 */
const ROOT = PROJECT_ROOT;
const SOURCE_FOLDERS = [
  'activities',
  'api',
  'application',
  'config',
  'domain',
  'eventstore',
  'infra',
  'main',
  'projections',
  'scripts',
  'stores',
  'temporal',
  'workflows',
];

const ALL = SOURCE_FOLDERS.flatMap(sourceFiles);
const rel = (file: string) => path.relative(ROOT, file);

/** Relative imports that load a module at run time (`import type` erases). */
function runtimeImports(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const found: string[] = [];
  for (const match of text.matchAll(/^import\s+(?!type\s)[^;]*?from\s+'(\.[^']+)'/gms)) {
    const target = path.resolve(path.dirname(file), match[1]!);
    const resolved = [`${target}.ts`, path.join(target, 'index.ts')].find((f) => fs.existsSync(f));
    if (resolved) found.push(resolved);
  }
  return found;
}

/** Every cycle of run-time imports among `files`, as 'a -> b -> a'. */
function importCycles(files: string[]): string[] {
  const graph = new Map(files.map((file) => [file, runtimeImports(file)]));
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string) => {
    state.set(file, 'open');
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (state.get(next) === 'open') cycles.push([...stack.slice(stack.indexOf(next)), next].map(rel).join(' -> '));
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of files) if (!state.has(file)) visit(file);
  return cycles;
}

describe('the layers', () => {
  test('no SQL in api/: routes call the query functions of the read models and stores', () => {
    const sql = /\b(SELECT\s+[\w*]|INSERT\s+INTO|DELETE\s+FROM|UPDATE\s+\w+\s+SET)\b|\.query\s*[<(]/;
    const offenders = sourceFiles('api').flatMap((file) =>
      fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .map((line, i) => ({ line, at: `${rel(file)}:${i + 1}` }))
        .filter(({ line }) => sql.test(line) && !/^\s*(\*|\/\/)/.test(line))
        .map(({ at, line }) => `${at}: ${line.trim()}`),
    );
    expect(offenders).toEqual([]);
  });

  test('the API does not ask which event-store adapter it has', () => {
    const offenders = sourceFiles('api').filter((file) =>
      /instanceof\s+(PostgresEventStore|EsdbEventStore|InMemoryEventStore)/.test(fs.readFileSync(file, 'utf8')),
    );
    expect(offenders.map(rel)).toEqual([]);
  });

  test('every bare catch says why its error is dropped (a comment), or it is not bare', () => {
    const offenders: string[] = [];
    for (const file of ALL) {
      const lines = fs.readFileSync(file, 'utf8').split('\n');
      lines.forEach((line, i) => {
        const bare = /catch\s*\{/.test(line) || /\.catch\(\s*\(\)\s*=>\s*(undefined|\{\s*\})\s*\)/.test(line);
        if (!bare) return;
        const near = [line, lines[i + 1] ?? '', lines[i - 1] ?? ''].join('\n');
        if (!/\/\/|\/\*/.test(near)) offenders.push(`${rel(file)}:${i + 1}: ${line.trim()}`);
      });
    }
    expect(offenders).toEqual([]);
  });

  test('no import cycles between modules', () => {
    expect(importCycles(ALL)).toEqual([]);
  });

  test('the cycle check finds a cycle when there is one, and ignores type-only imports', () => {
    const dir = fs.mkdtempSync(path.join(ROOT, '.arch-check-'));
    try {
      fs.writeFileSync(path.join(dir, 'a.ts'), "import { b } from './b';\nexport const a = b;\n");
      fs.writeFileSync(path.join(dir, 'b.ts'), "import { a } from './a';\nexport const b = () => a;\n");
      fs.writeFileSync(path.join(dir, 'c.ts'), "import type { a } from './a';\nexport type C = typeof a;\n");
      const files = ['a.ts', 'b.ts', 'c.ts'].map((f) => path.join(dir, f));
      expect(importCycles(files)).toEqual([`${rel(files[0]!)} -> ${rel(files[1]!)} -> ${rel(files[0]!)}`]);
      expect(importCycles([files[2]!])).toEqual([]); // a type-only import is erased: no cycle
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
