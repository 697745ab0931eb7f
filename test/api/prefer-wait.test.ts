import { randomUUID } from 'node:crypto';
import { preferredWait } from '../../api/transfers-routes';
import { TransferView } from '../../api/schemas';
import { ApiStack } from '../support/api-stack';

/**
 * `POST /transfers` with `Prefer: wait=N` (RFC 7240): 201 with the finished transfer when the saga
 * ends within N seconds (capped at 10), 202 as without the header otherwise. Idempotency unchanged.
 */
describe('POST /transfers with Prefer: wait', () => {
  let api: ApiStack;
  beforeAll(async () => {
    api = await ApiStack.create('preferwait');
  });
  afterAll(async () => api?.close());

  async function account(initialDeposit?: number): Promise<string> {
    const res = await api
      .http()
      .post('/accounts')
      .send({ ownerId: 'pw', currency: 'EUR', ...(initialDeposit ? { initialDeposit } : {}) });
    expect(res.status).toBe(201);
    return res.body.accountId as string;
  }

  test('the saga ends in time: 201 with the finished transfer (from the event store), Preference-Applied', async () => {
    const [from, to] = [await account(1_000), await account()];
    const transferId = randomUUID();
    const res = await api
      .http()
      .post('/transfers')
      .set('Prefer', 'wait=10')
      .send({ transferId, fromAccountId: from, toAccountId: to, amount: 250 });
    expect(res.status).toBe(201);
    expect(res.headers['preference-applied']).toBe('wait=10');
    expect(res.headers.location).toBe(`/transfers/${transferId}`);
    expect(TransferView.parse(res.body)).toMatchObject({
      transferId,
      fromAccountId: from,
      toAccountId: to,
      amount: 250,
      status: 'completed',
    });
    expect((res.body.steps as { name: string }[]).map((s) => s.name)).toEqual([
      'requested',
      'source_debited',
      'target_credited',
      'completed',
    ]);

    // The same request again: idempotent, 200 with the same transfer, nothing new moves.
    const again = await api
      .http()
      .post('/transfers')
      .set('Prefer', 'wait=10')
      .send({ transferId, fromAccountId: from, toAccountId: to, amount: 250 });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ transferId, status: 'completed' });
    expect((await api.accounts.loadWithoutSnapshot(from)).state.balance).toBe(750);
    expect((await api.accounts.loadWithoutSnapshot(to)).state.balance).toBe(250);
  });

  test('a failed outcome is a finished transfer too: 201 with status failed and its reason', async () => {
    const [from, to] = [await account(100), await account()];
    const res = await api.http().post('/transfers').set('Prefer', 'wait=10').send({ fromAccountId: from, toAccountId: to, amount: 5_000 });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ status: 'failed', failureReason: 'insufficient_funds' });
  });

  test('without the header, or with wait=0, the answer is 202 pending as before', async () => {
    const [from, to] = [await account(1_000), await account()];
    const plain = await api.http().post('/transfers').send({ fromAccountId: from, toAccountId: to, amount: 1 });
    expect(plain.status).toBe(202);
    expect(plain.body).toMatchObject({ status: 'pending' });
    expect(plain.headers['preference-applied']).toBeUndefined();
    const zero = await api.http().post('/transfers').set('Prefer', 'wait=0').send({ fromAccountId: from, toAccountId: to, amount: 1 });
    expect(zero.status).toBe(202);
  });

  test('the header is parsed as RFC 7240 says; the wait is capped at 10 s; anything else is ignored', () => {
    expect(preferredWait('wait=5')).toBe(5);
    expect(preferredWait('respond-async, wait=3')).toBe(3);
    expect(preferredWait('WAIT = 7')).toBe(7);
    expect(preferredWait('wait=600')).toBe(10);
    expect(preferredWait('wait=abc')).toBeUndefined();
    expect(preferredWait('return=minimal')).toBeUndefined();
    expect(preferredWait(undefined)).toBeUndefined();
  });
});
