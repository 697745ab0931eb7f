import { randomUUID } from 'node:crypto';
import { ApiStack } from '../support/api-stack';

/** GET /events: the global log by type, stream prefix, recorded and business time, paged by position, consistent under concurrent writes. */
describe('GET /events', () => {
  let api: ApiStack;
  beforeAll(async () => {
    api = await ApiStack.create('eventslog');
  });
  afterAll(async () => api?.close());

  type EventView = { position: string; stream: string; type: string; id: string; recordedAt: string; occurredAt: string };
  const page = async (query: Record<string, unknown>) => {
    const res = await api.http().get('/events').query(query);
    expect(res.status).toBe(200);
    return res.body as { events: EventView[]; next?: string };
  };
  const all = async (query: Record<string, unknown>, limit = 3): Promise<EventView[]> => {
    const out: EventView[] = [];
    let after: string | undefined;
    for (;;) {
      const p = await page({ ...query, limit, ...(after ? { after } : {}) });
      out.push(...p.events);
      if (!p.next) return out;
      after = p.next;
    }
  };

  test('filters by one or several types, by stream prefix, by recorded time; pages in log order without gaps or repeats', async () => {
    const open = async (initialDeposit: number) =>
      (
        await api
          .http()
          .post('/accounts')
          .send({ ownerId: `ev-${randomUUID().slice(0, 4)}`, currency: 'EUR', initialDeposit })
      ).body.accountId as string;
    const a = await open(1_000);
    const b = await open(500);
    await api.http().post(`/accounts/${a}/withdrawals`).send({ amount: 100 });
    const transferId = `ev-${randomUUID()}`;
    expect(
      (await api.http().post('/transfers').set('Prefer', 'wait=10').send({ transferId, fromAccountId: a, toAccountId: b, amount: 50 }))
        .status,
    ).toBe(201);

    const everything = await all({}, 1000);
    const positions = everything.map((e) => e.position);
    expect(new Set(positions).size).toBe(positions.length);
    const key = (p: string) => p.split('.').map(BigInt);
    for (let i = 1; i < positions.length; i++) {
      const [c0, p0] = key(positions[i - 1]!);
      const [c1, p1] = key(positions[i]!);
      expect(c1! > c0! || (c1 === c0 && p1! > p0!)).toBe(true);
    }
    expect((await all({}, 2)).map((e) => e.id)).toEqual(everything.map((e) => e.id)); // small pages: same log

    const deposits = await all({ type: 'MoneyDeposited' });
    expect(deposits.length).toBe(2);
    expect(deposits.every((e) => e.type === 'MoneyDeposited')).toBe(true);
    const two = await all({ type: ['MoneyDeposited', 'MoneyWithdrawn'] });
    expect(two.map((e) => e.type).sort()).toEqual(['MoneyDeposited', 'MoneyDeposited', 'MoneyWithdrawn']);
    expect((await all({ type: 'MoneyDeposited,MoneyWithdrawn' })).map((e) => e.id)).toEqual(two.map((e) => e.id));

    const transferEvents = await all({ streamPrefix: `transfer-${transferId}` });
    expect(transferEvents.map((e) => e.type)).toEqual([
      'TransferRequested',
      'TransferSourceDebited',
      'TransferTargetCredited',
      'TransferCompleted',
    ]);

    const accountEvents = everything.filter((e) => e.stream.startsWith('account-'));
    const middle = accountEvents[Math.floor(accountEvents.length / 2)]!.recordedAt;
    const since = await all({ streamPrefix: 'account-', from: middle });
    expect(since.map((e) => e.id)).toEqual(accountEvents.filter((e) => Date.parse(e.recordedAt) >= Date.parse(middle)).map((e) => e.id));
    const until = await all({ streamPrefix: 'account-', to: middle });
    expect(until.map((e) => e.id)).toEqual(accountEvents.filter((e) => Date.parse(e.recordedAt) <= Date.parse(middle)).map((e) => e.id));
  });

  test('filters by business time (occurredAt), apart from the recorded time', async () => {
    const stream = `ledger-${randomUUID()}`;
    await api.store.appendToStream(
      stream,
      [
        { id: randomUUID(), type: 'LateFact', data: { n: 1 }, metadata: { occurredAt: '2020-01-01T10:00:00.000Z' } },
        { id: randomUUID(), type: 'LateFact', data: { n: 2 }, metadata: { occurredAt: '2020-01-03T10:00:00.000Z' } },
        { id: randomUUID(), type: 'LateFact', data: { n: 3 }, metadata: {} },
      ],
      { expectedRevision: 'no_stream' },
    );
    const jan2 = await all({ streamPrefix: stream, occurredFrom: '2020-01-02T00:00:00Z', occurredTo: '2020-01-31T00:00:00Z' });
    expect(jan2.map((e) => e.occurredAt)).toEqual(['2020-01-03T10:00:00.000Z']);
    expect((await all({ streamPrefix: stream, from: '2020-01-02T00:00:00Z' })).length).toBe(3); // all recorded now
  });

  test('paging while others write misses nothing and repeats nothing', async () => {
    const account = (await api.http().post('/accounts').send({ ownerId: 'ev-load', currency: 'EUR' })).body.accountId as string;
    let writing = true;
    const writers = Array.from({ length: 3 }, async () => {
      while (writing) await api.http().post(`/accounts/${account}/deposits`).send({ amount: 1 });
    });
    const seen: EventView[] = [];
    let after: string | undefined;
    for (let i = 0; i < 15; i++) {
      const p = await page({ streamPrefix: `account-${account}`, limit: 4, ...(after ? { after } : {}) });
      seen.push(...p.events);
      if (p.events.length) after = p.events.at(-1)!.position;
    }
    writing = false;
    await Promise.all(writers);
    for (;;) {
      const p = await page({ streamPrefix: `account-${account}`, limit: 50, ...(after ? { after } : {}) });
      seen.push(...p.events);
      if (!p.events.length) break;
      after = p.events.at(-1)!.position;
    }
    const stream = await api.store.readStream(`account-${account}`, { maxCount: 10_000 });
    expect(seen.map((e) => e.id)).toEqual(stream.map((e) => e.id));
  });

  test('bad filters are 400 problem+json naming the field; nothing else', async () => {
    for (const [query, field] of [
      [{ type: 'not a type!' }, 'type'],
      [{ from: 'yesterday' }, 'from'],
      [{ occurredTo: '2020-13-01' }, 'occurredTo'],
      [{ after: 'zz' }, 'after'],
      [{ limit: 5000 }, 'limit'],
      [{ colour: 'red' }, 'colour'],
    ] as const) {
      const res = await api.http().get('/events').query(query);
      expect(res.status).toBe(400);
      expect(res.headers['content-type']).toMatch(/problem\+json/);
      expect(JSON.stringify(res.body.errors)).toContain(field);
    }
  });
});
