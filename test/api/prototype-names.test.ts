import { randomUUID } from 'node:crypto';
import { transferStream } from '../../domain/transfer-events';
import { ApiStack, storeFingerprint } from '../support/api-stack';

/**
 * Issue 23, item 3: ids that clients choose must never find what a plain object inherits. A reversal id `constructor`
 * answered 201 and stayed pending for ever (`state.reversals[id]` found Object's constructor, the hold was refused as
 * a conflict, and the saga closed without an outcome). Every id-taking endpoint is driven with the names an object
 * inherits: each either works as for any other id, or is refused as invalid (400, nothing written), never 5xx and
 * never stuck.
 */
const NAMES = ['constructor', 'toString', 'valueOf', 'hasOwnProperty', '__proto__', 'isPrototypeOf', 'toLocaleString'] as const;
/** What the id patterns accept (letters and digits first): `__proto__` is refused at the edge. */
const validId = (name: string) => /^[A-Za-z0-9]/.test(name);

describe('ids that name what a plain object inherits', () => {
  let api: ApiStack;
  beforeAll(async () => {
    api = await ApiStack.create('proto_names');
  });
  afterAll(async () => api?.close());

  const balance = async (id: string) => (await api.accounts.loadWithoutSnapshot(id)).state.balance;
  /** The transfer's status once its saga ended (long polls, however long the machine takes; a saga stuck pending fails the test's timeout). */
  async function settled(transferId: string): Promise<string> {
    for (;;) {
      const res = await api.http().get(`/transfers/${transferId}`).query({ wait: 10 });
      if (res.status === 200 && res.body.status !== 'pending') return res.body.status as string;
    }
  }
  const account = (ownerId: string, initialDeposit?: number) => api.openAccount(ownerId, initialDeposit);

  test.each(NAMES)('transfer id %s: refused at the edge (400, nothing written) when the id pattern refuses it', async (name) => {
    // Valid names are used as transfer ids below, by the reversals (a reversal is a transfer: its legs on both accounts
    // are keyed by its id): Temporal keeps one workflow id per transfer id, so each name can be used once.
    if (validId(name)) return;
    const [from, to] = [await account('proto-t', 1_000), await account('proto-t')];
    const before = await storeFingerprint(api.stack.pool);
    const res = await api.http().post('/transfers').send({ transferId: name, fromAccountId: from, toAccountId: to, amount: 100 });
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual([expect.objectContaining({ field: 'transferId' })]);
    expect(await storeFingerprint(api.stack.pool)).toEqual(before);
  });

  test.each(NAMES)('owner %s: accounts, API keys and listing by owner work, or 400 naming ownerId', async (name) => {
    const res = await api.http().post('/accounts').send({ ownerId: name, currency: 'EUR', initialDeposit: 50 });
    if (!validId(name)) {
      expect(res.status).toBe(400);
      expect(res.body.errors).toEqual([expect.objectContaining({ field: 'ownerId' })]);
      return;
    }
    expect(res.status).toBe(201);
    const accountId = res.body.accountId as string;
    const key = await api.http().post('/api-keys').send({ role: 'customer', ownerId: name });
    expect(key.status).toBe(201);
    const own = await api.as(key.body.secret as string).get(`/accounts/${accountId}`);
    expect(own.status).toBe(200);
    expect(own.body).toMatchObject({ accountId, ownerId: name });
    const other = await account('someone-else');
    expect((await api.as(key.body.secret as string).get(`/accounts/${other}`)).status).toBe(404);
  });

  test.each(NAMES)(
    'idempotency key %s on a deposit: one deposit, replayed (or 400 naming Idempotency-Key, nothing written)',
    async (name) => {
      const accountId = await account('proto-i');
      const deposit = () => api.http().post(`/accounts/${accountId}/deposits`).set('Idempotency-Key', name).send({ amount: 70 });
      const first = await deposit();
      if (first.status === 400) {
        expect(first.body.errors).toEqual([expect.objectContaining({ field: 'Idempotency-Key' })]);
        expect(await balance(accountId)).toBe(0);
        return;
      }
      expect(first.status).toBeLessThan(300);
      const again = await deposit();
      expect(again.status).toBe(first.status);
      expect(await balance(accountId)).toBe(70);
    },
  );

  test.each(NAMES)('path ids %s on accounts, exceptions, API keys and streams: 400 or 404, never 5xx', async (name) => {
    const path = encodeURIComponent(name);
    for (const [method, url, expected] of [
      ['get', `/accounts/${path}`, [400]],
      ['post', `/accounts/${path}/deposits`, [400]],
      ['get', `/accounts/${path}/history`, [400]],
      ['post', `/exceptions/${path}/accept`, [400]],
      ['post', `/exceptions/${path}/reject`, [400]],
      ['delete', `/api-keys/${path}`, [400]],
      ['get', `/transfers/${path}`, validId(name) ? [200, 404] : [400]],
      ['get', `/streams/${path}`, [200, 400, 404]],
    ] as const) {
      const agent = api.http();
      const res = await (method === 'get' ? agent.get(url) : method === 'post' ? agent.post(url).send({ amount: 1 }) : agent.delete(url));
      expect({ method, url, allowed: (expected as readonly number[]).includes(res.status) ? 'yes' : res.status }).toEqual({
        method,
        url,
        allowed: 'yes',
      });
    }
  });
  test.each(NAMES)(
    'reversal id %s: a reversal like any other (completed, held on the original), or 400 with nothing written',
    async (name) => {
      const [from, to] = [await account('proto-r', 1_000), await account('proto-r')];
      const original = randomUUID();
      const sent = await api
        .http()
        .post('/transfers')
        .set('Prefer', 'wait=10')
        .send({ transferId: original, fromAccountId: from, toAccountId: to, amount: 500 });
      expect([201, 202]).toContain(sent.status);
      expect(await settled(original)).toBe('completed');
      const before = await storeFingerprint(api.stack.pool);
      const res = await api.http().post(`/transfers/${original}/reversal`).set('Prefer', 'wait=10').send({ amount: 200, reversalId: name });
      if (!validId(name)) {
        expect(res.status).toBe(400);
        expect(res.body.errors).toEqual([expect.objectContaining({ field: 'reversalId' })]);
        expect(await storeFingerprint(api.stack.pool)).toEqual(before);
        return;
      }
      // 201 when the saga ended within the preferred wait, 202 when a busy machine took longer: either way it ends completed.
      expect([201, 202]).toContain(res.status);
      expect(res.body).toMatchObject({ transferId: name, reversalOf: original, amount: 200 });
      expect(await settled(name)).toBe('completed');
      expect((await api.http().get(`/transfers/${name}`)).body).toMatchObject({
        transferId: name,
        status: 'completed',
        reversalOf: original,
      });
      expect([await balance(from), await balance(to)]).toEqual([700, 300]);
      const originalEvents = await api.store.readStream(transferStream(original));
      expect(originalEvents.at(-1)).toMatchObject({ type: 'TransferReversalReserved', data: { reversalId: name, amount: 200 } });
      // The rest can still be reversed, and no more.
      const rest = await api.http().post(`/transfers/${original}/reversal`).set('Prefer', 'wait=10').send({ amount: 301 });
      expect(rest.status).toBe(422);
    },
  );
});
