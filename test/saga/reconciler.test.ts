import { randomUUID } from 'node:crypto';
import type { TransferActivities } from '../../activities/transfer-activities';
import { accountStream } from '../../domain/account-events';
import { transferStream } from '../../domain/transfer-events';
import { acceptTransfer } from '../../temporal/transfer-client';
import {
  createReconcilerActivities,
  ensureReconcilerSchedule,
  reconcilerScheduleId,
  reconcileTransfers,
  type ReconcilerDeps,
  unsettledQuery,
} from '../../temporal/transfer-reconciler';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { SYSTEM_ACTOR, transferWorkflowId } from '../../workflows/transfer-saga-contract';
import { TransferStack } from '../support/transfer-stack';
import { waitUntil } from '../support/wait-until';

/**
 * `temporal workflow terminate` runs no compensation: the transfer would stay pending for ever.
 * The reconciler finds closed sagas whose transfer has no outcome on its stream (and accepted transfers whose saga
 * never started) and runs the saga again under the same transfer id. The rerun executes the request the API recorded
 * on the transfer's stream, never a memo; the legs are idempotent, so no money moves twice.
 */
describe('the reconciler drives transfers of terminated sagas to an outcome', () => {
  let stack: TransferStack;
  /**
   * Transfers whose leg fails while the original saga runs ("event store unreachable"). The saga run again by the
   * reconciler (another run id) gets through. The outage is never lifted for the original run: its legs are local
   * activities, retried inside the worker, and an attempt still retrying after the terminate could otherwise land
   * the transfer on its own before the reconciler looks (the reconciler then rightly leaves it alone).
   */
  const stalled = new Map<string, 'debit' | 'credit'>();
  /** The first run of each stalled transfer (the first to ask for its accepted request): only its legs stall. */
  const stalledRuns = new Map<string, string>();
  const runId = () => Context.current().info.workflowExecution!.runId;
  const blocked = (input: { transferId: string }, leg: 'debit' | 'credit') =>
    stalled.get(input.transferId) === leg && stalledRuns.get(input.transferId) === runId();
  /** Transfers whose first run ends as a saga that recorded no outcome (its debit refused as a conflict): the workflow closes Completed. */
  const endsWithoutOutcome = new Set<string>();
  const attempts = new Map<string, number>();
  const repaired: string[] = [];
  const accepted: string[] = [];
  let deps: ReconcilerDeps;

  beforeAll(async () => {
    stack = await TransferStack.create('reconciler');
    deps = {
      client: stack.client,
      taskQueue: stack.taskQueue,
      transfers: stack.transfers,
      onRepaired: (id) => repaired.push(id),
      // The transfers the read model would list as pending (this stack runs no projections): every accepted one that
      // has no outcome on its stream.
      pendingTransfers: async () => {
        const pending: string[] = [];
        for (const id of accepted) if ((await stack.transfers.load(id)).state.status === 'pending') pending.push(id);
        return pending;
      },
    };
    const real = stack.realActivities();
    const bump = (id: string) => attempts.set(id, (attempts.get(id) ?? 0) + 1);
    const activities: TransferActivities = {
      ...real,
      acceptedRequest: async (input) => {
        if (!stalledRuns.has(input.transferId)) stalledRuns.set(input.transferId, runId());
        return real.acceptedRequest(input);
      },
      requestAndDebit: async (input) => {
        if (endsWithoutOutcome.delete(input.transferId)) throw ApplicationFailure.nonRetryable('refused', 'transfer_conflict');
        if (blocked(input, 'debit')) {
          bump(input.transferId);
          throw new Error('event store unreachable');
        }
        return real.requestAndDebit(input);
      },
      creditAndComplete: async (input) => {
        if (blocked(input, 'credit')) {
          bump(input.transferId);
          throw new Error('event store unreachable');
        }
        return real.creditAndComplete(input);
      },
    };
    await stack.startWorker({ ...activities, ...createReconcilerActivities(deps) });
  });
  afterAll(async () => stack?.close());

  async function terminatedWhileStalledAt(
    leg: 'debit' | 'credit',
    request: { from?: string; to?: string; amount?: number; reversalOf?: string } = {},
  ) {
    const from = request.from ?? (await stack.openAccount(1_000));
    const to = request.to ?? (await stack.openAccount(0));
    const transferId = randomUUID();
    stalled.set(transferId, leg);
    accepted.push(transferId);
    const { handle } = await acceptTransfer(stack, {
      transferId,
      fromAccountId: from,
      toAccountId: to,
      amount: request.amount ?? 400,
      correlationId: `rec-${transferId}`,
      actor: 'key_00000000000000bb',
      ...(request.reversalOf ? { reversalOf: request.reversalOf } : {}),
    });
    await waitUntil(`two ${leg} attempts`, () => (attempts.get(transferId) ?? 0) >= 2, 60_000);
    await handle.terminate('operator terminated a stuck saga');
    await waitUntil('the terminated run to be visible as pending', async () => {
      for await (const run of stack.client.workflow.list({
        query: `WorkflowId = '${handle.workflowId}' AND ExecutionStatus = 'Terminated'`,
      }))
        return run;
      return undefined;
    });
    return { from, to, transferId, handle };
  }

  test('terminated during the credit (debited, pending): run again, it completes; the debit is not taken twice', async () => {
    const { from, to, transferId, handle } = await terminatedWhileStalledAt('credit');
    expect(await stack.balance(from)).toBe(600);
    expect(await stack.eventTypes(transferStream(transferId))).toEqual(['TransferRequested', 'TransferSourceDebited']);

    const result = await reconcileTransfers(deps);
    expect(result.repaired.map((r) => r.transferId)).toContain(transferId);
    expect(result.repaired.find((r) => r.transferId === transferId)?.closedAs).toBe('TERMINATED');
    expect(repaired).toContain(transferId);

    const outcome = await stack.client.workflow.getHandle(handle.workflowId).result();
    expect(outcome.status).toBe('completed');
    expect(await stack.balance(from)).toBe(600);
    expect(await stack.balance(to)).toBe(400);
    expect((await stack.eventTypes(accountStream(from))).filter((t) => t === 'TransferDebited')).toHaveLength(1);
    expect((await stack.eventTypes(transferStream(transferId))).at(-1)).toBe('TransferCompleted');

    // A second pass finds nothing to do for it (the stream has its outcome).
    const again = await reconcileTransfers(deps);
    expect(again.repaired.map((r) => r.transferId)).not.toContain(transferId);
  });

  test('terminated before its debit: run again from the request accepted on the stream, it reaches an outcome', async () => {
    const { from, to, transferId, handle } = await terminatedWhileStalledAt('debit');
    expect(await stack.eventTypes(transferStream(transferId))).toEqual(['TransferRequested']);
    expect((await reconcileTransfers(deps)).repaired.map((r) => r.transferId)).toContain(transferId);
    const rerun = stack.client.workflow.getHandle(handle.workflowId);
    expect((await rerun.result()).status).toBe('completed');
    expect((await stack.balance(from)) + (await stack.balance(to))).toBe(1_000);
    // The memo is for display: it names who asked (from the stream) and that the system ran it again.
    expect((await rerun.describe()).memo).toMatchObject({ amount: 400, actor: 'key_00000000000000bb', rerunBy: SYSTEM_ACTOR });
  });

  test('a reversal terminated before its hold: the rerun is still that reversal (it holds on the original); a second one cannot take the amount back again', async () => {
    // Issue 23, item 1: the rerun was built from a memo without reversalOf and ran as a plain transfer with no hold:
    // a second reversal then took the full amount again (original 3000, moved back 6000).
    const a = await stack.openAccount(3_000);
    const b = await stack.openAccount(0);
    const original = randomUUID();
    expect(await stack.transfer(a, b, 3_000, original)).toMatchObject({ status: 'completed' });
    const { transferId: reversalId, handle } = await terminatedWhileStalledAt('debit', {
      from: b,
      to: a,
      amount: 3_000,
      reversalOf: original,
    });
    expect((await reconcileTransfers(deps)).repaired.map((r) => r.transferId)).toContain(reversalId);
    expect((await stack.client.workflow.getHandle(handle.workflowId).result()).status).toBe('completed');
    expect(await stack.eventTypes(transferStream(original))).toContain('TransferReversalReserved');
    expect((await stack.transfers.load(reversalId)).state.request).toMatchObject({ reversalOf: original, amount: 3_000 });

    // A second reversal of the whole amount: refused by the hold, nothing moves.
    const again = { transferId: randomUUID(), fromAccountId: b, toAccountId: a, amount: 3_000, reversalOf: original, actor: 'k' };
    const second = await (await acceptTransfer(stack, again)).handle.result();
    expect(second).toMatchObject({ status: 'failed', failureReason: 'reversal_exceeds_original' });
    expect(await stack.balance(a)).toBe(3_000);
    expect(await stack.balance(b)).toBe(0);
  });

  test('an accepted transfer whose saga never started (a crash between recording and starting) is started and completes', async () => {
    const from = await stack.openAccount(1_000);
    const to = await stack.openAccount(0);
    const transferId = randomUUID();
    const recorded = await stack.transfers.accept(
      { transferId, fromAccountId: from, toAccountId: to, amount: 250 },
      { actor: 'key_00000000000000cc', correlationId: `crash-${transferId}` },
    );
    expect(recorded.ok).toBe(true);
    accepted.push(transferId);
    const result = await reconcileTransfers(deps);
    expect(result.repaired).toContainEqual({ transferId, closedAs: 'NEVER_STARTED' });
    expect((await stack.client.workflow.getHandle(transferWorkflowId(transferId)).result()).status).toBe('completed');
    expect(await stack.balance(to)).toBe(250);
    const events = await stack.store.readStream(transferStream(transferId));
    for (const e of events) expect(e.metadata).toMatchObject({ actor: 'key_00000000000000cc', correlationId: `crash-${transferId}` });
  });

  test('a saga that closed Completed without an outcome on its stream is not taken as finished: the stream decides', async () => {
    const from = await stack.openAccount(1_000);
    const to = await stack.openAccount(0);
    const transferId = randomUUID();
    endsWithoutOutcome.add(transferId);
    accepted.push(transferId);
    const { handle } = await acceptTransfer(stack, { transferId, fromAccountId: from, toAccountId: to, amount: 300, actor: 'k' });
    expect(await handle.result()).toMatchObject({ status: 'failed', failureReason: 'transfer_conflict' });
    expect((await handle.describe()).status.name).toBe('COMPLETED');
    expect((await stack.transfers.load(transferId)).state.status).toBe('pending');

    const result = await reconcileTransfers(deps);
    expect(result.repaired).toContainEqual({ transferId, closedAs: 'COMPLETED' });
    expect((await stack.client.workflow.getHandle(handle.workflowId).result()).status).toBe('completed');
    expect(await stack.balance(to)).toBe(300);
  });

  test('the schedule runs the reconciler workflow on the worker: a terminated saga is repaired without anyone calling it', async () => {
    const { to, handle } = await terminatedWhileStalledAt('credit');
    // Visibility is eventually consistent: the schedule below runs once, so first wait until the terminated run is
    // listed as closed and unsettled (in service, a run it misses is found by the next scheduled pass).
    await waitUntil(
      'the terminated saga to be listed as closed and unsettled',
      async () => {
        for await (const run of stack.client.workflow.list({ query: unsettledQuery(stack.taskQueue) }))
          if (run.workflowId === handle.workflowId) return true;
        return false;
      },
      20_000,
    );
    await ensureReconcilerSchedule(stack.client, stack.taskQueue, 3600);
    await ensureReconcilerSchedule(stack.client, stack.taskQueue, 3600); // idempotent
    const schedule = stack.client.schedule.getHandle(reconcilerScheduleId(stack.taskQueue));
    try {
      await schedule.trigger();
      await waitUntil(
        'the repaired saga to complete',
        async () => (await stack.client.workflow.getHandle(handle.workflowId).describe()).status.name === 'COMPLETED',
        60_000,
      );
      expect(await stack.balance(to)).toBe(400);
    } finally {
      await schedule.delete();
    }
  });
});
