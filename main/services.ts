import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, type Worker } from '@temporalio/worker';
import { createTransferActivities } from '../activities/transfer-activities';
import { AccountRepository } from '../application/account-repository';
import { TransferLog } from '../application/transfer-log';
import type { Config } from '../config/config';
import type { EventStore } from '../eventstore/event-store';
import type { Logger } from '../infra/logger';
import { createServicePool } from '../infra/pg-pool';
import { Metrics } from '../infra/metrics';
import { createTransferWorker } from '../temporal/transfer-worker';
import { createReconcilerActivities, ensureReconcilerSchedule } from '../temporal/transfer-reconciler';
import { BatchLog } from '../application/batch-log';
import { HoldLog } from '../application/hold-log';
import { listTransfers } from '../projections/transfers-queries';
import type { ApiDeps } from '../api/api-deps';
import { connectionErrorLogger, type ConnectedEventStore, type Endpoints } from './store-services';
import { createApp } from '../api/app';
import type { Server } from 'node:http';

/** The composition root: builds the parts of the service from configuration. */

export {
  collectPostgresStoreMetrics,
  connectEventStore,
  projectionMetrics,
  recoveredErrorLogger,
  startProjections,
  type ConnectedEventStore,
  type Endpoints,
} from './store-services';

/** A snapshot that could not be written: the append stands, the next load folds further. */
function snapshotErrorLogger(logger: Logger) {
  return (error: unknown, accountId: string) =>
    logger.log({
      level: 'warn',
      msg: 'account snapshot not written (the next load folds from the previous one)',
      accountId,
      error: error instanceof Error ? error.message : String(error),
    });
}

export function activityObserver(metrics: Metrics, logger?: Logger) {
  return {
    conflict: (activity: string) => metrics.activityConflicts.inc({ activity }),
    unauthorized: (transferId: string, activity: string, why: string) => {
      metrics.sagaRunsUnauthorized.inc({ activity });
      logger?.log({ level: 'error', msg: 'saga run refused: no accepted request; nothing moved', transferId, activity, why });
    },
    needsAttention: (transferId: string, reason: string, message: string) => {
      metrics.transfersNeedingAttention.inc({ reason });
      logger?.log({
        level: 'error',
        msg: 'transfer needs attention: its saga cannot settle it and waits for retrySettlement',
        transferId,
        reason,
        error: message,
      });
    },
  };
}

let runtimeInstalled = false;
/** Routes the Temporal SDK's own logs (warnings and errors only) into our JSON logs. */
function installTemporalRuntime(logger: Logger): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  try {
    Runtime.install({
      logger: new DefaultLogger('WARN', (entry) =>
        logger.log({
          level: entry.level === 'ERROR' ? 'error' : 'warn',
          msg: entry.message,
          source: 'temporal-sdk',
          ...(entry.meta ?? {}),
        }),
      ),
    });
  } catch {
    /* a runtime was already installed in this process */
  }
}

/** gRPC reconnect backoff for the Temporal client: a restarted server is found again within seconds. */
const TEMPORAL_CHANNEL_ARGS = { 'grpc.initial_reconnect_backoff_ms': 500, 'grpc.max_reconnect_backoff_ms': 5_000 };

/** How long a /ready probe of Temporal may take. */
const TEMPORAL_PROBE_MS = 2_000;

