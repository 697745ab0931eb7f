import { WorkflowExecutionAlreadyStartedError, type Client, type WorkflowHandle } from '@temporalio/client';
import type { LoadedTransfer, TransferLog } from '../application/transfer-log';
import { checkTransferRequest } from '../domain/transfer-decider';
import type { TransferRequest } from '../domain/transfer-events';
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

/** What accepting a transfer needs: the Temporal client and task queue, and the transfer log to record the request on. */
export interface AcceptDeps {
  client: Client;
  taskQueue: string;
  transfers: TransferLog;
}

export interface StartOptions {
  /**
   * Ask the server to hand the first workflow task straight back to this process's worker (eager
   * workflow start): only when the client uses the worker's NativeConnection in the same process (the
   * local stack). The server may decline; the saga then starts the usual way (`handle.eagerlyStarted`).
   */
  eager?: boolean;
  /** The transfer's stream as the caller just read it (used for the first attempt; a conflict re-reads). */
  preloaded?: LoadedTransfer;
}

/**
 * Accepts a transfer: records the request with who asked (its actor and correlation id) on the transfer's stream,
 * then starts its saga. The saga executes only what is recorded there (see the saga's ACCEPTED_REQUEST): this is
 * the one way money is asked to move. Idempotent: the client-supplied transfer id is the key. The same id and
 * payload returns the existing saga (running or finished; one recorded but never started, after a crash between
 * the two steps, is started now); the same id with another payload throws TransferConflictError, and nothing is
 * written. A transfer id is never reused for a new saga.
 */
export async function acceptTransfer(deps: AcceptDeps, input: TransferSagaInput, options: StartOptions = {}): Promise<StartedTransfer> {
  const { transferId, fromAccountId, toAccountId, amount, reversalOf } = input;
  const request: TransferRequest = { transferId, fromAccountId, toAccountId, amount, ...(reversalOf ? { reversalOf } : {}) };
  const invalid = checkTransferRequest(request);
  if (invalid && !invalid.ok) throw new TransferRejectedError(invalid.rejection);
  const recorded = await deps.transfers.accept(
    request,
    { actor: input.actor ?? 'unknown', ...(input.correlationId ? { correlationId: input.correlationId } : {}) },
    options.preloaded,
  );
  if (!recorded.ok) {
    if (recorded.rejection.type === 'transfer_conflict') throw new TransferConflictError(transferId, recorded.state.request ?? {});
    throw new TransferRejectedError(recorded.rejection);
  }
  // The saga's input: the request as recorded, with who asked as recorded (a request recorded before by the same
  // client keeps its first actor and correlation id). The memo is for display only: no run reads it.
  const accepted = recorded.state.accepted;
  const sagaInput: TransferSagaInput = {
    ...request,
    ...(accepted?.correlationId ? { correlationId: accepted.correlationId } : {}),
    ...(accepted ? { actor: accepted.actor } : input.actor ? { actor: input.actor } : {}),
  };
  const workflowId = transferWorkflowId(transferId);
  const start = (reuse: 'REJECT_DUPLICATE' | 'ALLOW_DUPLICATE') =>
    deps.client.workflow.start<typeof transferSaga>(TRANSFER_SAGA, {
      workflowId,
      taskQueue: deps.taskQueue,
      args: [sagaInput],
      memo: { ...request, correlationId: sagaInput.correlationId ?? null, actor: sagaInput.actor ?? null },
      typedSearchAttributes: [{ key: TRANSFER_STATUS_KEY, value: 'pending' }],
      workflowIdReusePolicy: reuse,
      workflowIdConflictPolicy: 'FAIL',
      ...(options.eager ? { requestEagerStart: true } : {}),
    });
  try {
    const handle = await start('REJECT_DUPLICATE');
    return { handle, created: true, eagerlyStarted: handle.eagerlyStarted };
  } catch (error) {
    if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
  }
  const existing = deps.client.workflow.getHandle<typeof transferSaga>(workflowId);
  // A run under this id that is closed while the request has no outcome on its stream was no run of this request (one
  // started on Temporal before the request was accepted, and refused), or one that stopped without settling it: start
  // the accepted request's saga now rather than answering with that dead run (the reconciler would, later).
  if (recorded.state.status === 'pending' && (await existing.describe()).status.name !== 'RUNNING') {
    try {
      const handle = await start('ALLOW_DUPLICATE');
      return { handle, created: true, eagerlyStarted: handle.eagerlyStarted };
    } catch (error) {
      if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error; // another request started it first
    }
  }
  return { handle: existing, created: false, eagerlyStarted: false };
}

/** The saga's live status via its query (works while running and after it finished). */
export async function queryTransfer(client: Client, transferId: string): Promise<TransferSagaStatus> {
  return client.workflow.getHandle(transferWorkflowId(transferId)).query(transferStatusQuery);
}
