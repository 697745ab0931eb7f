import { randomUUID } from 'node:crypto';
import { AccountRepository } from '../../application/account-repository';
import { accountStream } from '../../domain/account-events';
import { EsdbEventStore } from '../../eventstore/esdb/esdb-event-store';
import { IDEMPOTENCY_KEYS_TABLE, IdempotencyStore } from '../../stores/idempotency-store';
import { ApiStack } from '../support/api-stack';
import { startEsdbEmulator, type EsdbEmulator } from '../support/esdb-emulator/server';

/**
 * The money case of the EventStoreDB review: a keyed account write whose key record was purged (after 24 h) is
 * retried. Its event ids derive from the key, and EventStoreDB writes ids re-sent at the current revision again, so
 * before the adapter looked for them the retry posted the deposit a second time. The API here writes through the
 * EventStoreDB adapter on the gRPC EMULATOR of 24.10 (not a server; docs/eventstoredb.md).
 */
describe('Idempotency-Key on EventStoreDB (the adapter on the emulator): a purged key still cannot post twice', () => {
  let emulator: EsdbEmulator;
  let store: EsdbEventStore;
  let api: ApiStack;

  beforeAll(async () => {
    emulator = await startEsdbEmulator();
    emulator.log.now = () => new Date(performance.timeOrigin + performance.now());
    store = await EsdbEventStore.connect(emulator.url, { onSubscriptionError: () => undefined });
    api = await ApiStack.create('esdb_idem', { startProjections: false, eventStore: store });
    await new IdempotencyStore(api.readModels).ensureSchema();
  });
  afterAll(async () => {
    await api?.close();
    await store?.close();
    await emulator?.stop();
  });

  const send = (path: string, body: Record<string, unknown>, key: string) => api.http().post(path).set('Idempotency-Key', key).send(body);
  const purge = (key: string) => api.readModels.query(`DELETE FROM ${IDEMPOTENCY_KEYS_TABLE} WHERE key = $1`, [key]);

  test('a retried deposit after its key record was purged answers the same and writes nothing; reused for another amount it is refused', async () => {
    const opened = await api.http().post('/accounts').send({ ownerId: 'esdb-owner', currency: 'EUR', initialDeposit: 100 });
    expect(opened.status).toBe(201);
    const accountId = opened.body.accountId as string;
    const key = `deposit-${randomUUID()}`;
    const first = await send(`/accounts/${accountId}/deposits`, { amount: 7 }, key);
    expect(first.status).toBe(200);
    // Another write moves the stream on, so a retry appends at a later revision than the first did.
    expect((await api.http().post(`/accounts/${accountId}/deposits`).send({ amount: 8 })).status).toBe(200);
    const before = await store.readStream(accountStream(accountId));

    await purge(key);
    const again = await send(`/accounts/${accountId}/deposits`, { amount: 7 }, key);
    expect({ status: again.status, body: again.body as unknown }).toEqual({ status: 200, body: first.body as unknown });
    expect(await store.readStream(accountStream(accountId))).toHaveLength(before.length);

    await purge(key);
    const reused = await send(`/accounts/${accountId}/deposits`, { amount: 70 }, key);
    expect(reused.status).toBe(409);
    expect(reused.body.type).toBe('/problems/idempotency-key-reused');
    expect(await store.readStream(accountStream(accountId))).toHaveLength(before.length);
    expect((await new AccountRepository(store, 0).loadWithoutSnapshot(accountId)).state.balance).toBe(115);
  });

  test('GET /events with an `after` where no event starts is a 400 naming `after`, not a 500', async () => {
    const head = (await store.headPosition())!;
    const res = await api.http().get(`/events?after=${head.commit - 1n}.${head.prepare - 1n}`);
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect((res.body.errors as { field: string }[]).map((e) => e.field)).toEqual(['after']);
  });
});
