import { createHash } from 'node:crypto';
import { accountStream } from '../../domain/account-events';
import type { JsonValue } from '../../eventstore/event-store';
import { canonicalJson, pgJsonString } from '../../eventstore/hash-chain';
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

  // Issue 23, item 7: editing recorded_at changed a basis=recorded balance while /audit/verify said ok.
  test('the recorded time edited with SQL: ok false for the stream and for the whole log', async () => {
    const opened = await api.http().post('/accounts').send({ ownerId: 'bob', currency: 'EUR', initialDeposit: 1_000 });
    expect(opened.status).toBe(201);
    const stream = accountStream(opened.body.accountId as string);
    expect((await api.http().get('/audit/verify').query({ stream })).body).toMatchObject({ ok: true });
    const edited = await api.pool.query(
      `UPDATE es_events SET recorded_at = recorded_at - interval '2 days' WHERE stream = $1 AND revision = 0`,
      [stream],
    );
    expect(edited.rowCount).toBe(1);
    const one = await api.http().get('/audit/verify').query({ stream });
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ ok: false, firstBroken: { stream, revision: '0', problem: 'hash_mismatch' } });
    const all = await api.http().get('/audit/verify');
    expect(all.status).toBe(200);
    expect(all.body.ok).toBe(false);
    expect(all.body.broken).toContainEqual(expect.objectContaining({ stream, revision: '0', problem: 'hash_mismatch' }));
  });
});

/**
 * An auditor checks the chain from the API alone: GET /streams/{name} and GET /events show each event's `hash` and
 * `previousHash`, and the hash is recomputed here from what the API shows, following docs/audit.md (written out in
 * this test, not taken from the service's code, apart from the jsonb text of JSON values).
 */
describe('hash and previousHash in GET /streams/{name} and GET /events', () => {
  let api: ApiStack;
  let stream: string;

  beforeAll(async () => {
    api = await ApiStack.create('audit_links', { startProjections: false });
    const opened = await api.http().post('/accounts').send({ ownerId: 'carol', currency: 'EUR', initialDeposit: 2_000 });
    expect(opened.status).toBe(201);
    stream = accountStream(opened.body.accountId as string);
    for (const amount of [300, 400])
      expect((await api.http().post(`/accounts/${opened.body.accountId}/deposits`).send({ amount })).status).toBe(200);
  });
  afterAll(async () => {
    await api?.close();
  });

  const ZERO = '0'.repeat(64);
  /** docs/audit.md: "v2" form, times with microseconds (the store stamps whole milliseconds), position as the API shows it. */
  const micro = (iso: string) => new Date(Date.parse(iso)).toISOString().replace(/Z$/, '000Z');
  const encodingOf = (e: {
    id: string;
    type: string;
    revision: number;
    position: string;
    recordedAt: string;
    data: JsonValue;
    metadata: { [key: string]: JsonValue };
  }) =>
    `[${[
      pgJsonString('v2'),
      pgJsonString(e.id),
      pgJsonString(e.type),
      pgJsonString(stream),
      pgJsonString(String(e.revision)),
      canonicalJson(e.data),
      canonicalJson(e.metadata),
      pgJsonString(micro(e.metadata.occurredAt as string)),
      pgJsonString(micro(e.recordedAt)),
      pgJsonString(e.position),
    ].join(', ')}]`;

  test('GET /streams/{name}: every hash recomputed from the page, each chained from the previous one', async () => {
    const res = await api.http().get(`/streams/${encodeURIComponent(stream)}`);
    expect(res.status).toBe(200);
    const events = res.body.events as (Parameters<typeof encodingOf>[0] & { hash: string; previousHash: string })[];
    expect(events).toHaveLength(4); // opened with an initial deposit (two events), then two deposits
    let previous = ZERO;
    for (const e of events) {
      expect(e.previousHash).toBe(previous);
      const recomputed = createHash('sha256').update(Buffer.from(previous, 'hex')).update(encodingOf(e), 'utf8').digest('hex');
      expect(e.hash).toBe(recomputed);
      previous = e.hash;
    }
    const verified = await api.http().get('/audit/verify').query({ stream });
    expect(verified.body).toMatchObject({ ok: true, lastHash: previous });
    // A page that starts later still names the link it continues from.
    const later = await api
      .http()
      .get(`/streams/${encodeURIComponent(stream)}`)
      .query({ fromRevision: 2 });
    expect(later.body.events[0]).toMatchObject({ revision: 2, previousHash: events[1]!.hash, hash: events[2]!.hash, hashForm: 'v2' });
  });

  test('GET /events: the same hash and previousHash for each event', async () => {
    const viaStream = (await api.http().get(`/streams/${encodeURIComponent(stream)}`)).body.events as {
      id: string;
      hash: string;
      previousHash: string;
    }[];
    const res = await api.http().get('/events').query({ streamPrefix: stream });
    expect(res.status).toBe(200);
    const events = res.body.events as { id: string; stream: string; hash: string; previousHash: string }[];
    expect(events).toHaveLength(4);
    expect(events.every((e) => /^[0-9a-f]{64}$/.test(e.hash) && /^[0-9a-f]{64}$/.test(e.previousHash))).toBe(true);
    expect(events.map((e) => [e.id, e.hash, e.previousHash])).toEqual(viaStream.map((e) => [e.id, e.hash, e.previousHash]));
  });
});
