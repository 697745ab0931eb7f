import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import type { Pool } from 'pg';
import request from 'supertest';
import { createApp } from '../../api/app';
import type { WaitLimiter } from '../../api/wait-limits';
import type { EventStore } from '../../eventstore/event-store';
import { formatPosition, parsePosition } from '../../eventstore/event-store';
import { accountBalancesProjection } from '../../projections/account-balances-projection';
import { projectionWatcher, waitForProjection } from '../../projections/projection-runner';
import { ApiStack, TEST_OPERATOR_KEY } from '../support/api-stack';
import { waitUntil } from '../support/wait-until';

/**
 * Long waits as a lever (issue 23, item 6): hundreds of ?minPosition reads that could not be answered each polled the
 * database every 25 ms for 10 s, and slowed every other key's requests. Now each API key has a cap of waits in
 * progress (429 with Retry-After beyond it, other keys unaffected; ?wait long polls count too), and the waiters of a
 * projection are woken from one shared read of its progress, so the reads do not grow with the number of waiters.
 */
describe('waits for the read models: a cap per key, one shared watcher per projection', () => {
  const CAP = 2;
  let api: ApiStack;
  let app: Express;
  let limiter: WaitLimiter;

  const operator = () => request.agent(app).set('Authorization', `Bearer ${TEST_OPERATOR_KEY}`);
  const as = (secret: string) => request.agent(app).set('Authorization', `Bearer ${secret}`);

  async function createKey(ownerId: string): Promise<{ keyId: string; secret: string }> {
    const res = await operator().post('/api-keys').send({ role: 'customer', ownerId });
    expect(res.status).toBe(201);
    return { keyId: res.body.keyId as string, secret: res.body.secret as string };
  }

  async function openAccount(ownerId: string, initialDeposit: number): Promise<string> {
    const res = await operator().post('/accounts').send({ ownerId, currency: 'EUR', initialDeposit });
    expect(res.status).toBe(201);
    return res.body.accountId as string;
  }

  /** A position no projection can reach for a long while: far beyond the log's head. */
  async function unreachable(): Promise<string> {
    const head = (await api.store.headPosition())!;
    return formatPosition({ commit: head.commit + 1_000_000_000n, prepare: 0n });
  }

  beforeAll(async () => {
    // The projections do not run while a test does not start them: a read with ?minPosition of a new write waits.
    api = await ApiStack.create('consistency_waits', { startProjections: false });
    // Their read models and checkpoints exist (the projections ran once).
    const once = await api.startProjections();
    await once.stop();
    // Its own app, with a cap of 2 waits per key and waits bounded only by the test (the outcome is asserted, not timing).
    app = createApp({
      ...api.deps,
      maxConsistencyWaitMs: 600_000,
      access: { ...api.deps.access, maxConcurrentWaitsPerKey: CAP },
    });
    limiter = app.locals.waitLimiter as WaitLimiter;
  });
  afterAll(async () => {
    await api?.close();
  });

  test('beyond its cap a key is refused (429, Retry-After) while another key waits; the waiters are woken when the projection reaches the position', async () => {
    const [first, second] = [await createKey('wait-alice'), await createKey('wait-alice')];
    const account = await openAccount('wait-alice', 1_000);
    const deposit = await operator().post(`/accounts/${account}/deposits`).send({ amount: 250 });
    expect(deposit.status).toBe(200);
    const minPosition = deposit.body.position as string;
    const read = (secret: string) => as(secret).get(`/accounts/${account}`).query({ minPosition });

    // The first key's two waits (the projection is not running: they wait) fill its cap.
    const waiting = [read(first.secret).then((r) => r), read(first.secret).then((r) => r)];
    await waitUntil('the first key to have 2 waits in progress', () => limiter.inProgress(first.keyId) === CAP, 60_000, 20);

    const refused = await read(first.secret);
    expect(refused.status).toBe(429);
    expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(refused.body).toMatchObject({ type: '/problems/too-many-waits', status: 429, maxConcurrentWaits: CAP });
    expect(refused.body.errors).toEqual([expect.objectContaining({ field: 'minPosition' })]);
    const retryAfter = Number(refused.headers['retry-after']);
    expect(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 600).toBe(true);
    expect(refused.body.retryAfterSeconds).toBe(retryAfter);

    // Another key of the same owner is not held back by the first key's waits: its wait gets a slot.
    waiting.push(read(second.secret).then((r) => r));
    await waitUntil('the second key to have its wait in progress', () => limiter.inProgress(second.keyId) === 1, 60_000, 20);
    expect(limiter.inProgress(first.keyId)).toBe(CAP);

    // GET /transfers/{id}?wait= is a wait too: counted under the same cap of the operator's key.
    const operatorWaits = [
      operator()
        .get(`/accounts/${account}`)
        .query({ minPosition })
        .then((r) => r),
      operator()
        .get(`/accounts/${account}/history`)
        .query({ minPosition })
        .then((r) => r),
    ];
    await waitUntil('the operator to have 2 waits in progress', () => limiter.inProgress('env-operator') === CAP, 60_000, 20);
    const longPoll = await operator().get('/transfers/no-such-transfer').query({ wait: 5 });
    expect(longPoll.status).toBe(429);
    expect(longPoll.headers['retry-after']).toMatch(/^\d+$/);
    expect(longPoll.body.errors).toEqual([expect.objectContaining({ field: 'wait' })]);

    // The projections start, in their own store and pool as the projections process has them: every waiter is woken.
    api.projections = await api.startProjections({ ownStore: true });
    try {
      const answers = await Promise.all(waiting);
      expect(answers.map((r) => [r.status, r.body.balance])).toEqual([
        [200, 1_250],
        [200, 1_250],
        [200, 1_250],
      ]);
      expect((await Promise.all(operatorWaits)).map((r) => r.status)).toEqual([200, 200]);
      // Every slot was given back.
      expect([first.keyId, second.keyId, 'env-operator'].map((k) => limiter.inProgress(k))).toEqual([0, 0, 0]);
      // A read whose position is reached takes no slot: as many as the key likes.
      const reached = await Promise.all(Array.from({ length: CAP + 3 }, () => read(first.secret).then((r) => r.status)));
      expect(reached).toEqual(Array(CAP + 3).fill(200));
    } finally {
      await api.projections.stop();
      api.projections = undefined;
    }
  });

  test('a wait whose client went away gives its slot back (an abandoned wait does not hold the cap)', async () => {
    const key = await createKey('wait-bob');
    const account = await openAccount('wait-bob', 100);
    const minPosition = await unreachable();
    const server = await new Promise<http.Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    try {
      const { port } = server.address() as AddressInfo;
      const path = `/accounts/${account}?minPosition=${minPosition}`;
      const abandoned = http.get({ host: '127.0.0.1', port, path, headers: { authorization: `Bearer ${key.secret}` } });
      abandoned.on('error', () => undefined); // destroyed below, on purpose
      await waitUntil('the wait to hold a slot', () => limiter.inProgress(key.keyId) === 1, 60_000, 20);
      abandoned.destroy();
      await waitUntil('the slot to be given back', () => limiter.inProgress(key.keyId) === 0, 60_000, 20);
      // And the key may wait again at once.
      const again = http.get({ host: '127.0.0.1', port, path, headers: { authorization: `Bearer ${key.secret}` } });
      again.on('error', () => undefined);
      await waitUntil('a new wait to hold a slot', () => limiter.inProgress(key.keyId) === 1, 60_000, 20);
      again.destroy();
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  /** A store and a pool that record each call that reaches the database (the store's methods; the pool's queries). */
  function counted(calls: string[]): { store: EventStore; pool: Pool } {
    const wrap = <T extends object>(target: T, counts: (name: string) => boolean, label: string): T =>
      new Proxy(target, {
        get(t, key) {
          const value = Reflect.get(t, key, t) as unknown;
          if (typeof value !== 'function') return value;
          const method = value as (...args: unknown[]) => unknown;
          return (...args: unknown[]) => {
            if (counts(String(key))) calls.push(`${label}.${String(key)}`);
            return method.apply(t, args);
          };
        },
      });
    return {
      store: wrap(api.store as EventStore, () => true, 'store'),
      pool: wrap(api.readModels, (name) => name === 'query' || name === 'connect', 'pool'),
    };
  }

  test('the reads made for M waiters of one projection do not grow with M, and all of them are woken by its progress', async () => {
    const account = await openAccount('wait-carol', 500);
    const deposit = await operator().post(`/accounts/${account}/deposits`).send({ amount: 1 });
    expect(deposit.status).toBe(200);
    const position = parsePosition(deposit.body.position as string)!;

    /** M waiters on their own watcher (their own wrapped store and pool): the calls made during three of its reads. */
    const group = async (m: number) => {
      const calls: string[] = [];
      const { store, pool } = counted(calls);
      let holding = 0;
      const options = {
        beforeWaiting: () => {
          holding += 1;
          return () => void (holding -= 1);
        },
      };
      const watcher = projectionWatcher(store, pool, accountBalancesProjection);
      const firstLook = watcher.afterRead();
      const waits = Array.from({ length: m }, () => waitForProjection(store, pool, accountBalancesProjection, position, 600_000, options));
      await firstLook;
      // Nobody was answered at the first look (the projection is not running): each of them waits.
      expect([watcher.waiting, holding]).toEqual([m, m]);
      calls.length = 0;
      for (let i = 0; i < 3; i++) await watcher.afterRead();
      return { m, during: [...calls], waits, holding: () => holding };
    };
    const [one, many] = await Promise.all([group(1), group(40)]);
    expect(one.during.length).toBeGreaterThan(0);
    expect(one.during.length).toBeLessThanOrEqual(3 * 4);
    expect(many.during).toEqual(one.during);

    // The projection runs again (in its own store and pool): every waiter of both groups is answered 'reached'.
    api.projections = await api.startProjections({ ownStore: true });
    try {
      const answers = await Promise.all([...one.waits, ...many.waits]);
      expect(answers).toEqual(Array(41).fill({ state: 'reached' }));
      expect([one.holding(), many.holding()]).toEqual([0, 0]);
    } finally {
      await api.projections.stop();
      api.projections = undefined;
    }
  });
});
