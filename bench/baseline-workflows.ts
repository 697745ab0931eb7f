/**
 * Baseline workflows for `npm run bench` only (never in the service's bundle): the saga's shapes
 * with nothing in them, so the bench can compare ours against Temporal's own floor of each shape.
 */
import { proxyActivities, upsertSearchAttributes } from '@temporalio/workflow';
import type { TransferActivities } from '../activities/transfer-activities';
import { TRANSFER_STATUS_KEY, type TransferSagaInput } from '../workflows/transfer-saga-contract';

const remote = proxyActivities<TransferActivities>({ startToCloseTimeout: '15s' });

/** The shape before local legs (v3): two remote activities and the status updates. */
export async function twoRemoteLegs(input: TransferSagaInput): Promise<void> {
  upsertSearchAttributes([{ key: TRANSFER_STATUS_KEY, value: 'pending' }]);
  const { currency } = await remote.requestAndDebit(input);
  await remote.creditAndComplete({ ...input, currency });
  upsertSearchAttributes([{ key: TRANSFER_STATUS_KEY, value: 'completed' }]);
}
