import { Worker } from 'node:worker_threads';
import { Pool } from 'pg';
import { handleAccountCommand } from '../../application/account-commands';
import { AccountRepository } from '../../application/account-repository';
import { loadConfig } from '../../config/config';
import { PostgresEventStore } from '../../eventstore/postgres/postgres-event-store';
import type { Logger } from '../../infra/logger';
import { silentLogger } from '../../infra/logger';
import { startProjectionsThread, superviseThread, type AppliedNote, type RunningProjectionsThread } from '../../main/projections-thread';
import { openAccount } from '../support/open-account';
import { createTestDatabase, type TestDatabase } from '../support/test-database';
import { waitUntil } from '../support/wait-until';

/** The local stack's projections on a thread of their own (main/projections-thread.ts). */
describe('projections thread', () => {
  let db: TestDatabase | undefined;
  let store: PostgresEventStore | undefined;
  let pool: Pool | undefined;
  let thread: RunningProjectionsThread | undefined;

  afterEach(async () => {
    await thread?.stop();
    thread = undefined;
    await pool?.end();
    pool = undefined;
    await store?.close();
    store = undefined;
    await db?.drop();
    db = undefined;
  });

  const balanceRow = async (accountId: string) =>
    (await pool!.query<{ balance: string }>('SELECT balance::text AS balance FROM rm_account_balances WHERE account_id = $1', [accountId]))
      .rows[0]?.balance;

  test('feeds the read models from its own connections, reports each outcome to this process, and ends on stop', async () => {
    db = await createTestDatabase('proj_thread');
    store = await PostgresEventStore.connect({ connectionString: db.url, poolSize: 4 });
    pool = new Pool({ connectionString: db.url, max: 2 });
    const accounts = new AccountRepository(store, 50);
    const notes: AppliedNote[] = [];
    thread = await startProjectionsThread({
      config: loadConfig({ LOG_LEVEL: 'error' }),
      endpoints: { databaseUrl: db.url, temporalAddress: 'not-used:7233' },
      logger: silentLogger,
      onApplied: (batch) => notes.push(...batch),
    });
    await expect(thread.health()).resolves.toBeUndefined();

    // Written here, projected there.
    const accountId = await openAccount(accounts, 500);
    await waitUntil('the thread to project the new account', async () => (await balanceRow(accountId)) === '500', 20_000, 20);
    // Each outcome reaches this process (after its commit, in one message per turn of the thread's loop): the opening
    // for the balances, the initial deposit for the history (it keeps movements only).
    for (const projection of ['account-balances', 'account-history'])
      await waitUntil(
        `${projection}'s outcomes for the new account to reach this process`,
        () => notes.some((n) => n.projection === projection && n.outcome === 'applied'),
        20_000,
        20,
      );
    const opened = notes.find((n) => n.projection === 'account-balances' && n.type === 'AccountOpened')!;
    expect(Number.isNaN(Date.parse(opened.recordedAt))).toBe(false);
    expect(Math.abs(opened.appliedAt - Date.now())).toBeLessThan(60_000);
    // The thread's read-model pool is its own (application_name transfer-projections).
    const threadConnections = async () =>
      Number(
        (
          await pool!.query<{ n: string }>(
            "SELECT count(*)::text AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'transfer-projections'",
          )
        ).rows[0]!.n,
      );
    expect(await threadConnections()).toBeGreaterThan(0);

    await thread.stop();
    await expect(thread.health()).rejects.toThrow(/projections thread/);
    thread = undefined;
    // Stopped: its connections are closed and nothing more is projected.
    await waitUntil('the thread to close its read-model connections', async () => (await threadConnections()) === 0, 10_000, 20);
    const deposited = await handleAccountCommand(accounts, accountId, { type: 'Deposit', amount: 250 });
    expect(deposited.ok).toBe(true);
    await new Promise((r) => setTimeout(r, 500));
    expect(await balanceRow(accountId)).toBe('500');

    // A new thread resumes from the checkpoint.
    thread = await startProjectionsThread({
      config: loadConfig({ LOG_LEVEL: 'error' }),
      endpoints: { databaseUrl: db.url, temporalAddress: 'not-used:7233' },
      logger: silentLogger,
    });
    await waitUntil('the new thread to project the deposit', async () => (await balanceRow(accountId)) === '750', 20_000, 20);
  });

  test('a first start that cannot reach the database rejects, as startProjections would', async () => {
    await expect(
      startProjectionsThread({
        config: loadConfig({ LOG_LEVEL: 'error' }),
        endpoints: { databaseUrl: 'postgres://nobody@127.0.0.1:1/nothing', temporalAddress: 'not-used:7233' },
        logger: silentLogger,
      }),
    ).rejects.toThrow(/ECONNREFUSED|connect/);
  });

  /**
   * A stand-in thread that speaks the same messages: it starts (or not), reports one outcome, then runs on; one that
   * `fails` throws when the test tells it to (a 'fail' message), so that it fails only after the supervisor has seen it
   * start, however slow the machine (a timer could fire before the parent had read 'started').
   */
  const standIn = (behaviour: 'fails' | 'runs' | 'never-starts') =>
    new Worker(
      `const { parentPort } = require('node:worker_threads');
       parentPort.on('message', (m) => {
         if (m.kind === 'stop') { parentPort.postMessage({ kind: 'stopped' }); parentPort.close(); }
         if (m.kind === 'fail') setImmediate(() => { throw new Error('thread failed'); });
       });
       setInterval(() => undefined, 1000);
       if (${JSON.stringify(behaviour)} !== 'never-starts') {
         parentPort.postMessage({ kind: 'started' });
         parentPort.postMessage({ kind: 'applied', notes: [{ projection: 'p', type: 'T', recordedAt: new Date().toISOString(), appliedAt: Date.now(), outcome: 'applied' }] });
       }`,
      { eval: true },
    );
  const running = (supervised: RunningProjectionsThread) =>
    supervised.health().then(
      () => true,
      () => false,
    );
  const recordingLogger = () => {
    const logged: Record<string, unknown>[] = [];
    const logger: Logger = { log: (entry) => void logged.push(entry), child: () => logger };
    return { logged, logger };
  };

  test('a thread that fails soon after it started is logged and started again, each time after a longer wait; stop ends the current one', async () => {
    const spawned: Worker[] = [];
    const spawn = () => {
      const worker = standIn(spawned.length < 3 ? 'fails' : 'runs');
      spawned.push(worker);
      return worker;
    };
    const { logged, logger } = recordingLogger();
    const notes: AppliedNote[] = [];
    thread = await superviseThread(spawn, { logger, restartDelayMs: 20, maxRestartDelayMs: 60, onApplied: (n) => notes.push(...n) });
    const supervised = thread;

    // Each of the first three fails once the supervisor runs it; the fourth runs on.
    for (let i = 0; i < 3; i++) {
      await waitUntil(`thread ${i + 1} to run`, async () => spawned.length === i + 1 && (await running(supervised)), 30_000, 10);
      spawned[i]!.postMessage({ kind: 'fail' });
    }
    await waitUntil(
      'a fourth thread to run and report',
      async () => spawned.length === 4 && notes.length === 4 && (await running(supervised)),
      30_000,
      10,
    );
    expect(logged.filter((e) => e.msg === 'projections thread failed').map((e) => String(e.error))).toEqual([
      expect.stringContaining('thread failed'),
      expect.stringContaining('thread failed'),
      expect.stringContaining('thread failed'),
    ]);
    // Backoff: 20 ms, then 40, then the maximum (60), as each thread failed within a minute of its start.
    expect(logged.filter((e) => e.msg === 'projections thread ended; starting it again').map((e) => e.inMs)).toEqual([20, 40, 60]);

    const exited = new Promise<number>((resolve) => spawned[3]!.once('exit', resolve));
    await thread.stop();
    await expect(thread.health()).rejects.toThrow(/stopped/);
    thread = undefined;
    await exited;
    // Nothing is started after stop (a restart would be due within 60 ms; this waits well past it).
    await new Promise((r) => setTimeout(r, 200));
    expect(spawned).toHaveLength(4);
  });

  test('stop while a new thread is starting ends that one too, and nothing is started after it', async () => {
    const spawned: Worker[] = [];
    const spawn = () => {
      const worker = standIn(spawned.length === 0 ? 'fails' : 'never-starts');
      spawned.push(worker);
      return worker;
    };
    const { logger } = recordingLogger();
    thread = await superviseThread(spawn, { logger, restartDelayMs: 10 });
    spawned[0]!.postMessage({ kind: 'fail' });
    await waitUntil('a second thread to be starting', () => spawned.length === 2, 10_000, 5);
    await expect(thread.health()).rejects.toThrow(/started again/);
    const exited = new Promise<number>((resolve) => spawned[1]!.once('exit', resolve));
    await thread.stop();
    thread = undefined;
    await exited;
    await new Promise((r) => setTimeout(r, 100));
    expect(spawned).toHaveLength(2);
  });
});
