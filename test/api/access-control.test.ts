import { handleAccountCommand } from '../../application/account-commands';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { Response, Test } from 'supertest';
import request from 'supertest';
import { OPERATION_ACCESS } from '../../api/access-control';
import { scopedTransferId } from '../../api/customer-ids';
import { createApp } from '../../api/app';
import { createLogger } from '../../infra/logger';
import { batchStream } from '../../domain/transfer-batch';
import { transferStream } from '../../domain/transfer-events';
import { batchWorkflowId } from '../../workflows/batch-saga-contract';
import { transferWorkflowId } from '../../workflows/transfer-saga-contract';
import { ApiStack, storeFingerprint, TEST_OPERATOR_KEY } from '../support/api-stack';
import { waitUntil } from '../support/wait-until';

/**
 * Access control (issue 12): bearer API keys with roles, per-owner access, the rate limit, and the
 * actor on every event. The table runs every endpoint as {no key, revoked key, customer owning,
 * customer not owning, operator}; every refusal is checked to have written nothing (no event, no
 * key change, no saga).
 */

type Who = 'none' | 'revoked' | 'owner' | 'other' | 'operator';
const WHO: Who[] = ['none', 'revoked', 'owner', 'other', 'operator'];

function expectProblem(res: Response, status: number, type?: string, field?: string): void {
  expect({ status: res.status, body: res.body as unknown }).toMatchObject({ status, body: { status, ...(type ? { type } : {}) } });
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  if (field) expect((res.body.errors as { field: string }[]).map((e) => e.field)).toContain(field);
}

