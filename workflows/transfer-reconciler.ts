import { proxyActivities } from '@temporalio/workflow';
import type { ReconcilerActivities } from '../temporal/transfer-reconciler';

const { reconcileTransfers } = proxyActivities<ReconcilerActivities>({
  startToCloseTimeout: '5m',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 5 },
});

/** One pass of the reconciler (run by a Temporal schedule): see temporal/transfer-reconciler.ts. */
export async function transferReconciler(): Promise<{ examined: number; repaired: number }> {
  return reconcileTransfers();
}
