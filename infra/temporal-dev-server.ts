import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { defineSearchAttributeKey } from '@temporalio/common';
import type { TemporalCli } from './temporal-cli';
import { waitFor } from './ports';

/** Custom search attributes the service uses; registered on the dev server at start. */
export const SEARCH_ATTRIBUTES = {
  TransferStatus: 'Keyword',
  // A batch's items by outcome (workflows/batch-saga-contract.ts).
  BatchItemsCompleted: 'Int',
  BatchItemsFailed: 'Int',
  BatchItemsCompensated: 'Int',
} as const;

/**
 * Settings for a dev server that runs on one machine beside its only worker (`npm start`, tests,
 * bench), measured in `npm run bench` (README, Performance). Production servers keep Temporal's defaults.
 * - One task-queue partition: with one worker process, the default 4 partitions only spread polls
 *   thin (a task may sit in a partition no poller is waiting on).
 * - Eager activity execution (off by default in server 1.29): a remote activity scheduled by a
 *   workflow task is handed back in that task's response to the same worker, no matching round trip.
 */
export const ONE_MACHINE_DYNAMIC_CONFIG = [
  'matching.numTaskqueueReadPartitions=1',
  'matching.numTaskqueueWritePartitions=1',
  'system.enableActivityEagerExecution=true',
] as const;
/** For the file database: write-ahead log, and fsync at checkpoints only (a dev server's data is not precious). */
export const ONE_MACHINE_SQLITE_PRAGMAS = ['journal_mode=WAL', 'synchronous=NORMAL'] as const;

/** The one-machine settings by name, so that each can be left out and measured (`npm run bench -- --dev-server-without=<name>`). */
export const DEV_SERVER_SETTINGS = {
  'one-partition': { dynamicConfig: ONE_MACHINE_DYNAMIC_CONFIG.slice(0, 2), pragmas: [] },
  'eager-activities': { dynamicConfig: ONE_MACHINE_DYNAMIC_CONFIG.slice(2), pragmas: [] },
  'sqlite-wal': { dynamicConfig: [], pragmas: ONE_MACHINE_SQLITE_PRAGMAS.slice(0, 1) },
  'sqlite-synchronous-normal': { dynamicConfig: [], pragmas: ONE_MACHINE_SQLITE_PRAGMAS.slice(1) },
} as const satisfies Record<string, { dynamicConfig: readonly string[]; pragmas: readonly string[] }>;
export type DevServerSetting = keyof typeof DEV_SERVER_SETTINGS;

export interface DevServerOptions {
  /** 'one-machine' (default): the settings above; 'defaults': the server's own (to measure the difference). */
  tuning?: 'one-machine' | 'defaults';
  /** With 'one-machine': settings left out (to measure what each buys). */
  without?: readonly DevServerSetting[];
  cli: TemporalCli;
  port: number;
  /** Web UI port; undefined runs headless (tests). */
  uiPort?: number;
  /** SQLite file keeping state across restarts; undefined keeps everything in memory. */
  dbFile?: string;
  namespace: string;
  log?: (line: string) => void;
  /** Called with the server's pid as soon as it is spawned (before it is ready), e.g. to make sure it never outlives us. */
  onSpawn?: (pid: number) => void;
}

export interface RunningDevServer {
  address: string;
  uiUrl?: string;
  pid?: number;
  stop(): Promise<void>;
}

/** Starts `temporal server start-dev` and waits until its namespace answers. */
export async function startTemporalDevServer(options: DevServerOptions): Promise<RunningDevServer> {
  const address = `127.0.0.1:${options.port}`;
  const uiUrl = options.uiPort ? `http://localhost:${options.uiPort}` : undefined;
  if (options.dbFile) fs.mkdirSync(path.dirname(path.resolve(options.dbFile)), { recursive: true });

  if (options.cli.kind === 'sdk-download') {
    // Last resort: the SDK downloads and runs the CLI itself.
    const { TestWorkflowEnvironment } = await import('@temporalio/testing');
    const env = await TestWorkflowEnvironment.createLocal({
      server: {
        ip: '127.0.0.1',
        port: options.port,
        ui: options.uiPort !== undefined,
        uiPort: options.uiPort,
        dbFilename: options.dbFile,
        namespace: options.namespace,
        searchAttributes: Object.entries(SEARCH_ATTRIBUTES).map(([name, type]) =>
          defineSearchAttributeKey(name, type === 'Int' ? 'INT' : 'KEYWORD'),
        ),
      },
    });
    return { address, uiUrl, stop: () => env.teardown() };
  }

  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(options.port),
    '--namespace',
    options.namespace,
    '--log-level',
    'warn',
  ];
  if (options.uiPort) args.push('--ui-port', String(options.uiPort));
  else args.push('--headless');
  if (options.dbFile) args.push('--db-filename', path.resolve(options.dbFile));
  for (const [name, type] of Object.entries(SEARCH_ATTRIBUTES)) args.push('--search-attribute', `${name}=${type}`);
  if ((options.tuning ?? 'one-machine') === 'one-machine') {
    for (const [name, setting] of Object.entries(DEV_SERVER_SETTINGS) as [
      DevServerSetting,
      (typeof DEV_SERVER_SETTINGS)[DevServerSetting],
    ][]) {
      if (options.without?.includes(name)) continue;
      for (const value of setting.dynamicConfig) args.push('--dynamic-config-value', value);
      if (options.dbFile) for (const pragma of setting.pragmas) args.push('--sqlite-pragma', pragma);
    }
  }
  // Metrics on a random free port, so several dev servers can run on one machine.
  args.push('--metrics-port', '0');

  // Its own process group: a terminal's Ctrl-C reaches only us, and we stop the server in order.
  const child = spawn(options.cli.path, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  if (child.pid !== undefined) options.onSpawn?.(child.pid);
  // Safety net: never leave the server behind when this process exits, however it exits (short of SIGKILL).
  const killOnExit = () => {
    try {
      child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  };
  process.once('exit', killOnExit);
  child.once('exit', () => process.off('exit', killOnExit));
  const output: string[] = [];
  const collect = (chunk: Buffer) => {
    const text = chunk.toString('utf8');
    output.push(text);
    if (output.length > 100) output.shift();
    for (const line of text.split('\n')) if (line.trim()) options.log?.(line);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });

  try {
    await waitFor(
      `the Temporal dev server on ${address}`,
      async () => {
        if (exited) throw Object.assign(new Error(`exited early:\n${output.join('').slice(-3000)}`), { fatal: true });
        const connection = await Connection.connect({ address, connectTimeout: 1000 });
        try {
          await connection.workflowService.describeNamespace({ namespace: options.namespace });
        } finally {
          await connection.close();
        }
      },
      120_000,
      250,
    );
  } catch (error) {
    await stopChild(child);
    throw error;
  }
  return { address, uiUrl, pid: child.pid, stop: () => stopChild(child) };
}

export function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
