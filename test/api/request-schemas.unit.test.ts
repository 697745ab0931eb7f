import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import { ApiKeyParams, CreateApiKeyBody } from '../../api/api-key-schemas';
import { HttpProblem } from '../../api/problem';
import {
  AccountIdempotencyKeyHeader,
  AccountParams,
  AmountBody,
  BalanceQuery,
  CloseBooksBody,
  CreateTransferBody,
  EmptyBody,
  HistoryQuery,
  IdempotencyKeyHeader,
  MovementBody,
  OpenAccountBody,
  ReadQuery,
  StreamParams,
  StreamQuery,
  StreamsQuery,
  TransferParams,
  TransferQuery,
} from '../../api/schemas';
import { parse } from '../../api/validate';

/**
 * The request schemas (api/schemas.ts, api/api-key-schemas.ts) through the same `parse` the routes call: each bad
 * input becomes a 400 validation problem naming the offending field; good input passes, coerced. No server: the fast
 * tier's share of the bad-input table. test/api/bad-input.test.ts sends the same kinds of request through the whole
 * HTTP stack (with PostgreSQL and Temporal) and also checks the answer's media type, that nothing leaks and that
 * nothing was written; the body parser's cases (malformed JSON, media types, size) and If-Match live only there.
 */

type Where = 'body' | 'query' | 'path' | 'header';

interface Refused {
  name: string;
  schema: z.ZodType;
  where: Where;
  value: unknown;
  /** The field the problem must name. */
  field: string;
}

const A = randomUUID();
const B = randomUUID();
const open = (extra: Record<string, unknown>) => ({ ownerId: 'mallory', currency: 'EUR', ...extra });
const transfer = (extra: Record<string, unknown>) => ({ transferId: 'order-1', fromAccountId: A, toAccountId: B, amount: 100, ...extra });

const amountCases: [string, unknown][] = [
  ['zero', 0],
  ['negative', -5],
  ['fractional', 1.5],
  ['2**53 (beyond the safe integers)', 2 ** 53],
  ['1e21', 1e21],
  ['Infinity (1e400 once parsed)', Number.POSITIVE_INFINITY],
  ['NaN', Number.NaN],
  ['the string "100"', '100'],
  ['the string "NaN"', 'NaN'],
  ['the string "1e3"', '1e3'],
  ['null', null],
  ['true', true],
  ['an array', [100]],
  ['an object', { value: 100 }],
];

