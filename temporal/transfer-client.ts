import { WorkflowExecutionAlreadyStartedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { checkTransferRequest, sameRequest } from '../domain/transfer-decider';
import type { Rejection } from '../domain/rejection';
import type { transferSaga } from '../workflows/transfer-saga';
import {
  TRANSFER_SAGA,
  TRANSFER_STATUS_KEY,
  transferStatusQuery,
  transferWorkflowId,
  type TransferSagaInput,
  type TransferSagaStatus,
} from '../workflows/transfer-saga-contract';

/** The same transfer id was used before with another payload (TigerBeetle's "exists with different fields"). */
export class TransferConflictError extends Error {
  readonly code = 'transfer_conflict';
  constructor(
    readonly transferId: string,
    readonly existing: Partial<TransferSagaInput>,
  ) {
    super(`Transfer ${transferId} already exists with a different payload`);
    this.name = 'TransferConflictError';
  }
}

export class TransferRejectedError extends Error {
  constructor(readonly rejection: Rejection) {
    super(rejection.message);
    this.name = 'TransferRejectedError';
  }
}

export interface StartedTransfer {
  handle: WorkflowHandle<typeof transferSaga>;
  /** False when the transfer id was already known and the existing saga is returned. */
  created: boolean;
  /** The server handed the first workflow task straight back to this process's worker (eager start). */
  eagerlyStarted: boolean;
}

/**
 * Starts the saga for a transfer, idempotently: the client-supplied transfer id is the key.
 * The same id and payload returns the existing saga (running or finished); the same id with
 * another payload throws TransferConflictError. A transfer id is never reused for a new saga.
 */
export interface StartOptions {
  /**
   * Ask the server to hand the first workflow task straight back to this process's worker (eager
   * workflow start): only when the client uses the worker's NativeConnection in the same process (the
   * local stack). The server may decline; the saga then starts the usual way (`handle.eagerlyStarted`).
   */
  eager?: boolean;
}

export async function startTransfer(
  client: Client,
  taskQueue: string,
  input: TransferSagaInput,
  options: StartOptions = {},
): Promise<StartedTransfer> {
  const invalid = checkTransferRequest(input);
  if (invalid && !invalid.ok) throw new TransferRejectedError(invalid.rejection);
  const workflowId = transferWorkflowId(input.transferId);
  const memo = {
    transferId: input.transferId,
    fromAccountId: input.fromAccountId,
    toAccountId: input.toAccountId,
    amount: input.amount,
    ...(input.reversalOf ? { reversalOf: input.reversalOf } : {}),
  };
  try {
    const handle = await client.workflow.start<typeof transferSaga>(TRANSFER_SAGA, {
      workflowId,
      taskQueue,
      args: [input],
      memo: { ...memo, correlationId: input.correlationId ?? null, actor: input.actor ?? null },
      typedSearchAttributes: [{ key: TRANSFER_STATUS_KEY, value: 'pending' }],
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      workflowIdConflictPolicy: 'FAIL',
      ...(options.eager ? { requestEagerStart: true } : {}),
    });
    return { handle, created: true, eagerlyStarted: handle.eagerlyStarted };
  } catch (error) {
    if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
  }
  const handle = client.workflow.getHandle<typeof transferSaga>(workflowId);
  const existing = ((await handle.describe()).memo ?? {}) as Partial<TransferSagaInput>;
  if (!sameRequest({ transferId: input.transferId, fromAccountId: '', toAccountId: '', amount: 0, ...existing }, input))
    throw new TransferConflictError(input.transferId, existing);
  return { handle, created: false, eagerlyStarted: false };
}

/** The saga's live status via its query (works while running and after it finished). */
export async function queryTransfer(client: Client, transferId: string): Promise<TransferSagaStatus> {
  return client.workflow.getHandle(transferWorkflowId(transferId)).query(transferStatusQuery);
}
