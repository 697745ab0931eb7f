import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { TransferActivities } from '../activities/transfer-activities';
import { localThenRemote } from './local-then-remote';
import { isRejectionType } from '../domain/rejection';
import type { TransferFailureReason } from '../domain/transfer-events';
import {
  retrySettlementSignal,
  TRANSFER_STATUS_KEY,
  transferStatusQuery,
  transferWorkflowId,
  type SagaStep,
  type TransferSagaInput,
  type TransferSagaState,
  type TransferSagaStatus,
} from './transfer-saga-contract';

/**
 * The transfer saga: record the request, debit the source, credit the target, record completion.
 * - Debit rejected -> `failed`, nothing moved.
 * - Credit rejected by a business rule -> refund the source -> `compensated`. (Infrastructure
 *   errors on the credit are retried without limit: see creditUntilDecided.)
 * The refund is registered *before* the debit runs: an activity can land its effect and still
 * report failure (lost acknowledgement, worker crash), so compensation must not depend on having
 * seen the debit succeed. The refund is a no-op when the source holds no debit for this transfer.
 * Compensations run in a non-cancellable scope and retry until they succeed.
 * Deterministic: no I/O, clocks or randomness here; every effect lives in an activity.
 */

const legs = proxyActivities<TransferActivities>({
  startToCloseTimeout: '15s',
  retry: { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '10s', maximumAttempts: 10 },
});

/**
 * The credit, once the debit landed: retried until it succeeds or is rejected by a business rule.
 * Giving up on infrastructure errors would refund a source whose transfer may already have been
 * credited (an append that landed and reported failure): that would create money. A credit that
 * keeps failing for infrastructure reasons keeps its saga pending (visible in the Temporal UI) until
 * the store is back.
 */
const creditUntilDecided = proxyActivities<TransferActivities>({
  startToCloseTimeout: '15s',
  retry: { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '10s' },
});

/** Bookkeeping and compensation: retried until they succeed (no attempt limit). */
const mustSucceed = proxyActivities<TransferActivities>({
  startToCloseTimeout: '15s',
  retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '30s' },
});

/**
 * The legs as local activities: they run in the worker that runs the workflow, with no activity task
 * round trip through the server (a transfer in one workflow task when all goes well). Each leg gets a
 * short local budget; an infrastructure failure past it hands the leg to the remote activity with
 * the leg's own retry policy (server-side retries add no history events, so a credit retried for an
 * hour keeps a small history). Business rejections and cancels are never retried.
 */
const fast = proxyLocalActivities<TransferActivities>({
  startToCloseTimeout: '10s',
  retry: { initialInterval: '50ms', backoffCoefficient: 2, maximumInterval: '1s', maximumAttempts: 3 },
});

/** Patch id of the merged legs (see workflow versioning: old histories keep replaying). */
export const MERGED_LEGS = 'merged-legs-2026-11';
/**
 * Patch id of the safe settlement: cancels are settled (void the credit on the target, then refund,
 * or complete when the credit landed), and a settlement that cannot finish waits for a person.
 */
export const SAFE_SETTLEMENT = 'safe-settlement-2026-11';
/** Patch id of the local-activity legs (local first, the remote activity as the fallback). */
export const LOCAL_LEGS = 'local-legs-2026-11';
/**
 * Patch id of the accepted request: a run executes only the request the API recorded on the transfer's stream (never
 * its own input), and only as the saga of that transfer (workflow id `transfer-<transferId>`); otherwise it moves and
 * writes nothing and ends `failed` with reason `unauthorized`.
 */
export const ACCEPTED_REQUEST = 'accepted-request-2026-12';

/** The rejection type of a business failure, or 'infrastructure' for anything else (retries exhausted, timeouts). */
function failureReason(error: unknown): { reason: TransferFailureReason; message: string } {
  const cause = error instanceof ActivityFailure ? error.cause : error;
  if (cause instanceof ApplicationFailure && cause.nonRetryable && isRejectionType(cause.type))
    return { reason: cause.type, message: cause.message };
  return { reason: 'infrastructure', message: cause instanceof Error ? cause.message : String(cause) };
}

/** As failureReason, and an operator's cancel is `cancelled` (the released shapes called it infrastructure). */
function settlementReason(error: unknown): { reason: TransferFailureReason; message: string } {
  if (isCancellation(error)) return { reason: 'cancelled', message: 'The saga was cancelled' };
  return failureReason(error);
}