const REFUSED: Refused[] = [
  // Bodies that are not objects.
  { name: 'no body on a deposit', schema: AmountBody, where: 'body', value: undefined, field: 'body' },
  { name: 'an array as the body of an opening', schema: OpenAccountBody, where: 'body', value: [], field: 'body' },
  { name: 'a string as the body of a transfer', schema: CreateTransferBody, where: 'body', value: 'send money', field: 'body' },

  // Wrong types and missing fields.
  { name: 'currency as a number', schema: OpenAccountBody, where: 'body', value: open({ currency: 12 }), field: 'currency' },
  { name: 'ownerId as a number', schema: OpenAccountBody, where: 'body', value: open({ ownerId: 5 }), field: 'ownerId' },
  { name: 'ownerId with a space', schema: OpenAccountBody, where: 'body', value: open({ ownerId: 'mal lory' }), field: 'ownerId' },
  {
    name: 'ownerId of 101 characters',
    schema: OpenAccountBody,
    where: 'body',
    value: open({ ownerId: 'm'.repeat(101) }),
    field: 'ownerId',
  },
  { name: 'open without ownerId', schema: OpenAccountBody, where: 'body', value: { currency: 'EUR' }, field: 'ownerId' },
  { name: 'open without currency', schema: OpenAccountBody, where: 'body', value: { ownerId: 'a' }, field: 'currency' },
  { name: 'deposit without amount', schema: AmountBody, where: 'body', value: {}, field: 'amount' },
  {
    name: 'transfer without fromAccountId',
    schema: CreateTransferBody,
    where: 'body',
    value: { toAccountId: B, amount: 100 },
    field: 'fromAccountId',
  },
  {
    name: 'transfer without toAccountId',
    schema: CreateTransferBody,
    where: 'body',
    value: { fromAccountId: A, amount: 100 },
    field: 'toAccountId',
  },
  {
    name: 'transfer without amount',
    schema: CreateTransferBody,
    where: 'body',
    value: { fromAccountId: A, toAccountId: B },
    field: 'amount',
  },

  // Unknown fields (strict objects).
  { name: 'open with an unknown field', schema: OpenAccountBody, where: 'body', value: open({ nickname: 'm' }), field: 'nickname' },
  { name: 'deposit with an unknown field', schema: AmountBody, where: 'body', value: { amount: 100, currency: 'EUR' }, field: 'currency' },
  { name: 'transfer with an unknown field', schema: CreateTransferBody, where: 'body', value: transfer({ note: 'hi' }), field: 'note' },
  { name: 'close with an unknown field', schema: EmptyBody, where: 'body', value: { force: true }, field: 'force' },

  // Amounts.
  ...amountCases.map(([what, amount]): Refused => ({
    name: `deposit amount ${what}`,
    schema: AmountBody,
    where: 'body',
    value: { amount },
    field: 'amount',
  })),
  ...amountCases.map(([what, amount]): Refused => ({
    name: `transfer amount ${what}`,
    schema: CreateTransferBody,
    where: 'body',
    value: transfer({ amount }),
    field: 'amount',
  })),
  ...amountCases.map(([what, amount]): Refused => ({
    name: `initialDeposit ${what}`,
    schema: OpenAccountBody,
    where: 'body',
    value: open({ initialDeposit: amount }),
    field: 'initialDeposit',
  })),

  // Currencies.
  ...['eur', 'EURO', 'E1R', '', 'EU'].map((currency): Refused => ({
    name: `currency '${currency}'`,
    schema: OpenAccountBody,
    where: 'body',
    value: open({ currency }),
    field: 'currency',
  })),

  // Account and transfer ids.
  ...['not-a-uuid', '12345', A.replace(/-/g, ''), `${A}x`].map((id): Refused => ({
    name: `account id '${id}' in the path`,
    schema: AccountParams,
    where: 'path',
    value: { id },
    field: 'id',
  })),
  {
    name: 'fromAccountId not a UUID',
    schema: CreateTransferBody,
    where: 'body',
    value: transfer({ fromAccountId: 'alice' }),
    field: 'fromAccountId',
  },
  {
    name: 'toAccountId not a UUID',
    schema: CreateTransferBody,
    where: 'body',
    value: transfer({ toAccountId: `${B}x` }),
    field: 'toAccountId',
  },
  {
    name: 'fromAccountId as a number',
    schema: CreateTransferBody,
    where: 'body',
    value: transfer({ fromAccountId: 123 }),
    field: 'fromAccountId',
  },
  { name: 'same-account transfer', schema: CreateTransferBody, where: 'body', value: transfer({ toAccountId: A }), field: 'toAccountId' },
  {
    name: 'transferId with a slash',
    schema: CreateTransferBody,
    where: 'body',
    value: transfer({ transferId: '../x' }),
    field: 'transferId',
  },
  {
    name: 'transferId too long',
    schema: CreateTransferBody,
    where: 'body',
    value: transfer({ transferId: 'a'.repeat(65) }),
    field: 'transferId',
  },
  { name: 'transfer id in the path starting with a dash', schema: TransferParams, where: 'path', value: { id: '-x' }, field: 'id' },

  // Headers.
  {
    name: 'Idempotency-Key of a transfer with a space',
    schema: IdempotencyKeyHeader,
    where: 'header',
    value: { 'Idempotency-Key': 'has space' },
    field: 'Idempotency-Key',
  },
  {
    name: 'Idempotency-Key of an account write, empty',
    schema: AccountIdempotencyKeyHeader,
    where: 'header',
    value: { 'Idempotency-Key': '' },
    field: 'Idempotency-Key',
  },
  {
    name: 'Idempotency-Key of an account write, 256 characters',
    schema: AccountIdempotencyKeyHeader,
    where: 'header',
    value: { 'Idempotency-Key': 'k'.repeat(256) },
    field: 'Idempotency-Key',
  },
  {
    name: 'Idempotency-Key of an account write with a comma',
    schema: AccountIdempotencyKeyHeader,
    where: 'header',
    value: { 'Idempotency-Key': 'a,b' },
    field: 'Idempotency-Key',
  },

  // Query parameters (strings, as express hands them over).
  ...['0', '501', 'abc', '2.5'].map((limit): Refused => ({
    name: `history limit=${limit}`,
    schema: HistoryQuery,
    where: 'query',
    value: { limit },
    field: 'limit',
  })),
  { name: 'history cursor=abc', schema: HistoryQuery, where: 'query', value: { cursor: 'abc' }, field: 'cursor' },
  { name: 'history minPosition=abc', schema: HistoryQuery, where: 'query', value: { minPosition: 'abc' }, field: 'minPosition' },
  { name: 'balance asOf=yesterday', schema: BalanceQuery, where: 'query', value: { asOf: 'yesterday' }, field: 'asOf' },
  { name: 'balance asOf=2026-13-45', schema: BalanceQuery, where: 'query', value: { asOf: '2026-13-45T00:00:00Z' }, field: 'asOf' },
  { name: 'balance without asOf', schema: BalanceQuery, where: 'query', value: undefined, field: 'asOf' },
  {
    name: 'balance basis=wall-clock',
    schema: BalanceQuery,
    where: 'query',
    value: { asOf: '2026-03-03T00:00:00Z', basis: 'wall-clock' },
    field: 'basis',
  },
  {
    name: 'a deposit occurredAt=yesterday',
    schema: MovementBody,
    where: 'body',
    value: { amount: 5, occurredAt: 'yesterday' },
    field: 'occurredAt',
  },
  {
    name: 'a deposit occurredAt without a zone',
    schema: MovementBody,
    where: 'body',
    value: { amount: 5, occurredAt: '2026-03-02T16:30:00' },
    field: 'occurredAt',
  },
  {
    name: 'a deposit occurredAt as a number',
    schema: MovementBody,
    where: 'body',
    value: { amount: 5, occurredAt: 1772467800000 },
    field: 'occurredAt',
  },
  { name: 'closing 2026-02-30', schema: CloseBooksBody, where: 'body', value: { date: '2026-02-30' }, field: 'date' },
  { name: 'closing 2026-3-2', schema: CloseBooksBody, where: 'body', value: { date: '2026-3-2' }, field: 'date' },
  {
    name: 'closing 9999-12-31 (no day after it to end it)',
    schema: CloseBooksBody,
    where: 'body',
    value: { date: '9999-12-31' },
    field: 'date',
  },
  { name: 'account minPosition=abc', schema: ReadQuery, where: 'query', value: { minPosition: 'abc' }, field: 'minPosition' },
  { name: 'account minPosition=-1.0', schema: ReadQuery, where: 'query', value: { minPosition: '-1.0' }, field: 'minPosition' },
  { name: 'account with an unknown query parameter', schema: ReadQuery, where: 'query', value: { foo: '1' }, field: 'foo' },
  ...['99', '-1', 'soon'].map((wait): Refused => ({
    name: `transfer wait=${wait}`,
    schema: TransferQuery,
    where: 'query',
    value: { wait },
    field: 'wait',
  })),
  { name: 'transfer minPosition=abc', schema: TransferQuery, where: 'query', value: { minPosition: 'abc' }, field: 'minPosition' },
  { name: 'streams limit=0', schema: StreamsQuery, where: 'query', value: { limit: '0' }, field: 'limit' },
  { name: 'stream fromRevision=-1', schema: StreamQuery, where: 'query', value: { fromRevision: '-1' }, field: 'fromRevision' },
  { name: 'stream name of 201 characters', schema: StreamParams, where: 'path', value: { name: 's'.repeat(201) }, field: 'name' },

  // API keys.
  { name: "key role 'admin'", schema: CreateApiKeyBody, where: 'body', value: { role: 'admin' }, field: 'role' },
  { name: 'customer key without ownerId', schema: CreateApiKeyBody, where: 'body', value: { role: 'customer' }, field: 'ownerId' },
  {
    name: 'operator key with an ownerId',
    schema: CreateApiKeyBody,
    where: 'body',
    value: { role: 'operator', ownerId: 'alice' },
    field: 'ownerId',
  },
  {
    name: 'key with an unknown field',
    schema: CreateApiKeyBody,
    where: 'body',
    value: { role: 'operator', scopes: ['all'] },
    field: 'scopes',
  },
  { name: 'key id not a key id', schema: ApiKeyParams, where: 'path', value: { keyId: 'nope' }, field: 'keyId' },
];

