import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { TransferActivities } from '../../activities/transfer-activities';
import { accountStream } from '../../domain/account-events';
import { transferStream } from '../../domain/transfer-events';
import { acceptTransfer } from '../../temporal/transfer-client';
import { BatchLog } from '../../application/batch-log';
import { acceptBatch } from '../../temporal/batch-client';
import { TransferStack } from '../support/transfer-stack';
import { processGroupMembers, readProcessStat } from '../../infra/process-table';
import { waitUntil } from '../support/wait-until';
import { activityExecutions } from '../support/workflow-history';

const REPO_ROOT = path.resolve(__dirname, '../..');

/** Linux: a SIGKILLed process may linger as a zombie until reaped; a zombie counts as dead. */
function isAlive(pid: number): boolean {
  const stat = readProcessStat(pid);
  if (stat) return stat.state !== 'Z';
  try {
    process.kill(pid, 0);
    return !fs.existsSync('/proc'); // no /proc: trust kill(0)
  } catch {
    return false;
  }
}

/** The crash worker runs as `npx tsx ...` (npx -> tsx -> node): it leads its own process group, killed as a whole. */
class CrashWorker {
  readonly lines: string[] = [];
  stderr = '';
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(readonly child: ChildProcess) {
    let buffer = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      const parts = buffer.split('\n');
      buffer = parts.pop()!;
      this.lines.push(...parts.map((l) => l.trim()).filter(Boolean));
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString('utf8')).slice(-5000);
    });
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  static start(stack: TransferStack): CrashWorker {
    const child = spawn('npx', ['tsx', 'test/support/crash-worker.ts'], {
      cwd: REPO_ROOT,
      detached: true, // own process group: SIGKILL reaches tsx's node child too
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        TEST_TEMPORAL_ADDRESS: process.env.TEST_TEMPORAL_ADDRESS,
        CRASH_WORKER_DATABASE_URL: stack.db.url,
        CRASH_WORKER_TASK_QUEUE: stack.taskQueue,
        CRASH_WORKER_PARENT_PID: String(process.pid),
      },
    });
    return new CrashWorker(child);
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async waitForLine(line: string, timeoutMs: number): Promise<void> {
    await waitUntil(
      `crash worker to print "${line}"`,
      () => {
        if (this.lines.includes(line)) return true;
        if (!this.running) throw new Error(`crash worker exited before "${line}": ${this.stderr}`);
        return false;
      },
      timeoutMs,
    );
  }

  /** SIGKILLs the whole process group (npx, tsx and the worker's node process); resolves with how the direct child (npx) exited. */
  async kill(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const pid = this.child.pid!;
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
    return this.exited;
  }
}

