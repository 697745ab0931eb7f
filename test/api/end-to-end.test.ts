import { randomUUID } from 'node:crypto';
import type { Response } from 'supertest';
import { handleAccountCommand } from '../../application/account-commands';
import { accountStream } from '../../domain/account-events';
import { transferStream } from '../../domain/transfer-events';
import type { TransferActivityInput } from '../../activities/transfer-activities';
import { transferWorkflowId } from '../../workflows/transfer-saga-contract';
import { ApiStack, storeFingerprint } from '../support/api-stack';
import { OpenApiResponses } from '../support/openapi-responses';

const MOVEMENTS = ['MoneyDeposited', 'MoneyWithdrawn', 'TransferDebited', 'TransferCredited', 'TransferRefunded'];
const POSITION = /^\d+\.\d+$/;

/** Asserts an RFC 9457 problem response of the given status and type. */
function expectProblem(res: Response, status: number, type: string, field?: string): void {
  expect({ status: res.status, body: res.body as unknown }).toMatchObject({ status, body: { status, type } });
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(typeof res.body.title).toBe('string');
  if (field) expect((res.body.errors as { field: string }[]).map((e) => e.field)).toContain(field);
}

describe('HTTP API end to end (express app on the real event store, Temporal and projections)', () => {
  let api: ApiStack;
  const touched = new Set<string>();
  /** Every response of this file is parsed with the zod schema the OpenAPI document gives it (a mismatch fails the request). */
  const responses = new OpenApiResponses();
  const http = () => responses.http(api.http());

  beforeAll(async () => {
    api = await ApiStack.create('api_e2e');
  });
  afterAll(async () => api?.close());

  async function openAccount(
    body: Record<string, unknown>,
    headers: Record<string, string> = {},
  ): Promise<{ accountId: string; position: string; res: Response }> {
    const res = await http().post('/accounts').set(headers).send(body);
    expect(res.status).toBe(201);
    touched.add(res.body.accountId as string);
    return { accountId: res.body.accountId as string, position: res.body.position as string, res };
  }

  async function write(path: string, amount: number, headers: Record<string, string> = {}): Promise<Response> {
    return http().post(path).set(headers).send({ amount });
  }

  async function readAccount(accountId: string, minPosition: string): Promise<Response> {
    const res = await http().get(`/accounts/${accountId}`).query({ minPosition });
    expect(res.status).toBe(200);
    return res;
  }

  /**
   * Two accounts of the calling test's own, with a withdrawal and a completed transfer between them,
   * so a test that checks "every account touched" has something to check when it runs alone.
   */
  async function ownTraffic(label: string): Promise<{ payer: string; payee: string; transferId: string }> {
    const payer = (await openAccount({ ownerId: `${label}-payer`, currency: 'EUR', initialDeposit: 5_000 })).accountId;
    const payee = (await openAccount({ ownerId: `${label}-payee`, currency: 'EUR' })).accountId;
    expect((await write(`/accounts/${payer}/withdrawals`, 700)).status).toBe(200);
    const transferId = `${label}-${randomUUID().slice(0, 8)}`;
    expect((await http().post('/transfers').send({ transferId, fromAccountId: payer, toAccountId: payee, amount: 1_300 })).status).toBe(
      202,
    );
    expect((await http().get(`/transfers/${transferId}`).query({ wait: 20 })).body).toMatchObject({ status: 'completed' });
    return { payer, payee, transferId };
  }

  test('open, deposit, withdraw: 201 + Location, and every write is visible to a read with ?minPosition (read-your-writes)', async () => {
    const { accountId, position, res } = await openAccount({ ownerId: 'alice', currency: 'EUR', initialDeposit: 10_000 });
    expect(res.headers.location).toBe(`/accounts/${accountId}`);
    expect(res.headers.etag).toBe('"1"');
    expect(res.body).toEqual({ accountId, balance: 10_000, status: 'open', revision: 1, position: expect.stringMatching(POSITION) });
    expect((await readAccount(accountId, position)).body).toMatchObject({
      accountId,
      ownerId: 'alice',
      currency: 'EUR',
      balance: 10_000,
      status: 'open',
      revision: 1,
    });

    const deposit = await write(`/accounts/${accountId}/deposits`, 2_500);
    expect(deposit.status).toBe(200);
    expect(deposit.body).toMatchObject({ accountId, balance: 12_500, revision: 2, position: expect.stringMatching(POSITION) });
    const afterDeposit = await readAccount(accountId, deposit.body.position as string);
    expect(afterDeposit.body).toMatchObject({ balance: 12_500, revision: 2 });
    expect(afterDeposit.headers.etag).toBe('"2"');

    const withdrawal = await write(`/accounts/${accountId}/withdrawals`, 500);
    expect(withdrawal.status).toBe(200);
    expect(withdrawal.body).toMatchObject({ balance: 12_000, revision: 3 });
    expect((await readAccount(accountId, withdrawal.body.position as string)).body).toMatchObject({ balance: 12_000, revision: 3 });

    // A position from a write that the history read model does not store (AccountOpened) is still "reached".
    const empty = await openAccount({ ownerId: 'nobody', currency: 'EUR' });
    const history = await http().get(`/accounts/${empty.accountId}/history`).query({ minPosition: empty.position });
    expect(history.status).toBe(200);
    expect(history.body).toEqual({ accountId: empty.accountId, movements: [], nextCursor: null });
    const transfers = await http().get(`/transfers/no-such-transfer`).query({ minPosition: empty.position });
    expectProblem(transfers, 404, '/problems/transfer-not-found');
  });

  test('transfers: 202 + Location; the same request again is the same transfer (200); another payload is 409; Idempotency-Key works as the id', async () => {
    const from = (await openAccount({ ownerId: 'payer', currency: 'EUR', initialDeposit: 10_000 })).accountId;
    const to = (await openAccount({ ownerId: 'payee', currency: 'EUR' })).accountId;
    const transferId = `order-${randomUUID().slice(0, 8)}`;
    const body = { transferId, fromAccountId: from, toAccountId: to, amount: 2_500 };

    const created = await http().post('/transfers').send(body);
    expect(created.status).toBe(202);
    expect(created.headers.location).toBe(`/transfers/${transferId}`);
    expect(created.body).toMatchObject({ transferId, fromAccountId: from, toAccountId: to, amount: 2_500, status: 'pending' });

    const again = await http().post('/transfers').send(body);
    expect(again.status).toBe(200);
    expect(again.headers.location).toBe(`/transfers/${transferId}`);
    expect(again.body).toMatchObject({ transferId, amount: 2_500 });

    expectProblem(
      await http()
        .post('/transfers')
        .send({ ...body, amount: 2_501 }),
      409,
      '/problems/transfer-conflict',
      'transferId',
    );

    const done = await http().get(`/transfers/${transferId}`).query({ wait: 10 });
    expect(done.status).toBe(200);
    expect(done.body).toMatchObject({ transferId, fromAccountId: from, toAccountId: to, amount: 2_500, status: 'completed' });
    expect((done.body.steps as { name: string; at: string }[]).map((s) => s.name)).toEqual([
      'requested',
      'source_debited',
      'target_credited',
      'completed',
    ]);
    expect((done.body.steps as { at: string }[]).every((s) => !Number.isNaN(Date.parse(s.at)))).toBe(true);

    // After completion: the same request is still the same transfer, another payload still a conflict.
    const afterwards = await http().post('/transfers').send(body);
    expect(afterwards.status).toBe(200);
    expect(afterwards.body).toMatchObject({ transferId, status: 'completed' });
    expectProblem(
      await http()
        .post('/transfers')
        .send({ ...body, toAccountId: from, fromAccountId: to }),
      409,
      '/problems/transfer-conflict',
      'transferId',
    );

    // Idempotency-Key as the transfer id.
    const key = `idem-${randomUUID().slice(0, 8)}`;
    const keyed = { fromAccountId: from, toAccountId: to, amount: 1_000 };
    const first = await http().post('/transfers').set('Idempotency-Key', key).send(keyed);
    expect(first.status).toBe(202);
    expect(first.headers.location).toBe(`/transfers/${key}`);
    expect(first.body).toMatchObject({ transferId: key, amount: 1_000 });
    const second = await http().post('/transfers').set('Idempotency-Key', key).send(keyed);
    expect(second.status).toBe(200);
    expect(second.body.transferId).toBe(key);
    expectProblem(
      await http()
        .post('/transfers')
        .set('Idempotency-Key', key)
        .send({ ...keyed, amount: 999 }),
      409,
      '/problems/transfer-conflict',
    );
    expect((await http().get(`/transfers/${key}`).query({ wait: 10 })).body).toMatchObject({ transferId: key, status: 'completed' });

    // Money moved once per transfer, whatever the number of requests.
    expect(await api.stack.eventTypes(accountStream(from))).toEqual([
      'AccountOpened',
      'MoneyDeposited',
      'TransferDebited',
      'TransferDebited',
    ]);
    expect(await api.stack.eventTypes(accountStream(to))).toEqual(['AccountOpened', 'TransferCredited', 'TransferCredited']);
    await api.caughtUp();
    expect((await http().get(`/accounts/${from}`)).body.balance).toBe(6_500);
    expect((await http().get(`/accounts/${to}`)).body.balance).toBe(3_500);
  });

  test('history: newest first, with the running balance, paged by limit and cursor', async () => {
    const { accountId } = await openAccount({ ownerId: 'historian', currency: 'EUR', initialDeposit: 1_000 });
    let last: Response | undefined;
    for (const amount of [100, 200, 300]) {
      last = await write(`/accounts/${accountId}/deposits`, amount);
      expect(last.status).toBe(200);
    }
    last = await write(`/accounts/${accountId}/withdrawals`, 250);
    expect(last.status).toBe(200);
    last = await write(`/accounts/${accountId}/deposits`, 50);
    expect(last.body.balance).toBe(1_400);

    const pages: { revision: number; kind: string; amount: number; balanceAfter: number }[][] = [];
    const cursors: (string | null)[] = [];
    let cursor: string | undefined;
    do {
      const res = await http()
        .get(`/accounts/${accountId}/history`)
        .query({ limit: 2, minPosition: last.body.position as string, ...(cursor ? { cursor } : {}) });
      expect(res.status).toBe(200);
      pages.push(res.body.movements);
      cursors.push(res.body.nextCursor);
      cursor = res.body.nextCursor ?? undefined;
    } while (cursor);
    expect(pages.map((p) => p.map((m) => m.revision))).toEqual([
      [6, 5],
      [4, 3],
      [2, 1],
    ]);
    expect(cursors).toEqual(['5', '3', null]);
    const movements = pages.flat();
    expect(movements.map((m) => [m.kind, m.amount, m.balanceAfter])).toEqual([
      ['MoneyDeposited', 50, 1_400],
      ['MoneyWithdrawn', -250, 1_350],
      ['MoneyDeposited', 300, 1_600],
      ['MoneyDeposited', 200, 1_300],
      ['MoneyDeposited', 100, 1_100],
      ['MoneyDeposited', 1_000, 1_000],
    ]);
    // Running balance: each line is the previous (older) line plus its signed amount.
    for (let i = 0; i < movements.length - 1; i++)
      expect(movements[i]!.balanceAfter).toBe(movements[i + 1]!.balanceAfter + movements[i]!.amount);

    const all = await http().get(`/accounts/${accountId}/history`).query({ limit: 500 });
    expect(all.body.movements).toEqual(
      movements.map((m) => expect.objectContaining({ revision: m.revision, balanceAfter: m.balanceAfter })),
    );
    expect(all.body.nextCursor).toBeNull();
  });

  test('balance as of a moment folds the stream by occurrence time: a late event counts when it happened', async () => {
    const accountId = randomUUID();
    touched.add(accountId);
    const opened = await handleAccountCommand(
      api.accounts,
      accountId,
      { type: 'OpenAccount', accountId, ownerId: 'auditor', currency: 'EUR' },
      { context: { occurredAt: '2025-01-01T00:00:00.000Z' } },
    );
    expect(opened.ok).toBe(true);
    const onTime = await write(`/accounts/${accountId}/deposits`, 700);
    expect(onTime.status).toBe(200);
    const onTimeAt = String((await api.store.readStream(accountStream(accountId))).at(-1)!.metadata.occurredAt);
    // A branch reports a deposit of June 2025 only now, after the deposit above was recorded.
    const late = await handleAccountCommand(
      api.accounts,
      accountId,
      { type: 'Deposit', amount: 50 },
      { context: { occurredAt: '2025-06-01T12:00:00.000Z', correlationId: 'late-branch-report' } },
    );
    expect(late.ok).toBe(true);
    const recorded = await api.store.readStream(accountStream(accountId));
    expect(recorded.map((e) => e.type)).toEqual(['AccountOpened', 'MoneyDeposited', 'MoneyDeposited']);
    expect(Date.parse(recorded[2]!.recordedAt)).toBeGreaterThanOrEqual(Date.parse(recorded[1]!.recordedAt));

    const asOf = async (at: string) => {
      const res = await http().get(`/accounts/${accountId}/balance`).query({ asOf: at });
      expect(res.status).toBe(200);
      return res.body as { balance: number; status: string; revision: number | null; asOf: string };
    };
    expect(await asOf('2024-12-31T00:00:00Z')).toMatchObject({ balance: 0, status: 'not_opened_yet', revision: null });
    expect(await asOf('2025-03-01T00:00:00Z')).toMatchObject({ balance: 0, status: 'open', revision: 0 });
    // Before the on-time deposit: only the late one, which happened in June.
    const beforeDeposit = new Date(Date.parse(onTimeAt) - 1).toISOString();
    expect(await asOf('2025-07-01T00:00:00+02:00')).toMatchObject({ balance: 50, status: 'open' });
    expect(await asOf(beforeDeposit)).toMatchObject({ balance: 50, asOf: beforeDeposit });
    // At and after it: both.
    expect(await asOf(onTimeAt)).toMatchObject({ balance: 750 });
    expect(await asOf(new Date(Date.now() + 60_000).toISOString())).toMatchObject({ balance: 750 });
    expectProblem(await http().get(`/accounts/${randomUUID()}/balance`).query({ asOf: onTimeAt }), 404, '/problems/account-not-found');
  });

  test('If-Match: a stale revision is 412 and writes nothing; the current revision succeeds', async () => {
    const { accountId, res } = await openAccount({ ownerId: 'careful', currency: 'EUR', initialDeposit: 1_000 });
    const etag = res.headers.etag as string;
    expect(etag).toBe('"1"');

    const ok = await write(`/accounts/${accountId}/deposits`, 10, { 'If-Match': etag });
    expect(ok.status).toBe(200);
    expect(ok.headers.etag).toBe('"2"');

    const before = await storeFingerprint(api.pool);
    const stale = await write(`/accounts/${accountId}/deposits`, 10, { 'If-Match': etag });
    expectProblem(stale, 412, '/problems/precondition-failed', 'If-Match');
    expectProblem(
      await write(`/accounts/${accountId}/withdrawals`, 10, { 'If-Match': '"7"' }),
      412,
      '/problems/precondition-failed',
      'If-Match',
    );
    expectProblem(
      await http().post(`/accounts/${accountId}/close`).set('If-Match', '"0"'),
      412,
      '/problems/precondition-failed',
      'If-Match',
    );
    expect(await storeFingerprint(api.pool)).toEqual(before);
    expect(await api.stack.eventTypes(accountStream(accountId))).toEqual(['AccountOpened', 'MoneyDeposited', 'MoneyDeposited']);

    // The ETag of a read is a valid If-Match (weak form accepted too).
    const read = await readAccount(accountId, ok.body.position as string);
    expect(read.headers.etag).toBe('"2"');
    const withRead = await write(`/accounts/${accountId}/withdrawals`, 10, { 'If-Match': `W/${read.headers.etag as string}` });
    expect(withRead.status).toBe(200);
    expect(withRead.body).toMatchObject({ balance: 1_000, revision: 3 });
  });

  test('domain rules: closing with a balance is 422, overdrawing is 422, an unknown account is 404; none writes anything', async () => {
    const { accountId } = await openAccount({ ownerId: 'closer', currency: 'EUR', initialDeposit: 300 });
    const before = await storeFingerprint(api.pool);
    expectProblem(await http().post(`/accounts/${accountId}/close`), 422, '/problems/account-has-balance');
    expectProblem(await write(`/accounts/${accountId}/withdrawals`, 301), 422, '/problems/insufficient-funds', 'amount');
    expectProblem(await write(`/accounts/${randomUUID()}/deposits`, 100), 404, '/problems/account-not-found');
    expectProblem(await http().get(`/accounts/${randomUUID()}`), 404, '/problems/account-not-found');
    expect(await storeFingerprint(api.pool)).toEqual(before);

    expect((await write(`/accounts/${accountId}/withdrawals`, 300)).body).toMatchObject({ balance: 0 });
    const closed = await http().post(`/accounts/${accountId}/close`).set('content-type', 'application/json').send({});
    expect(closed.status).toBe(200);
    expect(closed.body).toMatchObject({ status: 'closed', balance: 0 });
    expect((await readAccount(accountId, closed.body.position as string)).body.status).toBe('closed');
    expectProblem(await write(`/accounts/${accountId}/deposits`, 1), 422, '/problems/account-closed', 'id');
  });

  test('X-Request-Id is echoed and becomes the correlationId of every event the request wrote, saga steps included', async () => {
    const openId = `req-open-${randomUUID().slice(0, 8)}`;
    const { accountId: from, res: opened } = await openAccount(
      { ownerId: 'tracer', currency: 'EUR', initialDeposit: 5_000 },
      { 'X-Request-Id': openId },
    );
    expect(opened.headers['x-request-id']).toBe(openId);
    const to = (await openAccount({ ownerId: 'traced', currency: 'EUR' })).accountId;
    for (const e of await api.store.readStream(accountStream(from)))
      expect(e.metadata).toMatchObject({ correlationId: openId, causationId: `http:${openId}` });

    const depositId = `req-deposit-${randomUUID().slice(0, 8)}`;
    const deposit = await write(`/accounts/${from}/deposits`, 100, { 'X-Request-Id': depositId });
    expect(deposit.headers['x-request-id']).toBe(depositId);
    const [depositEvent] = (await api.store.readStream(accountStream(from))).slice(-1);
    expect(depositEvent).toMatchObject({ type: 'MoneyDeposited', metadata: { correlationId: depositId } });

    const transferRequestId = `req-transfer-${randomUUID().slice(0, 8)}`;
    const transferId = randomUUID();
    const started = await http()
      .post('/transfers')
      .set('X-Request-Id', transferRequestId)
      .send({ transferId, fromAccountId: from, toAccountId: to, amount: 1_234 });
    expect(started.status).toBe(202);
    expect(started.headers['x-request-id']).toBe(transferRequestId);
    expect((await http().get(`/transfers/${transferId}`).query({ wait: 10 })).body.status).toBe('completed');

    const sagaEvents = [
      ...(await api.store.readStream(transferStream(transferId))),
      ...(await api.store.readStream(accountStream(from))).filter((e) => e.type === 'TransferDebited'),
      ...(await api.store.readStream(accountStream(to))).filter((e) => e.type === 'TransferCredited'),
    ];
    expect(sagaEvents.map((e) => e.type)).toEqual([
      'TransferRequested',
      'TransferSourceDebited',
      'TransferTargetCredited',
      'TransferCompleted',
      'TransferDebited',
      'TransferCredited',
    ]);
    for (const e of sagaEvents) expect(e.metadata).toMatchObject({ correlationId: transferRequestId, transferId });
    const memo = (await api.stack.client.workflow.getHandle(transferWorkflowId(transferId)).describe()).memo;
    expect(memo).toMatchObject({ correlationId: transferRequestId });

    // No id, or one that is not a sane token: the service makes one.
    const generated = await http().get('/health');
    expect(generated.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    const insane = await http().get('/health').set('X-Request-Id', 'a b\tc');
    expect(insane.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  test('a transfer accepted and not yet past its first leg reads as a whole Transfer from its stream, never a partial body', async () => {
    const from = (await openAccount({ ownerId: 'early-payer', currency: 'EUR', initialDeposit: 1_000 })).accountId;
    const to = (await openAccount({ ownerId: 'early-payee', currency: 'EUR' })).accountId;
    // The saga's first leg waits at a gate: the API recorded the request before it started the saga, so the stream knows it.
    const real = api.stack.realActivities();
    let reached!: () => void;
    let release!: () => void;
    const atGate = new Promise<void>((resolve) => (reached = resolve));
    const gate = new Promise<void>((resolve) => (release = resolve));
    await api.stack.startWorker({
      ...real,
      requestAndDebit: async (input: TransferActivityInput) => {
        reached();
        await gate;
        return real.requestAndDebit(input);
      },
    });
    const transferId = `early-${randomUUID().slice(0, 8)}`;
    const body = { transferId, fromAccountId: from, toAccountId: to, amount: 400 };
    try {
      expect((await http().post('/transfers').send(body)).status).toBe(202);
      await atGate;
      expect(await api.stack.eventTypes(transferStream(transferId))).toEqual(['TransferRequested']);

      const early = await http().get(`/transfers/${transferId}`);
      expect(early.status).toBe(200);
      expect(early.body).toMatchObject({ transferId, fromAccountId: from, toAccountId: to, amount: 400, status: 'pending' });
      expect(early.body.steps).toEqual(expect.any(Array));
      // The same request again while its saga runs: the same transfer.
      const again = await http().post('/transfers').send(body);
      expect(again.status).toBe(200);
      expect(again.body).toMatchObject({ transferId, fromAccountId: from, toAccountId: to, amount: 400 });
    } finally {
      release();
    }
    const done = await http().get(`/transfers/${transferId}`).query({ wait: 20 });
    expect(done.body).toMatchObject({ transferId, fromAccountId: from, toAccountId: to, amount: 400, status: 'completed' });
    await api.stack.startWorker(); // the real activities again
    expect(responses.checked).toContain('GET /transfers/{id} 200 -> Transfer');
  });

  test('the response check itself: a Transfer without fromAccountId, an undocumented status or path is refused', () => {
    const res = (status: number, body: unknown, contentType = 'application/json; charset=utf-8') =>
      ({ status, body, text: JSON.stringify(body), headers: { 'content-type': contentType } }) as unknown as Response;
    const partial = { transferId: 'early-1', status: 'pending', steps: [] };
    expect(() => responses.check('get', '/transfers/early-1', res(200, partial))).toThrow(/does not match Transfer[\s\S]*fromAccountId/);
    expect(() =>
      responses.check(
        'get',
        '/transfers/early-1',
        res(200, { ...partial, fromAccountId: randomUUID(), toAccountId: randomUUID(), amount: 1 }),
      ),
    ).not.toThrow();
    expect(() => responses.check('get', '/transfers/early-1', res(418, partial))).toThrow(/status not documented/);
    expect(() => responses.check('get', '/nowhere', res(200, {}))).toThrow(/not in the OpenAPI document/);
    expect(() =>
      responses.check('get', '/accounts/x/history', res(200, { accountId: randomUUID(), movements: [{ revision: 1 }], nextCursor: null })),
    ).toThrow(/does not match HistoryPage/);
    expect(() => responses.check('get', '/accounts/x', res(404, { type: '/problems/x', status: 404 }, 'application/problem+json'))).toThrow(
      /does not match Problem[\s\S]*title/,
    );
  });

  test('stream browser: GET /streams?prefix=account- lists every account touched, GET /streams/:name its events', async () => {
    const own = await ownTraffic('browse');
    const listed = new Map<string, { revision: number; href: string }>();
    let cursor: string | undefined;
    do {
      const res = await http()
        .get('/streams')
        .query({ prefix: 'account-', limit: 5, ...(cursor ? { cursor } : {}) });
      expect(res.status).toBe(200);
      for (const s of res.body.streams as { stream: string; revision: number; href: string }[]) {
        expect(s.stream.startsWith('account-')).toBe(true);
        listed.set(s.stream, s);
      }
      cursor = res.body.nextCursor ?? undefined;
    } while (cursor);
    // Never vacuous: at least this test's own accounts (more when the whole file runs).
    expect(touched.size).toBeGreaterThanOrEqual(2);
    expect([...touched]).toEqual(expect.arrayContaining([own.payer, own.payee]));
    let browsed = 0;
    for (const accountId of touched) {
      browsed += 1;
      const stream = accountStream(accountId);
      const entry = listed.get(stream);
      expect(entry).toBeDefined();
      const events = await api.store.readStream(stream);
      expect(entry!.revision).toBe(Number(events.at(-1)!.revision));
      const page = await http().get(entry!.href);
      expect(page.status).toBe(200);
      expect(page.body.stream).toBe(stream);
      expect(
        (page.body.events as { id: string; type: string; revision: number; position: string }[]).map((e) => [
          e.id,
          e.type,
          e.revision,
          e.position,
        ]),
      ).toEqual(events.map((e) => [e.id, e.type, Number(e.revision), `${e.position.commit}.${e.position.prepare}`]));
    }
    expect(browsed).toBe(touched.size);
    const transfers = await http()
      .get('/streams')
      .query({ prefix: transferStream(own.transferId), limit: 500 });
    expect((transfers.body.streams as { stream: string; revision: number }[]).map((s) => [s.stream, s.revision])).toEqual([
      [transferStream(own.transferId), 3],
    ]);
    expectProblem(await http().get(`/streams/account-${randomUUID()}`), 404, '/problems/stream-not-found');
  });

  test('the read models agree with the event store for every account touched', async () => {
    const own = await ownTraffic('agree');
    await api.caughtUp();
    // Never vacuous: at least this test's own accounts (more when the whole file runs), with known balances.
    expect(touched.size).toBeGreaterThanOrEqual(2);
    expect([...touched]).toEqual(expect.arrayContaining([own.payer, own.payee]));
    expect((await http().get(`/accounts/${own.payer}`)).body).toMatchObject({ balance: 5_000 - 700 - 1_300, revision: 3 });
    expect((await http().get(`/accounts/${own.payee}`)).body).toMatchObject({ balance: 1_300, revision: 1 });
    let compared = 0;
    for (const accountId of touched) {
      compared += 1;
      const folded = await api.accounts.loadWithoutSnapshot(accountId);
      const row = await api.readModels.query<{ balance: string; status: string; revision: string; currency: string }>(
        'SELECT balance::text AS balance, status, revision::text AS revision, currency FROM rm_account_balances WHERE account_id = $1',
        [accountId],
      );
      expect(row.rows).toEqual([
        {
          balance: String(folded.state.balance),
          status: folded.state.status,
          revision: String(folded.revision),
          currency: folded.state.currency,
        },
      ]);
      const movements = (await api.store.readStream(accountStream(accountId))).filter((e) => MOVEMENTS.includes(e.type));
      const history = await api.readModels.query<{ revision: string; balance_after: string }>(
        'SELECT revision::text AS revision, balance_after::text AS balance_after FROM rm_account_history h WHERE account_id = $1 ORDER BY h.revision',
        [accountId],
      );
      expect(history.rows).toEqual(
        movements.map((e) => ({ revision: String(e.revision), balance_after: String((e.data as { balanceAfter: number }).balanceAfter) })),
      );
      const view = await http().get(`/accounts/${accountId}`);
      expect(view.body).toMatchObject({ balance: folded.state.balance, status: folded.state.status, revision: Number(folded.revision) });
    }
    expect(compared).toBe(touched.size);
  });

  test('ops: /health, /ready with its checks, /metrics, /openapi.json, /docs', async () => {
    const health = await http().get('/health');
    expect(health.status).toBe(200);
    expect(health.body).toEqual({ status: 'ok' });

    const ready = await http().get('/ready');
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({
      status: 'ready',
      checks: { postgres: { ok: true }, temporal: { ok: true }, eventStore: { ok: true } },
    });
    // A degrading part down (the local stack's projections thread while it is started again): still serving, degraded.
    let threadUp = false;
    api.deps.degradingChecks = {
      projections: async () => {
        if (!threadUp) throw new Error('the projections thread is being started again');
      },
    };
    try {
      const degraded = await http().get('/ready');
      expect(degraded.status).toBe(200);
      expect(degraded.body).toMatchObject({
        status: 'degraded',
        checks: { postgres: { ok: true }, projections: { ok: false, error: 'the projections thread is being started again' } },
      });
      threadUp = true;
      expect((await http().get('/ready')).body).toMatchObject({ status: 'ready', checks: { projections: { ok: true } } });
      // A dependency down is another matter: not ready.
      threadUp = false;
      const checks = api.deps.checks;
      api.deps.checks = { ...checks, eventStore: () => Promise.reject(new Error('store unreachable')) };
      const notReady = await http().get('/ready');
      api.deps.checks = checks;
      expect(notReady.status).toBe(503);
      expect(notReady.body).toMatchObject({ status: 'not_ready', checks: { eventStore: { ok: false, error: 'store unreachable' } } });
    } finally {
      api.deps.degradingChecks = undefined;
    }

    const metrics = await http().get('/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.headers['content-type']).toMatch(/^text\/plain/);
    expect(metrics.text).toMatch(/^transfers_total\{outcome="completed"\} [1-9]/m);
    expect(metrics.text).toMatch(/^projection_lag_seconds\{projection="account-balances"\} /m);
    expect(metrics.text).toMatch(/^projection_lag_seconds\{projection="transfers"\} /m);
    expect(metrics.text).toMatch(/^projection_lag_events\{projection="account-history"\} \d+$/m);
    expect(metrics.text).toMatch(/^http_request_duration_seconds_bucket\{.*route="\/accounts\/:id".*\} /m);
    expect(metrics.text).toMatch(/^http_request_duration_seconds_count\{method="POST",route="\/transfers",status="202"\} [1-9]/m);

    // The adapter's own gauges, wired where the adapter is chosen: an event committed behind an open transaction
    // is held back from readers, and /metrics says so.
    const slow = await api.pool.connect();
    try {
      const stream = `held-${randomUUID()}`;
      await slow.query('BEGIN');
      await slow.query('INSERT INTO es_streams (stream, revision) VALUES ($1, 0)', [stream]);
      await slow.query(
        `INSERT INTO es_events (stream, revision, id, type, data, metadata, occurred_at) VALUES ($1, 0, $2, 'Held', '{}', '{}', now())`,
        [stream, randomUUID()],
      );
      await api.store.appendToStream(`held-after-${randomUUID()}`, [{ id: randomUUID(), type: 'After', data: {}, metadata: {} }], {
        expectedRevision: 'no_stream',
      });
      // A scrape whose collection failed (a slow query on a loaded machine) serves the last values: scrape until it says so.
      let held = await http().get('/metrics');
      for (let i = 0; i < 20 && !/^event_store_events_held_back [1-9]\d*$/m.test(held.text); i++) held = await http().get('/metrics');
      expect(held.text).toMatch(/^event_store_events_held_back [1-9]\d*$/m);
      expect(held.text).toMatch(/^event_store_oldest_open_transaction_seconds [0-9.e-]+$/m);
    } finally {
      await slow.query('ROLLBACK');
      slow.release();
    }
    expect((await http().get('/metrics')).text).toMatch(/^event_store_events_held_back 0$/m);

    const openapi = await http().get('/openapi.json');
    expect(openapi.status).toBe(200);
    expect(openapi.body.openapi).toMatch(/^3\./);
    expect(Object.keys(openapi.body.paths as object)).toEqual(
      expect.arrayContaining([
        '/accounts',
        '/accounts/{id}',
        '/accounts/{id}/deposits',
        '/accounts/{id}/withdrawals',
        '/accounts/{id}/close',
        '/accounts/{id}/history',
        '/accounts/{id}/balance',
        '/transfers',
        '/transfers/{id}',
        '/streams',
        '/health',
        '/ready',
        '/metrics',
      ]),
    );
    expect(openapi.body.paths['/transfers'].post.responses).toHaveProperty('202');

    const docs = await http().get('/docs/');
    expect(docs.status).toBe(200);
    expect(docs.headers['content-type']).toMatch(/^text\/html/);
    expect(docs.text).toMatch(/swagger-ui/i);
  });
});
