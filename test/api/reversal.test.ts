import { randomUUID } from 'node:crypto';
import { TransferView } from '../../api/schemas';
import { transferStream } from '../../domain/transfer-events';
import { ApiStack, storeFingerprint } from '../support/api-stack';

/**
 * Undo by a compensating record, never by deletion: `POST /transfers/{id}/reversal` starts a new
 * saga that moves (part of) a completed transfer back, linked both ways; never beyond the original
 * amount, also under concurrent reversals; a target without the funds makes the reversal fail with
 * nothing moved.
 */
describe('reversals', () => {
  let api: ApiStack;
  beforeAll(async () => {
    api = await ApiStack.create('reversal');
  });
  afterAll(async () => api?.close());

  const balance = async (id: string) => (await api.accounts.loadWithoutSnapshot(id)).state.balance;

  async function account(initialDeposit?: number): Promise<string> {
    const res = await api
      .http()
      .post('/accounts')
      .send({ ownerId: 'rev', currency: 'EUR', ...(initialDeposit ? { initialDeposit } : {}) });
    expect(res.status).toBe(201);
    return res.body.accountId as string;
  }

  async function completedTransfer(amount = 1_000): Promise<{ from: string; to: string; transferId: string }> {
    const [from, to] = [await account(5_000), await account()];
    const transferId = randomUUID();
    const res = await api
      .http()
      .post('/transfers')
      .set('Prefer', 'wait=10')
      .send({ transferId, fromAccountId: from, toAccountId: to, amount });
    expect(res.body.status).toBe('completed');
    return { from, to, transferId };
  }

  const reverse = (transferId: string, body: Record<string, unknown> = {}) =>
    api.http().post(`/transfers/${transferId}/reversal`).set('Prefer', 'wait=10').send(body);

  test('a full reversal moves the amount back, linked both ways (events and views)', async () => {
    const { from, to, transferId } = await completedTransfer(1_000);
    const res = await reverse(transferId);
    expect(res.status).toBe(201);
    const reversal = TransferView.parse(res.body);
    expect(reversal).toMatchObject({ fromAccountId: to, toAccountId: from, amount: 1_000, status: 'completed', reversalOf: transferId });
    expect(await balance(from)).toBe(5_000);
    expect(await balance(to)).toBe(0);

    const originalEvents = await api.store.readStream(transferStream(transferId));
    expect(originalEvents.at(-1)).toMatchObject({
      type: 'TransferReversalReserved',
      data: { reversalId: reversal.transferId, amount: 1_000 },
    });
    expect((await api.store.readStream(transferStream(reversal.transferId)))[0]).toMatchObject({
      type: 'TransferRequested',
      data: { reversalOf: transferId },
    });

    await api.caughtUp();
    const view = await api.http().get(`/transfers/${transferId}`);
    expect(view.body).toMatchObject({ status: 'completed', reversedBy: [{ reversalId: reversal.transferId, amount: 1_000 }] });
    expect((await api.http().get(`/transfers/${reversal.transferId}`)).body).toMatchObject({ reversalOf: transferId, status: 'completed' });
  });

  test('partial reversals until the amount is used up, never beyond; a refused one writes nothing', async () => {
    const { from, to, transferId } = await completedTransfer(1_000);
    expect((await reverse(transferId, { amount: 300 })).body).toMatchObject({ status: 'completed', amount: 300 });
    expect((await reverse(transferId)).body).toMatchObject({ status: 'completed', amount: 700 }); // the default: what is left
    const before = await storeFingerprint(api.pool);
    const beyond = await reverse(transferId, { amount: 1 });
    expect(beyond.status).toBe(422);
    expect(beyond.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(beyond.body).toMatchObject({ type: '/problems/reversal-exceeds-original', errors: [{ field: 'amount' }] });
    expect(await storeFingerprint(api.pool)).toEqual(before);
    expect(await balance(from)).toBe(5_000);
    expect(await balance(to)).toBe(0);
  });

  test('idempotent by reversalId: the same request answers the same reversal; another amount under that id is 409', async () => {
    const { from, transferId } = await completedTransfer(1_000);
    const reversalId = randomUUID();
    const first = await reverse(transferId, { amount: 400, reversalId });
    expect(first.status).toBe(201);
    const again = await reverse(transferId, { amount: 400, reversalId });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ transferId: reversalId, status: 'completed', amount: 400 });
    expect((await reverse(transferId, { amount: 500, reversalId })).status).toBe(409);
    expect(await balance(from)).toBe(4_000 + 400);
  });

  test('only a completed transfer can be reversed: a failed one is 422 transfer_not_completed, nothing written', async () => {
    const [from, to] = [await account(100), await account()];
    const transferId = randomUUID();
    expect(
      (
        await api
          .http()
          .post('/transfers')
          .set('Prefer', 'wait=10')
          .send({ transferId, fromAccountId: from, toAccountId: to, amount: 5_000 })
      ).body.status,
    ).toBe('failed');
    const before = await storeFingerprint(api.pool);
    const res = await reverse(transferId);
    expect(res.status).toBe(422);
    expect(res.body.type).toBe('/problems/transfer-not-completed');
    expect(await storeFingerprint(api.pool)).toEqual(before);
    expect((await reverse(randomUUID())).status).toBe(404);
  });

  test('a target without the funds: the reversal fails with nothing moved, and its hold is given back', async () => {
    const { from, to, transferId } = await completedTransfer(1_000);
    expect((await api.http().post(`/accounts/${to}/withdrawals`).send({ amount: 800 })).status).toBe(200);
    const res = await reverse(transferId);
    expect(res.body).toMatchObject({ status: 'failed', failureReason: 'insufficient_funds' });
    expect(await balance(from)).toBe(4_000);
    expect(await balance(to)).toBe(200);
    const types = (await api.store.readStream(transferStream(transferId))).map((e) => e.type);
    expect(types.slice(-2)).toEqual(['TransferReversalReserved', 'TransferReversalReleased']);
    // The whole amount is reversible again once the target has the funds.
    expect((await api.http().post(`/accounts/${to}/deposits`).send({ amount: 800 })).status).toBe(200);
    expect((await reverse(transferId)).body).toMatchObject({ status: 'completed', amount: 1_000 });
    expect(await balance(from)).toBe(5_000);
  });

  test('concurrent reversals never take back more than the original amount', async () => {
    const { from, to, transferId } = await completedTransfer(1_000);
    const results = await Promise.all([
      reverse(transferId, { amount: 600 }),
      reverse(transferId, { amount: 600 }),
      reverse(transferId, { amount: 600 }),
    ]);
    const completed = results.filter((r) => r.body.status === 'completed');
    expect(completed).toHaveLength(1);
    for (const r of results.filter((x) => x.body.status !== 'completed')) {
      expect([201, 422]).toContain(r.status); // refused up front, or by the saga's hold (failed, nothing moved)
      if (r.status === 201) expect(r.body).toMatchObject({ status: 'failed', failureReason: 'reversal_exceeds_original' });
    }
    expect(await balance(from)).toBe(4_600);
    expect(await balance(to)).toBe(400);
  });
});