/** Good requests pass, as the routes will see them (defaults filled in, query strings coerced). */
const ACCEPTED: { name: string; schema: z.ZodType; where: Where; value: unknown; parsed: unknown }[] = [
  {
    name: 'an opening with an initial deposit',
    schema: OpenAccountBody,
    where: 'body',
    value: open({ initialDeposit: 10_000 }),
    parsed: open({ initialDeposit: 10_000 }),
  },
  {
    name: 'the largest safe amount',
    schema: AmountBody,
    where: 'body',
    value: { amount: Number.MAX_SAFE_INTEGER },
    parsed: { amount: Number.MAX_SAFE_INTEGER },
  },
  {
    name: 'a transfer without a transferId',
    schema: CreateTransferBody,
    where: 'body',
    value: { fromAccountId: A, toAccountId: B, amount: 1 },
    parsed: { fromAccountId: A, toAccountId: B, amount: 1 },
  },
  { name: 'a close with an empty body', schema: EmptyBody, where: 'body', value: {}, parsed: {} },
  {
    name: 'an account write key that is a UUID',
    schema: AccountIdempotencyKeyHeader,
    where: 'header',
    value: { 'Idempotency-Key': A },
    parsed: { 'Idempotency-Key': A },
  },
  { name: 'history defaults', schema: HistoryQuery, where: 'query', value: undefined, parsed: { limit: 50 } },
  {
    name: 'history limit=500 and a cursor',
    schema: HistoryQuery,
    where: 'query',
    value: { limit: '500', cursor: '42' },
    parsed: { limit: 500, cursor: '42' },
  },
  {
    name: 'balance asOf with an offset',
    schema: BalanceQuery,
    where: 'query',
    value: { asOf: '2026-03-03T00:00:00+01:00' },
    parsed: { asOf: '2026-03-03T00:00:00+01:00', basis: 'business' },
  },
  {
    name: 'balance asOf by recorded time',
    schema: BalanceQuery,
    where: 'query',
    value: { asOf: '2026-03-03T00:00:00Z', basis: 'recorded' },
    parsed: { asOf: '2026-03-03T00:00:00Z', basis: 'recorded' },
  },
  {
    name: 'a late deposit (occurredAt with an offset)',
    schema: MovementBody,
    where: 'body',
    value: { amount: 5, occurredAt: '2026-03-02T16:30:00+01:00' },
    parsed: { amount: 5, occurredAt: '2026-03-02T16:30:00+01:00' },
  },
  { name: 'closing a day', schema: CloseBooksBody, where: 'body', value: { date: '2024-02-29' }, parsed: { date: '2024-02-29' } },
  {
    name: 'transfer wait=30 and a position',
    schema: TransferQuery,
    where: 'query',
    value: { wait: '30', minPosition: '812.40' },
    parsed: { wait: 30, minPosition: '812.40' },
  },
  {
    name: 'a customer key',
    schema: CreateApiKeyBody,
    where: 'body',
    value: { role: 'customer', ownerId: 'alice' },
    parsed: { role: 'customer', ownerId: 'alice' },
  },
];

