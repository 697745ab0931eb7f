import { accountBalancesProjection } from './account-balances-projection';
import { accountHistoryProjection } from './account-history-projection';
import { businessTimeProjection } from './business-time-projection';
import { holdsProjection } from './holds-projection';
import type { Projection } from './projection';
import { transferBatchesProjection } from './transfer-batches-projection';
import { transfersProjection } from './transfers-projection';

export const ALL_PROJECTIONS: readonly Projection[] = [
  accountBalancesProjection,
  accountHistoryProjection,
  transfersProjection,
  businessTimeProjection,
  holdsProjection,
  transferBatchesProjection,
];

export function projectionByName(name: string): Projection | undefined {
  return ALL_PROJECTIONS.find((p) => p.name === name);
}
