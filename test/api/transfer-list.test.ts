import { randomUUID } from 'node:crypto';
import { TransferView } from '../../api/schemas';
import { ApiStack } from '../support/api-stack';

/** GET /transfers: from the read model, filtered by account, status and time, keyset-paginated; customers see their own only. */
describe('GET /transfers', () => {
  let api: ApiStack;
  const owner = `list-${randomUUID().slice(0, 6)}`;
  let mine: string;
  let other: string;
  let third: string;
  const ids: string[] = [];

  beforeAll(async () => {
    api = await ApiStack.create('transferlist');
    const open = async (ownerId: string, initialDeposit?: number) =>
      (
        await api
          .http()
          .post('/accounts')
          .send({ ownerId, currency: 'EUR', ...(initialDeposit ? { initialDeposit } : {}) })
      ).body.accountId as string;
    mine = await open(owner, 10_000);
    other = await open('someone-else', 10_000);
    third = await open('third', 0);
    for (const [from, to, amount] of [
      [mine, other, 100],
      [other, mine, 200],
      [mine, other, 50_000], // fails: insufficient funds
      [other, third, 300], // not the owner's
      [mine, third, 400],
    ] as const) {
      const transferId = `tl-${randomUUID()}`;
      ids.push(transferId);
      const res = await api
        .http()
        .post('/transfers')
        .set('Prefer', 'wait=10')
        .send({ transferId, fromAccountId: from, toAccountId: to, amount });
      expect(res.status).toBe(201);
    }
    await api.caughtUp();
  });
  afterAll(async () => api?.close());

  test('by account, oldest first, each a Transfer; by status; pages by cursor without gaps or repeats', async () => {
    const all = await api.http().get('/transfers').query({ accountId: mine });
    expect(all.status).toBe(200);
    expect(all.body.transfers.map((t: { transferId: string }) => t.transferId)).toEqual([ids[0], ids[1], ids[2], ids[4]]);
    for (const t of all.body.transfers) TransferView.parse(t);
    expect(all.body.next).toBeUndefined();

    const failed = await api.http().get('/transfers').query({ accountId: mine, status: 'failed' });
    expect(failed.body.transfers.map((t: { transferId: string }) => t.transferId)).toEqual([ids[2]]);

    const seen: string[] = [];
    let after: string | undefined;
    do {
      const page = await api
        .http()
        .get('/transfers')
        .query({ accountId: mine, limit: 1, ...(after ? { after } : {}) });
      expect(page.status).toBe(200);
      seen.push(...page.body.transfers.map((t: { transferId: string }) => t.transferId));
      after = page.body.next as string | undefined;
    } while (after);
    expect(seen).toEqual([ids[0], ids[1], ids[2], ids[4]]);
  });

  test('by creation time', async () => {
    const all = (await api.http().get('/transfers').query({ accountId: mine })).body.transfers as {
      transferId: string;
      createdAt: string;
    }[];
    const from = all[1]!.createdAt;
    const later = await api.http().get('/transfers').query({ accountId: mine, from });
    expect(later.body.transfers.map((t: { transferId: string }) => t.transferId)).toEqual(all.slice(1).map((t) => t.transferId));
    const earlier = await api.http().get('/transfers').query({ accountId: mine, to: from });
    expect(earlier.body.transfers.map((t: { transferId: string }) => t.transferId)).toEqual([all[0]!.transferId]);
  });

  test('a customer sees only transfers from or to its own accounts', async () => {
    const key = (await api.http().post('/api-keys').send({ role: 'customer', ownerId: owner })).body.secret as string;
    const res = await api.as(key).get('/transfers');
    expect(res.status).toBe(200);
    expect(res.body.transfers.map((t: { transferId: string }) => t.transferId)).toEqual([ids[0], ids[1], ids[2], ids[4]]);
    const theirs = await api.as(key).get('/transfers').query({ accountId: other });
    expect(theirs.body.transfers.map((t: { transferId: string }) => t.transferId)).not.toContain(ids[3]);
  });

  test('bad filters are 400 problem+json naming the field', async () => {
    for (const [query, field] of [
      [{ status: 'lost' }, 'status'],
      [{ limit: 0 }, 'limit'],
      [{ from: 'yesterday' }, 'from'],
      [{ after: 'not a cursor!' }, 'after'],
      [{ after: 'bm9wZQ' }, 'after'],
    ] as const) {
      const res = await api.http().get('/transfers').query(query);
      expect(res.status).toBe(400);
      expect(res.headers['content-type']).toMatch(/problem\+json/);
      expect(JSON.stringify(res.body.errors)).toContain(field);
    }
  });
});
