import { randomUUID } from 'node:crypto';
import express from 'express';
import request, { type Response } from 'supertest';
import { accountsRoutes } from '../../api/accounts-routes';
import { IDEMPOTENCY_KEYS_TABLE, IdempotencyStore } from '../../stores/idempotency-store';
import { accountIdForKey, keyedEventIds, keyScope, requestFingerprint, type KeyedEndpoint } from '../../api/idempotent-account-writes';
import { problemHandler } from '../../api/problem';
import { accountStream } from '../../domain/account-events';
import { ApiStack, storeFingerprint } from '../support/api-stack';

/**
 * Idempotency-Key on the account writes (issue 9, item 5): POST /accounts, deposits, withdrawals,
 * close. A retry answers what the first answered and writes nothing; another request with the key
 * is 409; concurrent duplicates make one effect and all get the same answer; a retry after a crash
 * between the append and the recorded answer writes nothing and answers the same.
 */

const POSITION = /^\d+\.\d+$/;

function expectProblem(res: Response, status: number, type: string, field?: string): void {
  expect({ status: res.status, body: res.body as unknown }).toMatchObject({ status, body: { status, type } });
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  if (field) expect((res.body.errors as { field: string }[]).map((e) => e.field)).toContain(field);
}

/** Same status, same body bytes, same ETag and Location: what "answers what the first answered" means. */
function expectSameAnswer(again: Response, first: Response): void {
  expect({ status: again.status, text: again.text, etag: again.headers.etag, location: again.headers.location }).toEqual({
    status: first.status,
    text: first.text,
    etag: first.headers.etag,
    location: first.headers.location,
  });
  expect(again.headers['content-type']).toBe(first.headers['content-type']);
}

interface Case {
  endpoint: KeyedEndpoint;
  /** Sets up what the write needs; returns the request, another request for the same key, and what it writes. */
  prepare(): Promise<{ path: string; body: Record<string, unknown>; other: Record<string, unknown>; status: number; events: string[] }>;
}