export async function transferSaga(input: TransferSagaInput): Promise<TransferSagaStatus> {
  const state: TransferSagaStatus = { transferId: input.transferId, status: 'pending', steps: [] };
  setHandler(transferStatusQuery, () => state);

  const setStatus = (status: TransferSagaState) => {
    state.status = status;
    upsertSearchAttributes([{ key: TRANSFER_STATUS_KEY, value: status }]);
  };
  const step = async <T>(name: string, run: () => Promise<T>): Promise<T> => {
    const entry: SagaStep = { name, status: 'started', at: new Date().toISOString() };
    state.steps.push(entry);
    try {
      const result = await run();
      entry.status = 'done';
      return result;
    } catch (error) {
      entry.status = 'failed';
      entry.detail = failureReason(error).message;
      throw error;
    } finally {
      entry.at = new Date().toISOString();
    }
  };
  setStatus('pending');

  if (patched(ACCEPTED_REQUEST)) {
    // Only the request the API accepted moves money: whoever started this run, and with whatever input.
    const refuse = async (why: string) => {
      state.failureReason = 'unauthorized';
      state.failureMessage = why;
      setStatus('failed');
      return state;
    };
    if (workflowInfo().workflowId !== transferWorkflowId(input.transferId)) {
      const why = `a saga of transfer ${input.transferId} runs only as workflow ${transferWorkflowId(input.transferId)}`;
      await step('refuse', () => mustSucceed.reportUnauthorized({ transferId: input.transferId, why }));
      return refuse(why);
    }
    const acceptedInput = { transferId: input.transferId, actor: input.actor, correlationId: input.correlationId };
    const request = await step('accepted request', () =>
      localThenRemote(
        () => fast.acceptedRequest(acceptedInput),
        () => mustSucceed.acceptedRequest(acceptedInput),
      ),
    );
    if (!request) return refuse(`no request accepted by the API is recorded for transfer ${input.transferId}`);
    const { outcome, failureReason: recordedReason, ...accepted } = request;
    if (outcome) {
      // The transfer already finished on its stream (a run started again after its end): it takes no step, it reports.
      if (recordedReason) state.failureReason = recordedReason;
      setStatus(outcome);
      return state;
    }
    input = accepted;
  } else {
    // A saga started by an earlier release (its history has no ACCEPTED_REQUEST marker: no new run can take this
    // branch). That release's API started it without recording the request first; its legs record it from the input,
    // as they did then, so a saga in flight across the upgrade finishes instead of being refused.
    input = { ...input, startedBeforeAcceptance: true };
  }

  // Sagas started before the merged legs (request+debit, credit+complete: two Temporal round
  // trips fewer) replay the original four-activity path; new sagas take the merged one.
  const merged = patched(MERGED_LEGS);
  // Sagas started before the safe settlement replay their own compensation path below.
  if (merged && patched(SAFE_SETTLEMENT)) return settle(input, state, setStatus, step, patched(LOCAL_LEGS));

  const compensations: (() => Promise<{ refunded: number }>)[] = [];
  let stage: 'request' | 'debit' | 'credit' = 'request';
  try {
    if (!merged) await step('request', () => legs.requestTransfer(input));
    stage = 'debit';
    // Registered before the debit runs: a debit can land and still report failure.
    compensations.unshift(() => mustSucceed.refundSource(input));
    const { currency } = merged
      ? await step('request and debit source', () => legs.requestAndDebit(input))
      : await step('debit source', () => legs.debitSource(input));
    stage = 'credit';
    if (merged) await step('credit target and complete', () => creditUntilDecided.creditAndComplete({ ...input, currency }));
    else await step('credit target', () => creditUntilDecided.creditTarget({ ...input, currency }));
  } catch (error) {
    const { reason, message } = failureReason(error);
    state.failureReason = reason;
    state.failureMessage = message;
    if (stage === 'request' || reason === 'transfer_conflict') {
      // Not recorded (the id exists with another payload): fail without touching any stream.
      setStatus('failed');
      return state;
    }
    let refunded = 0;
    await CancellationScope.nonCancellable(async () => {
      for (const compensate of compensations) refunded += (await step('refund source', compensate)).refunded;
    });
    // A debit that was rejected moved nothing: failed. Money that moved and came back: compensated.
    const outcome = stage === 'debit' && refunded === 0 ? 'failed' : 'compensated';
    await CancellationScope.nonCancellable(() =>
      step(`record ${outcome}`, () =>
        outcome === 'failed'
          ? mustSucceed.failTransfer({ ...input, reason, message })
          : mustSucceed.compensateTransfer({ ...input, reason, message }),
      ),
    );
    setStatus(outcome);
    return state;
  }

  if (!merged) await step('record completed', () => mustSucceed.completeTransfer(input));
  setStatus('completed');
  return state;
}

