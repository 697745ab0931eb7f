import { randomUUID } from 'node:crypto';
import type { Response } from 'supertest';
import { scopedTransferId } from '../../api/customer-ids';
import { holdStream } from '../../domain/hold';
import { availableOf } from '../../domain/account-state';
import { ApiStack, storeFingerprint } from '../support/api-stack';
import { waitUntil } from '../support/wait-until';

/**
 * The HTTP API of holds (two-phase transfers, issue 25; docs/holds.md) on a real Temporal dev server and PostgreSQL:
 * place, capture in part, void and expiry over HTTP with balances and events checked; idempotent repeats that write
 * nothing; the refusals (problem+json, nothing written); who may do what. Every response is checked against the OpenAPI
 * document by ApiStack.
 */

function expectProblem(res: Response, status: number, type?: string, field?: string): void {
  expect({ status: res.status, body: res.body as unknown }).toMatchObject({ status, body: { status, ...(type ? { type } : {}) } });
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  if (field) expect((res.body.errors as { field: string }[]).map((e) => e.field)).toContain(field);
}

describe('holds over HTTP', () => {
  let api: ApiStack;
  let alice: string;
  let bob: string;
  let carol: string;

  async function customerKey(ownerId: string): Promise<string> {
    const res = await api.http().post('/api-keys').send({ role: 'customer', ownerId });
    expect(res.status).toBe(201);
    return res.body.secret as string;
  }

  beforeAll(async () => {
    api = await ApiStack.create('holds_api');
    [alice, bob, carol] = (await Promise.all(['h-alice', 'h-bob', 'h-carol'].map(customerKey))) as [string, string, string];
  });
  afterAll(async () => api?.close());

  const account = async (id: string) => {
    const { state } = await api.accounts.load(id);
    return { balance: state.balance, held: state.held, available: availableOf(state) };
  };
  const holdEvents = async (storedId: string) => (await api.store.readStream(holdStream(storedId))).map((e) => e.type);
  const written = () => storeFingerprint(api.pool);
  /** Waits (on the hold's status, never on time) until the hold is no longer `status`. */
  const awaitStatusNot = (id: string, status: string, as = api.http()) =>
    waitUntil(
      `hold ${id} to leave ${status}`,
      async () => {
        const res = await as.get(`/holds/${id}`);
        return res.status === 200 && res.body.status !== status ? (res.body as { status: string }) : undefined;
      },
      30_000,
      50,
    );

  async function placed(from: string, to: string, amount: number, extra: Record<string, unknown> = {}) {
    const holdId = `hold-${randomUUID()}`;
    const res = await api
      .http()
      .post('/holds')
      .send({ holdId, fromAccountId: from, toAccountId: to, amount, ...extra });
    expect(res.status).toBe(202);
    expect((await awaitStatusNot(holdId, 'pending')).status).toBe('held');
    return holdId;
  }

  test('place, capture in part over HTTP: the captured part is the transfer of the hold id, the rest is available again', async () => {
    const a = await api.openAccount('h-ops', 1_000);
    const b = await api.openAccount('h-ops');
    const holdId = `hold-${randomUUID()}`;
    const before = Date.now();
    const res = await api.http().post('/holds').send({ holdId, fromAccountId: a, toAccountId: b, amount: 600, expiresIn: 3600 });
    expect(res.status).toBe(202);
    expect(res.headers.location).toBe(`/holds/${holdId}`);
    expect(res.body).toMatchObject({ holdId, fromAccountId: a, toAccountId: b, amount: 600, status: 'pending' });
    // expiresAt = acceptance + expiresIn.
    const expiresAt = Date.parse(res.body.expiresAt as string);
    expect(expiresAt).toBeGreaterThanOrEqual(before + 3_600_000);
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + 3_600_000);

    expect((await awaitStatusNot(holdId, 'pending')).status).toBe('held');
    expect(await account(a)).toEqual({ balance: 1_000, held: 600, available: 400 });
    const read = await api.http().get(`/holds/${holdId}`);
    expect(read.body).toMatchObject({ holdId, status: 'held', amount: 600, currency: 'EUR', expiresAt: res.body.expiresAt });
    expect((read.body.steps as { name: string }[]).map((s) => s.name)).toContain('reserve on source');

    const capture = await api.http().post(`/holds/${holdId}/capture`).send({ amount: 250 });
    expect(capture.status).toBe(200);
    expect(capture.body).toMatchObject({ holdId, status: 'captured', amount: 600, captured: 250, released: 350 });
    expect(await account(a)).toEqual({ balance: 750, held: 0, available: 750 });
    expect((await account(b)).balance).toBe(250);
    expect(await holdEvents(holdId)).toEqual(['HoldRequested', 'HoldReserved', 'HoldCaptureRequested', 'HoldCaptured']);
    // The captured part is the transfer of the hold's id: in GET /transfers/{id}, completed.
    const transfer = await api.http().get(`/transfers/${holdId}`);
    expect(transfer.body).toMatchObject({ transferId: holdId, fromAccountId: a, toAccountId: b, amount: 250, status: 'completed' });

    // Repeats answer what the first answered and write nothing; another amount is refused.
    const mark = await written();
    for (const again of [{ amount: 250 }, {}]) {
      const repeat = await api.http().post(`/holds/${holdId}/capture`).send(again);
      expect(repeat.status).toBe(200);
      expect(repeat.body).toMatchObject({ holdId, status: 'captured', captured: 250, released: 350 });
    }
    expectProblem(await api.http().post(`/holds/${holdId}/capture`).send({ amount: 300 }), 409, '/problems/hold-finished');
    expectProblem(await api.http().post(`/holds/${holdId}/void`).send({}), 409, '/problems/hold-finished');
    expect(await written()).toEqual(mark);
    const after = await api.http().get(`/holds/${holdId}`);
    expect(after.body).toMatchObject({ status: 'captured', captured: 250, released: 350 });
    expect((after.body.steps as { name: string }[]).map((s) => s.name)).toContain('credit target and complete');

    // Like any transfer, the captured part is in the transfer list and an operator may reverse it.
    const reversal = await api
      .http()
      .post(`/transfers/${holdId}/reversal`)
      .set('Prefer', 'wait=10')
      .send({ amount: 100, reversalId: `rev-${holdId}` });
    expect(reversal.status).toBe(201);
    expect(reversal.body).toMatchObject({ reversalOf: holdId, amount: 100, status: 'completed' });
    expect(await account(a)).toEqual({ balance: 850, held: 0, available: 850 });
    expect((await account(b)).balance).toBe(150);
    await api.caughtUp();
    const listed = await api.http().get('/transfers').query({ accountId: a });
    expect((listed.body.transfers as { transferId: string }[]).map((t) => t.transferId)).toEqual([holdId, `rev-${holdId}`]);
  });

  test('Prefer: wait answers 201 with the placed hold; void releases it all; repeats write nothing', async () => {
    const a = await api.openAccount('h-ops', 500);
    const b = await api.openAccount('h-ops');
    const holdId = `hold-${randomUUID()}`;
    const res = await api.http().post('/holds').set('Prefer', 'wait=10').send({ holdId, fromAccountId: a, toAccountId: b, amount: 500 });
    expect(res.status).toBe(201);
    expect(res.headers['preference-applied']).toBe('wait=10');
    expect(res.body).toMatchObject({ holdId, status: 'held' });
    // Default expiry: 7 days.
    expect(Date.parse(res.body.expiresAt as string) - Date.now()).toBeGreaterThan(604_800_000 - 120_000);
    expect(await account(a)).toEqual({ balance: 500, held: 500, available: 0 });

    const voided = await api.http().post(`/holds/${holdId}/void`).send({});
    expect(voided.status).toBe(200);
    expect(voided.body).toMatchObject({ holdId, status: 'voided', released: 500 });
    expect(await account(a)).toEqual({ balance: 500, held: 0, available: 500 });
    expect((await account(b)).balance).toBe(0);
    expect(await holdEvents(holdId)).toEqual(['HoldRequested', 'HoldReserved', 'HoldVoidRequested', 'HoldReleased']);

    const mark = await written();
    const again = await api.http().post(`/holds/${holdId}/void`).send();
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ holdId, status: 'voided', released: 500 });
    expectProblem(await api.http().post(`/holds/${holdId}/capture`).send({}), 409, '/problems/hold-finished');
    expect(await written()).toEqual(mark);
    expectProblem(await api.http().get(`/transfers/${holdId}`), 404, '/problems/transfer-not-found');
  });

  test('holdId and Idempotency-Key: a repeat answers the same hold (whatever its expiresIn) and writes nothing', async () => {
    const a = await api.openAccount('h-ops', 1_000);
    const b = await api.openAccount('h-ops');
    const key = `key-${randomUUID()}`;
    const first = await api.http().post('/holds').set('Idempotency-Key', key).send({ fromAccountId: a, toAccountId: b, amount: 100 });
    expect(first.status).toBe(202);
    expect(first.body.holdId).toBe(key);
    await awaitStatusNot(key, 'pending');
    const mark = await written();
    for (const send of [
      () => api.http().post('/holds').set('Idempotency-Key', key).send({ fromAccountId: a, toAccountId: b, amount: 100 }),
      () => api.http().post('/holds').send({ holdId: key, fromAccountId: a, toAccountId: b, amount: 100, expiresIn: 60 }),
      () => api.http().post('/holds').set('Idempotency-Key', key).send({ holdId: key, fromAccountId: a, toAccountId: b, amount: 100 }),
    ]) {
      const repeat = await send();
      expect(repeat.status).toBe(200);
      expect(repeat.headers.location).toBe(`/holds/${key}`);
      expect(repeat.body).toMatchObject({ holdId: key, amount: 100, status: 'held', expiresAt: first.body.expiresAt });
    }
    // Another payload under the id, or an id a transfer has: 409; both keys given and different: 400.
    expectProblem(
      await api.http().post('/holds').send({ holdId: key, fromAccountId: a, toAccountId: b, amount: 101 }),
      409,
      '/problems/hold-conflict',
      'holdId',
    );
    const transferId = `t-${randomUUID()}`;
    const transfer = await api
      .http()
      .post('/transfers')
      .set('Prefer', 'wait=10')
      .send({ transferId, fromAccountId: a, toAccountId: b, amount: 1 });
    expect(transfer.status).toBe(201);
    const mark2 = await written();
    expectProblem(
      await api.http().post('/holds').send({ holdId: transferId, fromAccountId: a, toAccountId: b, amount: 1 }),
      409,
      '/problems/hold-conflict',
    );
    expectProblem(
      await api.http().post('/holds').set('Idempotency-Key', 'one').send({ holdId: 'two', fromAccountId: a, toAccountId: b, amount: 1 }),
      400,
      '/problems/validation-error',
      'Idempotency-Key',
    );
    expect(await written()).toEqual(mark2);
    expect(mark2.events).toBeGreaterThan(mark.events); // only the transfer wrote
    expect(await account(a)).toEqual({ balance: 999, held: 100, available: 899 });
  });

  test('a capture after the expiry is 409 /problems/hold-expired; the money is back on the source; nothing written', async () => {
    const a = await api.openAccount('h-ops', 300);
    const b = await api.openAccount('h-ops');
    const holdId = `hold-${randomUUID()}`;
    const res = await api.http().post('/holds').send({ holdId, fromAccountId: a, toAccountId: b, amount: 300, expiresIn: 1 });
    expect(res.status).toBe(202);
    // Waits on the hold's status (a slow machine may expire it before it is placed: then nothing was reserved at all).
    await waitUntil('the hold to expire', async () => (await api.http().get(`/holds/${holdId}`)).body.status === 'expired', 30_000, 50);
    await waitUntil('the expired hold to be released', async () => (await account(a)).held === 0);
    const mark = await written();
    expectProblem(await api.http().post(`/holds/${holdId}/capture`).send({}), 409, '/problems/hold-expired');
    expectProblem(await api.http().post(`/holds/${holdId}/void`).send({}), 409, '/problems/hold-expired');
    expect(await written()).toEqual(mark);
    expect(await account(a)).toEqual({ balance: 300, held: 0, available: 300 });
    expect((await account(b)).balance).toBe(0);
    expect((await api.http().get(`/holds/${holdId}`)).body).toMatchObject({ status: 'expired' });
  });

  test('refusals: more than is held (422 amount), nothing reserved (409 hold-not-placed), unknown hold (404); nothing written', async () => {
    const a = await api.openAccount('h-ops', 400);
    const b = await api.openAccount('h-ops');
    const holdId = await placed(a, b, 200);
    // More than the account has available: refused by the source, nothing reserved.
    const failed = await api.http().post('/holds').set('Prefer', 'wait=10').send({ fromAccountId: a, toAccountId: b, amount: 201 });
    expect(failed.status).toBe(201);
    expect(failed.body).toMatchObject({ status: 'failed', failureReason: 'insufficient_funds' });
    const mark = await written();
    expectProblem(await api.http().post(`/holds/${holdId}/capture`).send({ amount: 201 }), 422, '/problems/capture-exceeds-hold', 'amount');
    expectProblem(await api.http().post(`/holds/${failed.body.holdId}/capture`).send({}), 409, '/problems/hold-not-placed');
    expectProblem(await api.http().post(`/holds/${failed.body.holdId}/void`).send({}), 409, '/problems/hold-not-placed');
    for (const path of ['capture', 'void'])
      expectProblem(await api.http().post(`/holds/nope-${randomUUID()}/${path}`).send({}), 404, '/problems/hold-not-found');
    expectProblem(await api.http().get(`/holds/nope-${randomUUID()}`), 404, '/problems/hold-not-found');
    expect(await written()).toEqual(mark);
    expect(await account(a)).toEqual({ balance: 400, held: 200, available: 200 });
  });

  test('bad input: 400 problem+json naming the field, or 422 for accounts that cannot take the hold; nothing written', async () => {
    const a = await api.openAccount('h-ops', 100);
    const b = await api.openAccount('h-ops');
    const usd = (await api.http().post('/accounts').send({ ownerId: 'h-ops', currency: 'USD' })).body.accountId as string;
    const holdId = await placed(a, b, 10);
    const ok = { fromAccountId: a, toAccountId: b, amount: 5 };
    const cases: [string, () => ReturnType<ReturnType<ApiStack['http']>['post']>, number, string, string?][] = [
      [
        'amount 0',
        () =>
          api
            .http()
            .post('/holds')
            .send({ ...ok, amount: 0 }),
        400,
        'amount',
      ],
      [
        'amount 1.5',
        () =>
          api
            .http()
            .post('/holds')
            .send({ ...ok, amount: 1.5 }),
        400,
        'amount',
      ],
      [
        'amount as text',
        () =>
          api
            .http()
            .post('/holds')
            .send({ ...ok, amount: '5' }),
        400,
        'amount',
      ],
      ['no amount', () => api.http().post('/holds').send({ fromAccountId: a, toAccountId: b }), 400, 'amount'],
      [
        'fromAccountId not a uuid',
        () =>
          api
            .http()
            .post('/holds')
            .send({ ...ok, fromAccountId: 'x' }),
        400,
        'fromAccountId',
      ],
      [
        'same account',
        () =>
          api
            .http()
            .post('/holds')
            .send({ ...ok, toAccountId: a }),
        400,
        'toAccountId',
      ],
      [
        'expiresIn 0',
        () =>
          api
            .http()
            .post('/holds')
            .send({ ...ok, expiresIn: 0 }),
        400,
        'expiresIn',
      ],
      [
        'expiresIn over 30 days',
        () =>
          api
            .http()
            .post('/holds')
            .send({ ...ok, expiresIn: 2_592_001 }),
        400,
        'expiresIn',
      ],
      [
        'expiresIn fractional',
        () =>
          api
            .http()
            .post('/holds')
            .send({ ...ok, expiresIn: 1.5 }),
        400,
        'expiresIn',
      ],
      [
        'holdId with a space',
        () =>
          api
            .http()
            .post('/holds')
            .send({ ...ok, holdId: 'a b' }),
        400,
        'holdId',
      ],
      [
        'holdId of the customer form',
        () =>
          api
            .http()
            .post('/holds')
            .send({ ...ok, holdId: 'o_abcdefghijkl_x' }),
        400,
        'holdId',
      ],
      ['Idempotency-Key too long', () => api.http().post('/holds').set('Idempotency-Key', 'k'.repeat(65)).send(ok), 400, 'Idempotency-Key'],
      [
        'unknown field',
        () =>
          api
            .http()
            .post('/holds')
            .send({ ...ok, currency: 'EUR' }),
        400,
        'currency',
      ],
      [
        'source missing',
        () =>
          api
            .http()
            .post('/holds')
            .send({ ...ok, fromAccountId: randomUUID() }),
        422,
        'fromAccountId',
        '/problems/account-not-found',
      ],
      [
        'target missing',
        () =>
          api
            .http()
            .post('/holds')
            .send({ ...ok, toAccountId: randomUUID() }),
        422,
        'toAccountId',
        '/problems/account-not-found',
      ],
      [
        'currency mismatch',
        () =>
          api
            .http()
            .post('/holds')
            .send({ ...ok, toAccountId: usd }),
        422,
        'toAccountId',
        '/problems/currency-mismatch',
      ],
      ['capture amount 0', () => api.http().post(`/holds/${holdId}/capture`).send({ amount: 0 }), 400, 'amount'],
      ['capture unknown field', () => api.http().post(`/holds/${holdId}/capture`).send({ amount: 1, to: b }), 400, 'to'],
      ['void with a field', () => api.http().post(`/holds/${holdId}/void`).send({ reason: 'x' }), 400, 'reason'],
      ['capture, bad id', () => api.http().post('/holds/a%20b/capture').send({}), 400, 'id'],
      ['read, bad id', () => api.http().get('/holds/-x'), 400, 'id'],
      ['list, bad status', () => api.http().get('/holds').query({ status: 'open' }), 400, 'status'],
      ['list, bad accountId', () => api.http().get('/holds').query({ accountId: 'x' }), 400, 'accountId'],
      ['list, bad cursor', () => api.http().get('/holds').query({ after: 'bm90IGEgY3Vyc29y' }), 400, 'after'],
    ];
    const mark = await written();
    for (const [name, send, status, field, type] of cases) {
      const res = await send();
      expect({ name, status: res.status }).toEqual({ name, status });
      expectProblem(res, status, type ?? '/problems/validation-error', field);
    }
    expect(await written()).toEqual(mark);
    expect(await account(a)).toEqual({ balance: 100, held: 10, available: 90 });
  });

  test('access: a customer holds only its own money, captures and voids only holds on its source, reads holds on its accounts', async () => {
    const a = await api.openAccount('h-alice', 1_000);
    const b = await api.openAccount('h-bob', 100);
    const bobUsd = (await api.http().post('/accounts').send({ ownerId: 'h-bob', currency: 'USD' })).body.accountId as string;
    const mark = await written();
    // Another owner's target: missing or in another currency answer alike (its currency is never told).
    const answers: unknown[] = [];
    for (const to of [bobUsd, randomUUID()]) {
      const res = await api.as(alice).post('/holds').send({ fromAccountId: a, toAccountId: to, amount: 1 });
      expectProblem(res, 422, '/problems/account-not-found', 'toAccountId');
      answers.push({ ...res.body, detail: undefined, instance: undefined, requestId: undefined });
    }
    expect(answers[0]).toEqual(answers[1]);
    // From another owner's account: 403 on fromAccountId, nothing written.
    expectProblem(
      await api.as(alice).post('/holds').send({ holdId: 'from-bob', fromAccountId: b, toAccountId: a, amount: 10 }),
      403,
      '/problems/forbidden',
      'fromAccountId',
    );
    expect(await written()).toEqual(mark);

    // Alice's hold, under her own id; stored scoped to her owner.
    const mine = `mine-${randomUUID().slice(0, 8)}`;
    const stored = scopedTransferId('h-alice', mine)!;
    const res = await api
      .as(alice)
      .post('/holds')
      .set('Prefer', 'wait=10')
      .send({ holdId: mine, fromAccountId: a, toAccountId: b, amount: 300 });
    expect(res.status).toBe(201);
    expect(res.headers.location).toBe(`/holds/${mine}`);
    expect(res.body).toMatchObject({ holdId: mine, status: 'held' });
    expect(await holdEvents(stored)).toEqual(['HoldRequested', 'HoldReserved']);
    expect((await api.as(alice).get(`/holds/${mine}`)).body).toMatchObject({ holdId: mine, status: 'held' });
    expect((await api.http().get(`/holds/${stored}`)).body).toMatchObject({ holdId: stored, status: 'held' });

    // Bob owns the target: he reads it (under its stored id) but may neither capture nor void it (404, nothing written).
    expect((await api.as(bob).get(`/holds/${stored}`)).body).toMatchObject({ holdId: stored, status: 'held' });
    expectProblem(await api.as(bob).get(`/holds/${mine}`), 404, '/problems/hold-not-found');
    const before = await written();
    for (const id of [mine, stored]) {
      expectProblem(await api.as(bob).post(`/holds/${id}/capture`).send({}), 404, '/problems/hold-not-found');
      expectProblem(await api.as(bob).post(`/holds/${id}/void`).send({}), 404, '/problems/hold-not-found');
    }
    // Carol owns neither: not even a read.
    expectProblem(await api.as(carol).get(`/holds/${stored}`), 404, '/problems/hold-not-found');
    expectProblem(await api.as(carol).post(`/holds/${stored}/capture`).send({}), 404, '/problems/hold-not-found');
    expect(await written()).toEqual(before);
    expect(await account(a)).toEqual({ balance: 1_000, held: 300, available: 700 });

    // The source's owner captures (in part) under its own id; the captured part is its transfer, under the same id.
    const captured = await api.as(alice).post(`/holds/${mine}/capture`).send({ amount: 120 });
    expect(captured.status).toBe(200);
    expect(captured.body).toMatchObject({ holdId: mine, status: 'captured', captured: 120, released: 180 });
    expect((await api.as(alice).get(`/transfers/${mine}`)).body).toMatchObject({ transferId: mine, amount: 120, status: 'completed' });
    expect(await account(a)).toEqual({ balance: 880, held: 0, available: 880 });
    expect((await account(b)).balance).toBe(220);

    // A hold an operator placed on Alice's account: hers to void (under its stored id).
    const byOperator = await placed(a, b, 80);
    const voided = await api.as(alice).post(`/holds/${byOperator}/void`).send({});
    expect(voided.status).toBe(200);
    expect(voided.body).toMatchObject({ holdId: byOperator, status: 'voided', released: 80 });

    // GET /holds, from the read model: a customer sees holds on its owner's accounts, under the ids it sees.
    await api.caughtUp();
    const page = async (as: ReturnType<ApiStack['http']>, query: Record<string, string | number>) => {
      const res = await as.get('/holds').query(query);
      expect(res.status).toBe(200);
      return res.body as { holds: { holdId: string; status: string; captured?: number }[]; next?: string };
    };
    expect((await page(api.as(alice), { accountId: a })).holds.map((h) => [h.holdId, h.status])).toEqual([
      [mine, 'captured'],
      [byOperator, 'voided'],
    ]);
    expect((await page(api.as(bob), { accountId: a })).holds.map((h) => h.holdId)).toEqual([stored, byOperator]);
    expect((await page(api.as(carol), { accountId: a })).holds).toEqual([]);
    expect((await page(api.http(), { accountId: a, status: 'captured' })).holds).toMatchObject([{ holdId: stored, captured: 120 }]);
    // Paged by a cursor, oldest first.
    const first = await page(api.http(), { accountId: a, limit: 1 });
    expect(first.holds.map((h) => h.holdId)).toEqual([stored]);
    const second = await page(api.http(), { accountId: a, limit: 1, after: first.next! });
    expect(second.holds.map((h) => h.holdId)).toEqual([byOperator]);
    expect(second.next).toBeUndefined();
  });
});

