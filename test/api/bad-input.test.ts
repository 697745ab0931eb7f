import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { Response } from 'supertest';
import { transferWorkflowId } from '../../workflows/transfer-saga-contract';
import { ApiStack, storeFingerprint } from '../support/api-stack';

/** Accounts the table refers to, created once. */
interface Fixture {
  eur: string;
  eur2: string;
  usd: string;
  position: string;
}

interface BadRequest {
  name: string;
  method: 'get' | 'post' | 'delete';
  path: (f: Fixture) => string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  /** An object is sent as JSON; a string is sent as is (set the content type in headers). */
  body?: (f: Fixture) => unknown;
  status: number;
  type: string;
  /** The field an `errors` entry must name (undefined: the problem has no field). */
  field?: string;
}

const JSON_TYPE = { 'content-type': 'application/json' };
const ID = randomUUID();
const deposit = (f: Fixture) => `/accounts/${f.eur}/deposits`;
const transfer = (extra: Record<string, unknown>) => (f: Fixture) => ({
  transferId: `bad-${randomUUID().slice(0, 8)}`,
  fromAccountId: f.eur,
  toAccountId: f.eur2,
  amount: 100,
  ...extra,
});
const open = (extra: Record<string, unknown>) => () => ({ ownerId: 'mallory', currency: 'EUR', ...extra });

const amountCases: [string, unknown][] = [
  ['zero', 0],
  ['negative', -5],
  ['fractional', 1.5],
  ['2**53 (beyond the safe integers)', 2 ** 53],
  ['1e21', 1e21],
  ['the string "100"', '100'],
  ['the string "NaN"', 'NaN'],
  ['the string "Infinity"', 'Infinity'],
  ['the string "1e3"', '1e3'],
  ['null', null],
  ['true', true],
  ['an array', [100]],
  ['an object', { value: 100 }],
];

