import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { BatchActivities, PhaseResult } from '../activities/batch-activities';
import { isRejectionType } from '../domain/rejection';
import type { BatchCounts, ItemFailure } from '../domain/transfer-batch';
import type { TransferFailureReason } from '../domain/transfer-events';
import {
  BATCH_COMPENSATED_KEY,
  BATCH_COMPLETED_KEY,
  BATCH_FAILED_KEY,
  batchStatusQuery,
  batchWorkflowId,
  type BatchPhase,
  type BatchSagaInput,
  type BatchSagaStatus,
} from './batch-saga-contract';
import { retrySettlementSignal, TRANSFER_STATUS_KEY, type SagaStep } from './transfer-saga-contract';

/**
 * The batch saga (`batch-<id>`): one saga for up to a thousand transfers (issue 26). It registers every item as a
 * transfer of its own, debits every source account once (all its items decided together), credits every target account
 * once, then settles: each item ends `completed`, `failed` or `compensated` from what landed on its accounts, with the
 * same rules as a single transfer (a credit is retried until decided; a refund never lands while the credit may have
 * landed; a settlement the rules refuse waits for a person). Atomic batches stop at the first refused item of a phase
 * and settle everything back.
 * Only the batch the API recorded on `batch-<id>` moves, and only as the saga of that id: the activities read it there
 * and take nothing from this input but the id. A new workflow type: no existing history changes.
 * Deterministic: no I/O, clocks (Date is the workflow's) or randomness; every effect lives in an activity.
 */

/** The forward phases: an infrastructure failure is retried a while, then the batch settles. */
const forward = proxyActivities<BatchActivities>({
  startToCloseTimeout: '120s',
  // The phases heartbeat every second: a phase whose worker died is retried on another within seconds.
  heartbeatTimeout: '10s',
  retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '10s', maximumAttempts: 10 },
});

/** The credits, once debits landed: retried until decided (giving up could refund a source whose credit landed). */
const creditUntilDecided = proxyActivities<BatchActivities>({
  startToCloseTimeout: '120s',
  heartbeatTimeout: '10s',
  retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '10s' },
});

/** Reading the batch, the settlement and reports: retried until they succeed. */
const mustSucceed = proxyActivities<BatchActivities>({
  startToCloseTimeout: '120s',
  heartbeatTimeout: '10s',
  retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '30s', nonRetryableErrorTypes: ['settlement_refused'] },
});

/** An atomic batch stopped by a refused item: the others are `batch_aborted`. */
class BatchAborted extends Error {}

function failureOf(error: unknown): { reason: TransferFailureReason; message: string } {
  if (isCancellation(error)) return { reason: 'cancelled', message: 'The batch saga was cancelled' };
  if (error instanceof BatchAborted) return { reason: 'batch_aborted', message: error.message };
  const cause = error instanceof ActivityFailure ? error.cause : error;
  if (cause instanceof ApplicationFailure && cause.nonRetryable && isRejectionType(cause.type))
    return { reason: cause.type, message: cause.message };
  return { reason: 'infrastructure', message: cause instanceof Error ? cause.message : String(cause) };
}

export async function transferBatchSaga(input: BatchSagaInput): Promise<BatchSagaStatus> {
  const state: BatchSagaStatus = {
    batchId: input.batchId,
    status: 'pending',
    phase: 'accepted',
    refused: 0,
    counts: { completed: 0, failed: 0, compensated: 0, pending: 0 },
    steps: [],
  };
  setHandler(batchStatusQuery, () => state);
  let retryRequested = false;
  setHandler(retrySettlementSignal, () => {
    retryRequested = true;
  });
  const setStatus = (status: BatchSagaStatus['status']) => {
    state.status = status;
    upsertSearchAttributes([{ key: TRANSFER_STATUS_KEY, value: status }]);
  };
  const setCounts = (counts: BatchCounts) => {
    state.counts = { ...counts, pending: Math.max(0, (state.itemCount ?? 0) - counts.completed - counts.failed - counts.compensated) };
    upsertSearchAttributes([
      { key: BATCH_COMPLETED_KEY, value: counts.completed },
      { key: BATCH_FAILED_KEY, value: counts.failed },
      { key: BATCH_COMPENSATED_KEY, value: counts.compensated },
    ]);
  };
  const step = async <T>(name: string, phase: BatchPhase, run: () => Promise<T>): Promise<T> => {
    state.phase = phase;
    const entry: SagaStep = { name, status: 'started', at: new Date().toISOString() };
    state.steps.push(entry);
    try {
      const result = await run();
      entry.status = 'done';
      return result;
    } catch (error) {
      entry.status = 'failed';
      entry.detail = failureOf(error).message;
      throw error;
    } finally {
      entry.at = new Date().toISOString();
    }
  };
  setStatus('pending');

  const refuse = (why: string) => {
    state.failureReason = 'unauthorized';
    state.failureMessage = why;
    setStatus('failed');
    return state;
  };
  if (workflowInfo().workflowId !== batchWorkflowId(input.batchId)) {
    return refuse(`a saga of batch ${input.batchId} runs only as workflow ${batchWorkflowId(input.batchId)}`);
  }
  const run = await step('accepted batch', 'accepted', () => mustSucceed.acceptedBatch({ batchId: input.batchId }));
  if (!run) return refuse(`no batch accepted by the API is recorded under ${input.batchId}`);
  state.atomic = run.atomic;
  state.itemCount = run.itemCount;
  if (run.outcome) {
    // Settled on its stream already (a run started again after its end): it takes no step, it reports.
    if (run.counts) setCounts(run.counts);
    state.phase = 'settled';
    setStatus(run.outcome);
    return state;
  }
  setCounts({ completed: 0, failed: 0, compensated: 0 });

  const failures: ItemFailure[] = [];
  const phase = async (name: string, which: BatchPhase, work: () => Promise<PhaseResult>) => {
    const result = await step(name, which, work);
    failures.push(...result.refused);
    state.refused = failures.length;
    if (run.atomic && result.refused.length > 0) {
      const first = result.refused[0]!;
      throw new BatchAborted(`Item ${first.transferId} of this atomic batch was refused (${first.reason}): nothing of the batch moves`);
    }
  };
  let stop = { reason: 'infrastructure' as TransferFailureReason, message: '' };
  try {
    await phase('register items', 'registering', () => forward.registerBatchItems({ batchId: input.batchId }));
    await phase('debit sources', 'debiting', () => forward.debitBatch({ batchId: input.batchId }));
    await phase('credit targets', 'crediting', () => creditUntilDecided.creditBatch({ batchId: input.batchId }));
  } catch (error) {
    stop = failureOf(error);
    state.failureReason = stop.reason;
    state.failureMessage = stop.message;
  }

  // The settlement: not cancellable, retried until it succeeds; refused by the rules, it waits for a person.
  return CancellationScope.nonCancellable(async () => {
    for (;;) {
      try {
        const settled = await step('settle', 'settling', () =>
          mustSucceed.settleBatch({ batchId: input.batchId, failures, reason: stop.reason, message: stop.message }),
        );
        setCounts(settled.counts);
        state.phase = 'settled';
        setStatus(settled.outcome);
        return state;
      } catch (error) {
        const problem = failureOf(error);
        state.failureMessage = `settlement refused: ${problem.message}`;
        setStatus('needs_attention');
        await step('report needs attention', 'settling', () =>
          mustSucceed.reportBatchNeedsAttention({ batchId: input.batchId, reason: problem.reason, message: problem.message }),
        );
        retryRequested = false;
        await condition(() => retryRequested);
      }
    }
  });
}
