import {
  ScheduleAlreadyRunning,
  ScheduleOverlapPolicy,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  type Client,
} from '@temporalio/client';
import type { BatchLog } from '../application/batch-log';
import type { HoldLog } from '../application/hold-log';
import { batchWorkflowId, TRANSFER_BATCH_SAGA } from '../workflows/batch-saga-contract';
import type { TransferLog } from '../application/transfer-log';
import { HOLD_SAGA, holdWorkflowId } from '../workflows/hold-saga-contract';
import { isTerminalStatus } from '../domain/transfer-events';
import type { transferSaga } from '../workflows/transfer-saga';
import {
  SYSTEM_ACTOR,
  TRANSFER_SAGA,
  TRANSFER_STATUS_KEY,
  TRANSFER_STATUS_SEARCH_ATTRIBUTE,
  transferWorkflowId,
  type TransferSagaInput,
} from '../workflows/transfer-saga-contract';
import { TRANSFER_RECONCILER } from '../workflows/transfer-reconciler-contract';

/**
 * The reconciler: accepted transfers whose saga closed without settling them (terminated, timed out, failed, cancelled
 * by a release before the safe settlement, or even `Completed` without an outcome on the stream), or whose saga never
 * started (a crash between the API recording the request and starting the saga), would stay pending for ever. It finds
 * them through Temporal's visibility and the transfers read model, confirms on the transfer's own stream that an
 * accepted request is recorded and no outcome is, and runs the saga again under the same workflow id. The rerun
 * executes the request recorded on the stream (never a memo): every leg is idempotent (deterministic event ids,
 * voids), so the new run finishes what the old one left, and moves no money twice.
 */

export interface ReconcilerDeps {
  client: Client;
  taskQueue: string;
  transfers: TransferLog;
  /**
   * Transfers the read model holds as pending since before `olderThan` (ids, oldest first, at most `limit`): accepted
   * requests whose saga may never have started (a crash between recording and starting), or whose saga closed without
   * recording an outcome. Without it only closed runs that Temporal's visibility lists as unsettled are examined.
   */
  pendingTransfers?: (olderThan: Date, limit: number) => Promise<string[]>;
  /** The holds' streams: closed hold sagas whose hold is not settled are run again (see reconcileHolds). */
  holds?: HoldLog;
  /** The batches' streams: closed batch sagas whose batch is not settled are run again (see reconcileBatches). */
  batches?: BatchLog;
  /** How long a pending transfer is left to its saga before the reconciler looks at it (default 60 s). */
  graceMs?: number;
  now?: () => Date;
  // eslint-disable-next-line no-restricted-syntax -- a log line: its keys are this module's
  log?: (entry: Record<string, unknown>) => void;
  onRepaired?: (transferId: string, closedAs: string) => void;
}

export interface ReconcileResult {
  examined: number;
  repaired: { transferId: string; closedAs: string }[];
}

const CLOSED_UNSETTLED = ['Terminated', 'TimedOut', 'Failed', 'Canceled'];

/**
 * The visibility query for closed saga runs of this task queue that never recorded an outcome (closed after `closedAfter`
 * when given: a run repaired long ago stays listed as pending until Temporal's retention drops it; older unsettled
 * transfers are still found through the read model's pending transfers).
 */
export function unsettledQuery(taskQueue: string, closedAfter?: Date): string {
  return [
    `WorkflowType = '${TRANSFER_SAGA}'`,
    `TaskQueue = '${taskQueue}'`,
    `${TRANSFER_STATUS_SEARCH_ATTRIBUTE} = 'pending'`,
    `ExecutionStatus IN (${CLOSED_UNSETTLED.map((s) => `'${s}'`).join(', ')})`,
    ...(closedAfter ? [`CloseTime > '${closedAfter.toISOString()}'`] : []),
  ].join(' AND ');
}

/** How far back the visibility source looks (runs closed longer ago are found through the read model). */
export const RECONCILE_CLOSED_WITHIN_MS = 24 * 3_600_000;

const TRANSFER_WORKFLOW_PREFIX = transferWorkflowId('');