describe('worker crash between debit and credit (real SIGKILL of a worker process)', () => {
  let stack: TransferStack;
  let crashWorker: CrashWorker | undefined;

  beforeAll(async () => {
    stack = await TransferStack.create('crash');
  });
  afterAll(async () => {
    if (crashWorker) await crashWorker.kill();
    await stack?.close();
  });

  test('a new worker finishes the saga: completed, one debit, one credit, money conserved', async () => {
    const from = await stack.openAccount(10_000);
    const to = await stack.openAccount(1_000);
    const transferId = randomUUID();

    crashWorker = CrashWorker.start(stack);
    await crashWorker.waitForLine('ready', 60_000);

    const { handle } = await acceptTransfer(stack, {
      transferId,
      fromAccountId: from,
      toAccountId: to,
      amount: 2_500,
      correlationId: `crash-${transferId}`,
    });

    // The child debits, then hangs in its credit.
    await waitUntil(
      'TransferDebited on the source stream',
      async () => (await stack.eventTypes(accountStream(from))).includes('TransferDebited'),
      60_000,
    );
    await crashWorker.waitForLine(`credit-started ${transferId}`, 30_000);
    const pending = await handle.describe();
    expect(pending.status.name).toBe('RUNNING');
    // The legs run as local activities in the worker: nothing is pending on the server, the credit is in flight in the child.
    expect(pending.raw.pendingActivities ?? []).toEqual([]);
    expect(await stack.balance(from)).toBe(7_500);
    expect(await stack.balance(to)).toBe(1_000);

    const group = crashWorker.child.pid!;
    expect(processGroupMembers(group).filter(isAlive).length).toBeGreaterThanOrEqual(2); // npx and the worker's node (at least)
    const exit = await crashWorker.kill();
    expect(exit.signal).toBe('SIGKILL');
    // Every process of the child's group is gone (the worker is tsx's grandchild of npx).
    await waitUntil('the crash worker process group to be gone', () => processGroupMembers(group).every((pid) => !isAlive(pid)), 10_000);

    // A fresh in-process worker with the real activities (counted) takes over.
    const real = stack.realActivities();
    const calls = { requestAndDebit: 0, creditAndComplete: 0 };
    const counted: TransferActivities = {
      ...real,
      requestAndDebit: async (input) => {
        calls.requestAndDebit++;
        return real.requestAndDebit(input);
      },
      creditAndComplete: async (input) => {
        calls.creditAndComplete++;
        return real.creditAndComplete(input);
      },
    };
    await stack.startWorker(counted);

    const result = await handle.result();
    expect(result.status).toBe('completed');
    expect(result.failureReason).toBeUndefined();

    // No double debit: exactly one debit and one credit, balances moved once, money conserved.
    const sourceTypes = await stack.eventTypes(accountStream(from));
    const targetTypes = await stack.eventTypes(accountStream(to));
    expect(sourceTypes).toEqual(['AccountOpened', 'MoneyDeposited', 'TransferDebited']);
    expect(targetTypes).toEqual(['AccountOpened', 'MoneyDeposited', 'TransferCredited']);
    expect(sourceTypes.filter((t) => t === 'TransferDebited')).toHaveLength(1);
    expect(targetTypes.filter((t) => t === 'TransferCredited')).toHaveLength(1);
    expect(await stack.eventTypes(transferStream(transferId))).toEqual([
      'TransferRequested',
      'TransferSourceDebited',
      'TransferTargetCredited',
      'TransferCompleted',
    ]);
    expect(await stack.balance(from)).toBe(7_500);
    expect(await stack.balance(to)).toBe(3_500);
    expect((await stack.balance(from)) + (await stack.balance(to))).toBe(11_000);

    // The new worker may run the debit leg again (its workflow task was lost with the killed process):
    // the leg finds its debit already on the source and writes nothing. The credit ran there.
    expect(calls.requestAndDebit).toBeLessThanOrEqual(1);
    expect(calls.creditAndComplete).toBeGreaterThanOrEqual(1);
    const executions = activityExecutions(await handle.fetchHistory());
    expect(executions.map((e) => [e.activityType, e.outcome])).toEqual([
      ['acceptedRequest', 'completed'],
      ['requestAndDebit', 'completed'],
      ['creditAndComplete', 'completed'],
    ]);
    const worker = stack.worker!;
    expect(executions.find((e) => e.activityType === 'creditAndComplete')!.identity).toBe(worker.options.identity); // the credit completed in this process
  }, 90_000);

  test('a batch whose worker is killed between its debits and its credits is finished by another worker: every item once, money conserved', async () => {
    await stack.stopWorker();
    const source = await stack.openAccount(100_000);
    const targets = await Promise.all([stack.openAccount(0), stack.openAccount(0), stack.openAccount(0)]);
    const batchId = randomUUID();
    const items = Array.from({ length: 30 }, (_, i) => ({
      transferId: randomUUID(),
      fromAccountId: source,
      toAccountId: targets[i % 3]!,
      amount: 100 + i,
    }));
    const sum = items.reduce((s, i) => s + i.amount, 0);

    crashWorker = CrashWorker.start(stack);
    await crashWorker.waitForLine('ready', 60_000);
    const { handle } = await acceptBatch(
      { client: stack.client, taskQueue: stack.taskQueue, batches: new BatchLog(stack.store) },
      { batchId, atomic: false, items },
      { actor: 'crash-test' },
    );
    await crashWorker.waitForLine(`batch-credit-started ${batchId}`, 60_000);
    // The debits landed (one append), no credit did.
    expect(await stack.balance(source)).toBe(100_000 - sum);
    expect(await Promise.all(targets.map((t) => stack.balance(t)))).toEqual([0, 0, 0]);
    const exit = await crashWorker.kill();
    expect(exit.signal).toBe('SIGKILL');

    // A new worker: the credit phase's attempt on the dead worker stops heartbeating, and is retried here.
    await stack.startWorker();
    const result = await handle.result();
    expect(result).toMatchObject({ status: 'completed', counts: { completed: 30, failed: 0, compensated: 0 } });
    expect(await stack.balance(source)).toBe(100_000 - sum);
    const credited = await Promise.all(targets.map((t) => stack.balance(t)));
    expect(credited.reduce((a, b) => a + b, 0)).toBe(sum);
    const sourceTypes = await stack.eventTypes(accountStream(source));
    expect(sourceTypes.filter((t) => t === 'TransferDebited')).toHaveLength(30);
    for (const target of targets) {
      const types = await stack.eventTypes(accountStream(target));
      expect(types.filter((t) => t === 'TransferCredited')).toHaveLength(10);
    }
    for (const item of items.slice(0, 3)) {
      expect(await stack.eventTypes(transferStream(item.transferId))).toEqual([
        'TransferRequested',
        'TransferSourceDebited',
        'TransferTargetCredited',
        'TransferCompleted',
      ]);
    }
  }, 120_000);
});
