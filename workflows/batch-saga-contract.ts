/**
 * What clients and the batch saga share: its name, input, query and outcome. Types and constants only, so both the
 * workflow bundle and the client can import it.
 */
import { defineSearchAttributeKey } from '@temporalio/common';
import { defineQuery } from '@temporalio/workflow';
import type { BatchCounts, BatchStatus } from '../domain/transfer-batch';
import type { SagaStep } from './transfer-saga-contract';

export const TRANSFER_BATCH_SAGA = 'transferBatchSaga';
export const batchWorkflowId = (batchId: string): string => `batch-${batchId}`;

/** The saga's input: only the batch id counts (the items come from the batch's stream, as the API recorded them). */
export interface BatchSagaInput {
  batchId: string;
  /** For display (memo, logs); every event's actor comes from the batch's stream. */
  actor?: string;
  correlationId?: string;
}

export type BatchPhase = 'accepted' | 'registering' | 'debiting' | 'crediting' | 'settling' | 'settled';

/** The saga's progress: its phase, items refused so far, and once settled the count of each outcome. */
export interface BatchSagaStatus {
  batchId: string;
  /** The batch's status, or `needs_attention` while a settlement the rules refused waits for a person (`retrySettlement`). */
  status: BatchStatus | 'needs_attention';
  phase: BatchPhase;
  atomic?: boolean;
  itemCount?: number;
  /** Items refused so far (registration, debits, credits). */
  refused: number;
  counts: BatchCounts & { pending: number };
  failureReason?: string;
  failureMessage?: string;
  steps: SagaStep[];
}

export const batchStatusQuery = defineQuery<BatchSagaStatus>('batchStatus');

/** The counts of a batch's items by outcome, as search attributes (kept up to date by the saga). */
export const BATCH_COMPLETED_SEARCH_ATTRIBUTE = 'BatchItemsCompleted';
export const BATCH_FAILED_SEARCH_ATTRIBUTE = 'BatchItemsFailed';
export const BATCH_COMPENSATED_SEARCH_ATTRIBUTE = 'BatchItemsCompensated';
export const BATCH_COMPLETED_KEY = defineSearchAttributeKey(BATCH_COMPLETED_SEARCH_ATTRIBUTE, 'INT');
export const BATCH_FAILED_KEY = defineSearchAttributeKey(BATCH_FAILED_SEARCH_ATTRIBUTE, 'INT');
export const BATCH_COMPENSATED_KEY = defineSearchAttributeKey(BATCH_COMPENSATED_SEARCH_ATTRIBUTE, 'INT');
