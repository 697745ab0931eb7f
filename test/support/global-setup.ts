import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EmbeddedPostgresError, startEmbeddedPostgres } from '../../infra/embedded-postgres';
import { findFreePort } from '../../infra/ports';
import { findOrInstallTemporalCli } from '../../infra/temporal-cli';
import { startTemporalDevServer } from '../../infra/temporal-dev-server';

/**
 * One PostgreSQL server and one Temporal dev server for the whole test run (test files stay
 * independent: each makes its own database and its own task queue).
 * - PostgreSQL: embedded (throwaway data dir), unless DATABASE_URL points at an existing server.
 * - Temporal: the real dev server from the Temporal CLI, unless TEMPORAL_ADDRESS is set.
 */
export default async function globalSetup(): Promise<void> {
  const log = (line: string) => process.stderr.write(`[test-stack] ${line}\n`);
  const stops: (() => Promise<void>)[] = [];
  (globalThis as { __testStackStops?: typeof stops }).__testStackStops = stops;

  // If the run is interrupted (Ctrl-C, CI timeout), stop the servers: Node exits on SIGTERM
  // without running 'exit' hooks, which would leave the dev server (its own process group) behind.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      void Promise.allSettled(stops.map((stop) => stop())).finally(() => process.exit(130));
    });
  }

  const started = Date.now();
  const results = await Promise.allSettled([
    (async () => {
      if (process.env.DATABASE_URL) return process.env.DATABASE_URL;
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'transfer-service-test-pg-'));
      try {
        const pg = await startEmbeddedPostgres({
          dataDir: path.join(dataDir, 'data'),
          port: await findFreePort(),
          database: 'postgres',
          persistent: false,
          notice: log,
        });
        stops.push(async () => {
          await pg.stop();
          fs.rmSync(dataDir, { recursive: true, force: true });
        });
        return pg.url;
      } catch (error) {
        fs.rmSync(dataDir, { recursive: true, force: true });
        throw error;
      }
    })(),
    (async () => {
      if (process.env.TEMPORAL_ADDRESS) return process.env.TEMPORAL_ADDRESS;
      const cli = await findOrInstallTemporalCli({ log });
      const server = await startTemporalDevServer({ cli, port: await findFreePort(), namespace: 'default' });
      stops.push(() => server.stop());
      return server.address;
    })(),
  ]);
  const failures = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  if (failures.length > 0) {
    // Jest runs no global teardown when the setup fails: stop what did start, then fail with the
    // reason alone (a known start problem is one message saying what to do; no stack to wade through).
    await Promise.allSettled(stops.map((stop) => stop()));
    const messages = failures.map((e) =>
      e instanceof EmbeddedPostgresError ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e),
    );
    const error = new Error(`The test stack could not start:\n${messages.join('\n')}`);
    error.stack = error.message;
    throw error;
  }
  const [postgresUrl, temporalAddress] = results.map((r) => (r as PromiseFulfilledResult<string>).value) as [string, string];
  process.env.TEST_POSTGRES_ADMIN_URL = postgresUrl;
  process.env.TEST_TEMPORAL_ADDRESS = temporalAddress;
  log(`PostgreSQL ${postgresUrl.replace(/:[^:@/]+@/, ':***@')}, Temporal ${temporalAddress} ready in ${Date.now() - started} ms`);
}