/**
 * One pass: every transfer that is accepted on its stream, has no outcome there, and has no saga running is run again.
 * Candidates come from two places: closed saga runs whose TransferStatus is still `pending` (Temporal's visibility),
 * and transfers the read model holds as pending for longer than the grace period (a saga never started, or one that
 * closed `Completed` without an outcome on the stream). The stream decides, never how a workflow closed.
 */
export async function reconcileTransfers(deps: ReconcilerDeps, options: { limit?: number } = {}): Promise<ReconcileResult> {
  // Each source has its own budget: closed runs listed as pending (which anyone reaching Temporal can add) never use up
  // the look at accepted transfers that have no running saga.
  const limit = options.limit ?? 500;
  const now = (deps.now ?? (() => new Date()))();
  const result: ReconcileResult = { examined: 0, repaired: [] };
  const seen = new Set<string>();
  const examine = async (transferId: string) => {
    if (seen.has(transferId)) return; // several closed runs of one transfer: one repair
    seen.add(transferId);
    result.examined += 1;
    const repaired = await repairOne(deps, transferId);
    if (repaired) result.repaired.push({ transferId, closedAs: repaired });
  };
  let fromVisibility = 0;
  for await (const run of deps.client.workflow.list({
    query: unsettledQuery(deps.taskQueue, new Date(now.getTime() - RECONCILE_CLOSED_WITHIN_MS)),
  })) {
    if (++fromVisibility > limit) break;
    if (!run.workflowId.startsWith(TRANSFER_WORKFLOW_PREFIX)) continue; // not a transfer's saga: nothing was accepted under it
    await examine(run.workflowId.slice(TRANSFER_WORKFLOW_PREFIX.length));
  }
  if (deps.pendingTransfers) {
    const olderThan = new Date(now.getTime() - (deps.graceMs ?? 60_000));
    for (const transferId of await deps.pendingTransfers(olderThan, limit)) await examine(transferId);
  }
  return result;
}

/** How the latest saga run of a transfer stands: running, closed (and how), or never started. */
async function latestRun(deps: ReconcilerDeps, workflowId: string): Promise<{ status: string; runId?: string }> {
  try {
    const latest = await deps.client.workflow.getHandle(workflowId).describe();
    return { status: latest.status.name, runId: latest.runId };
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) return { status: 'NEVER_STARTED' };
    throw error;
  }
}

/** Runs a transfer's saga again when its stream holds an accepted request without an outcome and no run is going. Returns how the last run stood. */
async function repairOne(deps: ReconcilerDeps, transferId: string): Promise<string | undefined> {
  const workflowId = transferWorkflowId(transferId);
  // The latest run decides: a run already going (the first, or one started again by us or a person) is left alone.
  const latest = await latestRun(deps, workflowId);
  if (latest.status === 'RUNNING') return undefined;
  const { state } = await deps.transfers.load(transferId);
  if (isTerminalStatus(state.status)) return undefined; // settled on the stream
  // The captured part of a hold: its hold's saga finishes it (repairHold), never a transfer saga.
  if (state.accepted?.holdId !== undefined) return undefined;
  // An item of a batch: its batch's saga settles it (reconcileBatches), never a transfer saga.
  if (state.accepted?.batchId !== undefined) return undefined;
  if (!state.request) {
    // A run the API never accepted (started straight on Temporal): it moved nothing, and nothing is there to run.
    deps.log?.({ level: 'warn', msg: 'closed saga without an accepted request: nothing to run', transferId, workflowId });
    return undefined;
  }
  // The rerun executes the request recorded on the stream (the saga reads it there), as the actor who asked for it.
  const input: TransferSagaInput = {
    ...state.request,
    ...(state.accepted?.correlationId ? { correlationId: state.accepted.correlationId } : {}),
    ...(state.accepted ? { actor: state.accepted.actor } : {}),
  };
  const closedAs = latest.status;
  try {
    await deps.client.workflow.start<typeof transferSaga>(TRANSFER_SAGA, {
      workflowId,
      taskQueue: deps.taskQueue,
      args: [input],
      memo: {
        ...state.request,
        correlationId: input.correlationId ?? null,
        actor: input.actor ?? null,
        rerunBy: SYSTEM_ACTOR,
        repairOf: latest.runId ?? null,
        repairedAfter: closedAs,
      },
      typedSearchAttributes: [{ key: TRANSFER_STATUS_KEY, value: 'pending' }],
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      workflowIdConflictPolicy: 'FAIL',
    });
  } catch (error) {
    if (error instanceof WorkflowExecutionAlreadyStartedError) return undefined; // another reconciler got there first
    throw error;
  }
  deps.log?.({
    level: 'warn',
    msg:
      closedAs === 'NEVER_STARTED'
        ? 'transfer repaired: its request was accepted but its saga never started; started now'
        : 'transfer repaired: its saga closed without an outcome on its stream and was run again',
    transferId,
    workflowId,
    closedAs,
    previousRunId: latest.runId,
  });
  deps.onRepaired?.(transferId, closedAs);
  return closedAs;
}

