import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, type Worker } from '@temporalio/worker';
import { createTransferActivities } from '../../activities/transfer-activities';
import { handleAccountCommand } from '../../application/account-commands';
import { AccountRepository } from '../../application/account-repository';
import { HoldLog } from '../../application/hold-log';
import { TransferLog } from '../../application/transfer-log';
import { accountStream, type AccountEvent } from '../../domain/account-events';
import { availableOf, evolveAccount, initialAccountState } from '../../domain/account-state';
import { holdStream } from '../../domain/hold';
import { EsdbEventStore } from '../../eventstore/esdb/esdb-event-store';
import { acceptHold, captureHold, HoldRejectedError, voidHold, type HoldDeps } from '../../temporal/hold-client';
import { createTransferWorker, transferWorkflowBundle } from '../../temporal/transfer-worker';
import { holdStatusQuery, type HoldSagaStatus } from '../../workflows/hold-saga-contract';
import { startEsdbEmulator, type EsdbEmulator } from '../support/esdb-emulator/server';
import { temporalAddress } from '../support/test-database';

/**
 * The hold saga (issue 25) end to end with the EventStoreDB adapter (eventstore/esdb/esdb-event-store.ts) as the event
 * store: a Temporal worker on the test run's dev server whose activities (the transfer's, with the hold's) write every
 * account, transfer and hold stream through the adapter, to the gRPC EMULATOR of EventStoreDB 24.10
 * (test/support/esdb-emulator), not to a server (docs/eventstoredb.md: what is verified against what). The same
 * scenarios as test/saga/hold-saga.test.ts runs on PostgreSQL: place, capture in part, void, expiry, and many at once
 * on one account; every balance, `held` and the money in total read back through the adapter.
 */
/**
 * The saga has settled, or has reserved the hold and is waiting for a decision. Not just `held`: workflows/hold-saga.ts
 * clears its wake-up flag after its first look for a decision, so a capture or void sent while that look runs (right
 * after the reservation) is answered only at the expiry. Waiting until the look is done keeps these runs clear of that.
 */
function waitingOrDone(status: HoldSagaStatus): boolean {
  if (status.status === 'pending') return false;
  if (status.status !== 'held') return true;
  const last = status.steps.at(-1);
  return last?.name === 'look for a decision' && last.status === 'done';
}