describe('access control: API keys, roles, owners, rate limit, actor', () => {
  let api: ApiStack;
  const logLines: string[] = [];
  /** Every secret this file used or tried: none may appear in a log line, an event, a metric or a body. */
  const secrets = new Set<string>([TEST_OPERATOR_KEY]);
  const started: string[] = [];
  /** Batches the table started (their sagas are awaited before the stack closes). */
  const startedBatches: string[] = [];
  let alice: { keyId: string; secret: string };
  let carol: { keyId: string; secret: string };
  let bob: { keyId: string; secret: string };
  let revoked: { keyId: string; secret: string };
  let victim: { keyId: string; secret: string };
  /** alice: A1 (funded), E (empty, closed by the operator in the table); bob: B1; carol: C1. */
  let A1: string, E: string, B1: string, C1: string;
  let T1: string;
  /** A batch from A1 (alice's) to B1, started by the operator: alice may read it, carol may not. */
  let BT1: string;
  /** Holds from A1 to B1, placed by the operator: one to read, and one per caller for each of capture and void. */
  let H1: string;
  const HOLDS_FOR: Record<'capture' | 'void', Partial<Record<Who, string>>> = { capture: {}, void: {} };
  /** Late records held as exceptions (too late): one for the accept row, one for the reject row. */
  let X1: string, X2: string;
  const YESTERDAY = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);

  async function createKey(body: Record<string, unknown>): Promise<{ keyId: string; secret: string }> {
    const res = await api.http().post('/api-keys').send(body);
    expect(res.status).toBe(201);
    secrets.add(res.body.secret as string);
    return { keyId: res.body.keyId as string, secret: res.body.secret as string };
  }

  const openAccount = (ownerId: string, initialDeposit?: number) => api.openAccount(ownerId, initialDeposit);

  beforeAll(async () => {
    api = await ApiStack.create('access_control', { logger: createLogger('debug', {}, (line) => logLines.push(line)) });
    alice = await createKey({ role: 'customer', ownerId: 'alice' });
    bob = await createKey({ role: 'customer', ownerId: 'bob' });
    carol = await createKey({ role: 'customer', ownerId: 'carol' });
    victim = await createKey({ role: 'customer', ownerId: 'dave' });
    revoked = await createKey({ role: 'customer', ownerId: 'alice' });
    expect((await api.http().delete(`/api-keys/${revoked.keyId}`)).status).toBe(204);
    A1 = await openAccount('alice', 100_000);
    E = await openAccount('alice');
    B1 = await openAccount('bob', 5_000);
    C1 = await openAccount('carol', 5_000);
    T1 = `t1-${randomUUID().slice(0, 8)}`;
    const t1 = await api.http().post('/transfers').send({ transferId: T1, fromAccountId: A1, toAccountId: B1, amount: 100 });
    expect(t1.status).toBe(202);
    expect((await api.http().get(`/transfers/${T1}`).query({ wait: 30 })).body.status).toBe('completed');
    const tooLate = new Date(Date.now() - 6 * 86_400_000).toISOString();
    // The late records need an account opened before their business time (a record dated before the opening is refused):
    // alice's, opened ten days ago in business time.
    const late = randomUUID();
    const opened = await handleAccountCommand(
      api.accounts,
      late,
      { type: 'OpenAccount', accountId: late, ownerId: 'alice', currency: 'EUR' },
      { context: { occurredAt: new Date(Date.now() - 10 * 86_400_000).toISOString(), extra: { actor: 'env-operator' } } },
    );
    expect(opened.ok).toBe(true);
    [X1, X2] = (await Promise.all(
      [1, 2].map(async (amount) => {
        const held = await api.http().post(`/accounts/${late}/deposits`).send({ amount, occurredAt: tooLate });
        expect(held.status).toBe(422);
        return held.body.exceptionId as string;
      }),
    )) as [string, string];
    const placeHold = async () => {
      const holdId = `h-${randomUUID().slice(0, 8)}`;
      const res = await api.http().post('/holds').set('Prefer', 'wait=10').send({ holdId, fromAccountId: A1, toAccountId: B1, amount: 10 });
      expect({ status: res.status, hold: res.body.status }).toEqual({ status: 201, hold: 'held' });
      return holdId;
    };
    H1 = await placeHold();
    BT1 = `bt1-${randomUUID().slice(0, 8)}`;
    const bt1 = await api
      .http()
      .post('/transfer-batches')
      .send({ batchId: BT1, items: [{ fromAccountId: A1, toAccountId: B1, amount: 7 }] });
    expect(bt1.status).toBe(202);
    await api.stack.client.workflow.getHandle(batchWorkflowId(BT1)).result();
    for (const what of ['capture', 'void'] as const)
      for (const who of ['owner', 'other', 'operator'] as const) HOLDS_FOR[what][who] = await placeHold();
    await api.caughtUp();
  });
  afterAll(async () => {
    for (const id of started)
      await api?.stack.client.workflow
        .getHandle(transferWorkflowId(id))
        .result()
        .catch(() => undefined);
    for (const id of startedBatches)
      await api?.stack.client.workflow
        .getHandle(batchWorkflowId(id))
        .result()
        .catch(() => undefined); // a batch that never started: nothing to wait for
    await api?.close();
  });

  const agent = (who: Who) =>
    ({
      none: () => api.anonymous(),
      revoked: () => api.as(revoked.secret),
      owner: () => api.as(alice.secret),
      other: () => api.as(carol.secret),
      operator: () => api.http(),
    })[who]();

  interface Row {
    op: string;
    call: (who: Who) => Test;
    expect: Record<Exclude<Who, 'none' | 'revoked'>, number>;
    /** The transfer id a POST /transfers row used (to check no saga was started on refusal). */
    transferId?: (who: Who) => string;
    /** The stored batch id a POST /transfer-batches row used (to check nothing was recorded or started on refusal). */
    batchId?: (who: Who) => string;
  }
  const tid = (who: Who) => `ac-${who}-${process.pid}`;
  const ROWS: Row[] = [
    {
      op: 'get /accounts',
      call: (w) => agent(w).get('/accounts').query({ ownerId: 'alice' }),
      expect: { owner: 200, other: 200, operator: 200 },
    },
    { op: 'get /accounts/{id}', call: (w) => agent(w).get(`/accounts/${A1}`), expect: { owner: 200, other: 404, operator: 200 } },
    {
      op: 'get /accounts/{id}/history',
      call: (w) => agent(w).get(`/accounts/${A1}/history`),
      expect: { owner: 200, other: 404, operator: 200 },
    },
    {
      op: 'get /accounts/{id}/balance',
      call: (w) => agent(w).get(`/accounts/${A1}/balance`).query({ asOf: new Date().toISOString() }),
      expect: { owner: 200, other: 404, operator: 200 },
    },
    {
      op: 'get /accounts/{id}/statements/{date}',
      call: (w) => agent(w).get(`/accounts/${A1}/statements/${YESTERDAY}`),
      expect: { owner: 200, other: 404, operator: 200 },
    },
    {
      op: 'post /books/close',
      call: (w) => agent(w).post('/books/close').send({ date: YESTERDAY }),
      expect: { owner: 403, other: 403, operator: 200 },
    },
    { op: 'get /corrections', call: (w) => agent(w).get('/corrections'), expect: { owner: 403, other: 403, operator: 200 } },
    { op: 'get /exceptions', call: (w) => agent(w).get('/exceptions'), expect: { owner: 403, other: 403, operator: 200 } },
    {
      op: 'post /exceptions/{id}/accept',
      call: (w) => agent(w).post(`/exceptions/${X1}/accept`),
      expect: { owner: 403, other: 403, operator: 200 },
    },
    {
      op: 'post /exceptions/{id}/reject',
      call: (w) => agent(w).post(`/exceptions/${X2}/reject`).send({}),
      expect: { owner: 403, other: 403, operator: 200 },
    },
    {
      op: 'post /accounts',
      call: (w) => agent(w).post('/accounts').send({ ownerId: 'alice', currency: 'EUR', initialDeposit: 1 }),
      expect: { owner: 403, other: 403, operator: 201 },
    },
    {
      op: 'post /accounts/{id}/deposits',
      call: (w) => agent(w).post(`/accounts/${A1}/deposits`).send({ amount: 1 }),
      expect: { owner: 403, other: 403, operator: 200 },
    },
    {
      op: 'post /accounts/{id}/withdrawals',
      call: (w) => agent(w).post(`/accounts/${A1}/withdrawals`).send({ amount: 1 }),
      expect: { owner: 403, other: 403, operator: 200 },
    },
    {
      op: 'post /accounts/{id}/close',
      call: (w) => agent(w).post(`/accounts/${E}/close`),
      expect: { owner: 403, other: 403, operator: 200 },
    },
    {
      op: 'post /transfers',
      call: (w) =>
        agent(w)
          .post('/transfers')
          .send({ transferId: tid(w), fromAccountId: A1, toAccountId: C1, amount: 10 }),
      expect: { owner: 202, other: 403, operator: 202 },
      // Stored as the caller sees it: a customer's id scoped to its owner (api/customer-ids.ts).
      transferId: (w) => (w === 'owner' ? scopedTransferId('alice', tid(w))! : w === 'other' ? scopedTransferId('carol', tid(w))! : tid(w)),
    },
    { op: 'get /transfers/{id}', call: (w) => agent(w).get(`/transfers/${T1}`), expect: { owner: 200, other: 404, operator: 200 } },
    { op: 'get /transfers', call: (w) => agent(w).get('/transfers'), expect: { owner: 200, other: 200, operator: 200 } },
    // Holds (docs/holds.md): a customer places them from its own accounts; capture and void belong to operators and the
    // source's owner (anyone else: not found); reads to operators and the owners of either account.
    {
      op: 'post /holds',
      call: (w) =>
        agent(w)
          .post('/holds')
          .send({ holdId: `hold-${tid(w)}`, fromAccountId: A1, toAccountId: B1, amount: 5 }),
      expect: { owner: 202, other: 403, operator: 202 },
    },
    { op: 'get /holds', call: (w) => agent(w).get('/holds'), expect: { owner: 200, other: 200, operator: 200 } },
    { op: 'get /holds/{id}', call: (w) => agent(w).get(`/holds/${H1}`), expect: { owner: 200, other: 404, operator: 200 } },
    {
      op: 'post /holds/{id}/capture',
      call: (w) =>
        agent(w)
          .post(`/holds/${HOLDS_FOR.capture[w] ?? H1}/capture`)
          .send({}),
      expect: { owner: 200, other: 404, operator: 200 },
    },
    {
      op: 'post /holds/{id}/void',
      call: (w) =>
        agent(w)
          .post(`/holds/${HOLDS_FOR.void[w] ?? H1}/void`)
          .send({}),
      expect: { owner: 200, other: 404, operator: 200 },
    },
    // Batches (issue 26): a customer starts them from its own accounts only (every item); reads those whose every source
    // it owns; the list is the operators'.
    {
      op: 'post /transfer-batches',
      call: (w) =>
        agent(w)
          .post('/transfer-batches')
          .send({ batchId: `batch-${tid(w)}`, items: [{ fromAccountId: A1, toAccountId: B1, amount: 3 }] }),
      expect: { owner: 202, other: 403, operator: 202 },
      batchId: (w) =>
        w === 'owner'
          ? scopedTransferId('alice', `batch-${tid(w)}`)!
          : w === 'other'
            ? scopedTransferId('carol', `batch-${tid(w)}`)!
            : `batch-${tid(w)}`,
    },
    { op: 'get /transfer-batches', call: (w) => agent(w).get('/transfer-batches'), expect: { owner: 403, other: 403, operator: 200 } },
    {
      op: 'get /transfer-batches/{id}',
      call: (w) => agent(w).get(`/transfer-batches/${BT1}`),
      expect: { owner: 200, other: 404, operator: 200 },
    },
    {
      op: 'post /transfers/{id}/reversal',
      call: (w) =>
        agent(w)
          .post(`/transfers/${T1}/reversal`)
          .send({ amount: 1, reversalId: `rev-${tid(w)}` }),
      expect: { owner: 403, other: 403, operator: 202 },
      transferId: (w: Who) => `rev-${tid(w)}`,
    },
    {
      op: 'get /audit/verify',
      call: (w) =>
        agent(w)
          .get('/audit/verify')
          .query({ stream: `account-${A1}` }),
      expect: { owner: 403, other: 403, operator: 200 },
    },
    { op: 'get /events', call: (w) => agent(w).get('/events').query({ limit: 5 }), expect: { owner: 403, other: 403, operator: 200 } },
    { op: 'get /streams', call: (w) => agent(w).get('/streams'), expect: { owner: 403, other: 403, operator: 200 } },
    { op: 'get /streams/{name}', call: (w) => agent(w).get(`/streams/account-${A1}`), expect: { owner: 403, other: 403, operator: 200 } },
    { op: 'get /metrics', call: (w) => agent(w).get('/metrics'), expect: { owner: 403, other: 403, operator: 200 } },
    {
      op: 'post /api-keys',
      call: (w) => agent(w).post('/api-keys').send({ role: 'customer', ownerId: 'erin' }),
      expect: { owner: 403, other: 403, operator: 201 },
    },
    { op: 'get /api-keys', call: (w) => agent(w).get('/api-keys'), expect: { owner: 403, other: 403, operator: 200 } },
    {
      op: 'delete /api-keys/{keyId}',
      call: (w) => agent(w).delete(`/api-keys/${victim.keyId}`),
      expect: { owner: 403, other: 403, operator: 204 },
    },
  ];
  const PUBLIC = [
    ['get /health', '/health'],
    ['get /ready', '/ready'],
    ['get /openapi.json', '/openapi.json'],
    ['get /docs', '/docs/'],
    ['get /console', '/console'],
    ['get /console/config.json', '/console/config.json'],
  ] as const;

  test("the table covers every operation of OPERATION_ACCESS, and its expectations follow each operation's role", () => {
    expect([...ROWS.map((r) => r.op), ...PUBLIC.map(([op]) => op)].sort()).toEqual(Object.keys(OPERATION_ACCESS).sort());
    for (const row of ROWS) {
      const access = OPERATION_ACCESS[row.op];
      if (access === 'operator')
        expect({ op: row.op, owner: row.expect.owner, other: row.expect.other }).toEqual({ op: row.op, owner: 403, other: 403 });
      else expect({ op: row.op, access }).toEqual({ op: row.op, access: 'customer' });
    }
  });

  async function written() {
    const keys = await api.readModels.query<{ n: number; revoked: number }>(
      'SELECT count(*)::int AS n, count(revoked_at)::int AS revoked FROM api_keys',
    );
    return { events: await storeFingerprint(api.pool), keys: keys.rows[0] };
  }

  const expected = (row: Row, who: Who) => (who === 'none' || who === 'revoked' ? 401 : row.expect[who]);
  const refusals = ROWS.flatMap((row) =>
    WHO.filter((who) => expected(row, who) >= 400).map((who) => [row.op, who, expected(row, who), row] as const),
  );
  const allowed = ROWS.flatMap((row) =>
    WHO.filter((who) => expected(row, who) < 400).map((who) => [row.op, who, expected(row, who), row] as const),
  );

  // Refusals first, while nothing else writes: each is checked to have written nothing.
  test.each(refusals)('%s as %s -> %d, nothing written', async (_op, who, status, row) => {
    const before = await written();
    const res = await row.call(who);
    expectProblem(res, status);
    if (status === 401) {
      expect(res.headers['www-authenticate']).toMatch(/^Bearer realm="transfer-service"/);
      expect((res.body.errors as { field: string }[]).map((e) => e.field)).toEqual(['Authorization']);
    }
    if (status === 403)
      expect((res.body.errors as { field: string }[]).map((e) => e.field)).toEqual([
        row.op === 'post /transfers' || row.op === 'post /holds'
          ? 'fromAccountId'
          : row.op === 'post /transfer-batches'
            ? 'items[0].fromAccountId'
            : 'Authorization',
      ]);
    if (status === 404 && row.op.startsWith('get /accounts')) {
      // Indistinguishable from an account that does not exist.
      const missing = await api
        .http()
        .get(row.op === 'get /accounts/{id}' ? `/accounts/${randomUUID()}` : `/accounts/${randomUUID()}/balance`)
        .query(row.op === 'get /accounts/{id}' ? {} : { asOf: new Date().toISOString() });
      if (row.op !== 'get /accounts/{id}/history')
        expect({ type: res.body.type, title: res.body.title }).toEqual({ type: missing.body.type, title: missing.body.title });
    }
    expect(await written()).toEqual(before);
    if (row.transferId) {
      const transferId = row.transferId(who);
      expect(await api.store.readStream(transferStream(transferId))).toEqual([]);
      await expect(api.stack.client.workflow.getHandle(transferWorkflowId(transferId)).describe()).rejects.toBeInstanceOf(
        WorkflowNotFoundError,
      );
    }
    if (row.batchId) {
      const batchId = row.batchId(who);
      expect(await api.store.readStream(batchStream(batchId))).toEqual([]);
      await expect(api.stack.client.workflow.getHandle(batchWorkflowId(batchId)).describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
    }
  });

  test.each(allowed)('%s as %s -> %d', async (op, who, status, row) => {
    const res = await row.call(who);
    expect({ op, who, status: res.status, body: res.status === status ? undefined : res.text }).toEqual({
      op,
      who,
      status,
      body: undefined,
    });
    if (row.transferId) started.push(row.transferId(who));
    if (row.batchId) startedBatches.push(row.batchId(who));
    if (op === 'post /api-keys') secrets.add(res.body.secret as string);
  });

  test('a customer reads a transfer whose target it owns, and its own accounts only', async () => {
    expect((await api.as(bob.secret).get(`/transfers/${T1}`)).status).toBe(200);
    expect((await api.as(bob.secret).get(`/accounts/${B1}`)).status).toBe(200);
    expectProblem(await api.as(bob.secret).get(`/accounts/${A1}`), 404, '/problems/account-not-found');
    expectProblem(await api.as(bob.secret).get(`/transfers/no-such-${randomUUID().slice(0, 8)}`), 404, '/problems/transfer-not-found');
    // A customer's transfer from its own account to anyone's: accepted, and it completes.
    const transferId = `bob-${randomUUID().slice(0, 8)}`;
    const res = await api.as(bob.secret).post('/transfers').send({ transferId, fromAccountId: B1, toAccountId: A1, amount: 5 });
    expect(res.status).toBe(202);
    expect((await api.as(bob.secret).get(`/transfers/${transferId}`).query({ wait: 30 })).body.status).toBe('completed');
  });

  test.each([
    ['no header', {}],
    ['an empty header', { Authorization: '' }],
    ['another scheme', { Authorization: 'Basic YWxpY2U6c2VjcmV0' }],
    ['Bearer without a token', { Authorization: 'Bearer' }],
    ['a token with spaces', { Authorization: 'Bearer two words' }],
    ['an unknown well-formed key', { Authorization: `Bearer tsk_0123456789abcdef_${randomBytes(32).toString('base64url')}` }],
    [
      'a real key id with a wrong secret',
      () => ({ Authorization: `Bearer tsk_${alice.keyId.slice(4)}_${randomBytes(32).toString('base64url')}` }),
    ],
    [
      'the operator key with one character changed',
      { Authorization: `Bearer ${TEST_OPERATOR_KEY.slice(0, -1)}${TEST_OPERATOR_KEY.endsWith('A') ? 'B' : 'A'}` },
    ],
  ] as const)('%s -> 401 with WWW-Authenticate: Bearer, and the token is not echoed', async (_label, headers) => {
    const h: Record<string, string> = typeof headers === 'function' ? headers() : headers;
    const token = (h.Authorization ?? '').replace(/^\S+\s*/, '');
    if (token) secrets.add(token);
    const res = await api.anonymous().get(`/accounts/${A1}`).set(h);
    expectProblem(res, 401, '/problems/unauthorized', 'Authorization');
    expect(res.headers['www-authenticate']).toMatch(/^Bearer /);
    if (token) expect(res.text).not.toContain(token);
  });

  test('keys: created with a secret shown once, listed without secrets, refused once revoked (within a second, on another instance too)', async () => {
    const created = await api.http().post('/api-keys').send({ role: 'operator' });
    expect(created.status).toBe(201);
    expect(created.headers['cache-control']).toBe('no-store');
    expect(created.headers.location).toBe(`/api-keys/${created.body.keyId}`);
    expect(created.body).toEqual({
      keyId: expect.stringMatching(/^key_[0-9a-f]{16}$/),
      secret: expect.stringMatching(/^tsk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/),
      role: 'operator',
      ownerId: null,
      createdAt: expect.any(String),
    });
    const { keyId, secret } = created.body as { keyId: string; secret: string };
    secrets.add(secret);
    // The new operator key works as an operator, and its writes carry its key id.
    const opened = await api.as(secret).post('/accounts').set('X-Request-Id', `by-${keyId}`).send({ ownerId: 'frank', currency: 'EUR' });
    expect(opened.status).toBe(201);
    const [event] = await api.store.readStream(`account-${opened.body.accountId as string}`);
    expect(event!.metadata).toMatchObject({ actor: keyId, correlationId: `by-${keyId}` });

    const list = await api.http().get('/api-keys');
    expect(list.status).toBe(200);
    const listed = (list.body.keys as { keyId: string }[]).find((k) => k.keyId === keyId);
    expect(listed).toEqual({
      keyId,
      role: 'operator',
      ownerId: null,
      createdAt: expect.any(String),
      createdBy: 'env-operator',
      revokedAt: null,
      revokedBy: null,
    });
    for (const s of secrets) expect(list.text).not.toContain(s);
    // Only the hash is stored.
    const stored = await api.readModels.query<{ secret_hash: Buffer }>('SELECT secret_hash FROM api_keys WHERE key_id = $1', [keyId]);
    expect(stored.rows[0]!.secret_hash.equals(createHash('sha256').update(secret).digest())).toBe(true);
    expect(JSON.stringify((await api.readModels.query('SELECT * FROM api_keys')).rows)).not.toContain(secret);

    // Revoked through another instance (its own cache): this one refuses the key within a second.
    const instanceA = api.as(secret);
    expect((await instanceA.get(`/accounts/${A1}`)).status).toBe(200); // cached as valid here
    const otherInstance = createApp({ ...api.deps });
    const revokedAt = Date.now();
    expect((await request(otherInstance).delete(`/api-keys/${keyId}`).set('Authorization', `Bearer ${TEST_OPERATOR_KEY}`)).status).toBe(
      204,
    );
    const refusedAfter = await waitUntil(
      'the revoked key to be refused',
      async () => ((await api.as(secret).get(`/accounts/${A1}`)).status === 401 ? Date.now() - revokedAt : undefined),
      10_000,
      20,
    );
    expect(refusedAfter).toBeLessThan(1_000);
    expect((await api.as(secret).get(`/accounts/${A1}`)).status).toBe(401);
    // Revoking again is fine; the list shows who revoked it.
    expect((await api.http().delete(`/api-keys/${keyId}`)).status).toBe(204);
    const after = ((await api.http().get('/api-keys')).body.keys as { keyId: string; revokedBy: string; revokedAt: string }[]).find(
      (k) => k.keyId === keyId,
    );
    expect(after).toMatchObject({ revokedBy: 'env-operator', revokedAt: expect.any(String) });
  });

  test.each([
    ['a customer without ownerId', { role: 'customer' }, 'ownerId'],
    ['an operator with an ownerId', { role: 'operator', ownerId: 'alice' }, 'ownerId'],
    ['an unknown role', { role: 'admin' }, 'role'],
    ['an unknown field', { role: 'operator', scopes: ['all'] }, 'scopes'],
    ['a bad ownerId', { role: 'customer', ownerId: 'has spaces' }, 'ownerId'],
  ])('POST /api-keys with %s -> 400 naming the field, no key made', async (_label, body, field) => {
    const before = await written();
    expectProblem(await api.http().post('/api-keys').send(body), 400, '/problems/validation-error', field);
    expect(await written()).toEqual(before);
  });

  test('DELETE of an unknown key -> 404; of the environment key -> 409; a malformed key id -> 400', async () => {
    expectProblem(await api.http().delete('/api-keys/key_0000000000000000'), 404, '/problems/api-key-not-found');
    expectProblem(await api.http().delete('/api-keys/env-operator'), 409, '/problems/key-from-environment', 'keyId');
    expectProblem(await api.http().delete('/api-keys/whatever'), 400, '/problems/validation-error', 'keyId');
    expect((await api.http().get('/api-keys')).status).toBe(200); // the environment key still works
  });

  test('the rate limit per key: over RATE_LIMIT_PER_MINUTE -> 429 problem+json with Retry-After; other keys and public endpoints unaffected', async () => {
    const limited = createApp({ ...api.deps, access: { ...api.deps.access, rateLimitPerMinute: 3 } });
    const as = (secret: string) => request.agent(limited).set('Authorization', `Bearer ${secret}`);
    for (let i = 0; i < 3; i++) expect((await as(alice.secret).get(`/accounts/${A1}`)).status).toBe(200);
    const before = await written();
    const over = await as(alice.secret)
      .post('/transfers')
      .send({ transferId: `rl-${process.pid}`, fromAccountId: A1, toAccountId: B1, amount: 1 });
    expectProblem(over, 429, '/problems/rate-limited', 'Authorization');
    const retryAfter = Number(over.headers['retry-after']);
    expect(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60).toBe(true);
    expect(over.body.retryAfterSeconds).toBe(retryAfter);
    expect(over.headers.ratelimit).toMatch(/limit=3, remaining=0/);
    expect(await written()).toEqual(before);
    await expect(api.stack.client.workflow.getHandle(transferWorkflowId(`rl-${process.pid}`)).describe()).rejects.toBeInstanceOf(
      WorkflowNotFoundError,
    );
    // Another key has its own budget; requests without a key are refused (401), not counted; public endpoints are not limited.
    expect((await as(bob.secret).get(`/accounts/${B1}`)).status).toBe(200);
    expect((await request(limited).get('/metrics')).status).toBe(401);
    for (let i = 0; i < 5; i++) expect((await request(limited).get('/health')).status).toBe(200);
  });

  test('/metrics needs an operator key unless METRICS_PUBLIC=true', async () => {
    expect((await api.anonymous().get('/metrics')).status).toBe(401);
    const open = createApp({ ...api.deps, access: { ...api.deps.access, metricsPublic: true } });
    const res = await request(open).get('/metrics');
    expect(res.status).toBe(200);
    expect(res.text).toContain('http_request_duration_seconds');
    // Still a key everywhere else.
    expect((await request(open).get('/api-keys')).status).toBe(401);
  });

  test("OpenAPI declares the bearer scheme and each operation's role; /docs can authorize", async () => {
    const doc = (await api.anonymous().get('/openapi.json')).body as {
      components: { securitySchemes: Record<string, unknown> };
      paths: Record<string, Record<string, { security?: unknown[]; 'x-required-role'?: string; responses: Record<string, unknown> }>>;
    };
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
    for (const [op, access] of Object.entries(OPERATION_ACCESS)) {
      const [method, path] = op.split(' ') as [string, string];
      if (path === '/openapi.json' || path === '/docs') continue; // served, not documented operations
      const operation = doc.paths[path]?.[method];
      expect({ op, role: operation?.['x-required-role'] }).toEqual({ op, role: access === 'public' ? 'none' : access });
      expect({ op, security: operation?.security }).toEqual({ op, security: access === 'public' ? [] : [{ bearerAuth: [] }] });
      if (access !== 'public') expect(Object.keys(operation!.responses)).toEqual(expect.arrayContaining(['401', '429']));
    }
    const docs = await api.anonymous().get('/docs/swagger-ui-init.js');
    expect(docs.status).toBe(200);
    expect(docs.text).toContain('bearerAuth');
  });

  test("actor on every event of a transfer (the saga's included), beside correlationId; in the saga's memo too", async () => {
    const transferId = `actor-${randomUUID().slice(0, 8)}`;
    const requestId = `req-${transferId}`;
    const res = await api
      .as(alice.secret)
      .post('/transfers')
      .set('X-Request-Id', requestId)
      .send({ transferId, fromAccountId: A1, toAccountId: B1, amount: 250 });
    expect(res.status).toBe(202);
    expect((await api.as(alice.secret).get(`/transfers/${transferId}`).query({ wait: 30 })).body.status).toBe('completed');
    const stored = scopedTransferId('alice', transferId)!;
    const events = await api.pool.query<{ stream: string; type: string; metadata: Record<string, unknown> }>(
      `SELECT stream, type, metadata FROM es_events WHERE metadata->>'transferId' = $1 OR stream = $2 ORDER BY position`,
      [stored, transferStream(stored)],
    );
    expect(events.rows.map((e) => e.type).sort()).toEqual([
      'TransferCompleted',
      'TransferCredited',
      'TransferDebited',
      'TransferRequested',
      'TransferSourceDebited',
      'TransferTargetCredited',
    ]);
    for (const e of events.rows)
      expect({ stream: e.stream, type: e.type, metadata: e.metadata }).toMatchObject({
        metadata: { actor: alice.keyId, correlationId: requestId },
      });
    const memo = (await api.stack.client.workflow.getHandle(transferWorkflowId(stored)).describe()).memo;
    expect(memo).toMatchObject({ actor: alice.keyId, correlationId: requestId });

    // Account writes through the API carry their actor too (with an Idempotency-Key as well).
    const deposit = await api
      .http()
      .post(`/accounts/${A1}/deposits`)
      .set('X-Request-Id', `dep-${transferId}`)
      .set('Idempotency-Key', `dep-${transferId}`)
      .send({ amount: 7 });
    expect(deposit.status).toBe(200);
    const last = (await api.store.readStream(`account-${A1}`)).at(-1)!;
    expect(last.metadata).toMatchObject({ actor: 'env-operator', correlationId: `dep-${transferId}` });
  });

  test('every event the API caused in this file carries an actor', async () => {
    const missing = await api.pool.query<{ stream: string; type: string }>(
      `SELECT stream, type FROM es_events WHERE NOT (metadata ? 'actor')`,
    );
    expect(missing.rows).toEqual([]);
  });

  test('no secret in any log line, event, metric, stream-browser page or key listing', async () => {
    await Promise.all(started.map((id) => api.stack.client.workflow.getHandle(transferWorkflowId(id)).result()));
    const hashes = [...secrets].flatMap((s) => {
      const digest = createHash('sha256').update(s).digest();
      return [digest.toString('hex'), digest.toString('base64'), digest.toString('base64url')];
    });
    const forbidden = [...secrets, ...hashes];
    expect(secrets.size).toBeGreaterThan(8);
    const check = (where: string, text: string) => {
      for (const s of forbidden) if (text.includes(s)) throw new Error(`a secret (or its hash) appears in ${where}`);
    };
    expect(logLines.length).toBeGreaterThan(50);
    expect(logLines.some((l) => l.includes(`"actor":"${alice.keyId}"`))).toBe(true); // the key id is logged, the secret never
    check('the logs', logLines.join('\n'));
    const events = await api.pool.query<{ row: string }>('SELECT row_to_json(e)::text AS row FROM es_events e');
    expect(events.rows.length).toBeGreaterThan(20);
    check('the events', events.rows.map((r) => r.row).join('\n'));
    check('the metrics', (await api.http().get('/metrics')).text);
    const streams = await api.http().get('/streams').query({ limit: 500 });
    check('the stream list', streams.text);
    for (const s of streams.body.streams as { href: string }[]) check(s.href, (await api.http().get(s.href).query({ limit: 1000 })).text);
    check('the key list', (await api.http().get('/api-keys')).text);
  });
});