describe("holds in a day's statement", () => {
  let api: ApiStack;
  beforeAll(async () => {
    api = await ApiStack.create('holds_statement');
  });
  afterAll(async () => api?.close());

  test('a statement lists the holds open at the end of its day, with what they reserve; a hold voided that day is not', async () => {
    const a = await api.openAccount('h-stmt', 1_000);
    const b = await api.openAccount('h-stmt');
    const place = async (amount: number) => {
      const res = await api.http().post('/holds').set('Prefer', 'wait=10').send({ fromAccountId: a, toAccountId: b, amount });
      expect({ status: res.status, hold: res.body.status }).toEqual({ status: 201, hold: 'held' });
      return res.body.holdId as string;
    };
    const open = await place(300);
    const voided = await place(200);
    expect((await api.http().post(`/holds/${voided}/void`).send({})).body.status).toBe('voided');
    await api.caughtUp();
    const today = new Date().toISOString().slice(0, 10); // the business day in UTC (the stack's zone)
    const res = await api.http().get(`/accounts/${a}/statements/${today}`);
    expect(res.status).toBe(200);
    expect(res.body.openHolds).toEqual([{ holdId: open, toAccountId: b, amount: 300, expiresAt: expect.any(String) }]);
    expect(res.body.heldAtClose).toBe(300);
    // The ledger balance of the day is untouched by holds.
    expect(res.body.closingBalance).toBe(1_000);
  });
});
