import { randomUUID } from 'node:crypto';
import type { Response } from 'supertest';
import { scopedTransferId } from '../../api/customer-ids';
import { batchItemTransferId } from '../../application/batch-log';
import { batchStream } from '../../domain/transfer-batch';
import { transferStream } from '../../domain/transfer-events';
import { ApiStack, storeFingerprint } from '../support/api-stack';
import { waitUntil } from '../support/wait-until';

/**
 * The HTTP API of batches of transfers (issue 26) on a real Temporal dev server and PostgreSQL: every refusal before
 * anything is written (400 naming `items[i].field`, 403, 422, 409; the batch's stream and its items' streams absent), a
 * batch settling item by item with balances moved exactly, atomic all-or-nothing, repeats that write nothing, paging of
 * the items, ids scoped to a customer's owner. Every response is checked against the OpenAPI document by ApiStack.
 */

function expectProblem(res: Response, status: number, type?: string, field?: string): void {
  expect({ status: res.status, body: res.body as unknown }).toMatchObject({ status, body: { status, ...(type ? { type } : {}) } });
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  if (field) expect((res.body.errors as { field: string }[]).map((e) => e.field)).toContain(field);
}

interface ItemView {
  index: number;
  transferId: string;
  fromAccountId: string;
  toAccountId: string;
  amount: number;
  status: string;
  failureReason?: string;
}
interface BatchView {
  batchId: string;
  status: string;
  atomic: boolean;
  itemCount: number;
  counts: { completed: number; failed: number; compensated: number; pending: number };
  items: ItemView[];
  nextCursor?: string;
  progress?: { phase: string };
}