const CASES: BadRequest[] = [
  // Bodies that are not JSON objects.
  {
    name: 'malformed JSON',
    method: 'post',
    path: () => '/accounts',
    headers: JSON_TYPE,
    body: () => '{"ownerId": "a", "currency":',
    status: 400,
    type: '/problems/malformed-json',
    field: 'body',
  },
  {
    name: 'JSON with a NaN literal',
    method: 'post',
    path: deposit,
    headers: JSON_TYPE,
    body: () => '{"amount": NaN}',
    status: 400,
    type: '/problems/malformed-json',
    field: 'body',
  },
  {
    name: 'JSON null body',
    method: 'post',
    path: deposit,
    headers: JSON_TYPE,
    body: () => 'null',
    status: 400,
    type: '/problems/malformed-json',
    field: 'body',
  },
  {
    name: 'JSON array body',
    method: 'post',
    path: () => '/accounts',
    headers: JSON_TYPE,
    body: () => '[]',
    status: 400,
    type: '/problems/validation-error',
    field: 'body',
  },
  { name: 'no body on a deposit', method: 'post', path: deposit, status: 400, type: '/problems/validation-error', field: 'body' },
  {
    name: 'text/plain body',
    method: 'post',
    path: () => '/accounts',
    headers: { 'content-type': 'text/plain' },
    body: () => '{"ownerId":"a","currency":"EUR"}',
    status: 415,
    type: '/problems/unsupported-media-type',
    field: 'Content-Type',
  },
  {
    name: 'form-encoded deposit',
    method: 'post',
    path: deposit,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: () => 'amount=100',
    status: 415,
    type: '/problems/unsupported-media-type',
    field: 'Content-Type',
  },
  {
    name: 'unsupported JSON charset',
    method: 'post',
    path: deposit,
    headers: { 'content-type': 'application/json; charset=latin1' },
    body: () => '{"amount":100}',
    status: 415,
    type: '/problems/unsupported-encoding',
  },
  {
    name: 'body over the 16kb limit',
    method: 'post',
    path: () => '/accounts',
    body: open({ pad: 'x'.repeat(17 * 1024) }),
    status: 413,
    type: '/problems/body-too-large',
    field: 'body',
  },
  {
    name: 'body just under the 16kb limit is parsed (and refused for its unknown field)',
    method: 'post',
    path: () => '/accounts',
    body: open({ pad: 'x'.repeat(15 * 1024) }),
    status: 400,
    type: '/problems/validation-error',
    field: 'pad',
  },

  // Wrong types and missing fields.
  {
    name: 'currency as a number',
    method: 'post',
    path: () => '/accounts',
    body: open({ currency: 12 }),
    status: 400,
    type: '/problems/validation-error',
    field: 'currency',
  },
  {
    name: 'ownerId as a number',
    method: 'post',
    path: () => '/accounts',
    body: open({ ownerId: 5 }),
    status: 400,
    type: '/problems/validation-error',
    field: 'ownerId',
  },
  {
    name: 'open without ownerId',
    method: 'post',
    path: () => '/accounts',
    body: () => ({ currency: 'EUR' }),
    status: 400,
    type: '/problems/validation-error',
    field: 'ownerId',
  },
  {
    name: 'open without currency',
    method: 'post',
    path: () => '/accounts',
    body: () => ({ ownerId: 'a' }),
    status: 400,
    type: '/problems/validation-error',
    field: 'currency',
  },
  {
    name: 'deposit without amount',
    method: 'post',
    path: deposit,
    body: () => ({}),
    status: 400,
    type: '/problems/validation-error',
    field: 'amount',
  },
  {
    name: 'transfer without fromAccountId',
    method: 'post',
    path: () => '/transfers',
    body: (f) => ({ toAccountId: f.eur2, amount: 100 }),
    status: 400,
    type: '/problems/validation-error',
    field: 'fromAccountId',
  },
  {
    name: 'transfer without toAccountId',
    method: 'post',
    path: () => '/transfers',
    body: (f) => ({ fromAccountId: f.eur, amount: 100 }),
    status: 400,
    type: '/problems/validation-error',
    field: 'toAccountId',
  },
  {
    name: 'transfer without amount',
    method: 'post',
    path: () => '/transfers',
    body: (f) => ({ fromAccountId: f.eur, toAccountId: f.eur2 }),
    status: 400,
    type: '/problems/validation-error',
    field: 'amount',
  },
  {
    name: 'transfer amount as a string',
    method: 'post',
    path: () => '/transfers',
    body: transfer({ amount: '100' }),
    status: 400,
    type: '/problems/validation-error',
    field: 'amount',
  },

  // Unknown fields (strict objects).
  {
    name: 'open with an unknown field',
    method: 'post',
    path: () => '/accounts',
    body: open({ nickname: 'm' }),
    status: 400,
    type: '/problems/validation-error',
    field: 'nickname',
  },
  {
    name: 'deposit with an unknown field',
    method: 'post',
    path: deposit,
    body: () => ({ amount: 100, currency: 'EUR' }),
    status: 400,
    type: '/problems/validation-error',
    field: 'currency',
  },
  {
    name: 'transfer with an unknown field',
    method: 'post',
    path: () => '/transfers',
    body: transfer({ note: 'hi' }),
    status: 400,
    type: '/problems/validation-error',
    field: 'note',
  },
  {
    name: 'close with an unknown field',
    method: 'post',
    path: (f) => `/accounts/${f.eur}/close`,
    body: () => ({ force: true }),
    status: 400,
    type: '/problems/validation-error',
    field: 'force',
  },

  // Amounts.
  ...amountCases.map(([what, amount]): BadRequest => ({
    name: `deposit amount ${what}`,
    method: 'post',
    path: deposit,
    body: () => ({ amount }),
    status: 400,
    type: '/problems/validation-error',
    field: 'amount',
  })),
  ...amountCases.map(([what, amount]): BadRequest => ({
    name: `withdrawal amount ${what}`,
    method: 'post',
    path: (f) => `/accounts/${f.eur}/withdrawals`,
    body: () => ({ amount }),
    status: 400,
    type: '/problems/validation-error',
    field: 'amount',
  })),
  ...amountCases.map(([what, amount]): BadRequest => ({
    name: `transfer amount ${what}`,
    method: 'post',
    path: () => '/transfers',
    body: transfer({ amount }),
    status: 400,
    type: '/problems/validation-error',
    field: 'amount',
  })),
  {
    name: 'initialDeposit 0',
    method: 'post',
    path: () => '/accounts',
    body: open({ initialDeposit: 0 }),
    status: 400,
    type: '/problems/validation-error',
    field: 'initialDeposit',
  },
  {
    name: 'initialDeposit 1.5',
    method: 'post',
    path: () => '/accounts',
    body: open({ initialDeposit: 1.5 }),
    status: 400,
    type: '/problems/validation-error',
    field: 'initialDeposit',
  },
  {
    name: 'amount 1e400 (Infinity once parsed)',
    method: 'post',
    path: deposit,
    headers: JSON_TYPE,
    body: () => '{"amount": 1e400}',
    status: 400,
    type: '/problems/validation-error',
    field: 'amount',
  },

  // Currencies.
  ...['eur', 'EURO', 'E1R', '', 'EU'].map((currency): BadRequest => ({
    name: `currency '${currency}'`,
    method: 'post',
    path: () => '/accounts',
    body: open({ currency }),
    status: 400,
    type: '/problems/validation-error',
    field: 'currency',
  })),

  // Account and transfer ids.
  {
    name: 'account id not a UUID (read)',
    method: 'get',
    path: () => '/accounts/not-a-uuid',
    status: 400,
    type: '/problems/validation-error',
    field: 'id',
  },
  {
    name: 'account id not a UUID (deposit)',
    method: 'post',
    path: () => '/accounts/12345/deposits',
    body: () => ({ amount: 100 }),
    status: 400,
    type: '/problems/validation-error',
    field: 'id',
  },
  {
    name: 'account id not a UUID (withdrawal)',
    method: 'post',
    path: () => `/accounts/${ID.replace(/-/g, '')}/withdrawals`,
    body: () => ({ amount: 100 }),
    status: 400,
    type: '/problems/validation-error',
    field: 'id',
  },
  {
    name: 'account id not a UUID (close)',
    method: 'post',
    path: () => '/accounts/abc/close',
    status: 400,
    type: '/problems/validation-error',
    field: 'id',
  },
  {
    name: 'account id not a UUID (history)',
    method: 'get',
    path: () => '/accounts/abc/history',
    status: 400,
    type: '/problems/validation-error',
    field: 'id',
  },
  {
    name: 'account id not a UUID (balance)',
    method: 'get',
    path: () => '/accounts/abc/balance',
    query: { asOf: '2026-01-01T00:00:00Z' },
    status: 400,
    type: '/problems/validation-error',
    field: 'id',
  },
  {
    name: 'fromAccountId not a UUID',
    method: 'post',
    path: () => '/transfers',
    body: transfer({ fromAccountId: 'alice' }),
    status: 400,
    type: '/problems/validation-error',
    field: 'fromAccountId',
  },
  {
    name: 'toAccountId not a UUID',
    method: 'post',
    path: () => '/transfers',
    body: transfer({ toAccountId: `${ID}x` }),
    status: 400,
    type: '/problems/validation-error',
    field: 'toAccountId',
  },
  {
    name: 'fromAccountId as a number',
    method: 'post',
    path: () => '/transfers',
    body: transfer({ fromAccountId: 123 }),
    status: 400,
    type: '/problems/validation-error',
    field: 'fromAccountId',
  },
  {
    name: 'transferId with a slash',
    method: 'post',
    path: () => '/transfers',
    body: transfer({ transferId: '../x' }),
    status: 400,
    type: '/problems/validation-error',
    field: 'transferId',
  },
  {
    name: 'transferId too long',
    method: 'post',
    path: () => '/transfers',
    body: transfer({ transferId: 'a'.repeat(65) }),
    status: 400,
    type: '/problems/validation-error',
    field: 'transferId',
  },
  {
    name: 'transfer id in the path starting with a dash',
    method: 'get',
    path: () => '/transfers/-x',
    status: 400,
    type: '/problems/validation-error',
    field: 'id',
  },
  {
    name: 'Idempotency-Key with a space',
    method: 'post',
    path: () => '/transfers',
    headers: { 'Idempotency-Key': 'has space' },
    body: (f) => ({ fromAccountId: f.eur, toAccountId: f.eur2, amount: 100 }),
    status: 400,
    type: '/problems/validation-error',
    field: 'Idempotency-Key',
  },
  {
    name: 'Idempotency-Key differing from transferId',
    method: 'post',
    path: () => '/transfers',
    headers: { 'Idempotency-Key': 'key-1' },
    body: transfer({ transferId: 'key-2' }),
    status: 400,
    type: '/problems/validation-error',
    field: 'Idempotency-Key',
  },

  // Account writes the domain refuses: the problem names the field that is wrong (the path's account id, or the amount).
  {
    name: 'deposit to an unknown account',
    method: 'post',
    path: () => `/accounts/${randomUUID()}/deposits`,
    body: () => ({ amount: 100 }),
    status: 404,
    type: '/problems/account-not-found',
    field: 'id',
  },
  {
    name: 'withdrawal from an unknown account',
    method: 'post',
    path: () => `/accounts/${randomUUID()}/withdrawals`,
    body: () => ({ amount: 100 }),
    status: 404,
    type: '/problems/account-not-found',
    field: 'id',
  },
  {
    name: 'close of an unknown account',
    method: 'post',
    path: () => `/accounts/${randomUUID()}/close`,
    status: 404,
    type: '/problems/account-not-found',
    field: 'id',
  },
  {
    name: 'initialDeposit beyond the balance limit',
    method: 'post',
    path: () => '/accounts',
    body: open({ initialDeposit: 1_000_000_000_000_001 }),
    status: 422,
    type: '/problems/balance-limit-exceeded',
    field: 'initialDeposit',
  },

  // Transfers the domain refuses before anything is written.
  {
    name: 'same-account transfer',
    method: 'post',
    path: () => '/transfers',
    body: (f) => transfer({ toAccountId: f.eur })(f),
    status: 400,
    type: '/problems/validation-error',
    field: 'toAccountId',
  },
  {
    name: 'unknown source account',
    method: 'post',
    path: () => '/transfers',
    body: transfer({ fromAccountId: randomUUID() }),
    status: 422,
    type: '/problems/account-not-found',
    field: 'fromAccountId',
  },
  {
    name: 'unknown target account',
    method: 'post',
    path: () => '/transfers',
    body: transfer({ toAccountId: randomUUID() }),
    status: 422,
    type: '/problems/account-not-found',
    field: 'toAccountId',
  },
  {
    name: 'transfer between currencies',
    method: 'post',
    path: () => '/transfers',
    body: (f) => transfer({ toAccountId: f.usd })(f),
    status: 422,
    type: '/problems/currency-mismatch',
    field: 'toAccountId',
  },

  // Headers.
  ...['abc', '"1.5"', '"-1"', 'W/', '""'].map((value): BadRequest => ({
    name: `If-Match ${value}`,
    method: 'post',
    path: deposit,
    headers: { 'If-Match': value },
    body: () => ({ amount: 100 }),
    status: 400,
    type: '/problems/validation-error',
    field: 'If-Match',
  })),
  {
    name: 'If-Match abc on close',
    method: 'post',
    path: (f) => `/accounts/${f.eur}/close`,
    headers: { 'If-Match': 'abc' },
    status: 400,
    type: '/problems/validation-error',
    field: 'If-Match',
  },

  // Query parameters.
  {
    name: 'history limit=0',
    method: 'get',
    path: (f) => `/accounts/${f.eur}/history`,
    query: { limit: '0' },
    status: 400,
    type: '/problems/validation-error',
    field: 'limit',
  },
  {
    name: 'history limit=501',
    method: 'get',
    path: (f) => `/accounts/${f.eur}/history`,
    query: { limit: '501' },
    status: 400,
    type: '/problems/validation-error',
    field: 'limit',
  },
  {
    name: 'history limit=abc',
    method: 'get',
    path: (f) => `/accounts/${f.eur}/history`,
    query: { limit: 'abc' },
    status: 400,
    type: '/problems/validation-error',
    field: 'limit',
  },
  {
    name: 'history limit=2.5',
    method: 'get',
    path: (f) => `/accounts/${f.eur}/history`,
    query: { limit: '2.5' },
    status: 400,
    type: '/problems/validation-error',
    field: 'limit',
  },
  {
    name: 'history cursor=abc',
    method: 'get',
    path: (f) => `/accounts/${f.eur}/history`,
    query: { cursor: 'abc' },
    status: 400,
    type: '/problems/validation-error',
    field: 'cursor',
  },
  {
    name: 'history minPosition=abc',
    method: 'get',
    path: (f) => `/accounts/${f.eur}/history`,
    query: { minPosition: 'abc' },
    status: 400,
    type: '/problems/validation-error',
    field: 'minPosition',
  },
  {
    name: 'balance asOf=yesterday',
    method: 'get',
    path: (f) => `/accounts/${f.eur}/balance`,
    query: { asOf: 'yesterday' },
    status: 400,
    type: '/problems/validation-error',
    field: 'asOf',
  },
  {
    name: 'balance asOf=2026-13-45',
    method: 'get',
    path: (f) => `/accounts/${f.eur}/balance`,
    query: { asOf: '2026-13-45T00:00:00Z' },
    status: 400,
    type: '/problems/validation-error',
    field: 'asOf',
  },
  {
    name: 'balance without asOf',
    method: 'get',
    path: (f) => `/accounts/${f.eur}/balance`,
    status: 400,
    type: '/problems/validation-error',
    field: 'asOf',
  },
  {
    name: 'account minPosition=abc',
    method: 'get',
    path: (f) => `/accounts/${f.eur}`,
    query: { minPosition: 'abc' },
    status: 400,
    type: '/problems/validation-error',
    field: 'minPosition',
  },
  {
    name: 'account minPosition=-1.0',
    method: 'get',
    path: (f) => `/accounts/${f.eur}`,
    query: { minPosition: '-1.0' },
    status: 400,
    type: '/problems/validation-error',
    field: 'minPosition',
  },
  {
    name: 'account with an unknown query parameter',
    method: 'get',
    path: (f) => `/accounts/${f.eur}`,
    query: { foo: '1' },
    status: 400,
    type: '/problems/validation-error',
    field: 'foo',
  },
  {
    name: 'transfer wait=99',
    method: 'get',
    path: () => '/transfers/some-transfer',
    query: { wait: '99' },
    status: 400,
    type: '/problems/validation-error',
    field: 'wait',
  },
  {
    name: 'transfer wait=-1',
    method: 'get',
    path: () => '/transfers/some-transfer',
    query: { wait: '-1' },
    status: 400,
    type: '/problems/validation-error',
    field: 'wait',
  },
  {
    name: 'transfer wait=soon',
    method: 'get',
    path: () => '/transfers/some-transfer',
    query: { wait: 'soon' },
    status: 400,
    type: '/problems/validation-error',
    field: 'wait',
  },
  {
    name: 'transfer minPosition=abc',
    method: 'get',
    path: () => '/transfers/some-transfer',
    query: { minPosition: 'abc' },
    status: 400,
    type: '/problems/validation-error',
    field: 'minPosition',
  },
  {
    name: 'streams limit=0',
    method: 'get',
    path: () => '/streams',
    query: { limit: '0' },
    status: 400,
    type: '/problems/validation-error',
    field: 'limit',
  },
  {
    name: 'stream fromRevision=-1',
    method: 'get',
    path: (f) => `/streams/account-${f.eur}`,
    query: { fromRevision: '-1' },
    status: 400,
    type: '/problems/validation-error',
    field: 'fromRevision',
  },

  // Routes.
  { name: 'unknown route', method: 'get', path: () => '/nope', status: 404, type: '/problems/not-found' },
  {
    name: 'unknown route under /accounts',
    method: 'post',
    path: (f) => `/accounts/${f.eur}/overdraft`,
    body: () => ({ amount: 1 }),
    status: 404,
    type: '/problems/not-found',
  },
  { name: 'unrouted method', method: 'delete', path: (f) => `/accounts/${f.eur}`, status: 404, type: '/problems/not-found' },
];

