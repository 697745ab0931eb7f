import type { Pool } from 'pg';
import type { EventStore } from '../eventstore/event-store';
import { formatPosition } from '../eventstore/event-store';
import type { Metrics } from '../infra/metrics';
import type { Projection } from './projection';
import { groupName, projectionLag } from './projection-runner';

export interface ProjectionHealth {
  projection: string;
  /** 'degraded': the consumer group has parked events, which the read model lacks until they are replayed. */
  status: 'ok' | 'degraded';
  parkedEvents: number;
  firstParkedPosition?: string;
  oldestParkedRecordedAt?: string;
}

/** Each projection's parked events, from the store (one cheap query per projection). */
export async function projectionHealth(store: EventStore, projections: readonly Projection[]): Promise<ProjectionHealth[]> {
  return Promise.all(
    projections.map(async (p) => {
      const parked = await store.parkedSummary(groupName(p));
      return {
        projection: p.name,
        status: parked.count > 0 ? 'degraded' : 'ok',
        parkedEvents: parked.count,
        ...(parked.first ? { firstParkedPosition: formatPosition(parked.first) } : {}),
        ...(parked.oldestRecordedAt ? { oldestParkedRecordedAt: parked.oldestRecordedAt } : {}),
      } satisfies ProjectionHealth;
    }),
  );
}

/** Sets projection_lag_seconds, projection_lag_events and projection_parked_events for a scrape. */
export async function collectProjectionMetrics(
  store: EventStore,
  readModels: Pool,
  projections: readonly Projection[],
  metrics: Metrics,
): Promise<void> {
  await Promise.all(
    projections.map(async (p) => {
      const lag = await projectionLag(store, readModels, p);
      metrics.projectionLag.set({ projection: p.name }, lag.lagSeconds);
      metrics.projectionEventsBehind.set({ projection: p.name }, lag.eventsBehind);
      metrics.projectionParked.set({ projection: p.name }, lag.parkedEvents);
    }),
  );
}
