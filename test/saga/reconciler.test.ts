import { randomUUID } from 'node:crypto';
import type { TransferActivities } from '../../activities/transfer-activities';
import { accountStream } from '../../domain/account-events';
import { transferStream } from '../../domain/transfer-events';
import { startTransfer } from '../../temporal/transfer-client';
import {
  createReconcilerActivities,
  ensureReconcilerSchedule,
  reconcilerScheduleId,
  reconcileTransfers,
  type ReconcilerDeps,
  unsettledQuery,
} from '../../temporal/transfer-reconciler';
import { SYSTEM_ACTOR } from '../../workflows/transfer-saga-contract';
import { TransferStack } from '../support/transfer-stack';
import { waitUntil } from '../support/wait-until';

/**
 * `temporal workflow terminate` runs no compensation: the transfer would stay pending for ever.
 * The reconciler finds closed sagas whose transfer has no outcome and runs the saga again under the
 * same transfer id; the legs are idempotent, so no money moves twice.
 */
describe('the reconciler drives transfers of terminated sagas to an outcome', () => {
  let stack: TransferStack;
  /**
   * Transfers whose leg fails while the original saga runs ("event store unreachable"). The saga run again by the
   * reconciler (actor `system`) gets through. The outage is never lifted for the original run: its legs are local
   * activities, retried inside the worker, and an attempt still retrying after the terminate could otherwise land
   * the transfer on its own before the reconciler looks (the reconciler then rightly leaves it alone).
   */
  const stalled = new Map<string, 'debit' | 'credit'>();
  const blocked = (input: { transferId: string; actor?: string }, leg: 'debit' | 'credit') =>
    stalled.get(input.transferId) === leg && input.actor !== SYSTEM_ACTOR;
  const attempts = new Map<string, number>();
  const repaired: string[] = [];
  let deps: ReconcilerDeps;

  beforeAll(async () => {
    stack = await TransferStack.create('reconciler');
    deps = { client: stack.client, taskQueue: stack.taskQueue, transfers: stack.transfers, onRepaired: (id) => repaired.push(id) };
    const real = stack.realActivities();
    const bump = (id: string) => attempts.set(id, (attempts.get(id) ?? 0) + 1);
    const activities: TransferActivities = {
      ...real,
      requestAndDebit: async (input) => {
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

  async function terminatedWhileStalledAt(leg: 'debit' | 'credit') {
    const from = await stack.openAccount(1_000);
    const to = await stack.openAccount(0);
    const transferId = randomUUID();
    stalled.set(transferId, leg);
    const { handle } = await startTransfer(stack.client, stack.taskQueue, {
      transferId,
      fromAccountId: from,
      toAccountId: to,
      amount: 400,
      correlationId: `rec-${transferId}`,
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

  test('terminated before anything was recorded: run again from the memo, it reaches an outcome', async () => {
    const { from, to, transferId, handle } = await terminatedWhileStalledAt('debit');
    expect(await stack.eventTypes(transferStream(transferId))).toEqual([]);
    expect((await reconcileTransfers(deps)).repaired.map((r) => r.transferId)).toContain(transferId);
    expect((await stack.client.workflow.getHandle(handle.workflowId).result()).status).toBe('completed');
    expect((await stack.balance(from)) + (await stack.balance(to))).toBe(1_000);
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