describe('bad requests: a problem+json answer naming the field, no internals, and nothing written', () => {
  let api: ApiStack;
  let fixture: Fixture;

  beforeAll(async () => {
    api = await ApiStack.create('api_bad_input');
    const open = async (currency: string, initialDeposit?: number) => {
      const res = await api
        .http()
        .post('/accounts')
        .send({ ownerId: 'fixture', currency, ...(initialDeposit ? { initialDeposit } : {}) });
      expect(res.status).toBe(201);
      return res.body as { accountId: string; position: string };
    };
    const eur = await open('EUR', 10_000);
    const eur2 = await open('EUR');
    const usd = await open('USD', 5_000);
    fixture = { eur: eur.accountId, eur2: eur2.accountId, usd: usd.accountId, position: usd.position };
  });
  afterAll(async () => api?.close());

  async function send(c: BadRequest): Promise<Response> {
    let req = api.http()[c.method](c.path(fixture));
    if (c.query) req = req.query(c.query);
    for (const [name, value] of Object.entries(c.headers ?? {})) req = req.set(name, value);
    const body = c.body?.(fixture);
    if (body === undefined) return req;
    return req.send(typeof body === 'string' ? body : (body as object));
  }

  test('the table has no duplicate names', () => {
    expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length);
  });

  test.each(CASES)('$name -> $status', async (c) => {
    const before = await storeFingerprint(api.pool);
    const requestId = `bad-${randomUUID().slice(0, 8)}`;
    const body = c.body?.(fixture);
    const res = await send({
      ...c,
      body: body === undefined ? undefined : () => body,
      headers: { 'X-Request-Id': requestId, ...c.headers },
    });

    expect({ status: res.status, type: res.body?.type }).toEqual({ status: c.status, type: c.type });
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ type: c.type, status: c.status, title: expect.any(String), requestId });
    expect(res.body.title.length).toBeGreaterThan(0);
    if (c.field !== undefined) {
      expect(res.body.errors).toEqual(
        expect.arrayContaining([expect.objectContaining({ field: expect.stringContaining(c.field), message: expect.any(String) })]),
      );
    }
    // Nothing internal leaks: no stack frames, no file paths, no error class dumps.
    expect(res.text).not.toMatch(/\bat\s+\S+\s+\(|\bat\s+\/|\bat\s+node:/);
    expect(res.text).not.toMatch(/\/work\/|node_modules|\.ts:\d+|\.js:\d+|"stack"/);

    // The event store is unchanged, and no saga was started.
    expect(await storeFingerprint(api.pool)).toEqual(before);
    const transferId = (body as { transferId?: unknown } | undefined)?.transferId ?? c.headers?.['Idempotency-Key'];
    if (typeof transferId === 'string' && c.path(fixture) === '/transfers') {
      await expect(api.stack.client.workflow.getHandle(transferWorkflowId(transferId)).describe()).rejects.toBeInstanceOf(
        WorkflowNotFoundError,
      );
    }
  });

  test('after the whole table: balances untouched, read models consistent', async () => {
    await api.caughtUp();
    for (const [id, balance] of [
      [fixture.eur, 10_000],
      [fixture.eur2, 0],
      [fixture.usd, 5_000],
    ] as const) {
      expect((await api.accounts.loadWithoutSnapshot(id)).state.balance).toBe(balance);
      expect((await api.http().get(`/accounts/${id}`)).body).toMatchObject({ balance, revision: balance > 0 ? 1 : 0 });
    }
  });
});
