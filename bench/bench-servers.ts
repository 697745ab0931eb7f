import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureDatabase, startEmbeddedPostgres } from '../infra/embedded-postgres';
import { findFreePort } from '../infra/ports';
import { findOrInstallTemporalCli } from '../infra/temporal-cli';
import { startTemporalDevServer, type DevServerSetting } from '../infra/temporal-dev-server';

export interface BenchServers {
  adminUrl: string;
  databaseUrl(name: string): Promise<string>;
  temporalAddress?: string;
  postgresPid?: number;
  temporalPid?: number;
  stop(): Promise<void>;
}

/** A fresh embedded PostgreSQL (or DATABASE_URL's server) and, when asked, a Temporal dev server: the same servers for ours and the baselines. */
export async function startBenchServers(options: {
  temporal: boolean;
  devServerTuning?: 'one-machine' | 'defaults';
  /** Tuned settings left out, to measure each. */
  devServerWithout?: readonly DevServerSetting[];
  /** Keep the dev server's state in a SQLite file, as `npm start` does (the pragmas apply only then); default in memory. */
  devServerDbFile?: boolean;
}): Promise<BenchServers> {
  const stops: (() => Promise<void>)[] = [];
  let adminUrl = process.env.DATABASE_URL;
  let postgresPid: number | undefined;
  if (!adminUrl) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'transfer-bench-pg-'));
    const pg = await startEmbeddedPostgres({
      dataDir: path.join(dir, 'data'),
      port: await findFreePort(),
      database: 'postgres',
      persistent: false,
    });
    stops.push(async () => {
      await pg.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    });
    adminUrl = pg.url;
    postgresPid = pg.pid; // (as root its files may live elsewhere: see infra/embedded-postgres.ts)
  }
  let temporalAddress = process.env.TEMPORAL_ADDRESS;
  let temporalPid: number | undefined;
  if (options.temporal && !temporalAddress) {
    const cli = await findOrInstallTemporalCli({ log: (l) => console.log(l) });
    const dbDir = options.devServerDbFile ? fs.mkdtempSync(path.join(os.tmpdir(), 'transfer-bench-temporal-')) : undefined;
    const server = await startTemporalDevServer({
      cli,
      port: await findFreePort(),
      namespace: 'default',
      tuning: options.devServerTuning,
      without: options.devServerWithout,
      dbFile: dbDir ? path.join(dbDir, 'temporal.db') : undefined,
    });
    stops.push(async () => {
      await server.stop();
      if (dbDir) fs.rmSync(dbDir, { recursive: true, force: true });
    });
    temporalAddress = server.address;
    temporalPid = server.pid;
  }
  const base = adminUrl;
  return {
    adminUrl: base,
    async databaseUrl(name: string) {
      await ensureDatabase(base, name);
      const url = new URL(base);
      url.pathname = `/${name}`;
      return url.toString();
    },
    temporalAddress,
    postgresPid,
    temporalPid,
    stop: async () => {
      for (const stop of stops.reverse()) await stop().catch(() => undefined);
    },
  };
}