function refusal(c: Pick<Refused, 'schema' | 'value' | 'where'>): HttpProblem {
  try {
    parse(c.schema, c.value, c.where);
  } catch (error) {
    if (error instanceof HttpProblem) return error;
    throw error;
  }
  throw new Error('accepted');
}

describe('request schemas: bad input is a 400 naming the field', () => {
  test('the tables have no duplicate names', () => {
    expect(new Set(REFUSED.map((c) => c.name)).size).toBe(REFUSED.length);
    expect(new Set(ACCEPTED.map((c) => c.name)).size).toBe(ACCEPTED.length);
  });

  test.each(REFUSED)('$name -> $field', (c) => {
    const problem = refusal(c);
    expect({ status: problem.status, type: problem.type, title: problem.title }).toEqual({
      status: 400,
      type: '/problems/validation-error',
      title: `Invalid request ${c.where}`,
    });
    expect(problem.errors).toEqual(
      expect.arrayContaining([expect.objectContaining({ field: expect.stringContaining(c.field), message: expect.any(String) })]),
    );
    for (const e of problem.errors!) expect(e.message.length).toBeGreaterThan(0);
    // The detail names the field too, and carries no internals.
    expect(problem.detail).toContain(c.field);
    expect(problem.detail).not.toMatch(/\bat\s+\S+\s+\(|node_modules|\.ts:\d+|Zod/);
  });

  test.each(ACCEPTED)('$name is accepted', ({ schema, where, value, parsed }) => {
    expect(parse(schema, value, where)).toEqual(parsed);
  });
});
