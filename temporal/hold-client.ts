import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import type { HoldLog, LoadedHold } from '../application/hold-log';
import type { TransferLog } from '../application/transfer-log';
import { checkHoldRequest, type HoldRequest, type HoldState } from '../domain/hold';
import type { Rejection } from '../domain/rejection';
import type { AcceptedBy } from '../domain/transfer-events';
import { sameRequest } from '../domain/transfer-decider';
import type { holdSaga } from '../workflows/hold-saga';
import {
  captureHoldUpdate,
  HOLD_SAGA,
  holdStatusQuery,
  holdWorkflowId,
  voidHoldUpdate,
  type HoldSagaStatus,
} from '../workflows/hold-saga-contract';
import type { SagaStep } from '../workflows/transfer-saga-contract';

/** A hold request, capture or void the hold's stream refused (nothing written): its rejection says why. */
export class HoldRejectedError extends Error {
  constructor(readonly rejection: Rejection) {
    super(rejection.message);
    this.name = 'HoldRejectedError';
  }
}

export interface HoldDeps {
  client: Client;
  taskQueue: string;
  holds: HoldLog;
  transfers: TransferLog;
}

export interface AcceptedHold {
  handle: WorkflowHandle<typeof holdSaga>;
  created: boolean;
  state: HoldState;
}

/**
 * Accepts a hold: records the request with who asked on the hold's stream, then starts its saga (`hold-<id>`), which
 * acts only on what is recorded there. Idempotent by hold id: the same request answers the existing hold (a saga never
 * started after a crash between the two steps is started now); another payload is `hold_conflict`. The hold's id is
 * also the id of the transfer its capture makes: an id a transfer already has is refused.
 */
export async function acceptHold(
  deps: HoldDeps,
  request: HoldRequest,
  accepted: AcceptedBy,
  preloaded?: LoadedHold,
): Promise<AcceptedHold> {
  const invalid = checkHoldRequest(request);
  if (invalid && !invalid.ok) throw new HoldRejectedError(invalid.rejection);
  const taken = await deps.transfers.load(request.holdId);
  if (taken.state.request && !(preloaded?.state.request ?? (await deps.holds.load(request.holdId)).state.request)) {
    throw new HoldRejectedError({ type: 'hold_conflict', message: `${request.holdId} is the id of a transfer` });
  }
  const recorded = await deps.holds.acceptRequest(request, accepted, preloaded);
  if (!recorded.ok) throw new HoldRejectedError(recorded.rejection);
  const by = recorded.state.accepted ?? accepted;
  const workflowId = holdWorkflowId(request.holdId);
  const start = (reuse: 'REJECT_DUPLICATE' | 'ALLOW_DUPLICATE') =>
    deps.client.workflow.start<typeof holdSaga>(HOLD_SAGA, {
      workflowId,
      taskQueue: deps.taskQueue,
      args: [{ holdId: request.holdId, actor: by.actor, ...(by.correlationId ? { correlationId: by.correlationId } : {}) }],
      memo: { ...request, actor: by.actor, correlationId: by.correlationId ?? null },
      workflowIdReusePolicy: reuse,
      workflowIdConflictPolicy: 'FAIL',
    });
  try {
    return { handle: await start('REJECT_DUPLICATE'), created: true, state: recorded.state };
  } catch (error) {
    if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
  }
  const existing = deps.client.workflow.getHandle<typeof holdSaga>(workflowId);
  // A closed run while the hold is not settled on its stream was no run of it (started by hand and refused): start it.
  if (!recorded.state.settled && (await existing.describe()).status.name !== 'RUNNING') {
    try {
      return { handle: await start('ALLOW_DUPLICATE'), created: true, state: recorded.state };
    } catch (error) {
      if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
    }
  }
  return { handle: existing, created: false, state: recorded.state };
}

/**
 * Records a capture (all that is held when `amount` is undefined) on the hold's stream, and the transfer of the hold's
 * id that it makes, then wakes the saga with an Update and returns its answer once the capture settled (captured, or
 * compensated when the target could not be credited). A repeat answers what the first answered. Refused (nothing
 * written): `hold_expired` (409 /problems/hold-expired), `hold_finished`, `hold_not_placed`, `capture_exceeds_hold`.
 */
export async function captureHold(
  deps: HoldDeps,
  holdId: string,
  amount: number | undefined,
  accepted: AcceptedBy,
): Promise<HoldSagaStatus> {
  const { state: before } = await deps.holds.load(holdId);
  const request = before.request;
  if (!request) throw new HoldRejectedError({ type: 'hold_not_found', message: `No hold ${holdId}` });
  const recorded = await deps.holds.accept(
    holdId,
    { type: 'RequestCapture', ...(amount !== undefined ? { amount } : {}), accepted },
    accepted,
  );
  if (!recorded.ok) throw new HoldRejectedError(recorded.rejection);
  const capture = recorded.state.capture!;
  const transfer = { transferId: holdId, fromAccountId: request.fromAccountId, toAccountId: request.toAccountId, amount: capture.amount };
  const existing = (await deps.transfers.load(holdId)).state.request;
  if (!existing || sameRequest(existing, transfer)) await deps.transfers.accept(transfer, { ...capture.accepted, holdId });
  return wake(deps, holdId, 'capture');
}

/** Records a void on the hold's stream, wakes the saga and returns its answer once the reservation is released. */
export async function voidHold(deps: HoldDeps, holdId: string, accepted: AcceptedBy): Promise<HoldSagaStatus> {
  const recorded = await deps.holds.accept(holdId, { type: 'RequestVoid', accepted }, accepted);
  if (!recorded.ok) throw new HoldRejectedError(recorded.rejection);
  return wake(deps, holdId, 'void');
}

async function wake(deps: HoldDeps, holdId: string, what: 'capture' | 'void'): Promise<HoldSagaStatus> {
  const handle = deps.client.workflow.getHandle<typeof holdSaga>(holdWorkflowId(holdId));
  try {
    return await handle.executeUpdate(what === 'capture' ? captureHoldUpdate : voidHoldUpdate);
  } catch (error) {
    // The saga already finished (a repeat after it settled): its result is the answer.
    if (
      error instanceof WorkflowUpdateFailedError ||
      error instanceof WorkflowNotFoundError ||
      (error instanceof Error && /completed|not found|closing workflow/i.test(error.message))
    )
      return handle.result();
    throw error;
  }
}

/** How long GET /holds/{id} waits for the saga's steps before answering without them. */
const STEPS_DEADLINE_MS = 3_000;

/**
 * The saga's steps with their times: best effort (a saga whose history is gone, or no worker to answer: none). A settled
 * hold's saga has ended (or is ending): its result says it without a worker replaying it for a query.
 */
export async function holdSagaSteps(client: Client, holdId: string, settled: boolean): Promise<SagaStep[]> {
  const handle = client.workflow.getHandle<typeof holdSaga>(holdWorkflowId(holdId));
  const asks: (() => Promise<HoldSagaStatus>)[] = settled
    ? [() => handle.result(), () => handle.query(holdStatusQuery)]
    : [() => handle.query(holdStatusQuery)];
  for (const ask of asks) {
    try {
      return (await client.withDeadline(Date.now() + STEPS_DEADLINE_MS, ask)).steps;
    } catch {
      // gone, terminated, or not answering in time: the hold's stream is the truth anyway
    }
  }
  return [];
}
