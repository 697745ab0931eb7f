import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import type { TransferLog } from '../application/transfer-log';
import { isTerminalStatus } from '../domain/transfer-events';
import type { transferSaga } from '../workflows/transfer-saga';
import {
  SYSTEM_ACTOR,
  TRANSFER_SAGA,
  TRANSFER_STATUS_KEY,
  TRANSFER_STATUS_SEARCH_ATTRIBUTE,
  type TransferSagaInput,
} from '../workflows/transfer-saga-contract';
import { TRANSFER_RECONCILER } from '../workflows/transfer-reconciler-contract';

/**
 * The reconciler: transfers whose saga closed without settling them (terminated, timed out, failed,
 * or cancelled by a release before the safe settlement) would stay pending for ever. It finds them
 * through Temporal's visibility (closed runs whose TransferStatus is still `pending`), confirms on
 * the transfer's own stream that no outcome is recorded, and runs the saga again under the same
 * workflow id: every leg is idempotent (deterministic event ids, voids), so the new run finishes
 * what the old one left, and moves no money twice.
 */

export interface ReconcilerDeps {
  client: Client;
  taskQueue: string;
  transfers: TransferLog;
  log?: (entry: Record<string, unknown>) => void;
  onRepaired?: (transferId: string, closedAs: string) => void;
}

export interface ReconcileResult {
  examined: number;
  repaired: { transferId: string; closedAs: string }[];
}

const CLOSED_UNSETTLED = ['Terminated', 'TimedOut', 'Failed', 'Canceled'];

/** The visibility query for closed saga runs of this task queue that never recorded an outcome. */
export function unsettledQuery(taskQueue: string): string {
  return [
    `WorkflowType = '${TRANSFER_SAGA}'`,
    `TaskQueue = '${taskQueue}'`,
    `${TRANSFER_STATUS_SEARCH_ATTRIBUTE} = 'pending'`,
    `ExecutionStatus IN (${CLOSED_UNSETTLED.map((s) => `'${s}'`).join(', ')})`,
  ].join(' AND ');
}

export async function reconcileTransfers(deps: ReconcilerDeps, options: { limit?: number } = {}): Promise<ReconcileResult> {
  const limit = options.limit ?? 500;
  const result: ReconcileResult = { examined: 0, repaired: [] };
  const seen = new Set<string>();
  for await (const run of deps.client.workflow.list({ query: unsettledQuery(deps.taskQueue) })) {
    if (seen.has(run.workflowId)) continue; // several closed runs of one transfer: one repair
    seen.add(run.workflowId);
    if (++result.examined > limit) break;
    const repaired = await repairOne(deps, run.workflowId, run.status.name, (run.memo ?? {}) as Partial<TransferSagaInput>);
    if (repaired) result.repaired.push({ transferId: repaired, closedAs: run.status.name });
  }
  return result;
}

async function repairOne(
  deps: ReconcilerDeps,
  workflowId: string,
  closedAs: string,
  memo: Partial<TransferSagaInput>,
): Promise<string | undefined> {
  // The latest run decides: a run already started again (by us or a person) is left alone.
  const latest = await deps.client.workflow.getHandle(workflowId).describe();
  if (latest.status.name === 'RUNNING') return undefined;
  const transferId = memo.transferId ?? workflowId.replace(/^transfer-/, '');
  const { state } = await deps.transfers.load(transferId);
  if (isTerminalStatus(state.status)) return undefined; // settled on the stream
  // The stream's request is the truth; a run stopped before recording it left its input in the memo.
  const request =
    state.request ??
    (memo.fromAccountId && memo.toAccountId && memo.amount
      ? { transferId, fromAccountId: memo.fromAccountId, toAccountId: memo.toAccountId, amount: memo.amount }
      : undefined);
  if (!request) {
    deps.log?.({ level: 'warn', msg: 'unsettled transfer without a request or memo: left for a person', transferId, workflowId });
    return undefined;
  }
  // The rerun is the system's doing: the events it writes carry actor `system` (beside the request's
  // correlationId); who asked for the transfer stays on the events written before and in the memo.
  const requestedBy = (memo as { requestedBy?: string }).requestedBy ?? memo.actor;
  const input: TransferSagaInput = {
    ...request,
    ...(memo.correlationId ? { correlationId: memo.correlationId } : {}),
    actor: SYSTEM_ACTOR,
  };
  try {
    await deps.client.workflow.start<typeof transferSaga>(TRANSFER_SAGA, {
      workflowId,
      taskQueue: deps.taskQueue,
      args: [input],
      memo: {
        ...request,
        correlationId: input.correlationId ?? null,
        actor: SYSTEM_ACTOR,
        requestedBy: requestedBy ?? null,
        repairOf: latest.runId,
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
    msg: 'transfer repaired: its saga closed without an outcome and was run again',
    transferId,
    workflowId,
    closedAs,
    previousRunId: latest.runId,
  });
  deps.onRepaired?.(transferId, closedAs);
  return transferId;
}

/** The reconciler's activities, registered on the transfer worker. */
export function createReconcilerActivities(deps: ReconcilerDeps) {
  return {
    async reconcileTransfers(): Promise<{ examined: number; repaired: number }> {
      const result = await reconcileTransfers(deps);
      return { examined: result.examined, repaired: result.repaired.length };
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
