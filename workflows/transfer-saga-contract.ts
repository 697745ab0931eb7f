/**
 * What clients and the saga share: its name, input, query and outcome. Types and constants only,
 * so both the workflow bundle and the client can import it.
 */
import { defineSearchAttributeKey } from '@temporalio/common';
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { TransferRequest, TransferStatus } from '../domain/transfer-events';

export const TRANSFER_SAGA = 'transferSaga';
export const transferWorkflowId = (transferId: string): string => `transfer-${transferId}`;
/** The actor of what no request caused: the reconciler's repairs. */
export const SYSTEM_ACTOR = 'system';

/** The saga's input, and every leg's: the transfer request and who asked (flows into every event's metadata). */
export interface TransferSagaInput extends TransferRequest {
  correlationId?: string;
  /** Who asked: the API key id of the accepted request (its legs take it from the transfer's stream, never from here). */
  actor?: string;
  /**
   * Set by the saga's code (never by a starter: a new run overwrites its input with the accepted request) for sagas
   * started by a release before the API recorded requests: their legs may record the request from the input.
   */
  startedBeforeAcceptance?: boolean;
}

export interface SagaStep {
  name: string;
  status: 'started' | 'done' | 'failed' | 'skipped';
  at: string;
  detail?: string;
}

/**
 * The saga's status: the transfer's, or `needs_attention` while a saga that could not settle its
 * transfer waits for a person (fix the cause, then send `retrySettlement`).
 */
export type TransferSagaState = TransferStatus | 'needs_attention';

export interface TransferSagaStatus {
  transferId: string;
  status: TransferSagaState;
  failureReason?: string;
  failureMessage?: string;
  steps: SagaStep[];
}

export const transferStatusQuery = defineQuery<TransferSagaStatus>('transferStatus');
/** Asks a saga in `needs_attention` to try its settlement again (`temporal workflow signal --name retrySettlement`). */
export const retrySettlementSignal = defineSignal('retrySettlement');
export const RETRY_SETTLEMENT_SIGNAL = 'retrySettlement';
export const TRANSFER_STATUS_SEARCH_ATTRIBUTE = 'TransferStatus';
/** The saga's status as a search attribute (set at start, kept up to date by the saga): the one definition. */
export const TRANSFER_STATUS_KEY = defineSearchAttributeKey(TRANSFER_STATUS_SEARCH_ATTRIBUTE, 'KEYWORD');
