/**
 * `npm start`: the whole local stack in one process tree, no Docker.
 * PostgreSQL (embedded, data in DATA_DIR) unless DATABASE_URL is set; the Temporal dev server with
 * its Web UI (state in DATA_DIR/temporal.sqlite) unless TEMPORAL_ADDRESS is set; then the worker,
 * the projections and the HTTP API in this process. Ctrl-C / SIGTERM stops everything, in order:
 * API, projections, worker, event store (every connection closed), then the servers.
 *
 * No child outlives this launcher (infra/local-stack-guard.ts): killed, its reaper stops the
 * servers; if everything was killed at once, the next start stops the leftovers of its data
 * directory first. When whoever started it goes away (the terminal, tsx, npm), it stops itself.
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadConfigOrExit, type Config } from '../config/config';
import { EmbeddedPostgresError, startEmbeddedPostgres } from '../infra/embedded-postgres';
import { LocalStackAlreadyRunningError, LocalStackGuard, track } from '../infra/local-stack-guard';
import { ensureLocalOperatorKey, operatorKeyInstructions } from '../infra/local-operator-key';
import { createLogger } from '../infra/logger';
import { assertPortFree, PortInUseError } from '../infra/ports';
import { findOrInstallTemporalCli, TemporalCliNotFoundError } from '../infra/temporal-cli';
import { startTemporalDevServer } from '../infra/temporal-dev-server';
import { NativeConnection } from '@temporalio/worker';
import { connectEventStore, Metrics, projectionMetrics, startApi, startWorker } from '../main/services';
import { startProjectionsThread } from '../main/projections-thread';

const say = (line: string) => process.stdout.write(`[local-stack] ${line}\n`);

/** The start was interrupted (Ctrl-C, SIGTERM, parent gone): the steps not begun yet are skipped. */
class StartInterrupted extends Error {}

async function checkPorts(config: Config): Promise<void> {
  await assertPortFree(config.PORT, 'PORT', 'HTTP API');
  if (!config.TEMPORAL_ADDRESS) {
    await assertPortFree(config.TEMPORAL_PORT, 'TEMPORAL_PORT', 'Temporal dev server');
    await assertPortFree(config.TEMPORAL_UI_PORT, 'TEMPORAL_UI_PORT', 'Temporal Web UI');
  }
  if (!config.DATABASE_URL) await assertPortFree(config.POSTGRES_PORT, 'POSTGRES_PORT', 'embedded PostgreSQL');
}

/** Errors whose message says it all (no stack trace). */
const explained = (error: unknown): error is Error =>
  error instanceof TemporalCliNotFoundError ||
  error instanceof PortInUseError ||
  error instanceof EmbeddedPostgresError ||
  error instanceof LocalStackAlreadyRunningError;