type Step = <T>(name: string, run: () => Promise<T>) => Promise<T>;

/**
 * The saga from SAFE_SETTLEMENT on. The forward path: request and debit, then credit and complete.
 * When it stops (a business rejection, retries exhausted, or an operator's cancel at any stage), the
 * settlement decides the outcome from what landed, never from what the saga believes it saw:
 * - stopped before the credit was attempted: the source gets back what landed (a debit not landed is
 *   voided on the source so a late attempt cannot land) -> `failed` (nothing moved) or `compensated`;
 * - stopped once the credit was attempted: the target decides first. Its credit landed -> `completed`
 *   (a cancel cannot undo money that reached the target: reverse it with a new transfer); otherwise
 *   the transfer is voided on the target (no late credit can land) and the source refunded -> `compensated`.
 * The settlement is not cancellable and retries until it succeeds. When it is refused (the transfer
 * stream already ended otherwise, a refund that cannot land), the saga does not end: its status is
 * `needs_attention` (search attribute, metric, log) and it waits for `retrySettlement`.
 */
async function settle(
  input: TransferSagaInput,
  state: TransferSagaStatus,
  setStatus: (status: TransferSagaState) => void,
  step: Step,
  localLegs: boolean,
): Promise<TransferSagaStatus> {
  const local = <T>(run: () => Promise<T>) => (localLegs ? run : undefined);
  let retryRequested = false;
  setHandler(retrySettlementSignal, () => {
    retryRequested = true;
  });
  let stage: 'debit' | 'credit' = 'debit';
  try {
    const { currency } = await step('request and debit source', () =>
      localThenRemote(
        local(() => fast.requestAndDebit(input)),
        () => legs.requestAndDebit(input),
      ),
    );
    stage = 'credit';
    const credit = { ...input, currency };
    await step('credit target and complete', () =>
      localThenRemote(
        local(() => fast.creditAndComplete(credit)),
        () => creditUntilDecided.creditAndComplete(credit),
      ),
    );
    setStatus('completed');
    return state;
  } catch (error) {
    const { reason, message } = settlementReason(error);
    state.failureReason = reason;
    state.failureMessage = message;
    if (stage === 'debit' && (reason === 'transfer_conflict' || reason === 'unauthorized')) {
      // The id is recorded with another payload, or no accepted request is recorded: that transfer is not ours to touch.
      setStatus('failed');
      return state;
    }
    return CancellationScope.nonCancellable(async () => {
      for (;;) {
        try {
          const settlement = { ...input, reason, message, creditMayHaveRun: stage === 'credit' };
          const settled = await step(`settle after ${reason}`, () =>
            localThenRemote(
              local(() => fast.settleTransfer(settlement)),
              () => mustSucceed.settleTransfer(settlement),
            ),
          );
          if (settled.outcome === 'completed') {
            // The credit had landed: the transfer completed despite the stop.
            delete state.failureReason;
            delete state.failureMessage;
          }
          setStatus(settled.outcome);
          return state;
        } catch (settleError) {
          const cause = settleError instanceof ActivityFailure ? settleError.cause : settleError;
          const problem = {
            reason: cause instanceof ApplicationFailure && cause.type ? cause.type : 'infrastructure',
            message: cause instanceof Error ? cause.message : String(cause),
          };
          state.failureMessage = `${message}; settlement refused: ${problem.message}`;
          setStatus('needs_attention');
          await step('report needs attention', () =>
            mustSucceed.reportNeedsAttention({ ...input, reason: problem.reason, message: problem.message }),
          );
          retryRequested = false;
          await condition(() => retryRequested);
        }
      }
    });
  }
}
