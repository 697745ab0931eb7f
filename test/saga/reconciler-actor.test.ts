import { randomUUID } from 'node:crypto';
import type { TransferActivities } from '../../activities/transfer-activities';
import { startTransfer } from '../../temporal/transfer-client';
import { reconcileTransfers, type ReconcilerDeps } from '../../temporal/transfer-reconciler';
import { SYSTEM_ACTOR } from '../../workflows/transfer-saga-contract';
import { TransferStack } from '../support/transfer-stack';
import { waitUntil } from '../support/wait-until';

/**
 * `actor` is who caused an event. A saga started by a request writes its events with the request's
 * actor (the API key id); when the reconciler runs a terminated saga again, the events of that rerun
 * are the system's doing (`actor: system`), keep the request's correlationId, and the rerun's memo
 * records who asked for the transfer (`requestedBy`).
 */
describe("the reconciler's repairs are attributed to the system", () => {
  let stack: TransferStack;
  let deps: ReconcilerDeps;
  const stalled = new Set<string>();
  const attempts = new Map<string, number>();

  beforeAll(async () => {
    stack = await TransferStack.create('reconciler_actor');
    deps = { client: stack.client, taskQueue: stack.taskQueue, transfers: stack.transfers };
    const real = stack.realActivities();
    const activities: TransferActivities = {
      ...real,
      creditAndComplete: async (input) => {
        // The terminated run's credit never lands, not even an attempt the worker had already taken
        // when the run was terminated (it may run after); the reconciler's rerun (actor system) passes.
        if (stalled.has(input.transferId) && input.actor !== SYSTEM_ACTOR) {
          attempts.set(input.transferId, (attempts.get(input.transferId) ?? 0) + 1);
          throw new Error('event store unreachable');
        }
        return real.creditAndComplete(input);
      },
    };
    await stack.startWorker(activities);
  });
  afterAll(async () => stack?.close());

  test("events before the termination carry the requester's key id; the rerun's carry `system`; the memo keeps requestedBy", async () => {
    const from = await stack.openAccount(1_000);
    const to = await stack.openAccount(0);
    const transferId = randomUUID();
    const correlationId = `req-${transferId}`;
    stalled.add(transferId);
    const { handle } = await startTransfer(stack.client, stack.taskQueue, {
      transferId,
      fromAccountId: from,
      toAccountId: to,
      amount: 300,
      correlationId,
      actor: 'key_00000000000000aa',
    });
    expect((await handle.describe()).memo).toMatchObject({ actor: 'key_00000000000000aa', correlationId });
    await waitUntil('two credit attempts', () => (attempts.get(transferId) ?? 0) >= 2, 60_000);
    await handle.terminate('stuck');
    await waitUntil('the terminated run to be visible', async () => {
      for await (const run of stack.client.workflow.list({
        query: `WorkflowId = '${handle.workflowId}' AND ExecutionStatus = 'Terminated'`,
      }))
        return run;
      return undefined;
    });
    const before = await stack.pool.query<{ id: string }>(`SELECT id::text AS id FROM es_events WHERE metadata->>'transferId' = $1`, [
      transferId,
    ]);
    expect(before.rows.length).toBeGreaterThan(0);

    expect((await reconcileTransfers(deps)).repaired.map((r) => r.transferId)).toContain(transferId);
    const rerun = stack.client.workflow.getHandle(handle.workflowId);
    expect((await rerun.result()).status).toBe('completed');
    expect((await rerun.describe()).memo).toMatchObject({ actor: SYSTEM_ACTOR, requestedBy: 'key_00000000000000aa', correlationId });

    const events = await stack.pool.query<{ id: string; type: string; metadata: Record<string, unknown> }>(
      `SELECT id::text AS id, type, metadata FROM es_events WHERE metadata->>'transferId' = $1 ORDER BY position`,
      [transferId],
    );
    const earlier = new Set(before.rows.map((r) => r.id));
    const byRequest = events.rows.filter((e) => earlier.has(e.id));
    const byRepair = events.rows.filter((e) => !earlier.has(e.id));
    expect(byRequest.map((e) => e.type)).toEqual(expect.arrayContaining(['TransferRequested', 'TransferDebited', 'TransferSourceDebited']));
    expect(byRepair.map((e) => e.type)).toEqual(expect.arrayContaining(['TransferCredited', 'TransferCompleted']));
    for (const e of byRequest)
      expect({ type: e.type, metadata: e.metadata }).toMatchObject({ metadata: { actor: 'key_00000000000000aa', correlationId } });
    for (const e of byRepair)
      expect({ type: e.type, metadata: e.metadata }).toMatchObject({ metadata: { actor: SYSTEM_ACTOR, correlationId } });
    expect((await stack.balance(from)) + (await stack.balance(to))).toBe(1_000);
  });
});