async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const dataDir = path.resolve(config.DATA_DIR);
  const temporalDbFile = path.join(dataDir, 'temporal.sqlite');

  const stops: { name: string; stop: () => Promise<void> }[] = [];
  let guard: LocalStackGuard | undefined;
  let stopping = false;
  let startup: Promise<void> = Promise.resolve();
  /** Between two steps of the start: give up when a stop was asked for. */
  const step = () => {
    if (stopping) throw new StartInterrupted();
  };
  const shutdown = async (code: number, why: string) => {
    if (stopping) return;
    stopping = true;
    say(`stopping (${why})...`);
    const force = setTimeout(() => {
      say('did not stop within 30 s: exiting (the reaper stops the servers)');
      process.exit(code || 1);
    }, 30_000);
    force.unref();
    // A step in progress finishes first (a server half started is then stopped like the others).
    await startup.catch(() => undefined);
    for (const { name, stop } of [...stops].reverse()) {
      await stop().catch((error: unknown) =>
        say(`${name} did not stop cleanly: ${error instanceof Error ? error.message : String(error)}`),
      );
    }
    guard?.release();
    say('stopped');
    process.exit(code);
  };
  process.on('SIGINT', () => void shutdown(0, 'SIGINT'));
  process.on('SIGTERM', () => void shutdown(0, 'SIGTERM'));
  process.on('SIGHUP', () => void shutdown(0, 'SIGHUP'));
  // Whoever started us is gone (its terminal closed, tsx or npm killed): stop rather than live on unseen.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) void shutdown(0, `parent process ${parent} is gone`);
  }, 500).unref();

  startup = (async () => {
    say(`data directory: ${dataDir}`);
    guard = await LocalStackGuard.open({
      dataDir,
      log: say,
      leftoverMarkers: config.TEMPORAL_ADDRESS
        ? []
        : [{ name: 'Temporal dev server', fragment: `--db-filename ${temporalDbFile}`, stopSignal: 'SIGTERM', graceMs: 10_000 }],
    });
    step();
    await checkPorts(config);
    step();
    const started = await Promise.allSettled([
      (async () => {
        if (config.DATABASE_URL) return config.DATABASE_URL;
        const pgLog = fs.createWriteStream(path.join(dataDir, 'postgres.log'), { flags: 'a' });
        pgLog.on('error', (error) => say(`cannot write PostgreSQL's log: ${error.message}`));
        stops.push({ name: 'PostgreSQL log', stop: () => new Promise<void>((resolve) => pgLog.end(resolve)) });
        const pg = await startEmbeddedPostgres({
          dataDir: path.join(dataDir, 'postgres'),
          port: config.POSTGRES_PORT,
          database: 'transfers',
          persistent: true,
          log: (line) => void (pgLog.writableEnded || pgLog.write(`${line}\n`)),
          notice: say,
          onSpawn: (pid) =>
            guard!.track(track('PostgreSQL', pid, { commandIncludes: '-D', stopSignal: 'SIGINT', group: false, graceMs: 30_000 })),
        });
        stops.push({ name: 'PostgreSQL', stop: pg.stop });
        say(`PostgreSQL ready on 127.0.0.1:${config.POSTGRES_PORT} (embedded; its log: ${path.join(dataDir, 'postgres.log')})`);
        return pg.url;
      })(),
      (async () => {
        if (config.TEMPORAL_ADDRESS) return { address: config.TEMPORAL_ADDRESS, uiUrl: undefined };
        const cli = await findOrInstallTemporalCli({ log: say });
        if (cli.kind === 'binary') say(`Temporal CLI: ${cli.path} (${cli.source})`);
        step();
        const server = await startTemporalDevServer({
          cli,
          port: config.TEMPORAL_PORT,
          uiPort: config.TEMPORAL_UI_PORT,
          dbFile: temporalDbFile,
          namespace: config.TEMPORAL_NAMESPACE,
          onSpawn: (pid) =>
            guard!.track(
              track('Temporal dev server', pid, { commandIncludes: temporalDbFile, stopSignal: 'SIGTERM', group: true, graceMs: 10_000 }),
            ),
        });
        stops.push({ name: 'Temporal dev server', stop: server.stop });
        say(`Temporal dev server ready on ${server.address}`);
        return server;
      })(),
    ]);
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
    const [databaseUrl, temporal] = started.map((s) => (s as PromiseFulfilledResult<unknown>).value) as [
      string,
      { address: string; uiUrl?: string },
    ];
    step();
    const endpoints = { databaseUrl, temporalAddress: temporal.address };
    const logger = createLogger(config.LOG_LEVEL);
    const metrics = new Metrics({ defaultMetrics: true });
    const eventStore = await connectEventStore(config, databaseUrl, logger.child({ service: 'event-store' }));
    const { store } = eventStore;
    stops.push({ name: 'event store', stop: () => store.close() });
    step();
    // One Temporal connection for the worker and the API's client: sagas start eagerly (the first workflow task comes
    // back with the start, without a trip through the task queue); the server may decline, then they start as usual.
    const temporalConnection = await NativeConnection.connect({ address: endpoints.temporalAddress });
    stops.push({ name: 'Temporal connection', stop: () => temporalConnection.close() });
    const worker = await startWorker(config, endpoints, store, metrics, logger.child({ service: 'worker' }), {
      sharedConnection: temporalConnection,
    });
    stops.push({ name: 'worker', stop: worker.stop });
    step();
    // On a thread of their own: their steps no longer wait behind the API's and the worker's on one event loop.
    const reportOutcome = projectionMetrics(metrics);
    const projections = await startProjectionsThread({
      config,
      endpoints,
      logger: logger.child({ service: 'projections' }),
      onApplied: (notes) => {
        for (const note of notes) reportOutcome.applied(note.projection, note, note.outcome);
      },
    });
    stops.push({ name: 'projections', stop: projections.stop });
    step();
    // OPERATOR_API_KEY, else the key made on the first start and kept in DATA_DIR/operator-api-key (0600).
    const operatorKey = ensureLocalOperatorKey(dataDir, config.OPERATOR_API_KEY);
    const api = await startApi(
      { ...config, OPERATOR_API_KEY: operatorKey.key, TEMPORAL_UI_URL: config.TEMPORAL_UI_URL ?? temporal.uiUrl },
      endpoints,
      eventStore,
      metrics,
      logger.child({ service: 'api' }),
      { worker: worker.health },
      temporalConnection,
      // Projections behind (their thread started again) leave the API serving: /ready says degraded.
      { projections: projections.health },
    );
    stops.push({ name: 'API', stop: api.stop });
    step();

    say('');
    say('The transfer service is running:');
    say(`  API            http://localhost:${config.PORT}   (docs: http://localhost:${config.PORT}/docs, health: /health)`);
    say(`  Console        http://localhost:${config.PORT}/console   (accounts, transfers, streams; sign in with an API key)`);
    if (temporal.uiUrl) say(`  Temporal UI    ${temporal.uiUrl}`);
    say(`  Temporal       ${temporal.address} (namespace ${config.TEMPORAL_NAMESPACE}, task queue ${config.TASK_QUEUE})`);
    say(
      `  Event store    ${config.EVENT_STORE}${config.EVENT_STORE === 'postgres' ? ` (browse: http://localhost:${config.PORT}/streams)` : ''}`,
    );
    for (const line of operatorKeyInstructions(operatorKey, config.PORT)) say(line);
    say('Press Ctrl-C to stop.');
  })();

  try {
    await startup;
  } catch (error) {
    if (error instanceof StartInterrupted) return; // the shutdown in progress takes it from here
    if (explained(error)) process.stderr.write(`${error.message}\n`);
    else process.stderr.write(`Failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    await shutdown(1, 'start failed');
  }
}

void main();
