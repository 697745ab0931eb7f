import { ApiStack } from '../support/api-stack';

/** GET /accounts (issue 15, for the console): by owner, keyset pages, a customer scoped to its own accounts. */
describe('GET /accounts', () => {
  let api: ApiStack;
  let alice: string;
  const aliceAccounts: string[] = [];
  let bobAccount: string;

  const open = (ownerId: string, initialDeposit?: number) => api.openAccount(ownerId, initialDeposit);

  beforeAll(async () => {
    api = await ApiStack.create('account_list');
    for (let i = 0; i < 5; i++) aliceAccounts.push(await open('alice', 100 * (i + 1)));
    aliceAccounts.sort();
    bobAccount = await open('bob', 42);
    const key = await api.http().post('/api-keys').send({ role: 'customer', ownerId: 'alice' });
    alice = key.body.secret as string;
    await api.caughtUp();
  });
  afterAll(async () => {
    await api?.close();
  });

  test("an operator lists one owner's accounts by account id, in pages that chain without gaps or repeats", async () => {
    const all = await api.http().get('/accounts').query({ ownerId: 'alice' });
    expect(all.status).toBe(200);
    expect(all.body.next).toBeUndefined();
    expect(all.body.accounts.map((a: { accountId: string }) => a.accountId)).toEqual(aliceAccounts);
    const first = all.body.accounts[0];
    const balances = await Promise.all(aliceAccounts.map((id) => api.stack.balance(id)));
    expect(all.body.accounts.map((a: { balance: number }) => a.balance)).toEqual(balances);
    expect(first).toEqual({
      accountId: aliceAccounts[0],
      ownerId: 'alice',
      currency: 'EUR',
      balance: balances[0],
      held: 0,
      available: balances[0],
      status: 'open',
      revision: 1,
      updatedAt: expect.any(String),
    });

    const paged: string[] = [];
    let after: string | undefined;
    for (let pages = 0; pages < 10; pages++) {
      const res = await api
        .http()
        .get('/accounts')
        .query({ ownerId: 'alice', limit: 2, ...(after ? { after } : {}) });
      expect(res.status).toBe(200);
      paged.push(...res.body.accounts.map((a: { accountId: string }) => a.accountId));
      after = res.body.next;
      if (!after) break;
    }
    expect(paged).toEqual(aliceAccounts);

    // Without an owner: every account.
    const everyone = await api.http().get('/accounts').query({ limit: 500 });
    expect(everyone.body.accounts.map((a: { accountId: string }) => a.accountId).sort()).toEqual([...aliceAccounts, bobAccount].sort());
  });

  test("a customer lists its own accounts only: another owner's list is empty, as one without accounts", async () => {
    const own = await api.as(alice).get('/accounts');
    expect(own.status).toBe(200);
    expect(own.body.accounts.map((a: { accountId: string }) => a.accountId)).toEqual(aliceAccounts);
    expect(
      (await api.as(alice).get('/accounts').query({ ownerId: 'alice', limit: 1 })).body.accounts.map(
        (a: { accountId: string }) => a.accountId,
      ),
    ).toEqual([aliceAccounts[0]]);
    const bobs = await api.as(alice).get('/accounts').query({ ownerId: 'bob' });
    expect(bobs.status).toBe(200);
    expect(bobs.body).toEqual({ accounts: [] });
    expect((await api.as(alice).get('/accounts').query({ ownerId: 'nobody' })).body).toEqual({ accounts: [] });
    expect((await api.anonymous().get('/accounts')).status).toBe(401);
  });

  test.each([
    [{ limit: '0' }, 'limit'],
    [{ limit: '501' }, 'limit'],
    [{ after: 'not-an-account-id' }, 'after'],
    [{ ownerId: 'has spaces' }, 'ownerId'],
    [{ owner: 'alice' }, 'owner'],
  ])('bad query %o -> 400 problem naming %s', async (query, field) => {
    const res = await api.http().get('/accounts').query(query);
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body.errors.map((e: { field: string }) => e.field)).toContain(field);
  });

  test('read-your-writes: ?minPosition waits for the balances projection', async () => {
    const deposit = await api.http().post(`/accounts/${aliceAccounts[0]}/deposits`).send({ amount: 5 });
    expect(deposit.status).toBe(200);
    const res = await api.http().get('/accounts').query({ ownerId: 'alice', limit: 1, minPosition: deposit.body.position });
    expect(res.body.accounts[0].balance).toBe(deposit.body.balance);
  });
});
