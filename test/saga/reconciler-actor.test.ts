import { randomUUID } from 'node:crypto';
import { Context } from '@temporalio/activity';
import type { TransferActivities } from '../../activities/transfer-activities';
import { acceptTransfer } from '../../temporal/transfer-client';
import { reconcileTransfers, type ReconcilerDeps } from '../../temporal/transfer-reconciler';
import { SYSTEM_ACTOR } from '../../workflows/transfer-saga-contract';
import { TransferStack } from '../support/transfer-stack';
import { waitUntil } from '../support/wait-until';

/**
 * `actor` is who caused an event. The actor on a transfer's events comes only from the request the API accepted (the
 * API key id, recorded with the request on the transfer's stream), never from a saga's input: a reconciler's rerun
 * writes its events as that actor too, with the request's correlationId; the rerun's memo says the system ran it
 * again (`rerunBy: system`), and each event's causationId names the workflow run's activity.
 */
describe("the reconciler's repairs carry the accepted request's actor", () => {
  let stack: TransferStack;
  let deps: ReconcilerDeps;
  const stalled = new Set<string>();
  /** The first run of each stalled transfer (the first to ask for its accepted request): only its legs stall. */
  const stalledRuns = new Map<string, string>();
  const runId = () => Context.current().info.workflowExecution!.runId;
  const attempts = new Map<string, number>();

  beforeAll(async () => {
    stack = await TransferStack.create('reconciler_actor');
    deps = { client: stack.client, taskQueue: stack.taskQueue, transfers: stack.transfers };
    const real = stack.realActivities();
    const activities: TransferActivities = {
      ...real,
      acceptedRequest: async (input) => {
        if (!stalledRuns.has(input.transferId)) stalledRuns.set(input.transferId, runId());
        return real.acceptedRequest(input);
      },
      creditAndComplete: async (input) => {
        // The terminated run's credit never lands, not even an attempt the worker had already taken
        // when the run was terminated (it may run after); the reconciler's rerun (actor system) passes.
        if (stalled.has(input.transferId) && stalledRuns.get(input.transferId) === runId()) {
          attempts.set(input.transferId, (attempts.get(input.transferId) ?? 0) + 1);
          throw new Error('event store unreachable');
        }
        return real.creditAndComplete(input);
      },
    };
    await stack.startWorker(activities);
  });
  afterAll(async () => stack?.close());

  test("events before the termination and the rerun's carry the requester's key id, whatever actor a run's input names", async () => {
    const from = await stack.openAccount(1_000);
    const to = await stack.openAccount(0);
    const transferId = randomUUID();
    const correlationId = `req-${transferId}`;
    stalled.add(transferId);
    const { handle } = await acceptTransfer(stack, {
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
    expect((await rerun.describe()).memo).toMatchObject({ actor: 'key_00000000000000aa', rerunBy: SYSTEM_ACTOR, correlationId });

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
      expect({ type: e.type, metadata: e.metadata }).toMatchObject({ metadata: { actor: 'key_00000000000000aa', correlationId } });
    expect((await stack.balance(from)) + (await stack.balance(to))).toBe(1_000);
  });
});
