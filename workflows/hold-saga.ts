import {
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { HoldActivities, HoldDecision } from '../activities/hold-activities';
import type { TransferActivities } from '../activities/transfer-activities';
import { isRejectionType } from '../domain/rejection';
import type { TransferFailureReason } from '../domain/transfer-events';
import {
  captureHoldUpdate,
  holdStatusQuery,
  holdWorkflowId,
  voidHoldUpdate,
  type HoldSagaInput,
  type HoldSagaStatus,
} from './hold-saga-contract';
import type { SagaStep } from './transfer-saga-contract';
import { localThenRemote } from './local-then-remote';

/**
 * The hold saga (`hold-<id>`): reserve on the source, then wait, durably, for a capture, a void or the expiry (a timer in
 * this workflow's history, visible in the Temporal UI, that survives restarts of every process), then settle:
 * - capture: the reservation ends and the captured part is debited (one append on the source), then the transfer of the
 *   hold's id credits the target and completes, exactly as a transfer does; when the credit cannot land, the
 *   transfer's own settlement gives the money back to the source -> `compensated`;
 * - void or expiry: the reservation ends, nothing moves.
 * What happens is decided on the hold's stream, never here: the API records a capture or a void there, then wakes
 * this saga with an Update (which waits for the settlement and answers the hold's state); the timer records the
 * expiry there, and a capture recorded first wins. A new workflow type: no existing history changes.
 * Deterministic: no I/O, clocks (Date is the workflow's) or randomness; every effect lives in an activity.
 */

const hold = proxyActivities<HoldActivities>({
  startToCloseTimeout: '15s',
  retry: { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '10s', maximumAttempts: 10 },
});

/** Decisions, releases and bookkeeping: retried until they succeed (a release is the reservation's compensation). */
const mustSucceed = proxyActivities<HoldActivities & TransferActivities>({
  startToCloseTimeout: '15s',
  retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '30s' },
});

/**
 * The steps as local activities first (they run in the worker that runs the workflow: no activity task round trip
 * through the server, so a capture answers in one workflow task when all goes well), each with a short local budget;
 * an infrastructure failure past it hands the step to the remote activity with its own retry policy (as the
 * transfer saga's legs do). Business rejections and cancels are never handed on.
 */
const fast = proxyLocalActivities<HoldActivities & TransferActivities>({
  startToCloseTimeout: '10s',
  retry: { initialInterval: '50ms', backoffCoefficient: 2, maximumInterval: '1s', maximumAttempts: 3 },
});

/** The capture's credit, as a transfer's: retried until it succeeds or a business rule refuses it. */
const creditUntilDecided = proxyActivities<TransferActivities>({
  startToCloseTimeout: '15s',
  retry: { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '10s' },
});

function failureOf(error: unknown): { reason: TransferFailureReason; message: string } {
  if (isCancellation(error)) return { reason: 'cancelled', message: 'The saga was cancelled' };
  const cause = error instanceof ActivityFailure ? error.cause : error;
  if (cause instanceof ApplicationFailure && cause.nonRetryable && isRejectionType(cause.type))
    return { reason: cause.type, message: cause.message };
  return { reason: 'infrastructure', message: cause instanceof Error ? cause.message : String(cause) };
}

export async function holdSaga(input: HoldSagaInput): Promise<HoldSagaStatus> {
  const result = await runHold(input);
  // Every capture or void Update answers before the run closes (an Update still running when it closes is aborted).
  await CancellationScope.nonCancellable(() => condition(allHandlersFinished));
  return result;
}

