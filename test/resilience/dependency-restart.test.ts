import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { findFreePort } from '../../infra/ports';
import { descendantsOf } from '../../infra/process-table';
import { findOrInstallTemporalCli, type TemporalCli } from '../../infra/temporal-cli';
import { startTemporalDevServer, type RunningDevServer } from '../../infra/temporal-dev-server';
import {
  alive,
  foldedBalances,
  http,
  launch,
  openAccount,
  outcomes,
  readModelAgrees,
  RUNNING,
  submitTransfers,
  until,
  type Launched,
} from '../stack/launcher-harness';
import { startPostgresServer, type PostgresServer } from './postgres-server';

/**
 * A restart of PostgreSQL or of Temporal never ends the service. The service (the real launcher,
 * `npm start`, pointed at servers of its own with DATABASE_URL and TEMPORAL_ADDRESS) runs against a
 * dedicated PostgreSQL and a dedicated Temporal dev server that this test kills (SIGKILL, under
 * load) and starts again on the same port and data. Meanwhile /ready says what is down; afterwards
 * every transfer reaches its outcome and money is conserved.
 */
jest.setTimeout(240_000);

const ACCOUNTS = 8;
const OPENING_BALANCE = 2_000;

describe('the service survives restarts of PostgreSQL and Temporal', () => {
  let dir: string;
  let pgPort: number;
  let temporalPort: number;
  let cli: TemporalCli;
  let pg: PostgresServer | undefined;
  let temporal: RunningDevServer | undefined;
  let service: Launched;
  let port: number;
  const accounts: string[] = [];
  const transferIds: string[] = [];

  const startPostgres = async () => {
    await pg?.stop();
    pg = await startPostgresServer(path.join(dir, 'pg'), pgPort);
    return pg;
  };
  const startTemporal = async () => {
    temporal = await startTemporalDevServer({ cli, port: temporalPort, dbFile: path.join(dir, 'temporal.sqlite'), namespace: 'default' });
    return temporal;
  };

  /** SIGKILL, then wait until the process and everything it started are gone. */
  const kill = async (pid: number, what: string) => {
    const family = [pid, ...descendantsOf(pid)];
    process.kill(pid, 'SIGKILL');
    await until(`${what} to be gone`, () => family.every((p) => !alive(p)), 30_000);
  };

  const ready = async () => {
    const r = await http(port, 'GET', '/ready').catch((error: Error) => ({ status: 0, body: error.message }));
    return r as { status: number; body: { checks?: Record<string, { ok: boolean; error?: string }> } };
  };

  const expectServiceAlive = () => {
    if (service.child.exitCode !== null || service.child.signalCode !== null) {
      throw new Error(`the service exited (${service.child.exitCode ?? service.child.signalCode}):\n${service.output().slice(-6000)}`);
    }
  };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'transfer-service-restart-'));
    [pgPort, temporalPort, port] = [await findFreePort(), await findFreePort(), await findFreePort()];
    cli = await findOrInstallTemporalCli({ log: () => undefined });
    await Promise.all([startPostgres(), startTemporal()]);
    service = launch({
      DATA_DIR: path.join(dir, 'stack'),
      PORT: String(port),
      DATABASE_URL: pg!.url,
      TEMPORAL_ADDRESS: temporal!.address,
      TASK_QUEUE: 'restart-test',
    });
    await until('the service to be running', () => service.output().includes(RUNNING), 180_000, service);
    for (let i = 0; i < ACCOUNTS; i++) accounts.push(await openAccount(port, OPENING_BALANCE));
  });

  afterAll(async () => {
    if (service && service.child.exitCode === null && service.child.signalCode === null) {
      service.child.kill('SIGTERM');
      await Promise.race([service.exited, new Promise((r) => setTimeout(r, 30_000))]);
    }
    await temporal?.stop().catch(() => undefined);
    await pg?.stop().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('PostgreSQL killed and restarted under load: the service stays up, /ready names it while it is down, every transfer reaches its outcome', async () => {
    const load = submitTransfers(port, accounts, 30, 4, 'pg');
    await until('some transfers to be submitted', async () => (await http(port, 'GET', '/metrics')).status === 200, 10_000);
    await new Promise((r) => setTimeout(r, 1500));

    await kill(pg!.pid, 'PostgreSQL');
    // While it is down: the process is alive, /ready answers 503 and names PostgreSQL.
    await until(
      '/ready to report PostgreSQL down',
      async () => {
        const r = await ready();
        return r.status === 503 && r.body.checks?.postgres?.ok === false;
      },
      20_000,
      service,
    );
    await new Promise((r) => setTimeout(r, 3000));
    expectServiceAlive();

    await startPostgres();
    await until('/ready to be 200 again', async () => (await ready()).status === 200, 60_000, service);
    transferIds.push(...(await load));
    const settled = await outcomes(port, transferIds, 150_000);
    expect(Object.values(settled).every((s) => ['completed', 'failed', 'compensated'].includes(s))).toBe(true);
    expectServiceAlive();
  });

  test('Temporal killed and restarted under load: the service stays up, /ready names it while it is down, every transfer reaches its outcome', async () => {
    const load = submitTransfers(port, accounts, 30, 4, 'temporal');
    await new Promise((r) => setTimeout(r, 2000));

    await kill(temporal!.pid!, 'the Temporal dev server');
    await until(
      '/ready to report Temporal down',
      async () => {
        const r = await ready();
        return r.status === 503 && r.body.checks?.temporal?.ok === false;
      },
      20_000,
      service,
    );
    await new Promise((r) => setTimeout(r, 3000));
    expectServiceAlive();

    await startTemporal();
    await until('/ready to be 200 again', async () => (await ready()).status === 200, 60_000, service);
    const ids = await load;
    transferIds.push(...ids);
    const settled = await outcomes(port, ids, 150_000);
    expect(Object.values(settled).every((s) => ['completed', 'failed', 'compensated'].includes(s))).toBe(true);
    expectServiceAlive();

    // Money is conserved over both outages: the balances folded from the event store add up, none
    // is negative, and the read model (its consumer groups resumed) agrees.
    const folded = await foldedBalances(port, accounts);
    expect(folded.every((b) => b >= 0)).toBe(true);
    expect(folded.reduce((a, b) => a + b, 0)).toBe(ACCOUNTS * OPENING_BALANCE);
    await until('the balances read model to agree with the event store', () => readModelAgrees(port, accounts, folded), 60_000, service);
    // Nothing was parked while the database was away (an outage is not a poison event).
    const client = new Client({ connectionString: pg!.url });
    await client.connect();
    try {
      const parked = await client.query<{ group_name: string; error: string }>('SELECT group_name, error FROM es_parked_events');
      expect(parked.rows).toEqual([]);
    } finally {
      await client.end();
    }
  });
});
