import { randomUUID } from 'node:crypto';
import type { Response } from 'supertest';
import { exceptionStream } from '../../domain/late-record-exception';
import { ApiStack, storeFingerprint } from '../support/api-stack';
import { openAccount } from '../support/open-account';

/**
 * Issue 23, item 11: bad input gets a clear 4xx, never a 500. Every string that reaches PostgreSQL is validated at
 * the edge to what it can store and compare (docs/input-validation.md): no NUL, no lone surrogate, integers within
 * bigint, timestamps in a strict ISO-8601 form within the business range. Each refusal is a problem naming the field,
 * and writes nothing.
 */

const BIGINT_OVERFLOW = '9999999999999999999'; // 19 digits, above 2^63 - 1
const cursorOf = (at: string, id: string) => Buffer.from(JSON.stringify([at, id])).toString('base64url');

interface Fixture {
  account: string;
  exceptionId: string;
}

interface HostileCase {
  name: string;
  /** Who sends it: a customer key (owner 'alice', who owns `account`) or the operator. */
  as: 'customer' | 'operator';
  method: 'get' | 'post';
  path: (f: Fixture) => string;
  body?: unknown;
  /** The field the problem must name. */
  field: string;
}

/** The ten inputs that answered 500 (five reachable with a customer key), and their close kin. */
const CASES: HostileCase[] = [
  {
    name: 'GET /transfers from with a +23:59 offset',
    as: 'customer',
    method: 'get',
    path: () => '/transfers?from=2026-01-01T00:00:00%2B23:59',
    field: 'from',
  },
  {
    name: 'GET /transfers cursor with a +23:59 offset',
    as: 'customer',
    method: 'get',
    path: () => `/transfers?after=${cursorOf('2026-01-01T00:00:00+23:59', 'x')}`,
    field: 'after',
  },
  {
    name: 'GET /transfers cursor whose id holds NUL',
    as: 'customer',
    method: 'get',
    path: () => `/transfers?after=${cursorOf('2026-01-01T00:00:00Z', 'a\u0000b')}`,
    field: 'after',
  },
  {
    name: 'GET /accounts/{id} minPosition of 19 digits',
    as: 'customer',
    method: 'get',
    path: (f) => `/accounts/${f.account}?minPosition=${BIGINT_OVERFLOW}.0`,
    field: 'minPosition',
  },
  {
    name: 'GET /accounts/{id}/history cursor of 19 digits',
    as: 'customer',
    method: 'get',
    path: (f) => `/accounts/${f.account}/history?cursor=${BIGINT_OVERFLOW}`,
    field: 'cursor',
  },
  { name: 'GET /streams cursor NUL', as: 'operator', method: 'get', path: () => '/streams?cursor=%00', field: 'cursor' },
  { name: 'GET /streams prefix NUL', as: 'operator', method: 'get', path: () => '/streams?prefix=a%00', field: 'prefix' },
  {
    name: 'GET /events after of 19 digits',
    as: 'operator',
    method: 'get',
    path: () => `/events?after=${BIGINT_OVERFLOW}.1`,
    field: 'after',
  },
  {
    name: 'POST /exceptions/{id}/reject reason with NUL',
    as: 'operator',
    method: 'post',
    path: (f) => `/exceptions/${f.exceptionId}/reject`,
    body: { reason: 'no\u0000pe' },
    field: 'reason',
  },
  {
    name: 'POST /exceptions/{id}/reject reason with a lone surrogate',
    as: 'operator',
    method: 'post',
    path: (f) => `/exceptions/${f.exceptionId}/reject`,
    body: { reason: 'half \ud800 a pair' },
    field: 'reason',
  },
  // Kin of the ten.
  {
    name: 'GET /transfers to with a +23:59 offset',
    as: 'customer',
    method: 'get',
    path: () => '/transfers?to=2026-01-01T00:00:00-23:59',
    field: 'to',
  },
  {
    name: 'GET /transfers/{id} minPosition prepare of 19 digits',
    as: 'operator',
    method: 'get',
    path: () => `/transfers/t-1?minPosition=1.${BIGINT_OVERFLOW}`,
    field: 'minPosition',
  },
  {
    name: 'GET /accounts/{id}/balance asOf with a +23:59 offset',
    as: 'customer',
    method: 'get',
    path: (f) => `/accounts/${f.account}/balance?asOf=2026-01-01T00:00:00%2B23:59`,
    field: 'asOf',
  },
  {
    name: 'GET /events from with a +23:59 offset',
    as: 'operator',
    method: 'get',
    path: () => '/events?from=2026-01-01T00:00:00%2B23:59',
    field: 'from',
  },
  { name: 'GET /events streamPrefix NUL', as: 'operator', method: 'get', path: () => '/events?streamPrefix=%00', field: 'streamPrefix' },
  { name: 'GET /streams/{name} NUL', as: 'operator', method: 'get', path: () => '/streams/a%00b', field: 'name' },
  {
    name: 'GET /corrections after of 19 digits',
    as: 'operator',
    method: 'get',
    path: () => `/corrections?after=${BIGINT_OVERFLOW}.0`,
    field: 'after',
  },
  {
    name: 'GET /exceptions after of 19 digits',
    as: 'operator',
    method: 'get',
    path: () => `/exceptions?after=${BIGINT_OVERFLOW}.0`,
    field: 'after',
  },
  {
    name: 'POST /accounts/{id}/deposits occurredAt with a +23:59 offset',
    as: 'operator',
    method: 'post',
    path: (f) => `/accounts/${f.account}/deposits`,
    body: { amount: 5, occurredAt: '2026-01-01T00:00:00+23:59' },
    field: 'occurredAt',
  },
];

