import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Prometheus metrics of one process (the local stack runs everything in one, so /metrics shows all). */
export class Metrics {
  readonly registry = new Registry();
  readonly transfers = new Counter({
    name: 'transfers_total',
    help: 'Transfers that reached a terminal status, by outcome',
    labelNames: ['outcome'],
    registers: [this.registry],
  });
  readonly activityConflicts = new Counter({
    name: 'activity_conflicts_total',
    help: 'Appends that lost an optimistic-concurrency race and were re-decided, by activity',
    labelNames: ['activity'],
    registers: [this.registry],
  });
  readonly sagaStarts = new Counter({
    name: 'transfer_saga_starts_total',
    help: 'Sagas started by this API, by whether the server handed the first workflow task straight to this process (eager start: the local stack)',
    labelNames: ['eager'],
    registers: [this.registry],
  });
  readonly transfersRepaired = new Counter({
    name: 'transfers_repaired_total',
    help: 'Transfers whose saga closed without an outcome (terminated, timed out, failed) and that the reconciler ran again, by how the saga closed',
    labelNames: ['closed_as'],
    registers: [this.registry],
  });
  readonly sagaRunsUnauthorized = new Counter({
    name: 'transfer_saga_runs_unauthorized_total',
    help: 'Saga runs refused because no request accepted by the API is recorded for their transfer (started straight on Temporal, or under another workflow id): they moved and wrote nothing',
    labelNames: ['activity'],
    registers: [this.registry],
  });
  readonly transfersNeedingAttention = new Counter({
    name: 'transfers_needs_attention_total',
    help: 'Times a saga could not settle its transfer and waits for a person (TransferStatus = needs_attention), by reason',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly activityRetries = new Counter({
    name: 'activity_retries_total',
    help: 'Activity attempts beyond the first, by activity',
    labelNames: ['activity'],
    registers: [this.registry],
  });
  readonly projectionLag = new Gauge({
    name: 'projection_lag_seconds',
    help: 'Age of the oldest event a projection has not applied yet',
    labelNames: ['projection'],
    registers: [this.registry],
  });
  readonly projectionEventsBehind = new Gauge({
    name: 'projection_lag_events',
    help: 'Events a projection has not applied yet, its parked events included',
    labelNames: ['projection'],
    registers: [this.registry],
  });
  readonly projectionParked = new Gauge({
    name: 'projection_parked_events',
    help: 'Events a projection parked (failed after retries, or blocked behind a failed event of their stream); the read model lacks them until they are replayed',
    labelNames: ['projection'],
    registers: [this.registry],
  });
  readonly projectionEvents = new Counter({
    name: 'projection_events_total',
    help: 'Events handled by projections, by outcome',
    labelNames: ['projection', 'outcome'],
    registers: [this.registry],
  });
  readonly eventsHeldBack = new Gauge({
    name: 'event_store_events_held_back',
    help: 'Committed events subscribers cannot deliver yet because an older transaction is still open (PostgreSQL store)',
    registers: [this.registry],
  });
  readonly oldestOpenTransaction = new Gauge({
    name: 'event_store_oldest_open_transaction_seconds',
    help: 'Age of the oldest open writing transaction (PostgreSQL store)',
    registers: [this.registry],
  });
  readonly httpDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request latency',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry });
  }
}
