import type { Config } from '../config/config';
import { terminalStatusOf } from '../domain/transfer-events';
import { startAuditAnchoring } from '../eventstore/audit-anchoring';
import { EsdbEventStore } from '../eventstore/esdb/esdb-event-store';
import type { EventStore, RecordedEvent } from '../eventstore/event-store';
import { isHashChained } from '../eventstore/hash-chain';
import { PostgresEventStore } from '../eventstore/postgres/postgres-event-store';
import type { Logger } from '../infra/logger';
import type { Metrics } from '../infra/metrics';
import { createServicePool } from '../infra/pg-pool';
import { ALL_PROJECTIONS } from '../projections/all-projections';
import { ProjectionRunner, type ProjectionObserver, type ProjectionOutcome } from '../projections/projection-runner';

/**
 * The event store and the projections, apart from the Temporal parts of main/services.ts: this module loads without the
 * Temporal SDK's native bridge, so a projections thread (main/projections-thread.ts) can run it.
 */

export interface Endpoints {
  databaseUrl: string;
  temporalAddress: string;
}

/** The event store the configuration chose, with the gauges only its adapter can read (set each time /metrics is read). */
export interface ConnectedEventStore {
  store: EventStore;
  collectMetrics(metrics: Metrics): Promise<void>;
}

/** `logger`: where the store's recovered errors go (a lost LISTEN connection, a consumer group's failed round). */
export async function connectEventStore(config: Config, databaseUrl: string, logger?: Logger): Promise<ConnectedEventStore> {
  if (config.EVENT_STORE === 'esdb') {
    // EventStoreDB commits in log order: nothing is held back behind an open transaction.
    return { store: await EsdbEventStore.connect(config.ESDB_URL!), collectMetrics: async () => undefined };
  }
  const store = await PostgresEventStore.connect({
    connectionString: databaseUrl,
    poolSize: config.PG_POOL_SIZE,
    onError: logger ? recoveredErrorLogger(logger, 'event store') : undefined,
  });
  return { store, collectMetrics: (metrics) => collectPostgresStoreMetrics(store, metrics) };
}

/** PostgreSQL's own gauges: events committed behind an open transaction, held back from readers (see openTransactionLag). */
export async function collectPostgresStoreMetrics(store: PostgresEventStore, metrics: Metrics): Promise<void> {
  const lag = await store.openTransactionLag();
  metrics.eventsHeldBack.set(lag.eventsHeldBack);
  metrics.oldestOpenTransaction.set(lag.oldestOpenTransactionMs / 1000);
}

/**
 * Projection outcomes and finished transfers (counted once, when the transfers projection applies the outcome) into the
 * metrics. It needs only an event's type, so it also takes the outcomes a projections thread reports (main/projections-thread.ts).
 */
export function projectionMetrics(metrics: Metrics): {
  applied(projection: string, event: Pick<RecordedEvent, 'type'>, outcome: ProjectionOutcome): void;
} {
  return {
    applied: (projection, event, outcome) => {
      metrics.projectionEvents.inc({ projection, outcome });
      const finished = projection === 'transfers' && outcome === 'applied' ? terminalStatusOf(event.type) : undefined;
      if (finished) metrics.transfers.inc({ outcome: finished });
    },
  };
}

/** The projections with their read-model pool, reporting each outcome to `observer` (projectionMetrics: the metrics). */
export async function startProjections(endpoints: Endpoints, store: EventStore, observer: ProjectionObserver, logger: Logger) {
  const pool = createServicePool({
    connectionString: endpoints.databaseUrl,
    max: 10,
    applicationName: 'transfer-projections',
    onConnectionError: connectionErrorLogger(logger, 'projections'),
  });
  const runner = new ProjectionRunner(store, pool, ALL_PROJECTIONS, observer);
  await runner.start();
  logger.log({ msg: 'projections started', projections: ALL_PROJECTIONS.map((p) => p.name) });
  // Tamper evidence: anchor every stream head now and then, so a deleted stream is caught (eventstore/audit-anchoring.ts).
  const anchoring = isHashChained(store) ? startAuditAnchoring(store, logger) : undefined;
  return {
    stop: async () => {
      await anchoring?.stop();
      await runner.stop();
      await pool.end();
    },
  };
}

/**
 * Warnings that come in bursts (a database restart fails every connection and every consumer-group round at once):
 * at most one line per key every 5 s, counting those left out (`alsoFailed`) in the next.
 */
function throttledWarnings(logger: Logger): (key: string, entry: { msg: string } & Record<string, unknown>) => void {
  const last = new Map<string, { at: number; suppressed: number }>();
  return (key, entry) => {
    const seen = last.get(key);
    if (seen && Date.now() - seen.at < 5_000) {
      seen.suppressed += 1;
      return;
    }
    logger.log({ level: 'warn', ...entry, ...(seen?.suppressed ? { alsoFailed: seen.suppressed } : {}) });
    last.set(key, { at: Date.now(), suppressed: 0 });
  };
}

/** A dead PostgreSQL connection of a pool (it is replaced on next use). */
export function connectionErrorLogger(logger: Logger, pool: string): (error: Error) => void {
  const warn = throttledWarnings(logger);
  return (error) => warn(pool, { msg: 'PostgreSQL connection lost (it is replaced on next use)', pool, error: error.message });
}

/** Errors a part recovers from on its own (it retries), by the place they come from. */
export function recoveredErrorLogger(logger: Logger, part: string): (error: unknown, where: string) => void {
  const warn = throttledWarnings(logger);
  return (error, where) =>
    warn(where, { msg: `${part}: ${where} failed; retrying`, error: error instanceof Error ? error.message : String(error) });
}