describe('Idempotency-Key on account writes (real event store and read-model database)', () => {
  let api: ApiStack;

  beforeAll(async () => {
    api = await ApiStack.create('idem_keys', { startProjections: false });
    await new IdempotencyStore(api.readModels).ensureSchema();
  });
  afterAll(async () => api?.close());

  async function open(initialDeposit?: number): Promise<string> {
    const res = await api
      .http()
      .post('/accounts')
      .send({ ownerId: 'idem-owner', currency: 'EUR', ...(initialDeposit ? { initialDeposit } : {}) });
    expect(res.status).toBe(201);
    return res.body.accountId as string;
  }

  const send = (path: string, body: Record<string, unknown>, key?: string, headers: Record<string, string> = {}) => {
    const req = api.http().post(path).set(headers);
    if (key !== undefined) req.set('Idempotency-Key', key);
    return req.send(body);
  };
  const eventCount = async () => (await storeFingerprint(api.pool)).events;
  const streamTypes = async (accountId: string) => (await api.store.readStream(accountStream(accountId))).map((e) => e.type);
  const keyRows = async (key: string) =>
    Number((await api.readModels.query(`SELECT count(*) AS n FROM ${IDEMPOTENCY_KEYS_TABLE} WHERE key = $1`, [key])).rows[0].n);
  const newKey = (label: string) => `${label}-${randomUUID()}`;

  const cases: Case[] = [
    {
      endpoint: 'open-account',
      prepare: async () => ({
        path: '/accounts',
        body: { ownerId: 'carol', currency: 'EUR', initialDeposit: 5_000 },
        other: { ownerId: 'carol', currency: 'EUR', initialDeposit: 5_001 },
        status: 201,
        events: ['AccountOpened', 'MoneyDeposited'],
      }),
    },
    {
      endpoint: 'deposits',
      prepare: async () => {
        const id = await open(1_000);
        return {
          path: `/accounts/${id}/deposits`,
          body: { amount: 250 },
          other: { amount: 251 },
          status: 200,
          events: ['AccountOpened', 'MoneyDeposited', 'MoneyDeposited'],
        };
      },
    },
    {
      endpoint: 'withdrawals',
      prepare: async () => {
        const id = await open(1_000);
        return {
          path: `/accounts/${id}/withdrawals`,
          body: { amount: 300 },
          other: { amount: 301 },
          status: 200,
          events: ['AccountOpened', 'MoneyDeposited', 'MoneyWithdrawn'],
        };
      },
    },
    {
      endpoint: 'close',
      prepare: async () => {
        const id = await open();
        // Another request for a close is one with a body the route refuses... so use If-Match, part of the request.
        return {
          path: `/accounts/${id}/close`,
          body: {},
          other: { __ifMatch: '7' },
          status: 200,
          events: ['AccountOpened', 'AccountClosed'],
        };
      },
    },
  ];

  /** `other` may carry an If-Match for the close case (its body has nothing else to differ in). */
  const sendCase = (path: string, body: Record<string, unknown>, key: string) => {
    const { __ifMatch, ...rest } = body as { __ifMatch?: string };
    return send(path, rest, key, __ifMatch ? { 'If-Match': __ifMatch } : {});
  };
  const accountOf = (path: string, res: Response) => (path === '/accounts' ? (res.body.accountId as string) : path.split('/')[2]!);

  describe.each(cases)('$endpoint', (c) => {
    test('a retry after a lost response answers the same and writes nothing; the same key with another request is 409', async () => {
      const { path, body, other, status, events } = await c.prepare();
      const key = newKey('retry');
      const first = await sendCase(path, body, key);
      expect(first.status).toBe(status);
      expect(first.body.position).toMatch(POSITION);
      expect(first.headers['idempotent-replayed']).toBeUndefined();
      const accountId = accountOf(path, first);
      if (c.endpoint === 'open-account') {
        expect(accountId).toBe(accountIdForKey(key));
        expect(first.headers.location).toBe(`/accounts/${accountId}`);
      }
      expect(await streamTypes(accountId)).toEqual(events);
      const before = await eventCount();

      for (let i = 0; i < 2; i++) {
        const again = await sendCase(path, body, key);
        expectSameAnswer(again, first);
        expect(again.headers['idempotent-replayed']).toBe('true');
      }
      const mismatch = await sendCase(path, other, key);
      expectProblem(mismatch, 409, '/problems/idempotency-key-reused', 'Idempotency-Key');
      expect(await eventCount()).toBe(before);
      expect(await streamTypes(accountId)).toEqual(events);
      // The first request's answer is still the key's answer.
      expectSameAnswer(await sendCase(path, body, key), first);
    });

    test('a retry after a crash between the append and the recorded answer writes nothing and answers the same', async () => {
      const { path, body, status, events } = await c.prepare();
      const key = newKey('crash');
      const first = await sendCase(path, body, key);
      expect(first.status).toBe(status);
      const accountId = accountOf(path, first);
      const before = await eventCount();
      // Exactly what a process that died after its append leaves: the claim, no answer, its lease run out.
      const reset = await api.readModels.query(
        `UPDATE ${IDEMPOTENCY_KEYS_TABLE} SET status = NULL, headers = NULL, body = NULL, completed_at = NULL, owner = $2, locked_until = now() - interval '1 second' WHERE key = $1`,
        [key, randomUUID()],
      );
      expect(reset.rowCount).toBe(1);

      const retry = await sendCase(path, body, key);
      expectSameAnswer(retry, first);
      expect(retry.headers['idempotent-replayed']).toBeUndefined(); // rebuilt from the events, not replayed from the record
      expect(await eventCount()).toBe(before);
      expect(await streamTypes(accountId)).toEqual(events);
      // The rebuilt answer is now the record's.
      const replay = await sendCase(path, body, key);
      expectSameAnswer(replay, first);
      expect(replay.headers['idempotent-replayed']).toBe('true');
    });

    test('concurrent duplicates (8 at once, same key): one effect, every one gets the same answer', async () => {
      const { path, body, status, events } = await c.prepare();
      const key = newKey('parallel');
      const before = await eventCount();
      const responses = await Promise.all(Array.from({ length: 8 }, () => sendCase(path, body, key)));
      for (const res of responses) expectSameAnswer(res, responses[0]!);
      expect(responses[0]!.status).toBe(status);
      expect(responses.filter((r) => r.headers['idempotent-replayed'] === undefined)).toHaveLength(1);
      const accountId = accountOf(path, responses[0]!);
      expect(await streamTypes(accountId)).toEqual(events);
      const written = c.endpoint === 'open-account' ? 2 : 1;
      expect(await eventCount()).toBe(before + written);
      const state = await api.accounts.loadWithoutSnapshot(accountId);
      expect(state.state.balance).toBe(responses[0]!.body.balance);
    });

    test('invalid keys (empty, 256 characters, a space, other characters) are 400 naming Idempotency-Key, and nothing is written', async () => {
      const { path, body } = await c.prepare();
      const before = await eventCount();
      const rowsBefore = Number((await api.readModels.query(`SELECT count(*) AS n FROM ${IDEMPOTENCY_KEYS_TABLE}`)).rows[0].n);
      for (const bad of ['', 'k'.repeat(256), 'has space', 'semi;colon', 'a,b', 'quote"d', 'caf\u00e9']) {
        const res = await sendCase(path, body, bad);
        expectProblem(res, 400, '/problems/validation-error', 'Idempotency-Key');
      }
      expect(await eventCount()).toBe(before);
      expect(Number((await api.readModels.query(`SELECT count(*) AS n FROM ${IDEMPOTENCY_KEYS_TABLE}`)).rows[0].n)).toBe(rowsBefore);
      // The longest valid key works.
      const longest = `${'k'.repeat(250)}${randomUUID().slice(0, 5)}`;
      expect((await sendCase(path, body, longest)).status).toBeLessThan(300);
    });
  });

  test('a claim left by an attempt that died before its append is taken over once its lease runs out: the write happens once', async () => {
    const accountId = await open(100);
    const key = newKey('orphan');
    const scope = keyScope('deposits', accountId);
    // An attempt that claimed the key (as the route does) and then died: a short lease, no write.
    const dead = new IdempotencyStore(api.readModels, { leaseMs: 300 });
    const claim = await dead.claim(scope, key, requestFingerprint(scope, { amount: 40, ifMatch: undefined }), 1n);
    expect(claim.kind).toBe('owner');
    const res = await send(`/accounts/${accountId}/deposits`, { amount: 40 }, key);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ accountId, balance: 140, revision: 2 });
    expect(await streamTypes(accountId)).toEqual(['AccountOpened', 'MoneyDeposited', 'MoneyDeposited']);
    // The event id is the key's: the store itself would refuse it twice.
    const [, , deposit] = await api.store.readStream(accountStream(accountId));
    expect(deposit!.id).toBe(keyedEventIds('deposits', accountId, key)[0]);
    expectSameAnswer(await send(`/accounts/${accountId}/deposits`, { amount: 40 }, key), res);
  });

  test('a duplicate that finds the claim held waits for the answer; past its wait it is 409 "in progress" with Retry-After', async () => {
    const accountId = await open(100);
    const key = newKey('held');
    const scope = keyScope('deposits', accountId);
    const holder = new IdempotencyStore(api.readModels, { leaseMs: 60_000 });
    expect((await holder.claim(scope, key, requestFingerprint(scope, { amount: 5, ifMatch: undefined }), 1n)).kind).toBe('owner');
    const waiter = new IdempotencyStore(api.readModels, { maxWaitMs: 300 });
    expect(await waiter.claim(scope, key, requestFingerprint(scope, { amount: 5, ifMatch: undefined }), 1n)).toEqual({
      kind: 'in_progress',
    });

    // Through HTTP (the route waits up to 15 s): the holder answers meanwhile, and the duplicate gets that answer.
    const pending = send(`/accounts/${accountId}/deposits`, { amount: 5 }, key);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const answer = {
      status: 200,
      headers: { 'Content-Type': 'application/json; charset=utf-8', ETag: '"9"' },
      // A body of the documented shape (every response here is checked against the OpenAPI document), unlike any the
      // duplicate could compute itself (revision 9), so the answer seen is the holder's.
      body: JSON.stringify({ accountId, balance: 105, status: 'open', revision: 9 }),
    };
    await holder.complete(scope, key, answer);
    const res = await pending;
    expect({ status: res.status, text: res.text, etag: res.headers.etag }).toEqual({ status: 200, text: answer.body, etag: '"9"' });
    expect(await streamTypes(accountId)).toEqual(['AccountOpened', 'MoneyDeposited']); // the duplicate wrote nothing itself
  });

  test('the write is idempotent without the claim: with a lease so short that every duplicate takes the key over, 8 at once still make one effect and one answer', async () => {
    // The same routes, with claims that expire at once: the concurrent duplicates all write.
    const app = express();
    app.use(express.json());
    app.use((_req, res, next) => {
      res.locals.requestId = randomUUID();
      res.locals.principal = { keyId: 'test-operator', role: 'operator' }; // what access control sets (events carry its actor)
      next();
    });
    app.use(accountsRoutes(api.deps, { idempotency: { leaseMs: 1 } }));
    app.use(problemHandler(() => undefined));
    const racing = (path: string, body: Record<string, unknown>, key: string) =>
      Promise.all(Array.from({ length: 8 }, () => request(app).post(path).set('Idempotency-Key', key).send(body)));

    const accountId = await open(1_000);
    const before = await eventCount();
    for (const [path, body] of [
      [`/accounts/${accountId}/deposits`, { amount: 11 }],
      [`/accounts/${accountId}/withdrawals`, { amount: 22 }],
    ] as const) {
      const responses = await racing(path, body, newKey('race'));
      for (const res of responses) expectSameAnswer(res, responses[0]!);
      expect(responses[0]!.status).toBe(200);
    }
    const opened = await racing('/accounts', { ownerId: 'erin', currency: 'EUR', initialDeposit: 3 }, newKey('race-open'));
    for (const res of opened) expectSameAnswer(res, opened[0]!);
    expect(opened[0]!.status).toBe(201);
    expect(await streamTypes(accountId)).toEqual(['AccountOpened', 'MoneyDeposited', 'MoneyDeposited', 'MoneyWithdrawn']);
    expect((await api.accounts.loadWithoutSnapshot(accountId)).state.balance).toBe(989);
    expect(await streamTypes(opened[0]!.body.accountId as string)).toEqual(['AccountOpened', 'MoneyDeposited']);
    expect(await eventCount()).toBe(before + 4);
  });

  test('keys are scoped per endpoint and account: the same key on another account or endpoint is another request', async () => {
    const a = await open(1_000);
    const b = await open(1_000);
    const key = newKey('scoped');
    expect((await send(`/accounts/${a}/deposits`, { amount: 10 }, key)).body).toMatchObject({ accountId: a, balance: 1_010 });
    expect((await send(`/accounts/${b}/deposits`, { amount: 10 }, key)).body).toMatchObject({ accountId: b, balance: 1_010 });
    expect((await send(`/accounts/${a}/withdrawals`, { amount: 10 }, key)).body).toMatchObject({ accountId: a, balance: 1_000 });
    expect(await streamTypes(a)).toEqual(['AccountOpened', 'MoneyDeposited', 'MoneyDeposited', 'MoneyWithdrawn']);
    expect(await streamTypes(b)).toEqual(['AccountOpened', 'MoneyDeposited', 'MoneyDeposited']);
    // POST /accounts: another key is another account.
    const one = await send('/accounts', { ownerId: 'dave', currency: 'EUR' }, newKey('open'));
    const two = await send('/accounts', { ownerId: 'dave', currency: 'EUR' }, newKey('open'));
    expect(one.body.accountId).not.toBe(two.body.accountId);
  });

  test('a refused request is the answer too: the retry replays the 422 or 412 even after the account changed', async () => {
    const accountId = await open(100);
    const key = newKey('refused');
    const refused = await send(`/accounts/${accountId}/withdrawals`, { amount: 500 }, key);
    expectProblem(refused, 422, '/problems/insufficient-funds', 'amount');
    expect((await send(`/accounts/${accountId}/deposits`, { amount: 1_000 })).status).toBe(200);
    const before = await eventCount();
    expectSameAnswer(await send(`/accounts/${accountId}/withdrawals`, { amount: 500 }, key), refused);
    expect(await eventCount()).toBe(before);

    // If-Match is part of the request: a stale one is 412, kept; another If-Match with the key is 409.
    const staleKey = newKey('stale');
    const stale = await send(`/accounts/${accountId}/deposits`, { amount: 1 }, staleKey, { 'If-Match': '"0"' });
    expectProblem(stale, 412, '/problems/precondition-failed', 'If-Match');
    expectSameAnswer(await send(`/accounts/${accountId}/deposits`, { amount: 1 }, staleKey, { 'If-Match': '"0"' }), stale);
    expectProblem(
      await send(`/accounts/${accountId}/deposits`, { amount: 1 }, staleKey, { 'If-Match': '"2"' }),
      409,
      '/problems/idempotency-key-reused',
      'Idempotency-Key',
    );
    const fresh = await send(`/accounts/${accountId}/deposits`, { amount: 1 }, newKey('fresh'), { 'If-Match': '"2"' });
    expect(fresh.status).toBe(200);
    expect(await eventCount()).toBe(before + 1);
  });

  test('keys older than 24 h are purged; on PostgreSQL a purged key still cannot write its events twice', async () => {
    const accountId = await open(100);
    const oldKey = newKey('old');
    const recentKey = newKey('recent');
    const first = await send(`/accounts/${accountId}/deposits`, { amount: 7 }, oldKey);
    expect(first.status).toBe(200);
    expect((await send(`/accounts/${accountId}/deposits`, { amount: 8 }, recentKey)).status).toBe(200);
    await api.readModels.query(`UPDATE ${IDEMPOTENCY_KEYS_TABLE} SET created_at = now() - interval '25 hours' WHERE key = $1`, [oldKey]);
    expect(await new IdempotencyStore(api.readModels).purgeExpired()).toBeGreaterThanOrEqual(1);
    expect(await keyRows(oldKey)).toBe(0);
    expect(await keyRows(recentKey)).toBe(1);

    // The record is gone; the event ids derived from the key are still in the log: nothing is written twice.
    const before = await eventCount();
    const again = await send(`/accounts/${accountId}/deposits`, { amount: 7 }, oldKey);
    expect({ status: again.status, body: again.body }).toEqual({ status: 200, body: first.body });
    expect(await eventCount()).toBe(before);
    // Purged again, then reused for another amount: the key's events in the log say it was another request.
    await api.readModels.query(`DELETE FROM ${IDEMPOTENCY_KEYS_TABLE} WHERE key = $1`, [oldKey]);
    expectProblem(
      await send(`/accounts/${accountId}/deposits`, { amount: 70 }, oldKey),
      409,
      '/problems/idempotency-key-reused',
      'Idempotency-Key',
    );
    expect(await eventCount()).toBe(before);
    expect(await keyRows(oldKey)).toBe(0); // the refused reuse claimed nothing
    expect((await send(`/accounts/${accountId}/deposits`, { amount: 7 }, oldKey)).body).toEqual(first.body);
    expect(await eventCount()).toBe(before);
    expect((await api.accounts.loadWithoutSnapshot(accountId)).state.balance).toBe(115);
  });

  test('OpenAPI documents the Idempotency-Key header and the 409 on the four account writes', async () => {
    const doc = (await api.http().get('/openapi.json')).body as {
      paths: Record<string, { post?: { parameters?: { name: string; in: string }[]; responses: Record<string, unknown> } }>;
    };
    for (const path of ['/accounts', '/accounts/{id}/deposits', '/accounts/{id}/withdrawals', '/accounts/{id}/close']) {
      const op = doc.paths[path]!.post!;
      expect(op.parameters).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'Idempotency-Key', in: 'header' })]));
      expect(Object.keys(op.responses)).toContain('409');
    }
  });
});
