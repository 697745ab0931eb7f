/**
 * A dedicated embedded PostgreSQL for a test that kills it, run as a child process
 * (`tsx test/resilience/postgres-server.ts`): jest's test sandbox cannot import the ESM binaries
 * package. Prints one JSON line `{"url","pid","dataDir"}` once ready; stops the server on SIGTERM or
 * when the test process (RESILIENCE_PARENT_PID) is gone.
 *
 * Environment: PG_DATA_DIR, PG_PORT, RESILIENCE_PARENT_PID.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { startEmbeddedPostgres } from '../../infra/embedded-postgres';

async function main(): Promise<void> {
  const pg = await startEmbeddedPostgres({
    dataDir: process.env.PG_DATA_DIR!,
    port: Number(process.env.PG_PORT),
    database: 'transfers',
    persistent: true,
    log: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(`${JSON.stringify({ url: pg.url, pid: pg.pid, dataDir: pg.dataDir })}\n`);
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    // A killed postmaster has nothing left to stop; never hang on it.
    void Promise.race([pg.stop(), new Promise((r) => setTimeout(r, 35_000))]).finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  const parent = Number(process.env.RESILIENCE_PARENT_PID);
  setInterval(() => {
    try {
      process.kill(parent, 0);
    } catch {
      stop();
    }
  }, 500);
}

/** Test side: starts the server process and waits for its JSON line. */
export interface PostgresServer {
  url: string;
  /** The postmaster's pid (kill it to kill PostgreSQL). */
  pid: number;
  dataDir: string;
  /** PostgreSQL's log so far (this process's part). */
  log: () => string;
  stop(): Promise<void>;
}

export function startPostgresServer(dataDir: string, port: number): Promise<PostgresServer> {
  const root = path.resolve(__dirname, '../..');
  const child = spawn(path.join(root, 'node_modules/.bin/tsx'), ['test/resilience/postgres-server.ts'], {
    cwd: root,
    env: { ...process.env, PG_DATA_DIR: dataDir, PG_PORT: String(port), RESILIENCE_PARENT_PID: String(process.pid) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err = (err + c.toString()).slice(-200_000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`PostgreSQL did not start within 120 s:\n${err.slice(-3000)}`)), 120_000);
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (!line) return;
      clearTimeout(timer);
      const info = JSON.parse(line) as { url: string; pid: number; dataDir: string };
      resolve({
        ...info,
        log: () => err,
        stop: async () => {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
          await exited;
        },
      });
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`PostgreSQL server process exited (${code}):\n${err.slice(-3000)}`));
    });
  });
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
}
