import { WorkflowExecutionAlreadyStartedError, type Client, type WorkflowHandle } from '@temporalio/client';
import type { BatchLog } from '../application/batch-log';
import type { Rejection } from '../domain/rejection';
import type { BatchRequest, TransferBatchState } from '../domain/transfer-batch';
import type { transferBatchSaga } from '../workflows/batch-saga';
import {
  BATCH_COMPENSATED_KEY,
  BATCH_COMPLETED_KEY,
  BATCH_FAILED_KEY,
  batchStatusQuery,
  batchWorkflowId,
  TRANSFER_BATCH_SAGA,
  type BatchSagaStatus,
} from '../workflows/batch-saga-contract';
import { TRANSFER_STATUS_KEY } from '../workflows/transfer-saga-contract';

/** The same batch id was used before with another payload. */
export class BatchConflictError extends Error {
  readonly code = 'transfer_conflict';
  constructor(readonly batchId: string) {
    super(`Batch ${batchId} already exists with a different payload`);
    this.name = 'BatchConflictError';
  }
}

export class BatchRejectedError extends Error {
  constructor(readonly rejection: Rejection) {
    super(rejection.message);
    this.name = 'BatchRejectedError';
  }
}

export interface AcceptBatchDeps {
  client: Client;
  taskQueue: string;
  batches: BatchLog;
}

export interface AcceptedBatch {
  handle: WorkflowHandle<typeof transferBatchSaga>;
  /** False when the batch id was already known (the same batch again): nothing new was written. */
  created: boolean;
  state: TransferBatchState;
}

/**
 * Accepts a batch: records it with who asked on the batch's stream, then starts its saga (`batch-<id>`). The saga
 * executes only what is recorded there. Idempotent: the batch id is the key. The same batch again returns the existing
 * saga (one recorded but never started, or closed without settling it, is started now); the same id with another
 * payload throws BatchConflictError, and nothing is written. Validation (items, ids, amounts) happens before: the
 * request is recorded whole or not at all.
 */
export async function acceptBatch(
  deps: AcceptBatchDeps,
  request: BatchRequest,
  by: { actor: string; correlationId?: string },
): Promise<AcceptedBatch> {
  const recorded = await deps.batches.accept(request, {
    actor: by.actor,
    ...(by.correlationId ? { correlationId: by.correlationId } : {}),
  });
  if (!recorded.ok) {
    if (recorded.rejection.type === 'transfer_conflict') throw new BatchConflictError(request.batchId);
    throw new BatchRejectedError(recorded.rejection);
  }
  const created = recorded.eventsWritten > 0;
  const accepted = recorded.state.accepted!;
  const workflowId = batchWorkflowId(request.batchId);
  const start = (reuse: 'REJECT_DUPLICATE' | 'ALLOW_DUPLICATE') =>
    deps.client.workflow.start<typeof transferBatchSaga>(TRANSFER_BATCH_SAGA, {
      workflowId,
      taskQueue: deps.taskQueue,
      args: [
        { batchId: request.batchId, actor: accepted.actor, ...(accepted.correlationId ? { correlationId: accepted.correlationId } : {}) },
      ],
      // For display only: no run reads it.
      memo: {
        batchId: request.batchId,
        atomic: request.atomic,
        items: request.items.length,
        actor: accepted.actor,
        correlationId: accepted.correlationId ?? null,
      },
      typedSearchAttributes: [
        { key: TRANSFER_STATUS_KEY, value: 'pending' },
        { key: BATCH_COMPLETED_KEY, value: 0 },
        { key: BATCH_FAILED_KEY, value: 0 },
        { key: BATCH_COMPENSATED_KEY, value: 0 },
      ],
      workflowIdReusePolicy: reuse,
      workflowIdConflictPolicy: 'FAIL',
    });
  try {
    return { handle: await start('REJECT_DUPLICATE'), created, state: recorded.state };
  } catch (error) {
    if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
  }
  const existing = deps.client.workflow.getHandle<typeof transferBatchSaga>(workflowId);
  if (recorded.state.status === 'pending' && (await existing.describe()).status.name !== 'RUNNING') {
    // A run that closed without settling the batch (terminated, say): the accepted batch's saga runs again.
    try {
      return { handle: await start('ALLOW_DUPLICATE'), created, state: recorded.state };
    } catch (error) {
      if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
    }
  }
  return { handle: existing, created, state: recorded.state };
}

/** The batch saga's live progress via its query (works while running and after it finished). */
export function queryBatch(client: Client, batchId: string): Promise<BatchSagaStatus> {
  return client.workflow.getHandle(batchWorkflowId(batchId)).query(batchStatusQuery);
}
