/**
 * What clients and the hold saga share: its name, input, query, updates and outcome. Types and constants only, so both
 * the workflow bundle and the client can import it.
 */
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { HoldStatus } from '../domain/hold';
import type { SagaStep } from './transfer-saga-contract';

export const HOLD_SAGA = 'holdSaga';
export const holdWorkflowId = (holdId: string): string => `hold-${holdId}`;

/** The saga's input: only the hold id counts (the request comes from the hold's stream, as the API recorded it). */
export interface HoldSagaInput {
  holdId: string;
  /** For display (memo, logs); every event's actor comes from the hold's stream. */
  actor?: string;
  correlationId?: string;
}

export interface HoldSagaStatus {
  holdId: string;
  status: HoldStatus;
  /** When an open hold expires by itself. ISO-8601. */
  expiresAt?: string;
  failureReason?: string;
  failureMessage?: string;
  steps: SagaStep[];
}

export const holdStatusQuery = defineQuery<HoldSagaStatus>('holdStatus');
/**
 * Updates the API sends after recording a capture or a void on the hold's stream: the saga looks there (an update
 * carries no amount and decides nothing: one sent by anyone else finds nothing recorded and changes nothing) and
 * answers with the hold's state once it is settled.
 */
export const captureHoldUpdate = defineUpdate<HoldSagaStatus>('captureHold');
export const voidHoldUpdate = defineUpdate<HoldSagaStatus>('voidHold');
