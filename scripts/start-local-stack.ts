/**
 * `npm start`: the whole local stack in one process tree, no Docker.
 * PostgreSQL (embedded, data in DATA_DIR) unless DATABASE_URL is set; the Temporal dev server with
 * its Web UI (state in DATA_DIR/temporal.sqlite) unless TEMPORAL_ADDRESS is set; then the worker,
 * the projections and the HTTP API in this process. Ctrl-C / SIGTERM stops everything.
 */
import path from 'node:path';
import { loadConfigOrExit, type Config } from '../config/config';
import { startEmbeddedPostgres } from '../infra/embedded-postgres';
import { ensureLocalOperatorKey, operatorKeyInstructions } from '../infra/local-operator-key';
import { createLogger } from '../infra/logger';
import { assertPortFree, PortInUseError } from '../infra/ports';
import { findOrInstallTemporalCli, TemporalCliNotFoundError } from '../infra/temporal-cli';
import { startTemporalDevServer } from '../infra/temporal-dev-server';
import { connectEventStore, Metrics, startApi, startProjections, startWorker } from '../main/services';

const say = (line: string) => process.stdout.write(`[local-stack] ${line}\n`);

async function checkPorts(config: Config): Promise<void> {
  await assertPortFree(config.PORT, 'PORT', 'HTTP API');
  if (!config.TEMPORAL_ADDRESS) {
    await assertPortFree(config.TEMPORAL_PORT, 'TEMPORAL_PORT', 'Temporal dev server');
    await assertPortFree(config.TEMPORAL_UI_PORT, 'TEMPORAL_UI_PORT', 'Temporal Web UI');
  }
  if (!config.DATABASE_URL) await assertPortFree(config.POSTGRES_PORT, 'POSTGRES_PORT', 'embedded PostgreSQL');
}

async function main(): Promise<void> {
  const config = loadConfigOrExit();
  try {
    await checkPorts(config);
  } catch (error) {
    if (error instanceof PortInUseError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }

  const stops: { name: string; stop: () => Promise<void> }[] = [];
  let stopping = false;
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    say('stopping...');
    const force = setTimeout(() => process.exit(code || 1), 30_000);
    force.unref();
    for (const { name, stop } of stops.reverse()) {
      await stop().catch((error: unknown) => say(`${name} did not stop cleanly: ${error instanceof Error ? error.message : String(error)}`));
    }
    say('stopped');
    process.exit(code);
  };
  process.on('SIGINT', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));

  try {
    const dataDir = path.resolve(config.DATA_DIR);
    say(`data directory: ${dataDir}`);
    const [databaseUrl, temporal] = await Promise.all([
      (async () => {
        if (config.DATABASE_URL) return config.DATABASE_URL;
        const pg = await startEmbeddedPostgres({ dataDir: path.join(dataDir, 'postgres'), port: config.POSTGRES_PORT, database: 'transfers', persistent: true });
        stops.push({ name: 'PostgreSQL', stop: pg.stop });
        say(`PostgreSQL ready on 127.0.0.1:${config.POSTGRES_PORT} (embedded)`);
        return pg.url;
      })(),
      (async () => {
        if (config.TEMPORAL_ADDRESS) return { address: config.TEMPORAL_ADDRESS, uiUrl: undefined };
        const cli = await findOrInstallTemporalCli({ log: say });
        if (cli.kind === 'binary') say(`Temporal CLI: ${cli.path} (${cli.source})`);
        const server = await startTemporalDevServer({
          cli,
          port: config.TEMPORAL_PORT,
          uiPort: config.TEMPORAL_UI_PORT,
          dbFile: path.join(dataDir, 'temporal.sqlite'),
          namespace: config.TEMPORAL_NAMESPACE,
        });
        stops.push({ name: 'Temporal dev server', stop: server.stop });
        say(`Temporal dev server ready on ${server.address}`);
        return server;
      })(),
    ]);
    const endpoints = { databaseUrl, temporalAddress: temporal.address };
    const logger = createLogger(config.LOG_LEVEL);
    const metrics = new Metrics({ defaultMetrics: true });
    const store = await connectEventStore(config, databaseUrl);
    stops.push({ name: 'event store', stop: () => store.close() });
    const worker = await startWorker(config, endpoints, store, metrics, logger.child({ service: 'worker' }));
    stops.push({ name: 'worker', stop: worker.stop });
    const projections = await startProjections(endpoints, store, metrics, logger.child({ service: 'projections' }));
    stops.push({ name: 'projections', stop: projections.stop });
    // OPERATOR_API_KEY, else the key made on the first start and kept in DATA_DIR/operator-api-key (0600).
    const operatorKey = ensureLocalOperatorKey(dataDir, config.OPERATOR_API_KEY);
    const api = await startApi({ ...config, OPERATOR_API_KEY: operatorKey.key }, endpoints, store, metrics, logger.child({ service: 'api' }));
    stops.push({ name: 'API', stop: api.stop });

    say('');
    say('The transfer service is running:');
    say(`  API            http://localhost:${config.PORT}   (docs: http://localhost:${config.PORT}/docs, health: /health)`);
    if (temporal.uiUrl) say(`  Temporal UI    ${temporal.uiUrl}`);
    say(`  Temporal       ${temporal.address} (namespace ${config.TEMPORAL_NAMESPACE}, task queue ${config.TASK_QUEUE})`);
    say(`  Event store    ${config.EVENT_STORE}${config.EVENT_STORE === 'postgres' ? ` (browse: http://localhost:${config.PORT}/streams)` : ''}`);
    for (const line of operatorKeyInstructions(operatorKey, config.PORT)) say(line);
    say('Press Ctrl-C to stop.');
  } catch (error) {
    if (error instanceof TemporalCliNotFoundError || error instanceof PortInUseError) process.stderr.write(`${error.message}\n`);
    else process.stderr.write(`Failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    await shutdown(1);
  }
}

void main();
