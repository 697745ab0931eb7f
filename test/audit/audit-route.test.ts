import { accountStream } from '../../domain/account-events';
import { ApiStack } from '../support/api-stack';

/** GET /audit/verify?stream=: operators walk a stream's hash chain (or every stream's) over HTTP. */
describe('GET /audit/verify', () => {
  let api: ApiStack;
  let accountId: string;
  let customer: string;

  beforeAll(async () => {
    api = await ApiStack.create('audit_route', { startProjections: false });
    const opened = await api.http().post('/accounts').send({ ownerId: 'alice', currency: 'EUR', initialDeposit: 10_000 });
    expect(opened.status).toBe(201);
    accountId = opened.body.accountId as string;
    expect((await api.http().post(`/accounts/${accountId}/deposits`).send({ amount: 500 })).status).toBe(200);
    const key = await api.http().post('/api-keys').send({ role: 'customer', ownerId: 'alice' });
    expect(key.status).toBe(201);
    customer = key.body.secret as string;
  });
  afterAll(async () => {
    await api?.close();
  });

  test('an operator verifies one stream, and the whole log', async () => {
    const one = await api
      .http()
      .get('/audit/verify')
      .query({ stream: accountStream(accountId) });
    expect(one.status).toBe(200);
    expect(one.headers['cache-control']).toBe('no-store');
    expect(one.body).toMatchObject({ ok: true, streams: 1, broken: [] });
    expect(one.body.events).toBeGreaterThanOrEqual(2);
    const all = await api.http().get('/audit/verify');
    expect(all.status).toBe(200);
    expect(all.body).toMatchObject({ ok: true, broken: [] });
  });

  test('operators only: a customer key is refused (403), no key is 401', async () => {
    const refused = await api
      .as(customer)
      .get('/audit/verify')
      .query({ stream: accountStream(accountId) });
    expect(refused.status).toBe(403);
    expect(refused.headers['content-type']).toContain('application/problem+json');
    expect((await api.anonymous().get('/audit/verify')).status).toBe(401);
  });

  test('a bad stream name is 400 naming the field; an unknown stream is 404', async () => {
    const bad = await api.http().get('/audit/verify').query({ stream: 'not a stream' });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('stream');
    expect((await api.http().get('/audit/verify').query({ stream: 'account-nobody-here' })).status).toBe(404);
  });

  test('an edited event: ok false, with the first broken link', async () => {
    const stream = accountStream(accountId);
    await api.pool.query(`UPDATE es_events SET data = jsonb_set(data, '{amount}', '50000') WHERE stream = $1 AND revision = 1`, [stream]);
    const res = await api.http().get('/audit/verify').query({ stream });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ ok: false, firstBroken: { stream, revision: '1', problem: 'hash_mismatch' } });
  });
});
