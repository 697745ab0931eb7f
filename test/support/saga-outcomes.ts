import { randomUUID } from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import { handleAccountCommand } from '../../application/account-commands';
import { acceptTransfer } from '../../temporal/transfer-client';
import type { transferSaga } from '../../workflows/transfer-saga';
import type { TransferSagaStatus } from '../../workflows/transfer-saga-contract';
import type { TransferStack } from './transfer-stack';

/** One saga of each way a transfer ends (shared by the replay test and scripts/record-workflow-histories.ts). */
export const SAGA_OUTCOMES = ['completed', 'failed', 'compensated'] as const;
export type SagaOutcome = (typeof SAGA_OUTCOMES)[number];

export interface FinishedSaga {
  handle: WorkflowHandle<typeof transferSaga>;
  result: TransferSagaStatus;
}

/**
 * Runs a saga that ends in `outcome` on the stack (its worker must be running):
 * completed: funds suffice; failed: insufficient funds (nothing moves); compensated: the target is closed (debit, refund).
 */
export async function runSagaEndingIn(stack: TransferStack, outcome: SagaOutcome): Promise<FinishedSaga> {
  const from = await stack.openAccount(outcome === 'failed' ? 100 : 10_000);
  const to = await stack.openAccount(0);
  if (outcome === 'compensated') {
    const closed = await handleAccountCommand(stack.accounts, to, { type: 'CloseAccount' });
    if (!closed.ok) throw new Error(closed.rejection.message);
  }
  const transferId = randomUUID();
  const { handle } = await acceptTransfer(stack, {
    transferId,
    fromAccountId: from,
    toAccountId: to,
    amount: 1_000,
    correlationId: `${outcome}-${transferId}`,
  });
  const result = await handle.result();
  if (result.status !== outcome)
    throw new Error(`expected a ${outcome} saga, got ${result.status} (${result.failureReason ?? 'no reason'})`);
  return { handle, result };
}