describe('batches of transfers over HTTP', () => {
  let api: ApiStack;
  let alice: string;
  let carol: string;

  async function customerKey(ownerId: string): Promise<string> {
    const res = await api.http().post('/api-keys').send({ role: 'customer', ownerId });
    expect(res.status).toBe(201);
    return res.body.secret as string;
  }

  beforeAll(async () => {
    api = await ApiStack.create('batches_api');
    [alice, carol] = (await Promise.all(['b-alice', 'b-carol'].map(customerKey))) as [string, string];
  });
  afterAll(async () => api?.close());

  const balance = (id: string) => api.stack.balance(id);
  const written = () => storeFingerprint(api.pool);
  const streamLength = async (stream: string) => (await api.store.readStream(stream)).length;

  /** Waits (on the batch's read, never on time) until it has settled and every item's outcome is in. */
  const settled = (batchId: string, as = api.http()) =>
    waitUntil(
      `batch ${batchId} to settle`,
      async () => {
        const res = await as.get(`/transfer-batches/${batchId}`).query({ limit: 500 });
        const body = res.body as BatchView;
        return res.status === 200 && body.status !== 'pending' && body.counts.pending === 0 ? body : undefined;
      },
      60_000,
      50,
    );

  const item = (fromAccountId: string, toAccountId: string, amount: number, transferId?: string) => ({
    ...(transferId ? { transferId } : {}),
    fromAccountId,
    toAccountId,
    amount,
  });

  describe('refusals write nothing', () => {
    let a: string;
    let b: string;
    beforeAll(async () => {
      a = await api.openAccount('b-ops', 1_000);
      b = await api.openAccount('b-ops');
    });

    const cases: [string, (a: string, b: string) => Record<string, unknown>, string][] = [
      ['an amount of zero', (a, b) => ({ items: [item(a, b, 1), item(a, b, 0)] }), 'items[1].amount'],
      ['a fraction of a minor unit', (a, b) => ({ items: [item(a, b, 1.5)] }), 'items[0].amount'],
      ['an amount beyond the safe integers', (a, b) => ({ items: [item(a, b, 2 ** 53)] }), 'items[0].amount'],
      ['an amount as text', (a, b) => ({ items: [{ ...item(a, b, 1), amount: '10' }] }), 'items[0].amount'],
      ['a negative amount', (a, b) => ({ items: [item(a, b, 5), item(b, a, 5), item(a, b, -5)] }), 'items[2].amount'],
      ['a source that is not an account id', (a, b) => ({ items: [item(a, b, 1), item('nope', b, 1)] }), 'items[1].fromAccountId'],
      ['a missing target', (a) => ({ items: [{ fromAccountId: a, amount: 1 }] }), 'items[0].toAccountId'],
      ['the same account twice', (a) => ({ items: [item(a, a, 1)] }), 'items[0].toAccountId'],
      ['a transfer id of the wrong form', (a, b) => ({ items: [item(a, b, 1, 'has space')] }), 'items[0].transferId'],
      ['a transfer id with a NUL', (a, b) => ({ items: [item(a, b, 1, 'x\u0000y')] }), 'items[0].transferId'],
      ['the same transfer id twice', (a, b) => ({ items: [item(a, b, 1, 'twice'), item(a, b, 2, 'twice')] }), 'items[1].transferId'],
      ['an unknown field in an item', (a, b) => ({ items: [item(a, b, 1), { ...item(a, b, 1), note: 'x' }] }), 'items[1].note'],
      ['an unknown field in the batch', (a, b) => ({ items: [item(a, b, 1)], priority: 1 }), 'priority'],
      ['no items', () => ({ items: [] }), 'items'],
      ['items that are not a list', () => ({ items: 'all of them' }), 'items'],
      ['no items field', () => ({}), 'items'],
      ['more items than TRANSFER_BATCH_MAX_ITEMS', (a, b) => ({ items: Array.from({ length: 1_001 }, () => item(a, b, 1)) }), 'items'],
      ['atomic that is not a boolean', (a, b) => ({ atomic: 'yes', items: [item(a, b, 1)] }), 'atomic'],
      ['a batch id of the wrong form', (a, b) => ({ batchId: '-leading-dash', items: [item(a, b, 1)] }), 'batchId'],
    ];

    test.each(cases)('%s: 400 naming the field, no batch or transfer stream written', async (_name, make, field) => {
      const batchId = `bad-${randomUUID()}`;
      const body: Record<string, unknown> = { batchId, ...make(a, b) };
      const before = await written();
      const res = await api.http().post('/transfer-batches').send(body);
      expectProblem(res, 400, '/problems/validation-error', field);
      expect(await written()).toEqual(before);
      expect(await streamLength(batchStream(batchId))).toBe(0);
      const items = Array.isArray(body.items) ? (body.items as { transferId?: string }[]) : [];
      // (The first 20: for 1,001 items, the rest are alike.)
      for (const [i, it] of items.slice(0, 20).entries()) {
        const transferId =
          typeof it.transferId === 'string' && /^[A-Za-z0-9_-]+$/.test(it.transferId) ? it.transferId : batchItemTransferId(batchId, i);
        expect(await streamLength(transferStream(transferId))).toBe(0);
      }
    });

    test("an account that does not exist, a currency that differs: 422 naming the item's field, nothing written", async () => {
      const usd = (await api.http().post('/accounts').send({ ownerId: 'b-ops', currency: 'USD' })).body.accountId as string;
      for (const [items, field, type] of [
        [[item(a, b, 1), item(a, randomUUID(), 1)], 'items[1].toAccountId', '/problems/account-not-found'],
        [[item(randomUUID(), b, 1)], 'items[0].fromAccountId', '/problems/account-not-found'],
        [[item(a, b, 1), item(b, a, 1), item(a, usd, 1)], 'items[2].toAccountId', '/problems/currency-mismatch'],
      ] as const) {
        const batchId = `unk-${randomUUID()}`;
        const before = await written();
        expectProblem(await api.http().post('/transfer-batches').send({ batchId, items }), 422, type, field);
        expect(await written()).toEqual(before);
        expect(await streamLength(batchStream(batchId))).toBe(0);
        for (let i = 0; i < items.length; i++) expect(await streamLength(transferStream(batchItemTransferId(batchId, i)))).toBe(0);
      }
      expect(await balance(a)).toBe(1_000);
    });

    test('a customer moving money from an account it does not own: 403 naming the item, nothing written', async () => {
      const mine = await api.openAccount('b-alice', 500);
      const theirs = await api.openAccount('b-carol', 500);
      const batchId = `acl-${randomUUID().slice(0, 8)}`;
      const before = await written();
      const res = await api
        .as(alice)
        .post('/transfer-batches')
        .send({ batchId, items: [item(mine, theirs, 10), item(theirs, mine, 10), item(mine, theirs, 1)] });
      expectProblem(res, 403, '/problems/forbidden', 'items[1].fromAccountId');
      expect(await written()).toEqual(before);
      const stored = scopedTransferId('b-alice', batchId)!;
      expect(await streamLength(batchStream(stored))).toBe(0);
      for (let i = 0; i < 3; i++)
        expect(await streamLength(transferStream(scopedTransferId('b-alice', batchItemTransferId(stored, i))!))).toBe(0);
      expect([await balance(mine), await balance(theirs)]).toEqual([500, 500]);
      // A body refused by its schema is 400 for a customer too (access control reads the body first), naming the item alike.
      expectProblem(
        await api
          .as(alice)
          .post('/transfer-batches')
          .send({ items: [item(mine, theirs, 0)] }),
        400,
        undefined,
        'items[0].amount',
      );
    });

    test('a body beyond the batch limit (512 bytes per item allowed, plus 16 kB): 413, nothing written', async () => {
      const before = await written();
      const res = await api
        .http()
        .post('/transfer-batches')
        .send({ items: [item(a, b, 1)], padding: 'x'.repeat(1_000 * 512 + 16 * 1024) });
      expectProblem(res, 413, '/problems/body-too-large');
      expect(await written()).toEqual(before);
    });

    test('a batch id that is not known: 404', async () => {
      expectProblem(await api.http().get(`/transfer-batches/none-${randomUUID()}`), 404, '/problems/batch-not-found');
    });
  });

  test("a batch settles: 202 with each item's transfer id, then every item completed and the balances moved exactly", async () => {
    const a = await api.openAccount('b-ops', 1_000);
    const b = await api.openAccount('b-ops', 100);
    const c = await api.openAccount('b-ops');
    const batchId = `ok-${randomUUID()}`;
    const items = [item(a, b, 300, `${batchId}-first`), item(a, c, 200), item(b, c, 50)];
    const res = await api.http().post('/transfer-batches').send({ batchId, items });
    expect(res.status).toBe(202);
    expect(res.headers.location).toBe(`/transfer-batches/${batchId}`);
    const ids = [`${batchId}-first`, batchItemTransferId(batchId, 1), batchItemTransferId(batchId, 2)];
    expect(res.body).toEqual({
      batchId,
      atomic: false,
      status: 'pending',
      itemCount: 3,
      items: ids.map((transferId, index) => ({ index, transferId })),
    });

    const done = await settled(batchId);
    expect(done).toMatchObject({
      batchId,
      status: 'completed',
      atomic: false,
      itemCount: 3,
      counts: { completed: 3, failed: 0, compensated: 0, pending: 0 },
    });
    expect(done.items).toEqual(
      items.map((it, index) => ({
        index,
        transferId: ids[index],
        fromAccountId: it.fromAccountId,
        toAccountId: it.toAccountId,
        amount: it.amount,
        status: 'completed',
      })),
    );
    expect([await balance(a), await balance(b), await balance(c)]).toEqual([500, 350, 250]);
    // Each item is a transfer of its own.
    for (const transferId of ids) {
      expect((await api.http().get(`/transfers/${transferId}`)).body).toMatchObject({ transferId, status: 'completed' });
    }

    // The same batch again: the same answer, now settled, and nothing written.
    const mark = await written();
    const again = await api.http().post('/transfer-batches').send({ batchId, items });
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ ...res.body, status: 'completed', counts: { completed: 3, failed: 0, compensated: 0, pending: 0 } });
    expect(await written()).toEqual(mark);
    // The same id with another payload: 409, nothing written.
    for (const other of [
      { batchId, items: [...items.slice(0, 2), item(b, c, 51)] },
      { batchId, items },
    ].map((body, i) => (i === 1 ? { ...body, atomic: true } : body))) {
      expectProblem(await api.http().post('/transfer-batches').send(other), 409, '/problems/transfer-conflict', 'batchId');
    }
    expect(await written()).toEqual(mark);
    expect([await balance(a), await balance(b), await balance(c)]).toEqual([500, 350, 250]);

    // The operators' list shows it.
    const list = await api.http().get('/transfer-batches').query({ status: 'completed' });
    expect(list.status).toBe(200);
    expect((list.body.batches as { batchId: string }[]).map((x) => x.batchId)).toContain(batchId);
    expectProblem(await api.as(alice).get('/transfer-batches'), 403, '/problems/forbidden');
  });

  test('not atomic: an item without the funds fails with its reason, the others complete', async () => {
    const a = await api.openAccount('b-ops', 100);
    const b = await api.openAccount('b-ops', 10);
    const c = await api.openAccount('b-ops');
    const batchId = `partial-${randomUUID()}`;
    const res = await api
      .http()
      .post('/transfer-batches')
      .send({ batchId, items: [item(a, c, 60), item(b, c, 11), item(a, b, 40)] });
    expect(res.status).toBe(202);
    const done = await settled(batchId);
    expect(done).toMatchObject({ status: 'partially_completed', counts: { completed: 2, failed: 1, compensated: 0, pending: 0 } });
    expect(done.items.map((x) => [x.index, x.status, x.failureReason])).toEqual([
      [0, 'completed', undefined],
      [1, 'failed', 'insufficient_funds'],
      [2, 'completed', undefined],
    ]);
    expect([await balance(a), await balance(b), await balance(c)]).toEqual([0, 50, 60]);
    // Filtered by outcome.
    const failed = await api.http().get(`/transfer-batches/${batchId}`).query({ status: 'failed' });
    expect((failed.body as BatchView).items.map((x) => x.index)).toEqual([1]);
  });

  test('atomic: one item refused and nothing moves; every item ends without completing', async () => {
    const a = await api.openAccount('b-ops', 100);
    const b = await api.openAccount('b-ops', 10);
    const c = await api.openAccount('b-ops');
    const batchId = `atomic-${randomUUID()}`;
    const res = await api
      .http()
      .post('/transfer-batches')
      .send({ batchId, atomic: true, items: [item(a, c, 60), item(b, c, 11), item(a, b, 40)] });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ atomic: true, status: 'pending' });
    const done = await settled(batchId);
    expect(done).toMatchObject({ status: 'failed', atomic: true });
    expect(done.counts.completed).toBe(0);
    expect(done.items.every((x) => x.status === 'failed' || x.status === 'compensated')).toBe(true);
    expect(done.items[1]).toMatchObject({ status: 'failed', failureReason: 'insufficient_funds' });
    expect([await balance(a), await balance(b), await balance(c)]).toEqual([100, 10, 0]);
  });

  test('Prefer: wait answers 201 with the settled batch', async () => {
    const a = await api.openAccount('b-ops', 100);
    const b = await api.openAccount('b-ops');
    const batchId = `wait-${randomUUID()}`;
    const res = await api
      .http()
      .post('/transfer-batches')
      .set('Prefer', 'wait=10')
      .send({ batchId, items: [item(a, b, 30), item(a, b, 20)] });
    expect(res.status).toBe(201);
    expect(res.headers['preference-applied']).toBe('wait=10');
    expect(res.body).toMatchObject({ batchId, status: 'completed', counts: { completed: 2, failed: 0, compensated: 0, pending: 0 } });
    expect([await balance(a), await balance(b)]).toEqual([50, 50]);
  });

  test("the items' outcomes page by cursor, in their order", async () => {
    const a = await api.openAccount('b-ops', 1_000);
    const b = await api.openAccount('b-ops');
    const batchId = `pages-${randomUUID()}`;
    const items = Array.from({ length: 7 }, (_, i) => item(a, b, i + 1));
    expect((await api.http().post('/transfer-batches').send({ batchId, items })).status).toBe(202);
    await settled(batchId);
    const seen: number[][] = [];
    let cursor: string | undefined;
    do {
      const res = await api
        .http()
        .get(`/transfer-batches/${batchId}`)
        .query({ limit: 3, ...(cursor ? { cursor } : {}) });
      const body = res.body as BatchView;
      seen.push(body.items.map((x) => x.amount));
      cursor = body.nextCursor;
    } while (cursor !== undefined && seen.length < 10);
    expect(seen).toEqual([[1, 2, 3], [4, 5, 6], [7]]);
    expect([await balance(a), await balance(b)]).toEqual([1_000 - 28, 28]);
    expectProblem(await api.http().get(`/transfer-batches/${batchId}`).query({ cursor: 'x' }), 400, undefined, 'cursor');
    expectProblem(await api.http().get(`/transfer-batches/${batchId}`).query({ limit: 501 }), 400, undefined, 'limit');
  });

  test("a customer's batch: its own ids, scoped to its owner; another owner cannot read it", async () => {
    const mine = await api.openAccount('b-alice', 100);
    const other = await api.openAccount('b-alice');
    const batchId = `mine-${randomUUID().slice(0, 8)}`;
    const res = await api
      .as(alice)
      .post('/transfer-batches')
      .send({ batchId, items: [item(mine, other, 10, 'first'), item(mine, other, 5)] });
    expect(res.status).toBe(202);
    const stored = scopedTransferId('b-alice', batchId)!;
    const derived = batchItemTransferId(stored, 1);
    expect(res.body).toMatchObject({
      batchId,
      items: [
        { index: 0, transferId: 'first' },
        { index: 1, transferId: derived },
      ],
    });
    expect(res.headers.location).toBe(`/transfer-batches/${batchId}`);
    const done = await settled(batchId, api.as(alice));
    expect(done).toMatchObject({ batchId, status: 'completed' });
    expect(done.items.map((x) => x.transferId)).toEqual(['first', derived]);
    expect('actor' in done).toBe(false);
    // Stored under the owner's scope: the operator sees the stored ids.
    const asOperator = await api.http().get(`/transfer-batches/${stored}`);
    expect(asOperator.body).toMatchObject({ batchId: stored, status: 'completed' });
    expect((asOperator.body as BatchView).items.map((x) => x.transferId)).toEqual([
      scopedTransferId('b-alice', 'first'),
      scopedTransferId('b-alice', derived),
    ]);
    // Another owner: as a batch that does not exist (its own scope first, then the stored id).
    expectProblem(await api.as(carol).get(`/transfer-batches/${batchId}`), 404, '/problems/batch-not-found');
    expectProblem(await api.as(carol).get(`/transfer-batches/${stored}`), 404, '/problems/batch-not-found');
    // Carol may use the same batch id for a batch of her own: ids are scoped.
    const hers = await api.openAccount('b-carol', 10);
    const hers2 = await api.openAccount('b-carol');
    const carolRes = await api
      .as(carol)
      .post('/transfer-batches')
      .send({ batchId, items: [item(hers, hers2, 1)] });
    expect(carolRes.status).toBe(202);
    await settled(batchId, api.as(carol));
    expect([await balance(mine), await balance(other), await balance(hers), await balance(hers2)]).toEqual([85, 15, 9, 1]);
  });
  test('before its saga runs or the read model has it, the batch reads from its stream: pending, without progress', async () => {
    const a = await api.openAccount('b-ops', 100);
    const b = await api.openAccount('b-ops');
    // No worker (the saga cannot run or answer a query) and no projections (the read model does not see the batch).
    await api.stack.stopWorker();
    await api.projections!.stop();
    const batchId = `early-${randomUUID()}`;
    const res = await api
      .http()
      .post('/transfer-batches')
      .send({ batchId, items: [item(a, b, 10), item(a, b, 20)] });
    expect(res.status).toBe(202);
    const early = await api.http().get(`/transfer-batches/${batchId}`).query({ limit: 1 });
    expect(early.status).toBe(200);
    expect(early.body).toEqual({
      batchId,
      atomic: false,
      status: 'pending',
      itemCount: 2,
      counts: { completed: 0, failed: 0, compensated: 0, pending: 2 },
      actor: 'env-operator',
      items: [{ index: 0, transferId: batchItemTransferId(batchId, 0), fromAccountId: a, toAccountId: b, amount: 10, status: 'pending' }],
      nextCursor: '0',
    });
    const next = await api.http().get(`/transfer-batches/${batchId}`).query({ limit: 1, cursor: '0' });
    expect((next.body as BatchView).items.map((x) => x.amount)).toEqual([20]);
    expect((next.body as BatchView).nextCursor).toBeUndefined();
    expect([await balance(a), await balance(b)]).toEqual([100, 0]);

    await api.stack.startWorker();
    api.projections = await api.startProjections();
    const done = await settled(batchId);
    expect(done).toMatchObject({ status: 'completed', counts: { completed: 2, failed: 0, compensated: 0, pending: 0 } });
    expect(typeof (done as unknown as { acceptedAt: unknown }).acceptedAt).toBe('string');
    expect([await balance(a), await balance(b)]).toEqual([70, 30]);
  });
  test('a batch of 1,000 items (the default most) settles, every item completed, the money moved exactly', async () => {
    const sources = await Promise.all(Array.from({ length: 10 }, () => api.openAccount('b-ops', 10_000)));
    const targets = await Promise.all(Array.from({ length: 10 }, () => api.openAccount('b-ops')));
    const batchId = `big-${randomUUID()}`;
    const items = Array.from({ length: 1_000 }, (_, i) => item(sources[i % 10]!, targets[Math.floor(i / 100)]!, 1 + (i % 7)));
    const res = await api.http().post('/transfer-batches').send({ batchId, items });
    expect(res.status).toBe(202);
    expect(res.body.itemCount).toBe(1_000);
    const done = await settled(batchId);
    expect(done).toMatchObject({ status: 'completed', counts: { completed: 1_000, failed: 0, compensated: 0, pending: 0 } });
    const moved = (pick: (it: (typeof items)[number]) => string, id: string) =>
      items.filter((it) => pick(it) === id).reduce((sum, it) => sum + it.amount, 0);
    for (const s of sources) expect(await balance(s)).toBe(10_000 - moved((it) => it.fromAccountId, s));
    for (const t of targets) expect(await balance(t)).toBe(moved((it) => it.toAccountId, t));
  });
});
