import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { RecordedEvent } from '../../eventstore/event-store';
import { accountBalancesProjection } from '../../projections/account-balances-projection';
import { accountHistoryProjection } from '../../projections/account-history-projection';
import { ALL_PROJECTIONS } from '../../projections/all-projections';
import type { BatchProjection, Projection } from '../../projections/projection';
import { groupName, ProjectionRunner } from '../../projections/projection-runner';
import { transfersProjection } from '../../projections/transfers-projection';
import { ApiStack, resilientPool, withApplicationName } from '../support/api-stack';
import { expectReadModelsToMatchStore } from '../support/read-model-checks';
import { waitUntil } from '../support/wait-until';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '../..');
const POISON_AMOUNT = 666;
const GROUP = groupName(accountBalancesProjection);
/** What `npm run projections:parked` runs (spawned directly: npm itself would only add its start-up time). */
const parkedScript = () =>
  (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string | undefined> }).scripts[
    'projections:parked'
  ]?.replace(/^tsx /, '') ?? 'no-projections-parked-script';

/** The value of one Prometheus sample, e.g. metric('projection_parked_events', 'account-balances'). */
function metric(text: string, name: string, projection: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{projection="${projection}"}`));
  if (!line) throw new Error(`no ${name} for ${projection} in /metrics`);
  return Number(line.split(' ').at(-1));
}

/**
 * A poison event in a real projection: the balances projection as released with a bug that throws on one
 * kind of event (a deposit of 666), then fixed. The fixed code is the real projection.
 */
describe('projections: a parked event degrades its read model visibly, without a cascade, and a replay repairs it', () => {
  let api: ApiStack;
  const attempts = new Map<string, number>();
  // The bug is in the projection's code, so both of its ways of applying events have it: one event at a time (apply)
  // and a batch in one statement (planBatch).
  const attempt = (event: RecordedEvent) => {
    attempts.set(event.id, (attempts.get(event.id) ?? 0) + 1);
    if (event.type === 'MoneyDeposited' && (event.data as { amount?: number }).amount === POISON_AMOUNT) {
      throw new Error(`projection bug: cannot apply a deposit of ${POISON_AMOUNT}`);
    }
  };
  const buggyBalances: BatchProjection = {
    ...accountBalancesProjection,
    async apply(client, event, tables) {
      attempt(event);
      return accountBalancesProjection.apply(client, event, tables);
    },
    planBatch(events, tables) {
      events.forEach(attempt);
      return accountBalancesProjection.planBatch(events, tables);
    },
  };
  const startRunner = async (projections: readonly Projection[]) => {
    const pool = resilientPool(withApplicationName(api.stack.db.url, 'parked-test-projections'), 5);
    const runner = new ProjectionRunner(api.store, pool, projections, {}, { maxAttempts: 3, retryBackoffMs: 20 });
    await runner.start();
    return { stop: async () => (await runner.stop(), await pool.end()) };
  };
  const cli = async (...args: string[]) => {
    try {
      const { stdout } = await run(path.join(ROOT, 'node_modules/.bin/tsx'), [parkedScript(), ...args], {
        cwd: ROOT,
        env: { ...process.env, DATABASE_URL: api.stack.db.url, EVENT_STORE: 'postgres', LOG_LEVEL: 'error' },
        timeout: 90_000,
      });
      return { code: 0, stdout };
    } catch (error) {
      const e = error as { code?: number; stdout?: string; stderr?: string };
      return { code: e.code ?? -1, stdout: `${e.stdout ?? ''}${e.stderr ?? ''}` };
    }
  };
  const open = async (initialDeposit: number) => {
    const res = await api.http().post('/accounts').send({ ownerId: 'parked', currency: 'EUR', initialDeposit });
    expect(res.status).toBe(201);
    return res.body as { accountId: string; position: string };
  };
  const deposit = async (accountId: string, amount: number) => {
    const res = await api.http().post(`/accounts/${accountId}/deposits`).send({ amount });
    expect(res.status).toBe(200);
    return res.body as { position: string; balance: number };
  };
  const eventAt = async (accountId: string, revision: number): Promise<RecordedEvent> =>
    (await api.store.readStream(`account-${accountId}`))[revision]!;

  beforeAll(async () => {
    api = await ApiStack.create('proj_parked', { startProjections: false, maxConsistencyWaitMs: 3_000 });
  });
  afterAll(async () => api?.close());

  test('poison event: parked after its retries, later events of its stream parked behind it at once, degraded everywhere, then repaired by a replay', async () => {
    let runner = await startRunner([buggyBalances, accountHistoryProjection, transfersProjection]);
    const a = await open(1_000);
    const b = await open(1_000);

    // The poison event: parked after its retries (3 here; ~25 s in production).
    await deposit(a.accountId, POISON_AMOUNT);
    const poison = await eventAt(a.accountId, 2);
    await waitUntil('the poison event to be parked', async () => (await api.store.listParked(GROUP)).length === 1);
    expect(attempts.get(poison.id)).toBeGreaterThanOrEqual(3);

    // Later events of the same account: parked behind it at once, never attempted. Another account flows.
    await deposit(a.accountId, 100);
    await api.http().post(`/accounts/${a.accountId}/withdrawals`).send({ amount: 50 }).expect(200);
    const last = await deposit(a.accountId, 200);
    const other = await deposit(b.accountId, 200);
    await waitUntil(
      'the other account to be projected',
      async () =>
        (await api.readModels.query('SELECT balance FROM rm_account_balances WHERE account_id = $1', [b.accountId])).rows[0]?.balance ===
        '1200',
    );
    const parked = await waitUntil('the later events of the poisoned stream to be parked', async () => {
      const p = await api.store.listParked(GROUP);
      return p.length === 4 ? p : undefined;
    });
    expect(parked.map((p) => [p.event.stream, Number(p.event.revision), p.blocked])).toEqual([
      [`account-${a.accountId}`, 2, false],
      [`account-${a.accountId}`, 3, true],
      [`account-${a.accountId}`, 4, true],
      [`account-${a.accountId}`, 5, true],
    ]);
    for (const p of parked.slice(1)) expect(attempts.get(p.event.id)).toBeUndefined(); // no handler call, no 25 s each
    expect(parked[0]!.error).toContain(`cannot apply a deposit of ${POISON_AMOUNT}`);

    // No silent divergence: the lag counts the parked events, the parked gauge shows them, /ready says degraded.
    const metrics = (await api.http().get('/metrics').expect(200)).text;
    expect(metric(metrics, 'projection_parked_events', 'account-balances')).toBe(4);
    expect(metric(metrics, 'projection_lag_events', 'account-balances')).toBe(4);
    expect(metric(metrics, 'projection_lag_seconds', 'account-balances')).toBeGreaterThan(0);
    expect(metric(metrics, 'projection_parked_events', 'account-history')).toBe(0);
    expect(metric(metrics, 'projection_lag_events', 'account-history')).toBe(0);
    const ready = await api.http().get('/ready');
    expect(ready.status).toBe(200);
    expect(ready.body.status).toBe('degraded');
    expect(ready.body.projections['account-balances']).toMatchObject({ status: 'degraded', parkedEvents: 4 });
    expect(ready.body.projections['account-history']).toMatchObject({ status: 'ok', parkedEvents: 0 });

    // Read-your-writes past the parked event is refused, not answered with stale data.
    const stale = await api.http().get(`/accounts/${a.accountId}`).query({ minPosition: last.position });
    expect(stale.status).toBe(503);
    expect(stale.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(stale.body).toMatchObject({ type: '/problems/projection-degraded', projection: 'account-balances', parkedEvents: 4 });
    // Another account's read is not held back by a parked event it has nothing to do with (issue 23, item 8).
    const otherRead = await api.http().get(`/accounts/${b.accountId}`).query({ minPosition: other.position });
    expect(otherRead.status).toBe(200);
    expect(otherRead.body).toMatchObject({ accountId: b.accountId, balance: 1_200 });
    // Before the parked event, and in a projection without parked events, reads are answered.
    const early = await api.http().get(`/accounts/${b.accountId}`).query({ minPosition: b.position });
    expect(early.status).toBe(200);
    const history = await api.http().get(`/accounts/${a.accountId}/history`).query({ minPosition: last.position });
    expect(history.status).toBe(200);
    expect(history.body.movements).toHaveLength(5);

    // The operator's view.
    const listed = await cli('list', 'account-balances');
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain('account-balances (group projection-account-balances): 4 parked (3 blocked');
    expect(listed.stdout).toContain(`account-${a.accountId}@2  MoneyDeposited`);
    expect(listed.stdout).toContain(`cannot apply a deposit of ${POISON_AMOUNT}`);

    // The fix ships (the real projection), then a replay: the read model equals the fold of the log again.
    await runner.stop();
    runner = await startRunner(ALL_PROJECTIONS);
    const replayed = await cli('replay', 'account-balances', '--wait', '60');
    expect(replayed.stdout).toContain('account-balances: 4 handled, 0 parked again, 0 not delivered yet; 0 parked now');
    expect(replayed.code).toBe(0);
    await expectReadModelsToMatchStore(api.store, api.readModels);
    const fresh = await api.http().get(`/accounts/${a.accountId}`).query({ minPosition: last.position });
    expect(fresh.status).toBe(200);
    expect(fresh.body.balance).toBe(1_000 + POISON_AMOUNT + 100 - 50 + 200);
    expect((await api.http().get('/ready').expect(200)).body.status).toBe('ready');
    const after = (await api.http().get('/metrics').expect(200)).text;
    expect(metric(after, 'projection_parked_events', 'account-balances')).toBe(0);
    expect(metric(after, 'projection_lag_events', 'account-balances')).toBe(0);
    await runner.stop();
  });
});
