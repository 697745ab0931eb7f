import { randomUUID } from 'node:crypto';
import type { Response } from 'supertest';
import { transferStream } from '../../domain/transfer-events';
import { ApiStack, storeFingerprint } from '../support/api-stack';

/**
 * Issue 23, item 5: a customer's answers never depend on data it cannot read. A customer probing another
 * owner's transfer ids (and the operator's), and accounts of other owners, gets the answers it gets for ids
 * and accounts that do not exist. Its transfer ids are scoped to its owner; operators see every transfer.
 */
describe("customers learn nothing about other owners' transfers and accounts", () => {
  let api: ApiStack;
  let alice: string;
  let mallory: string;
  /** alice: A (EUR, funded), A2 (EUR), AU (USD); mallory: M (EUR, funded); bob: B (EUR, funded), B2 (EUR), BU (USD). */
  let A: string, A2: string, AU: string, M: string, B: string, B2: string, BU: string;
  /** alice's transfer (her own id), and one the operator made between bob's accounts. */
  let aliceId: string, operatorId: string;
  const fresh = () => `fresh-${randomUUID().slice(0, 8)}`;

  async function key(ownerId: string): Promise<string> {
    const res = await api.http().post('/api-keys').send({ role: 'customer', ownerId });
    expect(res.status).toBe(201);
    return res.body.secret as string;
  }
  async function open(ownerId: string, currency: string, initialDeposit?: number): Promise<string> {
    const res = await api
      .http()
      .post('/accounts')
      .send({ ownerId, currency, ...(initialDeposit ? { initialDeposit } : {}) });
    expect(res.status).toBe(201);
    return res.body.accountId as string;
  }
  async function completed(agent: ReturnType<ApiStack['http']>, id: string): Promise<Record<string, unknown>> {
    const res = await agent.get(`/transfers/${id}`).query({ wait: 30 });
    expect({ status: res.status, body: res.body as unknown }).toMatchObject({ status: 200, body: { status: 'completed' } });
    return res.body as Record<string, unknown>;
  }
  /** An answer with the probed values replaced, to compare answers about different ids and accounts. */
  function answer(res: Response, ...probed: string[]) {
    let text = res.text;
    for (const value of probed) text = text.split(value).join('<probed>');
    // Each answer has its own request id: the rest must be the same.
    const { requestId: _requestId, ...body } = (text ? JSON.parse(text) : {}) as Record<string, unknown>;
    return {
      status: res.status,
      contentType: res.headers['content-type'],
      location: res.headers.location?.split(probed[0]!).join('<probed>'),
      body,
    };
  }

  beforeAll(async () => {
    api = await ApiStack.create('customer_enumeration');
    alice = await key('alice');
    mallory = await key('mallory');
    [A, A2, AU, M, B, B2, BU] = await Promise.all([
      open('alice', 'EUR', 10_000),
      open('alice', 'EUR'),
      open('alice', 'USD'),
      open('mallory', 'EUR', 10_000),
      open('bob', 'EUR', 10_000),
      open('bob', 'EUR'),
      open('bob', 'USD'),
    ]);
    aliceId = `alice-${randomUUID().slice(0, 8)}`;
    expect(
      (await api.as(alice).post('/transfers').send({ transferId: aliceId, fromAccountId: A, toAccountId: A2, amount: 100 })).status,
    ).toBe(202);
    operatorId = `op-${randomUUID().slice(0, 8)}`;
    expect(
      (await api.http().post('/transfers').send({ transferId: operatorId, fromAccountId: B, toAccountId: B2, amount: 100 })).status,
    ).toBe(202);
    await completed(api.as(alice), aliceId);
    await completed(api.http(), operatorId);
  });
  afterAll(async () => {
    await api?.close();
  });

  test.each([
    ['to an account that does not exist (422)', () => ({ toAccountId: randomUUID(), amount: 5 })],
    ['to an account in another currency (422)', () => ({ toAccountId: BU, amount: 5 })],
  ])("another owner's and the operator's transfer ids answer as fresh ids: a refusal %s, nothing written", async (_label, payload) => {
    for (const taken of [aliceId, operatorId]) {
      const unknown = fresh();
      const before = await storeFingerprint(api.pool);
      const body = payload();
      const onTaken = await api
        .as(mallory)
        .post('/transfers')
        .send({ transferId: taken, fromAccountId: M, ...body });
      const onFresh = await api
        .as(mallory)
        .post('/transfers')
        .send({ transferId: unknown, fromAccountId: M, ...body });
      expect(onTaken.status).toBe(422);
      expect(answer(onTaken, taken)).toEqual(answer(onFresh, unknown));
      expect(await storeFingerprint(api.pool)).toEqual(before);
      // The same through the Idempotency-Key header.
      const byKey = await api
        .as(mallory)
        .post('/transfers')
        .set('Idempotency-Key', taken)
        .send({ fromAccountId: M, ...body });
      const byFreshKey = await api
        .as(mallory)
        .post('/transfers')
        .set('Idempotency-Key', unknown)
        .send({ fromAccountId: M, ...body });
      expect(answer(byKey, taken)).toEqual(answer(byFreshKey, unknown));
    }
  });

  test("reading another owner's or the operator's transfer id answers as an unknown id", async () => {
    for (const taken of [aliceId, operatorId]) {
      const unknown = fresh();
      const onTaken = await api.as(mallory).get(`/transfers/${taken}`);
      expect(onTaken.status).toBe(404);
      expect(answer(onTaken, taken)).toEqual(answer(await api.as(mallory).get(`/transfers/${unknown}`), unknown));
    }
  });

  test("a customer's ids are its own: another owner's id makes a new transfer, and both owners keep theirs", async () => {
    const request = { transferId: aliceId, fromAccountId: M, toAccountId: B, amount: 7 };
    const res = await api.as(mallory).post('/transfers').send(request);
    expect(res.status).toBe(202);
    expect(res.headers.location).toBe(`/transfers/${aliceId}`);
    expect(res.body).toMatchObject({ ...request, status: 'pending' });
    expect(await completed(api.as(mallory), aliceId)).toMatchObject({ ...request, status: 'completed' });
    // Alice's transfer under the same id is untouched, and her retry answers it.
    expect(await completed(api.as(alice), aliceId)).toMatchObject({ transferId: aliceId, fromAccountId: A, toAccountId: A2, amount: 100 });
    const retry = await api.as(alice).post('/transfers').send({ transferId: aliceId, fromAccountId: A, toAccountId: A2, amount: 100 });
    expect({ status: retry.status, body: retry.body as unknown }).toMatchObject({
      status: 200,
      body: { transferId: aliceId, amount: 100 },
    });
    // A customer's own id with another payload is still a conflict (its own data).
    const conflict = await api.as(alice).post('/transfers').send({ transferId: aliceId, fromAccountId: A, toAccountId: A2, amount: 99 });
    expect(conflict.status).toBe(409);
    // Each lists its own under its own id.
    const mine = (agent: ReturnType<ApiStack['http']>) =>
      agent
        .get('/transfers')
        .query({ limit: 100 })
        .then((r) => (r.body.transfers as { transferId: string; fromAccountId: string }[]).filter((t) => t.transferId === aliceId));
    await api.caughtUp();
    expect((await mine(api.as(mallory))).map((t) => t.fromAccountId)).toEqual([M]);
    expect((await mine(api.as(alice))).map((t) => t.fromAccountId)).toEqual([A]);
    // Operators see both, under their stored ids, and read each by it.
    const all = (await api.http().get('/transfers').query({ accountId: M, limit: 100 })).body.transfers as {
      transferId: string;
      amount: number;
    }[];
    const stored = all.find((t) => t.amount === 7)!.transferId;
    expect(stored).not.toBe(aliceId);
    expect(stored.endsWith(`_${aliceId}`)).toBe(true);
    expect((await api.http().get(`/transfers/${stored}`)).body).toMatchObject({ transferId: stored, fromAccountId: M });
    expect((await api.store.readStream(transferStream(aliceId))).length).toBe(0);
  });

  test("another owner's account in another currency answers as an account that does not exist, and names no currency", async () => {
    const before = await storeFingerprint(api.pool);
    const missing = randomUUID();
    const other = await api.as(mallory).post('/transfers').send({ transferId: 'probe-1', fromAccountId: M, toAccountId: BU, amount: 5 });
    const none = await api
      .as(mallory)
      .post('/transfers')
      .send({ transferId: 'probe-1', fromAccountId: M, toAccountId: missing, amount: 5 });
    expect(other.status).toBe(422);
    expect(answer(other, BU)).toEqual(answer(none, missing));
    expect(other.text).not.toMatch(/USD|EUR|currency/i);
    expect(await storeFingerprint(api.pool)).toEqual(before);
    // Between its own accounts, the customer reads both: the mismatch is named.
    const own = await api.as(alice).post('/transfers').send({ fromAccountId: A, toAccountId: AU, amount: 5 });
    expect({ status: own.status, type: own.body.type }).toEqual({ status: 422, type: '/problems/currency-mismatch' });
    // Operators still learn the reason.
    const op = await api.http().post('/transfers').send({ fromAccountId: M, toAccountId: BU, amount: 5 });
    expect({ status: op.status, type: op.body.type }).toEqual({ status: 422, type: '/problems/currency-mismatch' });
  });

  test('a transfer to or from its accounts that the customer did not start is readable by its id', async () => {
    const id = `op-${randomUUID().slice(0, 8)}`;
    expect((await api.http().post('/transfers').send({ transferId: id, fromAccountId: B, toAccountId: A2, amount: 3 })).status).toBe(202);
    expect(await completed(api.as(alice), id)).toMatchObject({ transferId: id, fromAccountId: B, toAccountId: A2 });
  });

  test('a retry of a request accepted before ids were scoped answers that transfer, not a new one', async () => {
    // Recorded under the customer's id as it was (global), as the API did before: the operator can still make one.
    const legacy = `legacy-${randomUUID().slice(0, 8)}`;
    const request = { transferId: legacy, fromAccountId: A, toAccountId: A2, amount: 11 };
    expect((await api.http().post('/transfers').send(request)).status).toBe(202);
    await completed(api.http(), legacy);
    const retry = await api.as(alice).post('/transfers').send(request);
    expect({ status: retry.status, body: retry.body as unknown }).toMatchObject({ status: 200, body: { ...request, status: 'completed' } });
    // Anyone else's retry of it is a new request in its own space.
    const theirs = await api
      .as(mallory)
      .post('/transfers')
      .send({ ...request, fromAccountId: M });
    expect(theirs.status).toBe(202);
    await completed(api.as(mallory), legacy);
  });

  test("ids of the customer-scoped form are refused for operators, and a customer's id is at most 49 characters", async () => {
    const reserved = 'o_AAAAAAAAAAAA_x';
    const t = await api.http().post('/transfers').send({ transferId: reserved, fromAccountId: B, toAccountId: B2, amount: 1 });
    expect({ status: t.status, field: t.body.errors?.[0]?.field }).toEqual({ status: 400, field: 'transferId' });
    const r = await api.http().post(`/transfers/${operatorId}/reversal`).send({ reversalId: reserved, amount: 1 });
    expect({ status: r.status, field: r.body.errors?.[0]?.field }).toEqual({ status: 400, field: 'reversalId' });
    const long = await api
      .as(alice)
      .post('/transfers')
      .send({ transferId: 'x'.repeat(50), fromAccountId: A, toAccountId: A2, amount: 1 });
    expect({ status: long.status, field: long.body.errors?.[0]?.field }).toEqual({ status: 400, field: 'transferId' });
    expect((await api.store.readStream(transferStream(reserved))).length).toBe(0);
  });
});
