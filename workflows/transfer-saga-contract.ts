/**
 * What clients and the saga share: its name, input, query and outcome. Types and constants only,
 * so both the workflow bundle and the client can import it.
 */
import { defineQuery } from '@temporalio/workflow';
import type { TransferStatus } from '../domain/transfer-events';

export const TRANSFER_SAGA = 'transferSaga';
export const transferWorkflowId = (transferId: string): string => `transfer-${transferId}`;

export interface TransferSagaInput {
  transferId: string;
  fromAccountId: string;
  toAccountId: string;
  amount: number;
  correlationId?: string;
}

export interface SagaStep {
  name: string;
  status: 'started' | 'done' | 'failed' | 'skipped';
  at: string;
  detail?: string;
}

export interface TransferSagaStatus {
  transferId: string;
  status: TransferStatus;
  failureReason?: string;
  failureMessage?: string;
  steps: SagaStep[];
}

export const transferStatusQuery = defineQuery<TransferSagaStatus>('transferStatus');
export const TRANSFER_STATUS_SEARCH_ATTRIBUTE = 'TransferStatus';