async function runHold(input: HoldSagaInput): Promise<HoldSagaStatus> {
  const state: HoldSagaStatus = { holdId: input.holdId, status: 'pending', steps: [] };
  let wake = false;
  let finished = false;
  setHandler(holdStatusQuery, () => state);
  // The API recorded a capture or a void on the hold's stream: look there, and answer once the hold is settled.
  const settledAnswer = async (): Promise<HoldSagaStatus> => {
    wake = true;
    await condition(() => finished);
    return state;
  };
  setHandler(captureHoldUpdate, settledAnswer);
  setHandler(voidHoldUpdate, settledAnswer);

  const step = async <T>(name: string, run: () => Promise<T>): Promise<T> => {
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
  const end = (status: HoldSagaStatus['status']) => {
    state.status = status;
    finished = true;
    return state;
  };

  if (workflowInfo().workflowId !== holdWorkflowId(input.holdId)) {
    state.failureReason = 'unauthorized';
    state.failureMessage = `a saga of hold ${input.holdId} runs only as workflow ${holdWorkflowId(input.holdId)}`;
    return end('failed');
  }
  const accepted = await step('accepted hold', () =>
    localThenRemote(
      () => fast.acceptedHold({ holdId: input.holdId }),
      () => mustSucceed.acceptedHold({ holdId: input.holdId }),
    ),
  );
  if (!accepted) {
    state.failureReason = 'unauthorized';
    state.failureMessage = `no hold accepted by the API is recorded for ${input.holdId}`;
    return end('failed');
  }
  state.expiresAt = accepted.expiresAt;
  if (accepted.settled) {
    if (accepted.failureReason) state.failureReason = accepted.failureReason;
    return end(accepted.status);
  }
  if (accepted.status === 'pending') {
    const placed = await step('reserve on source', () =>
      localThenRemote(
        () => fast.placeHold({ holdId: input.holdId }),
        () => mustSucceed.placeHold({ holdId: input.holdId }),
      ),
    );
    state.status = placed.status;
    if (placed.status === 'failed') {
      if (placed.failureReason) state.failureReason = placed.failureReason;
      return end('failed');
    }
  } else state.status = accepted.status;

  // Wait for a capture, a void or the timer; an operator's cancel voids the hold (unless a capture was recorded first).
  let decision: HoldDecision = { kind: 'none' };
  let timerFired = false;
  let cancelled = false;
  const expiresAt = Date.parse(accepted.expiresAt);
  for (;;) {
    // Cleared before looking, not after: an Update that arrives while the look runs wakes the wait below at once.
    wake = false;
    const look = { holdId: input.holdId, timerFired, cancelled };
    decision = await CancellationScope.nonCancellable(() =>
      step(timerFired ? 'expiry' : cancelled ? 'cancel' : 'look for a decision', () =>
        localThenRemote(
          () => fast.nextDecision(look),
          () => mustSucceed.nextDecision(look),
        ),
      ),
    );
    if (decision.kind !== 'none') break;
    const left = expiresAt - new Date().getTime(); // the workflow clock (deterministic on replay)
    try {
      timerFired = left <= 0 || !(await condition(() => wake, left));
    } catch (error) {
      if (!isCancellation(error)) throw error;
      cancelled = true;
    }
  }

  return CancellationScope.nonCancellable(async () => {
    switch (decision.kind) {
      case 'settled': {
        const now = await mustSucceed.acceptedHold({ holdId: input.holdId });
        return end(now?.status ?? 'failed');
      }
      case 'void':
      case 'expire': {
        const reason = decision.kind === 'void' ? 'voided' : 'expired';
        const released = await step(`release (${reason})`, () =>
          localThenRemote(
            () => fast.releaseHold({ holdId: input.holdId, reason }),
            () => mustSucceed.releaseHold({ holdId: input.holdId, reason }),
          ),
        );
        return end(released.status);
      }
      case 'capture': {
        state.status = 'capturing';
        const transfer = {
          transferId: input.holdId,
          fromAccountId: accepted.fromAccountId,
          toAccountId: accepted.toAccountId,
          amount: decision.amount,
        };
        let outcome: 'completed' | 'failed' | 'compensated';
        let failure: { reason: TransferFailureReason; message: string } | undefined;
        let creditMayHaveRun = false;
        try {
          const { currency } = await step('capture on source', () =>
            localThenRemote(
              () => fast.captureHold({ holdId: input.holdId }),
              () => hold.captureHold({ holdId: input.holdId }),
            ),
          );
          creditMayHaveRun = true;
          await step('credit target and complete', () =>
            localThenRemote(
              () => fast.creditAndComplete({ ...transfer, currency }),
              () => creditUntilDecided.creditAndComplete({ ...transfer, currency }),
            ),
          );
          outcome = 'completed';
        } catch (error) {
          failure = failureOf(error);
          // The transfer's own settlement: the credit landed (completed), or it is voided on the target and the source
          // refunded (compensated); a capture that never debited releases nothing here (the release below does).
          try {
            const settled = await step(`settle after ${failure.reason}`, () =>
              mustSucceed.settleTransfer({ ...transfer, ...failure!, creditMayHaveRun }),
            );
            outcome = settled.outcome;
          } catch {
            outcome = 'failed'; // refused: the transfer was never recorded (the capture stopped before it), so nothing was debited
          }
          if (outcome === 'failed') {
            // Nothing was debited: the reservation is still there; give it back.
            await step('release (capture failed)', () => mustSucceed.releaseHold({ holdId: input.holdId, reason: 'voided' }));
          }
        }
        const outcomeInput = { holdId: input.holdId, outcome, ...(failure ?? {}) };
        const recorded = await step(`record ${outcome}`, () =>
          localThenRemote(
            () => fast.recordCaptureOutcome(outcomeInput),
            () => mustSucceed.recordCaptureOutcome(outcomeInput),
          ),
        );
        if (failure && outcome !== 'completed') {
          state.failureReason = failure.reason;
          state.failureMessage = failure.message;
        }
        return end(recorded.status);
      }
    }
  });
}
