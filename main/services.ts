import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { Pool } from 'pg';
import { createTransferActivities } from '../activities/transfer-activities';
import { AccountRepository } from '../application/account-repository';
import { TransferLog } from '../application/transfer-log';
import type { Config } from '../config/config';
import { EsdbEventStore } from '../eventstore/esdb/esdb-event-store';
import type { EventStore } from '../eventstore/event-store';
import { PostgresEventStore } from '../eventstore/postgres/postgres-event-store';
import type { Logger } from '../infra/logger';
import { Metrics } from '../infra/metrics';
import { ALL_PROJECTIONS } from '../projections/all-projections';
import { ProjectionRunner } from '../projections/projection-runner';
import { createTransferWorker } from '../temporal/transfer-worker';
import type { ApiDeps } from '../api/api-deps';
import { createApp } from '../api/app';
import type { Server } from 'node:http';

/** The composition root: builds the parts of the service from configuration. */

export interface Endpoints {
  databaseUrl: string;
  temporalAddress: string;
}

export async function connectEventStore(config: Config, databaseUrl: string): Promise<EventStore> {
  if (config.EVENT_STORE === 'esdb') return EsdbEventStore.connect(config.ESDB_URL!);
  return PostgresEventStore.connect({ connectionString: databaseUrl, poolSize: config.PG_POOL_SIZE });
}

export function activityObserver(metrics: Metrics) {
  return { conflict: (activity: string) => metrics.activityConflicts.inc({ activity }) };
}

let runtimeInstalled = false;
/** Routes the Temporal SDK's own logs (warnings and errors only) into our JSON logs. */
function installTemporalRuntime(logger: Logger): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  try {
    Runtime.install({
      logger: new DefaultLogger('WARN', (entry) =>
        logger.log({ level: entry.level === 'ERROR' ? 'error' : 'warn', msg: entry.message, source: 'temporal-sdk', ...(entry.meta ?? {}) }),
      ),
    });
  } catch {
    /* a runtime was already installed in this process */
  }
}

export async function startWorker(config: Config, endpoints: Endpoints, store: EventStore, metrics: Metrics, logger: Logger) {
  installTemporalRuntime(logger);
  const connection = await NativeConnection.connect({ address: endpoints.temporalAddress });
  const accounts = new AccountRepository(store, config.SNAPSHOT_EVERY);
  const worker = await createTransferWorker({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.TASK_QUEUE,
    activities: createTransferActivities({ accounts, transfers: new TransferLog(store), observer: activityObserver(metrics) }),
    maxConcurrentActivityTaskExecutions: config.WORKER_MAX_CONCURRENT_ACTIVITIES,
    maxConcurrentWorkflowTaskExecutions: config.WORKER_MAX_CONCURRENT_WORKFLOW_TASKS,
  });
  const running = worker.run();
  logger.log({ msg: 'worker started', taskQueue: config.TASK_QUEUE, namespace: config.TEMPORAL_NAMESPACE });
  return {
    stop: async () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running.catch(() => undefined);
      await connection.close();
    },
  };
}

export async function startProjections(endpoints: Endpoints, store: EventStore, metrics: Metrics, logger: Logger) {
  const pool = new Pool({ connectionString: endpoints.databaseUrl, max: 10 });
  pool.on('error', (error) => logger.log({ level: 'warn', msg: 'idle read-model connection failed', error: error.message }));
  const runner = new ProjectionRunner(store, pool, ALL_PROJECTIONS, {
    applied: (projection, event, outcome) => {
      metrics.projectionEvents.inc({ projection, outcome });
      if (projection === 'transfers' && outcome === 'applied') {
        const outcomeOf: Record<string, string> = { TransferCompleted: 'completed', TransferFailed: 'failed', TransferCompensated: 'compensated' };
        if (outcomeOf[event.type]) metrics.transfers.inc({ outcome: outcomeOf[event.type] });
      }
    },
  });
  await runner.start();
  logger.log({ msg: 'projections started', projections: ALL_PROJECTIONS.map((p) => p.name) });
  return {
    stop: async () => {
      await runner.stop();
      await pool.end();
    },
  };
}

export async function startApi(config: Config, endpoints: Endpoints, store: EventStore, metrics: Metrics, logger: Logger) {
  const readModels = new Pool({ connectionString: endpoints.databaseUrl, max: config.PG_POOL_SIZE });
  readModels.on('error', (error) => logger.log({ level: 'warn', msg: 'idle read-model connection failed', error: error.message }));
  const connection = await Connection.connect({ address: endpoints.temporalAddress });
  const temporal = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
  const deps: ApiDeps = {
    store,
    accounts: new AccountRepository(store, config.SNAPSHOT_EVERY),
    readModels,
    temporal,
    taskQueue: config.TASK_QUEUE,
    metrics,
    logger,
    access: { operatorApiKey: config.OPERATOR_API_KEY, rateLimitPerMinute: config.RATE_LIMIT_PER_MINUTE, metricsPublic: config.METRICS_PUBLIC },
    checks: {
      postgres: async () => void (await readModels.query('SELECT 1')),
      temporal: async () => void (await connection.workflowService.getSystemInfo({})),
      eventStore: async () => void (await store.headPosition()),
    },
  };
  const app = createApp(deps);
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(config.PORT, '0.0.0.0', () => resolve(s));
    s.once('error', reject);
  });
  logger.log({ msg: 'api listening', port: config.PORT });
  return {
    server,
    stop: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      await connection.close();
      await readModels.end();
    },
  };
}

export { Metrics };