/**
 * Holds whose saga closed without settling them (terminated, timed out, failed): a reservation would otherwise stay on
 * the source for ever (no timer runs any more), or a capture stay half done. Found through Temporal's visibility (closed
 * hold saga runs of this task queue, closed within RECONCILE_CLOSED_WITHIN_MS), confirmed on the hold's own stream (an
 * accepted hold, not settled), and run again under the same workflow id: the rerun acts on what the stream recorded
 * (a capture recorded is finished, an expiry due is recorded and released, an open hold waits for the rest of its time).
 */
export async function reconcileHolds(
  deps: ReconcilerDeps & { holds: HoldLog },
  options: { limit?: number } = {},
): Promise<ReconcileResult> {
  return rerunClosedSagas(deps, HOLD_SAGA, HOLD_WORKFLOW_PREFIX, options, async (holdId, latest) => {
    const { state } = await deps.holds.load(holdId);
    if (!state.request || state.settled) return undefined;
    return {
      args: [{ holdId, actor: state.accepted?.actor ?? SYSTEM_ACTOR }],
      memo: { ...state.request, rerunBy: SYSTEM_ACTOR, repairOf: latest.runId ?? null, repairedAfter: latest.status },
      log: { msg: 'hold repaired: its saga closed without settling it and was run again', holdId },
    };
  });
}

/**
 * One pass over the closed runs (within RECONCILE_CLOSED_WITHIN_MS) of a saga kind whose own stream decides what it
 * does: each id once, left alone while a run is going, run again under the same workflow id when `rerun` (which reads
 * the id's stream) finds it unsettled. The rerun executes what that stream recorded, never the listed run's input.
 */
async function rerunClosedSagas(
  deps: ReconcilerDeps,
  workflowType: string,
  prefix: string,
  options: { limit?: number },
  rerun: (
    id: string,
    latest: { status: string; runId?: string },
    // eslint-disable-next-line no-restricted-syntax -- a memo and a log line: their keys are this module's, never outside input
  ) => Promise<{ args: unknown[]; memo: Record<string, unknown>; log: Record<string, unknown> } | undefined>,
): Promise<ReconcileResult> {
  const limit = options.limit ?? 500;
  const now = (deps.now ?? (() => new Date()))();
  const result: ReconcileResult = { examined: 0, repaired: [] };
  const seen = new Set<string>();
  const query = [
    `WorkflowType = '${workflowType}'`,
    `TaskQueue = '${deps.taskQueue}'`,
    `ExecutionStatus IN (${CLOSED_UNSETTLED.map((s) => `'${s}'`).join(', ')})`,
    `CloseTime > '${new Date(now.getTime() - RECONCILE_CLOSED_WITHIN_MS).toISOString()}'`,
  ].join(' AND ');
  let listed = 0;
  for await (const run of deps.client.workflow.list({ query })) {
    if (++listed > limit) break;
    if (!run.workflowId.startsWith(prefix)) continue;
    const id = run.workflowId.slice(prefix.length);
    if (seen.has(id)) continue;
    seen.add(id);
    result.examined += 1;
    const latest = await latestRun(deps, run.workflowId);
    if (latest.status === 'RUNNING') continue;
    const start = await rerun(id, latest);
    if (!start) continue;
    try {
      await deps.client.workflow.start(workflowType, {
        workflowId: run.workflowId,
        taskQueue: deps.taskQueue,
        args: start.args,
        memo: start.memo,
        workflowIdReusePolicy: 'ALLOW_DUPLICATE',
        workflowIdConflictPolicy: 'FAIL',
      });
    } catch (error) {
      if (error instanceof WorkflowExecutionAlreadyStartedError) continue;
      throw error;
    }
    deps.log?.({ level: 'warn', ...start.log, closedAs: latest.status });
    deps.onRepaired?.(id, latest.status);
    result.repaired.push({ transferId: id, closedAs: latest.status });
  }
  return result;
}

