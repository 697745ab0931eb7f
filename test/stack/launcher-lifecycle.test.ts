import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findFreePort } from '../../infra/ports';
import { commandLine, descendantsOf } from '../../infra/process-table';
import {
  alive,
  foldedBalances,
  interrupt,
  killAll,
  launch,
  openAccount,
  outcomes,
  processesMentioning,
  readModelAgrees,
  RUNNING,
  submitTransfers,
  treeOf,
  until,
  type Launched,
} from './launcher-harness';

/**
 * How `npm start` ends: a terminal's Ctrl-C (SIGINT to the whole foreground process group, the
 * embedded PostgreSQL included unless it has a group of its own) under load and right after start,
 * the launcher SIGKILLed, whoever started it SIGKILLed, and everything but the servers SIGKILLed.
 * Each time: no process of the stack is left, PostgreSQL never had to terminate a connection of
 * ours (pools are closed first), and the next start works, with its data, and every transfer reaches its outcome.
 */
jest.setTimeout(240_000);

describe('npm start: stopping and killing the launcher', () => {
  let dataDir: string;
  let env: Record<string, string>;
  const launchedAll: Launched[] = [];
  let accounts: string[] = [];
  const OPENING = 1_000;

  /** Processes of this stack's data directory (the servers and their launcher's children). */
  const stackProcesses = () => processesMentioning(dataDir);
  const postgresLog = () => {
    try {
      return fs.readFileSync(path.join(dataDir, 'postgres.log'), 'utf8');
    } catch {
      return '';
    }
  };
  const start = async (options: { detached?: boolean; viaShell?: boolean } = {}) => {
    const stack = launch(env, options);
    launchedAll.push(stack);
    await until('the stack to be running', () => stack.output().includes(RUNNING), 180_000, stack);
    return stack;
  };
  const expectNothingLeft = async (tree: number[], stack: Launched) => {
    await until(
      'every process of the stack to be gone',
      () => tree.every((pid) => !alive(pid)) && stackProcesses().length === 0,
      60_000,
      stack,
    );
  };
  /** The process running the launcher (`npm start` runs it directly: the spawned process itself). */
  const launcherOf = (stack: Launched) => {
    const pid = [stack.child.pid!, ...descendantsOf(stack.child.pid!)].find((p) => (commandLine(p) ?? '').includes('start-local-stack'));
    if (!pid) throw new Error('launcher process not found');
    return pid;
  };
  const port = () => env.PORT!;

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'transfer-service-lifecycle-'));
    // Reachable by the postgres user when run as root, so PostgreSQL's command line names this data directory.
    fs.chmodSync(dataDir, 0o755);
    env = {
      DATA_DIR: dataDir,
      PORT: String(await findFreePort()),
      TEMPORAL_PORT: String(await findFreePort()),
      TEMPORAL_UI_PORT: String(await findFreePort()),
      POSTGRES_PORT: String(await findFreePort()),
      DATABASE_URL: '',
      TEMPORAL_ADDRESS: '',
      TASK_QUEUE: 'lifecycle',
    };
  });
  afterAll(async () => {
    for (const l of launchedAll) {
      try {
        process.kill(-l.child.pid!, 'SIGKILL');
      } catch {
        /* not a group leader, or gone */
      }
      if (l.child.exitCode === null) l.child.kill('SIGKILL');
    }
    killAll(stackProcesses());
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('Ctrl-C right after start: it stops what it started so far and leaves nothing behind', async () => {
    const stack = launch(env, { detached: true });
    launchedAll.push(stack);
    await until('the start to begin', () => stack.output().includes('data directory'), 60_000, stack);
    await until('the servers to be starting', () => stackProcesses().length > 0, 60_000, stack);
    const tree = treeOf(stack);
    interrupt(stack);
    const { code } = await stack.exited;
    expect({ code, output: code === 0 ? '' : stack.output().slice(-4000) }).toEqual({ code: 0, output: '' });
    await expectNothingLeft(tree, stack);
    expect(postgresLog()).not.toContain('terminating connection due to administrator command');
  });

  test('Ctrl-C under load: an orderly stop (no connection of ours terminated by PostgreSQL), and after a restart every transfer reaches its outcome', async () => {
    let stack = await start({ detached: true });
    accounts = [];
    for (let i = 0; i < 6; i++) accounts.push(await openAccount(port(), OPENING));
    let interrupted = false;
    const attempted: string[] = [];
    const load = submitTransfers(port(), accounts, 200, 4, 'ctrl-c', { stop: () => interrupted, attempted });
    await until('transfers to be in flight', () => attempted.length >= 8, 60_000, stack);
    const tree = treeOf(stack);
    const logBefore = postgresLog().length;
    interrupt(stack);
    interrupted = true;
    const { code } = await stack.exited;
    expect({ code, output: code === 0 ? '' : stack.output().slice(-4000) }).toEqual({ code: 0, output: '' });
    await expectNothingLeft(tree, stack);
    await load;
    expect(postgresLog().slice(logBefore)).not.toContain('terminating connection due to administrator command');
    expect(stack.output()).not.toMatch(/Unhandled 'error' event|did not stop cleanly/);

    stack = await start();
    const settled = await outcomes(port(), attempted, 150_000, { mayBeUnknown: true });
    expect(Object.values(settled).every((s) => ['completed', 'failed', 'compensated', 'never started'].includes(s))).toBe(true);
    const folded = await foldedBalances(port(), accounts);
    expect(folded.every((b) => b >= 0)).toBe(true);
    expect(folded.reduce((a, b) => a + b, 0)).toBe(accounts.length * OPENING);
    await until('the read model to agree', () => readModelAgrees(port(), accounts, folded), 60_000, stack);
    const tree2 = treeOf(stack);
    stack.child.kill('SIGTERM');
    expect((await stack.exited).code).toBe(0);
    await expectNothingLeft(tree2, stack);
  });

  test('SIGKILL of the launcher: its reaper stops the servers; the next start works and keeps the data', async () => {
    const stack = await start();
    const tree = treeOf(stack);
    process.kill(launcherOf(stack), 'SIGKILL');
    await expectNothingLeft(tree, stack);

    // Whoever started the launcher is killed (a shell here; npm, a closed terminal): the launcher stops itself, in order.
    const next = await start({ viaShell: true });
    expect(await foldedBalances(port(), accounts)).toHaveLength(accounts.length);
    const nextTree = treeOf(next);
    const logBefore = postgresLog().length;
    process.kill(next.child.pid!, 'SIGKILL');
    await expectNothingLeft(nextTree, next);
    expect(postgresLog().slice(logBefore)).toMatch(/received (smart|fast) shutdown request/);
    expect(postgresLog().slice(logBefore)).not.toContain('terminating connection due to administrator command');
  });

  test('everything but the servers SIGKILLed at once: the next start stops the leftovers of its data directory first', async () => {
    const stack = await start();
    const servers = stackProcesses();
    expect(servers.length).toBeGreaterThanOrEqual(2); // PostgreSQL (and its backends) and the Temporal dev server
    // The launcher and its reaper: gone at once, nothing can clean up.
    const launcher = launcherOf(stack);
    const reaper = descendantsOf(launcher).filter((p) => (commandLine(p) ?? '').includes('tracked = new Map'));
    expect(reaper).toHaveLength(1);
    killAll([...reaper, launcher]);
    await until('the launcher to be gone', () => !alive(launcher), 10_000, stack);
    expect(servers.some(alive)).toBe(true); // left over

    const next = await start();
    expect(next.output()).toMatch(/stopping .* left over from an earlier run/);
    expect(servers.every((pid) => !alive(pid))).toBe(true);
    expect(await foldedBalances(port(), accounts)).toHaveLength(accounts.length);
    const tree = treeOf(next);
    next.child.kill('SIGTERM');
    expect((await next.exited).code).toBe(0);
    await expectNothingLeft(tree, next);
  });
});
