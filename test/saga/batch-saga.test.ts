import { randomUUID } from 'node:crypto';
import { BatchLog } from '../../application/batch-log';
import { handleAccountCommand } from '../../application/account-commands';
import type { BatchItem, BatchRequest } from '../../domain/transfer-batch';
import { acceptBatch, BatchConflictError, type AcceptBatchDeps } from '../../temporal/batch-client';
import { reconcileBatches, reconcileTransfers } from '../../temporal/transfer-reconciler';
import { TRANSFER_BATCH_SAGA, batchStatusQuery, batchWorkflowId, type BatchSagaStatus } from '../../workflows/batch-saga-contract';
import { TRANSFER_SAGA, transferWorkflowId } from '../../workflows/transfer-saga-contract';
import { TransferStack } from '../support/transfer-stack';
import { waitUntil } from '../support/wait-until';

/**
 * The batch saga (issue 26) on a real Temporal dev server and PostgreSQL: up to a thousand transfers in one saga, each
 * with its own outcome; atomic batches all or nothing; money conserved and no balance below zero in every case.
 */
describe('batches: the batch saga', () => {
  let stack: TransferStack;
  let deps: AcceptBatchDeps;
  let batches: BatchLog;
  const operator = { actor: 'test-operator', correlationId: 'corr-batch' };

  beforeAll(async () => {
    stack = await TransferStack.create('batch_saga');
    await stack.startWorker();
    batches = new BatchLog(stack.store);
    deps = { client: stack.client, taskQueue: stack.taskQueue, batches };
  });
  afterAll(async () => stack?.close());

  const item = (fromAccountId: string, toAccountId: string, amount: number, transferId = randomUUID()): BatchItem => ({
    transferId,
    fromAccountId,
    toAccountId,
    amount,
  });
  const batch = (items: BatchItem[], atomic = false, batchId = randomUUID()): BatchRequest => ({ batchId, atomic, items });
  async function run(request: BatchRequest): Promise<BatchSagaStatus> {
    const { handle } = await acceptBatch(deps, request, operator);
    return handle.result();
  }
  const balances = (ids: string[]) => Promise.all(ids.map((id) => stack.balance(id)));
  const total = async (ids: string[]) => (await balances(ids)).reduce((a, b) => a + b, 0);
  const outcome = async (transferId: string) => {
    const { state } = await stack.transfers.load(transferId);
    return { status: state.status, reason: state.failureReason, batchId: state.accepted?.batchId };
  };

  test('a batch that is not atomic settles each item on its own: refused items fail with their reason, the others complete', async () => {
    const a = await stack.openAccount(1_000);
    const b = await stack.openAccount(0);
    const c = await stack.openAccount(50);
    const usd = await stack.openAccount(500, 'USD');
    const closed = await stack.openAccount(0);
    expect((await handleAccountCommand(stack.accounts, closed, { type: 'CloseAccount' })).ok).toBe(true);
    // An id already taken by another transfer (completed before the batch).
    const taken = randomUUID();
    expect((await stack.transfer(a, b, 10, taken)).status).toBe('completed');
    const items = [
      item(a, b, 300), // fine
      item(c, b, 80), // insufficient funds (c holds 50)
      item(a, usd, 5), // currency mismatch
      item(a, closed, 7), // the target is closed: debited, then refunded
      item(a, c, 200), // fine
      item(a, b, 999, taken), // the id belongs to another transfer
    ];
    const accounts = [a, b, c, usd, closed];
    const before = await total([a, b, c, closed]);
    const request = batch(items);
    const status = await run(request);

    expect(status).toMatchObject({ status: 'partially_completed', counts: { completed: 2, failed: 3, compensated: 1, pending: 0 } });
    expect(await outcome(items[0]!.transferId)).toEqual({ status: 'completed', reason: undefined, batchId: request.batchId });
    expect(await outcome(items[1]!.transferId)).toMatchObject({ status: 'failed', reason: 'insufficient_funds' });
    expect(await outcome(items[2]!.transferId)).toMatchObject({ status: 'failed', reason: 'currency_mismatch' });
    expect(await outcome(items[3]!.transferId)).toMatchObject({ status: 'compensated', reason: 'account_closed' });
    expect(await outcome(items[4]!.transferId)).toMatchObject({ status: 'completed' });
    // The taken id is untouched: still the other transfer's, completed, with no batch.
    expect(await outcome(taken)).toEqual({ status: 'completed', reason: undefined, batchId: undefined });
    const recorded = (await batches.load(request.batchId)).state;
    expect(recorded.rejected.get(taken)).toMatchObject({ reason: 'transfer_conflict' });
    expect(recorded.status).toBe('partially_completed');

    expect(await balances(accounts)).toEqual([1_000 - 10 - 300 - 200, 10 + 300, 50 + 200, 500, 0]);
    expect(await total([a, b, c, closed])).toBe(before);
  });

  test('an atomic batch with a refused item moves nothing: every item fails, the refused one with its reason', async () => {
    const a = await stack.openAccount(1_000);
    const b = await stack.openAccount(0);
    const poor = await stack.openAccount(10);
    const items = [item(a, b, 100), item(a, b, 200), item(poor, b, 11), item(a, poor, 5)];
    const status = await run(batch(items, true));
    expect(status).toMatchObject({ status: 'failed', counts: { completed: 0, failed: 4, compensated: 0 } });
    expect(await outcome(items[2]!.transferId)).toMatchObject({ status: 'failed', reason: 'insufficient_funds' });
    for (const i of [0, 1, 3]) expect(await outcome(items[i]!.transferId)).toMatchObject({ status: 'failed', reason: 'batch_aborted' });
    expect(await balances([a, b, poor])).toEqual([1_000, 0, 10]);
    // Nothing was debited: no account holds a debit of the batch.
    const types = await stack.eventTypes(`account-${a}`);
    expect(types.filter((t) => t === 'TransferDebited')).toEqual([]);
  });

  test('an atomic batch whose credit is refused gives back every debit: nothing moved in the end', async () => {
    const a = await stack.openAccount(1_000);
    const b = await stack.openAccount(0);
    const closed = await stack.openAccount(0);
    expect((await handleAccountCommand(stack.accounts, closed, { type: 'CloseAccount' })).ok).toBe(true);
    const items = [item(a, b, 100), item(a, closed, 200)];
    const status = await run(batch(items, true));
    expect(status.status).toBe('failed');
    expect(await outcome(items[0]!.transferId)).toMatchObject({ status: 'compensated', reason: 'batch_aborted' });
    expect(await outcome(items[1]!.transferId)).toMatchObject({ status: 'compensated', reason: 'account_closed' });
    expect(await balances([a, b, closed])).toEqual([1_000, 0, 0]);
    expect(await stack.eventTypes(`account-${b}`)).not.toContain('TransferCredited');
  });

  test("a hot account's hundred debits in one batch are one decision and one append", async () => {
    const hot = await stack.openAccount(100_000);
    const targets = await Promise.all(Array.from({ length: 10 }, () => stack.openAccount(0)));
    const items = Array.from({ length: 100 }, (_, i) => item(hot, targets[i % 10]!, 100 + i));
    const status = await run(batch(items));
    expect(status).toMatchObject({ status: 'completed', counts: { completed: 100, failed: 0, compensated: 0 } });
    const debits = (await stack.store.readStream(`account-${hot}`)).filter((e) => e.type === 'TransferDebited');
    expect(debits).toHaveLength(100);
    // One append: every debit was recorded by the same transaction, at consecutive revisions.
    expect(new Set(debits.map((e) => String(e.position.commit))).size).toBe(1);
    const sum = items.reduce((s, i) => s + i.amount, 0);
    expect(await stack.balance(hot)).toBe(100_000 - sum);
    expect(await total(targets)).toBe(sum);
    // Each target's credits: one append per target too.
    const credits = (await stack.store.readStream(`account-${targets[0]}`)).filter((e) => e.type === 'TransferCredited');
    expect(credits).toHaveLength(10);
    expect(new Set(credits.map((e) => String(e.position.commit))).size).toBe(1);
  });

  test('a batch retried by its client is the same batch: nothing is written again; another payload under its id is refused', async () => {
    const a = await stack.openAccount(1_000);
    const b = await stack.openAccount(0);
    const request = batch([item(a, b, 100), item(a, b, 50)]);
    const first = await acceptBatch(deps, request, operator);
    expect(first.created).toBe(true);
    await first.handle.result();
    const events = (await stack.store.readStream(`account-${a}`)).length;
    const again = await acceptBatch(deps, request, operator);
    expect(again.created).toBe(false);
    expect((await again.handle.result()).status).toBe('completed');
    expect((await stack.store.readStream(`account-${a}`)).length).toBe(events);
    expect(await balances([a, b])).toEqual([850, 150]);
    const other = { ...request, items: [item(a, b, 100)] };
    await expect(acceptBatch(deps, other, operator)).rejects.toBeInstanceOf(BatchConflictError);
    expect((await batches.load(request.batchId)).state.request?.items).toHaveLength(2);
  });

  test('a batch saga nobody accepted moves nothing', async () => {
    const rogue = await stack.client.workflow.start(TRANSFER_BATCH_SAGA, {
      workflowId: batchWorkflowId(randomUUID()),
      taskQueue: stack.taskQueue,
      args: [{ batchId: 'not-recorded' }],
    });
    expect(await rogue.result()).toMatchObject({ status: 'failed', failureReason: 'unauthorized' });
    const unknown = randomUUID();
    const refused = await stack.client.workflow.start(TRANSFER_BATCH_SAGA, {
      workflowId: batchWorkflowId(unknown),
      taskQueue: stack.taskQueue,
      args: [{ batchId: unknown }],
    });
    expect(await refused.result()).toMatchObject({ status: 'failed', failureReason: 'unauthorized' });
    expect(await stack.store.readStream(`batch-${unknown}`)).toEqual([]);
  });

  test('the reconciler leaves batch items to their batch, and reruns a batch whose saga was terminated mid-way: nothing moves twice', async () => {
    const a = await stack.openAccount(10_000);
    const b = await stack.openAccount(0);
    const c = await stack.openAccount(0);
    // A worker whose credit phase never finishes: the batch stops after its debits landed.
    let release!: () => void;
    const creditsHeld = new Promise<void>((resolve) => (release = resolve));
    const real = stack.realActivities();
    let creditCalls = 0;
    await stack.startWorker({
      ...real,
      creditBatch: async (_input: { batchId: string }) => {
        creditCalls += 1;
        await creditsHeld;
        throw new Error('this worker is gone');
      },
    });
    const items = [item(a, b, 1_000), item(a, c, 2_000), item(a, b, 3_000)];
    const request = batch(items);
    const { handle } = await acceptBatch(deps, request, operator);
    await waitUntil('the debits landed and the credit phase started', async () => creditCalls > 0);
    expect(await balances([a, b, c])).toEqual([4_000, 0, 0]);
    // A transfer saga started by hand for a pending item (debited, not credited) moves and writes nothing: only its
    // batch's saga moves it.
    const rogue = await stack.client.workflow.start(TRANSFER_SAGA, {
      workflowId: transferWorkflowId(items[0]!.transferId),
      taskQueue: stack.taskQueue,
      args: [{ ...items[0]! }],
    });
    expect(await rogue.result()).toMatchObject({ status: 'failed', failureReason: 'unauthorized' });
    expect(await balances([a, b, c])).toEqual([4_000, 0, 0]);
    expect(await stack.eventTypes(`transfer-${items[0]!.transferId}`)).toEqual(['TransferRequested']);
    await handle.terminate('an operator stops the batch mid-way');
    release();

    // The transfer reconciler finds the items pending, and leaves them alone (they are the batch's).
    const transfersPass = await reconcileTransfers(
      {
        client: stack.client,
        taskQueue: stack.taskQueue,
        transfers: stack.transfers,
        pendingTransfers: async () => items.map((i) => i.transferId),
      },
      {},
    );
    expect(transfersPass.repaired).toEqual([]);
    expect(await balances([a, b, c])).toEqual([4_000, 0, 0]);

    // The batch reconciler runs the batch again, on a healthy worker: it finishes what was left, once.
    await stack.startWorker();
    const pass = await waitUntil('the terminated batch is listed', async () => {
      const result = await reconcileBatches({ client: stack.client, taskQueue: stack.taskQueue, transfers: stack.transfers, batches });
      return result.repaired.length > 0 ? result : undefined;
    });
    expect(pass.repaired).toEqual([{ transferId: request.batchId, closedAs: 'TERMINATED' }]);
    const rerun = await stack.client.workflow.getHandle(batchWorkflowId(request.batchId)).result();
    expect(rerun).toMatchObject({ status: 'completed', counts: { completed: 3 } });
    expect(await balances([a, b, c])).toEqual([4_000, 4_000, 2_000]);
    const debits = (await stack.store.readStream(`account-${a}`)).filter((e) => e.type === 'TransferDebited');
    expect(debits).toHaveLength(3);
  });

  test('a phase whose appends landed but whose answer was lost (a crash) is retried without moving money twice', async () => {
    const a = await stack.openAccount(5_000);
    const b = await stack.openAccount(0);
    const real = stack.realActivities();
    let debitAttempts = 0;
    let creditAttempts = 0;
    await stack.startWorker({
      ...real,
      debitBatch: async (input: { batchId: string }) => {
        debitAttempts += 1;
        const result = await real.debitBatch(input);
        if (debitAttempts === 1) throw new Error('the worker crashed after the debits landed');
        return result;
      },
      creditBatch: async (input: { batchId: string }) => {
        creditAttempts += 1;
        const result = await real.creditBatch(input);
        if (creditAttempts === 1) throw new Error('the worker crashed after the credits landed');
        return result;
      },
    });
    const items = Array.from({ length: 20 }, () => item(a, b, 100));
    const status = await run(batch(items));
    expect(status).toMatchObject({ status: 'completed', counts: { completed: 20 } });
    expect(debitAttempts).toBe(2);
    expect(creditAttempts).toBe(2);
    expect(await balances([a, b])).toEqual([3_000, 2_000]);
    expect((await stack.store.readStream(`account-${b}`)).filter((e) => e.type === 'TransferCredited')).toHaveLength(20);
    await stack.startWorker();
  });

  test('the progress is a query: counts by outcome once settled', async () => {
    const a = await stack.openAccount(100);
    const b = await stack.openAccount(0);
    const request = batch([item(a, b, 60), item(a, b, 60)]);
    const { handle } = await acceptBatch(deps, request, operator);
    await handle.result();
    const progress = await handle.query(batchStatusQuery);
    expect(progress).toMatchObject({
      batchId: request.batchId,
      status: 'partially_completed',
      phase: 'settled',
      itemCount: 2,
      counts: { completed: 1, failed: 1, compensated: 0, pending: 0 },
    });
    expect(await balances([a, b])).toEqual([40, 60]);
  });
});