const HOLD_WORKFLOW_PREFIX = holdWorkflowId('');
const BATCH_WORKFLOW_PREFIX = batchWorkflowId('');

/**
 * Batches whose saga closed without settling them (terminated, timed out, failed): their items would stay pending for
 * ever, money debited and not credited. Found through Temporal's visibility (closed batch saga runs of this task queue,
 * closed within RECONCILE_CLOSED_WITHIN_MS), confirmed on the batch's own stream (accepted, not settled), and run again
 * under the same workflow id: the rerun executes the batch recorded there, and every leg it already landed is a no-op.
 */
export async function reconcileBatches(
  deps: ReconcilerDeps & { batches: BatchLog },
  options: { limit?: number } = {},
): Promise<ReconcileResult> {
  return rerunClosedSagas(deps, TRANSFER_BATCH_SAGA, BATCH_WORKFLOW_PREFIX, options, async (batchId, latest) => {
    const { state } = await deps.batches.load(batchId);
    if (!state.request || state.status !== 'pending') return undefined;
    return {
      args: [{ batchId, actor: state.accepted?.actor ?? SYSTEM_ACTOR }],
      memo: {
        batchId,
        items: state.request.items.length,
        rerunBy: SYSTEM_ACTOR,
        repairOf: latest.runId ?? null,
        repairedAfter: latest.status,
      },
      log: { msg: 'batch repaired: its saga closed without settling it and was run again', batchId },
    };
  });
}

/** The reconciler's activities, registered on the transfer worker. */
export function createReconcilerActivities(deps: ReconcilerDeps) {
  return {
    async reconcileTransfers(): Promise<{ examined: number; repaired: number }> {
      const result = await reconcileTransfers(deps);
      const holds = deps.holds ? await reconcileHolds({ ...deps, holds: deps.holds }) : { examined: 0, repaired: [] };
      const batches = deps.batches ? await reconcileBatches({ ...deps, batches: deps.batches }) : { examined: 0, repaired: [] };
      return {
        examined: result.examined + holds.examined + batches.examined,
        repaired: result.repaired.length + holds.repaired.length + batches.repaired.length,
      };
    },
  };
}
export type ReconcilerActivities = ReturnType<typeof createReconcilerActivities>;

export const reconcilerScheduleId = (taskQueue: string): string => `transfer-reconciler-${taskQueue}`;

/**
 * A Temporal schedule runs the reconciler workflow every `everySeconds` (visible under Schedules in
 * the Temporal UI; `temporal schedule trigger --schedule-id transfer-reconciler-<queue>` runs it now).
 * Created once; an existing schedule is kept.
 */
export async function ensureReconcilerSchedule(client: Client, taskQueue: string, everySeconds: number): Promise<void> {
  try {
    await client.schedule.create({
      scheduleId: reconcilerScheduleId(taskQueue),
      spec: { intervals: [{ every: `${everySeconds}s` }] },
      action: { type: 'startWorkflow', workflowType: TRANSFER_RECONCILER, taskQueue, args: [] },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1m' },
    });
  } catch (error) {
    if (!(error instanceof ScheduleAlreadyRunning)) throw error;
  }
}