export interface RunningWorker {
  /** Resolves while the worker polls its task queue; rejects saying what it is waiting for otherwise. */
  health(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The Temporal worker, kept running: when it fails (the SDK gives up after the server was away too
 * long), it is logged and made again, with backoff, until the server is back. Failures never end
 * the process.
 */
export async function startWorker(
  config: Config,
  endpoints: Endpoints,
  store: EventStore,
  metrics: Metrics,
  logger: Logger,
  options: {
    /**
     * A connection shared with this process's API client, so that the API can start sagas eagerly (the local stack).
     * It stays the caller's. When a worker on it cannot be made again after a failure, the worker moves to a
     * connection of its own; the API's eager starts are then declined by the server and sagas start the usual way.
     */
    sharedConnection?: NativeConnection;
  } = {},
): Promise<RunningWorker> {
  installTemporalRuntime(logger);
  const accounts = new AccountRepository(store, config.SNAPSHOT_EVERY, snapshotErrorLogger(logger));
  const transfers = new TransferLog(store);
  // The reconciler (run by a Temporal schedule on this worker) needs a client of its own; lazy, so
  // that a Temporal server still starting does not stop the worker from starting.
  const clientConnection = Connection.lazy({ address: endpoints.temporalAddress, channelArgs: TEMPORAL_CHANNEL_ARGS });
  const reconcilerClient = new Client({ connection: clientConnection, namespace: config.TEMPORAL_NAMESPACE });
  // The reconciler also looks for accepted transfers the read model holds as pending for long (a saga never started).
  const reconcilerReadModels = createServicePool({
    connectionString: endpoints.databaseUrl,
    max: 2,
    applicationName: 'transfer-reconciler',
    onConnectionError: connectionErrorLogger(logger, 'reconciler'),
  });
  const activities = {
    ...createTransferActivities({ accounts, transfers, observer: activityObserver(metrics, logger) }),
    ...createReconcilerActivities({
      client: reconcilerClient,
      taskQueue: config.TASK_QUEUE,
      transfers,
      holds: new HoldLog(store),
      batches: new BatchLog(store),
      pendingTransfers: async (olderThan, limit) => {
        const { rows } = await listTransfers(reconcilerReadModels, { status: 'pending', to: olderThan.toISOString(), limit });
        return rows.map((row) => row.transfer_id);
      },
      log: (entry) => logger.log({ msg: 'reconciler', ...entry, source: 'reconciler' }),
      onRepaired: (_transferId, closedAs) => metrics.transfersRepaired.inc({ closed_as: closedAs }),
    }),
  };
  let connection: NativeConnection | undefined = options.sharedConnection;
  let worker: Worker | undefined;
  let state: 'running' | 'reconnecting' | 'stopped' = 'running';
  let lastError = '';
  let stopping = false;
  let wake: (() => void) | undefined;

  const create = async () => {
    connection ??= await NativeConnection.connect({ address: endpoints.temporalAddress });
    worker = await createTransferWorker({
      connection,
      namespace: config.TEMPORAL_NAMESPACE,
      taskQueue: config.TASK_QUEUE,
      activities,
      maxConcurrentActivityTaskExecutions: config.WORKER_MAX_CONCURRENT_ACTIVITIES,
      maxConcurrentWorkflowTaskExecutions: config.WORKER_MAX_CONCURRENT_WORKFLOW_TASKS,
    });
  };
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });

  await create();
  const supervise = async () => {
    while (!stopping) {
      state = 'running';
      try {
        await worker!.run();
        if (stopping) break;
        lastError = 'the worker stopped on its own';
      } catch (error) {
        lastError = error instanceof Error ? error.message : String(error);
      }
      if (stopping) break;
      state = 'reconnecting';
      logger.log({ level: 'error', msg: 'worker failed; making it again once Temporal answers', error: lastError });
      let attempts = 0;
      for (let delay = 1_000; !stopping; delay = Math.min(delay * 2, 10_000)) {
        await pause(delay);
        if (stopping) break;
        try {
          // The failure may have come from the connection. A shared one is tried for about 30 s (the API's eager starts
          // need the worker on it); after that, and for a connection of its own, start again from a fresh one.
          attempts += 1;
          if (connection !== options.sharedConnection || attempts > 5) {
            if (connection !== options.sharedConnection)
              await connection?.close().catch(() => undefined); // being replaced: a failed close changes nothing
            else logger.log({ level: 'warn', msg: 'worker moves to a connection of its own: eager workflow start is off until a restart' });
            connection = undefined;
          }
          await create();
          logger.log({ msg: 'worker made again', taskQueue: config.TASK_QUEUE });
          break;
        } catch (error) {
          lastError = error instanceof Error ? error.message : String(error);
        }
      }
    }
    state = 'stopped';
  };
  const supervised = supervise();
  logger.log({ msg: 'worker started', taskQueue: config.TASK_QUEUE, namespace: config.TEMPORAL_NAMESPACE });
  ensureReconcilerSchedule(reconcilerClient, config.TASK_QUEUE, config.RECONCILE_EVERY_SECONDS).then(
    () => logger.log({ msg: 'reconciler scheduled', everySeconds: config.RECONCILE_EVERY_SECONDS }),
    (error: unknown) =>
      logger.log({
        level: 'warn',
        msg: 'could not create the reconciler schedule (it is created at the next start)',
        error: error instanceof Error ? error.message : String(error),
      }),
  );
  return {
    health: async () => {
      if (state !== 'running' || worker?.getState() !== 'RUNNING')
        throw new Error(`worker ${state === 'running' ? (worker?.getState() ?? 'missing') : state}${lastError ? `: ${lastError}` : ''}`);
    },
    stop: async () => {
      stopping = true;
      wake?.();
      if (worker?.getState() === 'RUNNING') worker.shutdown();
      await supervised;
      // Shutting down: a connection that fails to close is gone with the process. A shared one is its owner's to close.
      if (connection !== options.sharedConnection) await connection?.close().catch(() => undefined);
      await clientConnection.close().catch(() => undefined); // likewise
      await reconcilerReadModels.end().catch(() => undefined); // likewise
    },
  };
}

/** `extraChecks`: more parts for /ready (the local stack adds its worker). */
export async function startApi(
  config: Config,
  endpoints: Endpoints,
  eventStore: ConnectedEventStore,
  metrics: Metrics,
  logger: Logger,
  extraChecks: Record<string, () => Promise<void>> = {},
  /** The worker's connection in this process (the local stack): sagas are then started eagerly. It stays the caller's. */
  sharedConnection?: NativeConnection,
  /** Parts whose failure makes /ready say `degraded` (ApiDeps.degradingChecks). */
  degradingChecks: Record<string, () => Promise<void>> = {},
) {
  const readModels = createServicePool({
    connectionString: endpoints.databaseUrl,
    max: config.PG_POOL_SIZE,
    applicationName: 'transfer-api',
    onConnectionError: connectionErrorLogger(logger, 'api'),
  });
  const connection =
    sharedConnection ?? (await Connection.connect({ address: endpoints.temporalAddress, channelArgs: TEMPORAL_CHANNEL_ARGS }));
  const temporal = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
  const { store } = eventStore;
  const deps: ApiDeps = {
    store,
    collectStoreMetrics: () => eventStore.collectMetrics(metrics),
    accounts: new AccountRepository(store, config.SNAPSHOT_EVERY, snapshotErrorLogger(logger)),
    readModels,
    temporal,
    taskQueue: config.TASK_QUEUE,
    eagerStart: sharedConnection !== undefined,
    metrics,
    logger,
    access: {
      operatorApiKey: config.OPERATOR_API_KEY,
      rateLimitPerMinute: config.RATE_LIMIT_PER_MINUTE,
      metricsPublic: config.METRICS_PUBLIC,
      maxConcurrentWaitsPerKey: config.MAX_CONCURRENT_WAITS_PER_KEY,
    },
    businessTime: { timezone: config.BOOKS_TIMEZONE, maxLatenessMs: config.MAX_LATENESS, maxClockSkewMs: config.MAX_CLOCK_SKEW },
    console: { temporalUiUrl: config.TEMPORAL_UI_URL },
    transferBatchMaxItems: config.TRANSFER_BATCH_MAX_ITEMS,
    checks: {
      postgres: async () => void (await readModels.query('SELECT 1')),
      temporal: async () =>
        void (await connection.withDeadline(Date.now() + TEMPORAL_PROBE_MS, () => connection.workflowService.getSystemInfo({}))),
      eventStore: async () => void (await store.headPosition()),
      ...extraChecks,
    },
    degradingChecks,
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
      if (!sharedConnection) await connection.close();
      await readModels.end();
    },
  };
}

export { Metrics };