describe('holds on EventStoreDB (the adapter on the emulator, not a server): the hold saga end to end', () => {
  let emulator: EsdbEmulator;
  let store: EsdbEventStore;
  let connection: Connection;
  let nativeConnection: NativeConnection;
  let worker: Worker;
  let workerRun: Promise<void>;
  let deps: HoldDeps;
  let accounts: AccountRepository;
  /** Reads every account again from its stream (no cache, no snapshot): what the adapter returns now. */
  let reader: AccountRepository;
  /** Every account this file opened, with its opening deposit: the money there is in total. */
  const opened = new Map<string, number>();
  const operator = { actor: 'esdb-operator', correlationId: 'corr-hold-esdb' };

  beforeAll(async () => {
    try {
      Runtime.install({ logger: new DefaultLogger('ERROR') });
    } catch {
      /* a runtime is already installed in this process: keep it */
    }
    emulator = await startEsdbEmulator();
    // The server stamps commit times from its clock: the wall clock, as a real node's would be.
    emulator.log.now = () => new Date(performance.timeOrigin + performance.now());
    store = await EsdbEventStore.connect(emulator.url, { onSubscriptionError: () => undefined });
    accounts = new AccountRepository(store);
    reader = new AccountRepository(store, 0, undefined, 0);
    const transfers = new TransferLog(store);
    const holds = new HoldLog(store);
    // A stack of its own (TransferStack is bound to PostgreSQL): clients and a worker on the shared test Temporal.
    connection = await Connection.connect({ address: temporalAddress() });
    nativeConnection = await NativeConnection.connect({ address: temporalAddress() });
    const taskQueue = `hold_esdb-${randomUUID().slice(0, 8)}`;
    worker = await createTransferWorker({
      connection: nativeConnection,
      namespace: 'default',
      taskQueue,
      activities: createTransferActivities({ accounts, transfers, holds }),
      workflowBundle: await transferWorkflowBundle(),
    });
    workerRun = worker.run();
    deps = { client: new Client({ connection, namespace: 'default' }), taskQueue, holds, transfers };
  });
  afterAll(async () => {
    if (worker?.getState() === 'RUNNING') worker.shutdown();
    await workerRun;
    await connection?.close();
    await nativeConnection?.close();
    await store?.close();
    await emulator?.stop();
  });

  const inSeconds = (s: number) => new Date(Date.now() + s * 1000).toISOString();

  async function openAccount(balance: number): Promise<string> {
    const accountId = randomUUID();
    const result = await handleAccountCommand(accounts, accountId, {
      type: 'OpenAccount',
      accountId,
      ownerId: 'esdb-owner',
      currency: 'EUR',
      ...(balance > 0 ? { initialDeposit: balance } : {}),
    });
    if (!result.ok) throw new Error(result.rejection.message);
    opened.set(accountId, balance);
    return accountId;
  }

  /** Balance, held and available of an account, folded from its stream as the adapter reads it now. */
  async function account(id: string): Promise<{ balance: number; held: number; available: number }> {
    const { state } = await reader.loadWithoutSnapshot(id);
    return { balance: state.balance, held: state.held, available: availableOf(state) };
  }

  /** Accepts a hold and waits until its saga has reserved it and waits, or refused it (a wait: the deadline only bounds a hang). */
  async function placed(from: string, to: string, amount: number, expiresInSeconds = 3600) {
    const holdId = randomUUID();
    const { handle } = await acceptHold(
      deps,
      { holdId, fromAccountId: from, toAccountId: to, amount, expiresAt: inSeconds(expiresInSeconds) },
      operator,
    );
    for (let i = 0; i < 1_200 && !waitingOrDone(await handle.query(holdStatusQuery)); i++) await new Promise((r) => setTimeout(r, 50));
    return { holdId, handle };
  }

  const holdEvents = async (holdId: string) => (await store.readStream(holdStream(holdId))).map((e) => e.type);

  test('place, then capture in part: the captured part reaches the target as the transfer of the hold id, the rest is available again', async () => {
    const a = await openAccount(1_000);
    const b = await openAccount(0);
    const appendsBefore = emulator.appendsServed().length;
    const { holdId } = await placed(a, b, 600);
    expect(await account(a)).toEqual({ balance: 1_000, held: 600, available: 400 });
    expect(await account(b)).toEqual({ balance: 0, held: 0, available: 0 });

    const answer = await captureHold(deps, holdId, 250, operator);
    expect(answer.status).toBe('captured');
    expect(await account(a)).toEqual({ balance: 750, held: 0, available: 750 });
    expect(await account(b)).toEqual({ balance: 250, held: 0, available: 250 });
    expect((await deps.transfers.load(holdId)).state).toMatchObject({
      status: 'completed',
      request: { amount: 250, fromAccountId: a, toAccountId: b },
    });
    expect(await holdEvents(holdId)).toEqual(['HoldRequested', 'HoldReserved', 'HoldCaptureRequested', 'HoldCaptured']);
    expect((await deps.holds.load(holdId)).state).toMatchObject({ status: 'captured', captured: 250, released: 350, settled: true });
    // The source's stream as the server holds it: the reservation, then its end with the captured part's debit.
    expect((await store.readStream(accountStream(a))).map((e) => e.type)).toEqual(expect.arrayContaining(['HoldPlaced', 'HoldReleased']));
    // A repeat answers the same and moves nothing twice.
    expect((await captureHold(deps, holdId, 250, operator)).status).toBe('captured');
    expect(await account(b)).toMatchObject({ balance: 250 });
    // It all went through the emulator's gRPC Streams service.
    expect(emulator.appendsServed().length).toBeGreaterThan(appendsBefore);
  });

  test('void releases all of it; a capture after is refused; nothing reaches the target', async () => {
    const a = await openAccount(500);
    const b = await openAccount(0);
    const { holdId } = await placed(a, b, 500);
    expect(await account(a)).toEqual({ balance: 500, held: 500, available: 0 });
    expect((await voidHold(deps, holdId, operator)).status).toBe('voided');
    expect(await account(a)).toEqual({ balance: 500, held: 0, available: 500 });
    await expect(captureHold(deps, holdId, undefined, operator)).rejects.toBeInstanceOf(HoldRejectedError);
    expect(await account(b)).toMatchObject({ balance: 0 });
    expect(await holdEvents(holdId)).toEqual(['HoldRequested', 'HoldReserved', 'HoldVoidRequested', 'HoldReleased']);
  });

  test('at a short expiresAt the hold is released by its own timer; a capture after is hold_expired', async () => {
    const a = await openAccount(300);
    const b = await openAccount(0);
    const { holdId, handle } = await placed(a, b, 300, 2);
    expect((await handle.result()).status).toBe('expired');
    expect(await account(a)).toEqual({ balance: 300, held: 0, available: 300 });
    await expect(captureHold(deps, holdId, undefined, operator)).rejects.toMatchObject({ rejection: { type: 'hold_expired' } });
    expect(await account(b)).toMatchObject({ balance: 0 });
    expect(await holdEvents(holdId)).toEqual(['HoldRequested', 'HoldReserved', 'HoldExpiryReached', 'HoldReleased']);
  });

  test('one account, more holds than it can cover, captured, voided and expiring at once: money conserved, held never above balance', async () => {
    const hot = await openAccount(6_000);
    const targets = await Promise.all(Array.from({ length: 3 }, () => openAccount(0)));
    // 9 holds of 700 on 6,000 placed at once: each is reserved or refused (insufficient_funds), never more than the
    // balance (one is refused, unless an expiring one was released before the last placement).
    const holds = await Promise.all(Array.from({ length: 9 }, (_, i) => placed(hot, targets[i % 3]!, 700, i % 4 === 3 ? 2 : 3600)));
    const settled = await Promise.all(
      holds.map(async ({ holdId, handle }, i) => {
        const status = (await handle.query(holdStatusQuery)).status;
        if (status !== 'held' || i % 4 === 3) return (await handle.result()).status; // refused, or left to expire
        const answer =
          i % 4 === 0 ? await voidHold(deps, holdId, operator) : await captureHold(deps, holdId, i % 4 === 1 ? 700 : 300, operator);
        return answer.status;
      }),
    );
    for (const status of settled) expect(['captured', 'voided', 'expired', 'failed']).toContain(status);
    expect(settled.filter((s) => s === 'failed').length).toBeLessThanOrEqual(1);
    for (const { holdId } of holds) {
      const { state } = await deps.holds.load(holdId);
      expect(state.settled).toBe(true);
      if (state.status === 'failed') expect(state.failureReason).toBe('insufficient_funds');
    }
    // At every event of the source's stream, as the adapter reads it back: 0 <= held <= balance.
    let folded = initialAccountState(hot);
    for (const event of await store.readStream(accountStream(hot))) {
      folded = evolveAccount(folded, { type: event.type, data: event.data } as AccountEvent);
      expect({ revision: event.revision, ok: folded.held >= 0 && folded.held <= folded.balance }).toEqual({
        revision: event.revision,
        ok: true,
      });
    }
    const source = await account(hot);
    const received = (await Promise.all(targets.map(account))).reduce((sum, t) => sum + t.balance, 0);
    expect(source.balance + received).toBe(6_000);
    expect(source.held).toBe(0);
    // What reached the targets is exactly what the holds' streams say was captured.
    const captured = await Promise.all(holds.map(async ({ holdId }) => (await deps.holds.load(holdId)).state.captured ?? 0));
    expect(received).toBe(captured.reduce((sum, n) => sum + n, 0));
  });

  test('money is conserved over every account this file opened, read through the adapter; nothing is left held', async () => {
    const now = await Promise.all([...opened.keys()].map(account));
    expect(now.reduce((sum, s) => sum + s.balance, 0)).toBe([...opened.values()].reduce((sum, n) => sum + n, 0));
    expect(now.every((s) => s.held === 0 && s.balance >= 0)).toBe(true);
  });
});
