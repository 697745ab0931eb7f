import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { findFreePort } from '../../infra/ports';
import { descendantsOf } from '../../infra/process-table';
import { alive, launch, until, type Launched } from './launcher-harness';

/**
 * `npm start` end to end: the real launcher with its own embedded PostgreSQL and Temporal dev
 * server (on free ports, in a throwaway data directory), /health answering, a clean stop on
 * SIGTERM with no process left behind, data kept across restarts, and a clear error for a taken port.
 */
describe('npm start (the local stack launcher)', () => {
  let dataDir: string;
  let env: Record<string, string>;
  const launchedAll: Launched[] = [];

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'transfer-service-stack-'));
    env = {
      DATA_DIR: dataDir,
      PORT: String(await findFreePort()),
      TEMPORAL_PORT: String(await findFreePort()),
      TEMPORAL_UI_PORT: String(await findFreePort()),
      POSTGRES_PORT: String(await findFreePort()),
      DATABASE_URL: '',
      TEMPORAL_ADDRESS: '',
      OPERATOR_API_KEY: '', // unset: the first start makes the operator key
    };
  });
  afterAll(async () => {
    for (const l of launchedAll) if (l.child.exitCode === null) l.child.kill('SIGKILL');
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('starts, answers /health and /ready, prints the URLs, and stops cleanly on SIGTERM leaving nothing behind', async () => {
    const stack = launch(env);
    launchedAll.push(stack);
    await until('the stack to be running', () => stack.output().includes('The transfer service is running'), 180_000, stack);
    expect(stack.output()).toContain(`http://localhost:${env.PORT}`);
    expect(stack.output()).toContain(`Temporal UI    http://localhost:${env.TEMPORAL_UI_PORT}`);
    const health = await fetch(`http://127.0.0.1:${env.PORT}/health`);
    expect(health.status).toBe(200);
    const ready = await fetch(`http://127.0.0.1:${env.PORT}/ready`);
    expect(ready.status).toBe(200);
    const ui = await fetch(`http://127.0.0.1:${env.TEMPORAL_UI_PORT}/`);
    expect(ui.status).toBe(200);
    // The web console links sagas to that UI (TEMPORAL_UI_URL defaults to the dev server's).
    expect(stack.output()).toContain(`Console        http://localhost:${env.PORT}/console`);
    expect(await (await fetch(`http://127.0.0.1:${env.PORT}/console/config.json`)).json()).toEqual({
      temporalUiUrl: `http://localhost:${env.TEMPORAL_UI_PORT}`,
      temporalNamespace: 'default',
    });

    // No OPERATOR_API_KEY: the first start made one, kept it in DATA_DIR (mode 0600) and printed how to use it, not the key.
    const keyFile = path.join(dataDir, 'operator-api-key');
    const key = fs.readFileSync(keyFile, 'utf8').trim();
    expect(key.length).toBeGreaterThanOrEqual(32);
    expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(stack.output()).toContain(`export TOKEN=$(cat ${keyFile})`);
    expect(stack.output()).not.toContain(key);
    const anonymous = await fetch(`http://127.0.0.1:${env.PORT}/accounts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(anonymous.status).toBe(401);

    // Leave some data behind for the restart test.
    const opened = await fetch(`http://127.0.0.1:${env.PORT}/accounts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ ownerId: 'restart', currency: 'EUR', initialDeposit: 4242 }),
    });
    expect(opened.status).toBe(201);
    const { accountId } = (await opened.json()) as { accountId: string };
    fs.writeFileSync(path.join(dataDir, 'account-id'), accountId);

    // A transfer, started eagerly: the API shares the worker's connection, so the server hands the saga's first
    // workflow task straight back with the start; with Prefer: wait it answers 201 with the outcome.
    const other = await fetch(`http://127.0.0.1:${env.PORT}/accounts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ ownerId: 'restart', currency: 'EUR' }),
    });
    const target = ((await other.json()) as { accountId: string }).accountId;
    const moved = await fetch(`http://127.0.0.1:${env.PORT}/transfers`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, prefer: 'wait=10' },
      body: JSON.stringify({ fromAccountId: accountId, toAccountId: target, amount: 42 }),
    });
    expect(moved.status).toBe(201);
    expect(((await moved.json()) as { status: string }).status).toBe('completed');
    const readMetrics = async () =>
      (await fetch(`http://127.0.0.1:${env.PORT}/metrics`, { headers: { authorization: `Bearer ${key}` } })).text();
    expect(await readMetrics()).toMatch(/^transfer_saga_starts_total\{eager="true"\} 1$/m);
    // The projections run on a thread of their own; what they applied reaches this process's metrics, and the read models.
    await until(
      'the projections thread to count the completed transfer',
      async () => /^transfers_total\{outcome="completed"\} 1$/m.test(await readMetrics()),
      20_000,
      stack,
    );
    expect(await readMetrics()).toMatch(/^projection_events_total\{projection="account-balances",outcome="applied"\} [1-9]/m);
    await until(
      "the projections thread to project the target's credit",
      async () => {
        const view = await fetch(`http://127.0.0.1:${env.PORT}/accounts/${target}`, { headers: { authorization: `Bearer ${key}` } });
        return ((await view.json()) as { balance: number }).balance === 42;
      },
      20_000,
      stack,
    );
    expect((await (await fetch(`http://127.0.0.1:${env.PORT}/ready`)).json()) as unknown).toMatchObject({
      status: 'ready',
      checks: { worker: { ok: true }, projections: { ok: true } },
    });

    const descendants = descendantsOf(stack.child.pid!);
    expect(descendants.length).toBeGreaterThan(0);
    stack.child.kill('SIGTERM');
    expect((await stack.exited).code).toBe(0);
    await until('every child process to exit', () => descendants.every((pid) => !alive(pid)), 20_000, stack);
  });

  test('a second start keeps the data of the first', async () => {
    const stack = launch(env);
    launchedAll.push(stack);
    await until('the stack to be running', () => stack.output().includes('The transfer service is running'), 180_000, stack);
    const accountId = fs.readFileSync(path.join(dataDir, 'account-id'), 'utf8');
    // The same key as the first start's (kept in DATA_DIR).
    const key = fs.readFileSync(path.join(dataDir, 'operator-api-key'), 'utf8').trim();
    const response = await fetch(
      `http://127.0.0.1:${env.PORT}/accounts/${accountId}/balance?asOf=${encodeURIComponent(new Date().toISOString())}`,
      { headers: { authorization: `Bearer ${key}` } },
    );
    expect(response.status).toBe(200);
    expect(((await response.json()) as { balance: number }).balance).toBe(4242 - 42);
    stack.child.kill('SIGINT');
    expect((await stack.exited).code).toBe(0);
  });

  test('a port already taken gives a clear error naming the port and the variable that moves it', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(Number(env.PORT), '127.0.0.1', resolve));
    try {
      const stack = launch(env);
      launchedAll.push(stack);
      expect((await stack.exited).code).toBe(1);
      expect(stack.output()).toContain(`Port ${env.PORT}`);
      expect(stack.output()).toContain('PORT=');
    } finally {
      blocker.close();
    }
  });

  test('a bad configuration value stops it at start, naming the variable', async () => {
    const stack = launch({ ...env, EVENT_STORE: 'mysql' });
    launchedAll.push(stack);
    expect((await stack.exited).code).toBe(2);
    expect(stack.output()).toContain('EVENT_STORE');
  });
});
