import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  patched,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import { defineSearchAttributeKey } from '@temporalio/common';
import type { TransferActivities } from '../activities/transfer-activities';
import type { TransferStatus } from '../domain/transfer-events';
import {
  TRANSFER_STATUS_SEARCH_ATTRIBUTE,
  transferStatusQuery,
  type SagaStep,
  type TransferSagaInput,
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

/** Patch id of the merged legs (see workflow versioning: old histories keep replaying). */
export const MERGED_LEGS = 'merged-legs-2026-11';

const statusKey = defineSearchAttributeKey(TRANSFER_STATUS_SEARCH_ATTRIBUTE, 'KEYWORD');

/** The rejection type of a business failure, or 'infrastructure' for anything else (retries exhausted, timeouts). */
function failureReason(error: unknown): { reason: string; message: string } {
  const cause = error instanceof ActivityFailure ? error.cause : error;
  if (cause instanceof ApplicationFailure && cause.nonRetryable && cause.type) return { reason: cause.type, message: cause.message };
  return { reason: 'infrastructure', message: cause instanceof Error ? cause.message : String(cause) };
}

export async function transferSaga(input: TransferSagaInput): Promise<TransferSagaStatus> {
  const state: TransferSagaStatus = { transferId: input.transferId, status: 'pending', steps: [] };
  setHandler(transferStatusQuery, () => state);

  const setStatus = (status: TransferStatus) => {
    state.status = status;
    upsertSearchAttributes([{ key: statusKey, value: status }]);
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

  // Sagas started before the merged legs (request+debit, credit+complete: two Temporal round
  // trips fewer) replay the original four-activity path; new sagas take the merged one.
  const merged = patched(MERGED_LEGS);

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
          ? mustSucceed.failTransfer({ ...input, reason: reason as never, message })
          : mustSucceed.compensateTransfer({ ...input, reason: reason as never, message }),
      ),
    );
    setStatus(outcome);
    return state;
  }

  if (!merged) await step('record completed', () => mustSucceed.completeTransfer(input));
  setStatus('completed');
  return state;
}