function expectFieldProblem(res: Response, field: string): void {
  expect({ status: res.status, contentType: res.headers['content-type'] as unknown }).toEqual({
    status: 400,
    contentType: expect.stringMatching(/^application\/problem\+json/),
  });
  expect((res.body.errors as { field: string }[] | undefined)?.map((e) => e.field)).toContain(field);
}

describe('hostile input: a clear 4xx naming the field, never a 500, nothing written', () => {
  let api: ApiStack;
  let customer: string;
  const fixture = {} as Fixture;

  beforeAll(async () => {
    api = await ApiStack.create('hostile_input', { startProjections: true, maxConsistencyWaitMs: 2_000 });
    const key = await api.http().post('/api-keys').send({ role: 'customer', ownerId: 'alice' });
    expect(key.status).toBe(201);
    customer = key.body.secret as string;
    fixture.account = await openAccount(api.accounts, 1000, 'alice');
    // An open exception to reject (as the API holds a too-late deposit).
    fixture.exceptionId = randomUUID();
    const occurredAt = new Date(Date.now() - 6 * 86_400_000).toISOString();
    await api.store.appendToStream(
      exceptionStream(fixture.exceptionId),
      [
        {
          id: randomUUID(),
          type: 'LateRecordHeld',
          data: {
            exceptionId: fixture.exceptionId,
            accountId: fixture.account,
            kind: 'deposit',
            amount: 5,
            occurredAt,
            lateByMs: 6 * 86_400_000,
            maxLatenessMs: 5 * 86_400_000,
            request: {
              method: 'POST',
              path: `/accounts/${fixture.account}/deposits`,
              body: { amount: 5, occurredAt },
              idempotencyKey: null,
              requestId: null,
            },
            by: 'env-operator',
            reason: 'too_late',
          },
          metadata: {},
        },
      ],
      { expectedRevision: 'no_stream' },
    );
  });
  afterAll(async () => {
    await api?.close();
  });

  test.each(CASES.map((c) => [c.name, c] as const))('%s: 400 naming the field, nothing written', async (_name, c) => {
    const client = c.as === 'customer' ? api.as(customer) : api.http();
    const before = await storeFingerprint(api.pool);
    const req = c.method === 'get' ? client.get(c.path(fixture)) : client.post(c.path(fixture)).send(c.body as object);
    const res = await req;
    expectFieldProblem(res, c.field);
    expect(await storeFingerprint(api.pool)).toEqual(before);
  });
});
