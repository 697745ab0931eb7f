import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { embeddedPostgresPasswordFile, localStackDatabaseUrl } from '../../infra/embedded-postgres';
import { findFreePort } from '../../infra/ports';
import { startPostgresServer, type PostgresServer } from '../resilience/postgres-server';

/**
 * The embedded PostgreSQL of the local stack has a random password, kept in its data folder (mode
 * 0600), never the old default `postgres`: anyone on this machine could otherwise connect to
 * 127.0.0.1 and move money in the read models or the event store. A data folder made by an earlier
 * version (password `postgres`) keeps working: its first start sets a random password over the old
 * one and saves it. The password never reaches a log line. (Each start runs in a child process:
 * jest's sandbox cannot import the ESM binaries package.)
 */
jest.setTimeout(180_000);

const OLD_DEFAULT = 'postgres';

describe('the embedded PostgreSQL password', () => {
  let root: string;
  let dataDir: string;
  let port: number;
  const relocated = new Set<string>();
  let running: PostgresServer | undefined;
  /** Everything the starts printed: our notices and PostgreSQL's own log. */
  let output = '';

  const start = async () => {
    try {
      running = await startPostgresServer(dataDir, port);
    } catch (error) {
      output += (error as Error).message;
      throw error;
    }
    if (running.dataDir !== dataDir) relocated.add(path.dirname(running.dataDir));
    return running;
  };
  const stop = async () => {
    if (!running) return;
    await running.stop();
    output += running.log();
    running = undefined;
  };
  const saved = () => fs.readFileSync(embeddedPostgresPasswordFile(dataDir), 'utf8').trim();
  const modeOf = (file: string) => (fs.statSync(file).mode & 0o777).toString(8);
  /** Connects as the superuser with this password: 'ok', or the server's error code (28P01: password refused). */
  const connectWith = async (password: string): Promise<string> => {
    const client = new Client({ host: '127.0.0.1', port, user: 'postgres', password, database: 'transfers' });
    try {
      await client.connect();
      await client.query('SELECT 1');
      return 'ok';
    } catch (error) {
      return (error as { code?: string }).code ?? (error as Error).message;
    } finally {
      await client.end().catch(() => undefined);
    }
  };
  const query = async (url: string, sql: string) => {
    const client = new Client({ connectionString: url });
    await client.connect();
    try {
      return (await client.query<Record<string, unknown>>(sql)).rows;
    } finally {
      await client.end();
    }
  };

  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'transfer-service-pg-password-'));
    dataDir = path.join(root, 'postgres');
    port = await findFreePort();
  });

  afterEach(async () => {
    await stop();
  });

  afterAll(() => {
    fs.rmSync(root, { recursive: true, force: true });
    for (const home of relocated) fs.rmSync(home, { recursive: true, force: true });
  });

  test('a new cluster gets a random password, kept in its data folder with mode 0600; `postgres` is refused', async () => {
    const pg = await start();
    const file = embeddedPostgresPasswordFile(dataDir);
    expect(path.dirname(file)).toBe(path.resolve(dataDir));
    expect(modeOf(file)).toBe('600');
    const password = saved();
    expect(password).not.toBe(OLD_DEFAULT);
    expect(password.length).toBeGreaterThanOrEqual(32);
    expect(decodeURIComponent(new URL(pg.url).password)).toBe(password);
    expect(await connectWith(password)).toBe('ok');
    expect(await connectWith(OLD_DEFAULT)).toBe('28P01');
    await query(pg.url, 'CREATE TABLE kept (id int)');
    await query(pg.url, 'INSERT INTO kept VALUES (1)');
    // What scripts beside `npm start` use to reach it (DATA_DIR/postgres).
    expect(localStackDatabaseUrl(root, port)).toBe(pg.url);
    await stop();
    expect(output).not.toContain(password);
  });

  test('a restart reuses the saved password, and the data', async () => {
    const before = saved();
    const pg = await start();
    expect(saved()).toBe(before);
    expect(decodeURIComponent(new URL(pg.url).password)).toBe(before);
    expect(await query(pg.url, 'SELECT count(*)::int AS n FROM kept')).toEqual([{ n: 1 }]);
    expect(await connectWith(OLD_DEFAULT)).toBe('28P01');
    expect(modeOf(embeddedPostgresPasswordFile(dataDir))).toBe('600');
  });

  test('a data folder of an earlier version (password `postgres`, nothing saved) is moved to a random password on its first start', async () => {
    // Make it what the earlier version left: the superuser's password is `postgres` and no password is saved.
    let pg = await start();
    await query(pg.url, `ALTER ROLE postgres PASSWORD '${OLD_DEFAULT}'`);
    await stop();
    fs.rmSync(embeddedPostgresPasswordFile(dataDir));
    output = '';

    pg = await start();
    const password = saved();
    expect(password).not.toBe(OLD_DEFAULT);
    expect(modeOf(embeddedPostgresPasswordFile(dataDir))).toBe('600');
    expect(decodeURIComponent(new URL(pg.url).password)).toBe(password);
    expect(await connectWith(password)).toBe('ok');
    expect(await connectWith(OLD_DEFAULT)).toBe('28P01');
    expect(await query(pg.url, 'SELECT count(*)::int AS n FROM kept')).toEqual([{ n: 1 }]);
    await stop();
    // Said, without the password (PostgreSQL's own log included).
    expect(output).toMatch(/random password/);
    expect(output).not.toContain(password);

    // And the next start simply uses it.
    pg = await start();
    expect(saved()).toBe(password);
    expect(await query(pg.url, 'SELECT count(*)::int AS n FROM kept')).toEqual([{ n: 1 }]);
  });

  test('a start interrupted between setting the new password and saving it loses nothing', async () => {
    // The new password is written aside (pending) before ALTER ROLE and renamed after it: a crash in
    // between leaves the pending file, which the next start adopts.
    const password = saved();
    const file = embeddedPostgresPasswordFile(dataDir);
    fs.renameSync(file, `${file}.new`);
    const pg = await start();
    expect(saved()).toBe(password);
    expect(fs.existsSync(`${file}.new`)).toBe(false);
    expect(await query(pg.url, 'SELECT count(*)::int AS n FROM kept')).toEqual([{ n: 1 }]);
  });

  test('a saved password the server refuses stops the start with a message naming the file, never the password', async () => {
    const file = embeddedPostgresPasswordFile(dataDir);
    const good = saved();
    fs.writeFileSync(file, 'not-the-password\n', { mode: 0o600 });
    output = '';
    try {
      await expect(start()).rejects.toThrow(/EmbeddedPostgresError: The embedded PostgreSQL refuses the password saved in/);
      expect(output).toContain(file);
      expect(output).not.toContain('not-the-password');
      expect(output).not.toContain(good);
    } finally {
      fs.writeFileSync(file, `${good}\n`, { mode: 0o600 });
    }
    const pg = await start();
    expect(await query(pg.url, 'SELECT count(*)::int AS n FROM kept')).toEqual([{ n: 1 }]);
  });
});
