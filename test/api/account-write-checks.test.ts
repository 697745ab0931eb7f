import { randomUUID } from 'node:crypto';
import type { Response } from 'supertest';
import { handleAccountCommand } from '../../application/account-commands';
import type { GlobalPosition } from '../../eventstore/event-store';
import { ApiStack } from '../support/api-stack';

/**
 * One account write, with or without an Idempotency-Key (issue 23, items 10 and 12): the key only decides whether
 * the answer is kept and replayed. The same scenarios run keyed and unkeyed and must give the same status, the same
 * problem (type and the fields it names) and the same events. The order of checks (docs/account-writes.md):
 * the key's replay, the key's own events, If-Match, the late-record checks (a too-late record is held as an
 * exception), the domain's decision.
 */

const DAY = 86_400_000;

interface Setup {
  /** A live account, back-dated ten days in business time (so any late record of the scenarios is after its opening). */
  account: (balance: number) => Promise<string>;
  closed: () => Promise<string>;
}

interface Scenario {
  name: string;
  /** Prepares what the request needs; returns the request. */
  prepare: (s: Setup) => Promise<{ path: string; body: Record<string, unknown>; ifMatch?: string }>;
  status: number;
  /** The problem's type and the fields its `errors` name (in order), for a refusal. */
  problem?: { type: string; fields: string[] };
  /** What the request writes: per event, its stream's kind (account or exception) and type. */
  events: string[];
}

const tooLate = () => new Date(Date.now() - 6 * DAY).toISOString();
const inTime = () => new Date(Date.now() - DAY).toISOString();

const SCENARIOS: Scenario[] = [
  {
    name: 'deposit',
    prepare: async (s) => ({ path: `/accounts/${await s.account(100)}/deposits`, body: { amount: 50 } }),
    status: 200,
    events: ['account:MoneyDeposited'],
  },
  {
    name: 'withdrawal',
    prepare: async (s) => ({ path: `/accounts/${await s.account(100)}/withdrawals`, body: { amount: 50 } }),
    status: 200,
    events: ['account:MoneyWithdrawn'],
  },
  {
    name: 'withdrawal beyond the balance',
    prepare: async (s) => ({ path: `/accounts/${await s.account(100)}/withdrawals`, body: { amount: 101 } }),
    status: 422,
    problem: { type: '/problems/insufficient-funds', fields: ['amount'] },
    events: [],
  },
  {
    name: 'deposit beyond the balance limit',
    prepare: async (s) => ({ path: `/accounts/${await s.account(1)}/deposits`, body: { amount: 1_000_000_000_000_000 } }),
    status: 422,
    problem: { type: '/problems/balance-limit-exceeded', fields: ['amount'] },
    events: [],
  },
  {
    name: 'deposit to an unknown account',
    prepare: async () => ({ path: `/accounts/${randomUUID()}/deposits`, body: { amount: 50 } }),
    status: 404,
    problem: { type: '/problems/account-not-found', fields: ['id'] },
    events: [],
  },
  {
    name: 'withdrawal from an unknown account',
    prepare: async () => ({ path: `/accounts/${randomUUID()}/withdrawals`, body: { amount: 50 } }),
    status: 404,
    problem: { type: '/problems/account-not-found', fields: ['id'] },
    events: [],
  },
  {
    name: 'deposit to a closed account',
    prepare: async (s) => ({ path: `/accounts/${await s.closed()}/deposits`, body: { amount: 50 } }),
    status: 422,
    problem: { type: '/problems/account-closed', fields: ['id'] },
    events: [],
  },
  {
    name: 'withdrawal from a closed account',
    prepare: async (s) => ({ path: `/accounts/${await s.closed()}/withdrawals`, body: { amount: 50 } }),
    status: 422,
    problem: { type: '/problems/account-closed', fields: ['id'] },
    events: [],
  },
  {
    name: 'deposit with a stale If-Match',
    prepare: async (s) => ({ path: `/accounts/${await s.account(100)}/deposits`, body: { amount: 50 }, ifMatch: '"0"' }),
    status: 412,
    problem: { type: '/problems/precondition-failed', fields: ['If-Match'] },
    events: [],
  },
  {
    name: 'deposit with a matching If-Match',
    prepare: async (s) => ({ path: `/accounts/${await s.account(100)}/deposits`, body: { amount: 50 }, ifMatch: '"1"' }),
    status: 200,
    events: ['account:MoneyDeposited'],
  },
  {
    name: 'late deposit within the limit, matching If-Match',
    prepare: async (s) => ({
      path: `/accounts/${await s.account(100)}/deposits`,
      body: { amount: 50, occurredAt: inTime() },
      ifMatch: '"1"',
    }),
    status: 200,
    events: ['account:MoneyDeposited'],
  },
  {
    name: 'late deposit within the limit, stale If-Match',
    prepare: async (s) => ({
      path: `/accounts/${await s.account(100)}/deposits`,
      body: { amount: 50, occurredAt: inTime() },
      ifMatch: '"7"',
    }),
    status: 412,
    problem: { type: '/problems/precondition-failed', fields: ['If-Match'] },
    events: [],
  },
  {
    name: 'too-late deposit',
    prepare: async (s) => ({ path: `/accounts/${await s.account(100)}/deposits`, body: { amount: 50, occurredAt: tooLate() } }),
    status: 422,
    problem: { type: '/problems/too-late', fields: ['occurredAt'] },
    events: ['exception:LateRecordHeld'],
  },
  {
    name: 'too-late deposit, matching If-Match',
    prepare: async (s) => ({
      path: `/accounts/${await s.account(100)}/deposits`,
      body: { amount: 50, occurredAt: tooLate() },
      ifMatch: '"1"',
    }),
    status: 422,
    problem: { type: '/problems/too-late', fields: ['occurredAt'] },
    events: ['exception:LateRecordHeld'],
  },
  {
    name: 'too-late deposit, stale If-Match',
    prepare: async (s) => ({
      path: `/accounts/${await s.account(100)}/deposits`,
      body: { amount: 50, occurredAt: tooLate() },
      ifMatch: '"0"',
    }),
    status: 412,
    problem: { type: '/problems/precondition-failed', fields: ['If-Match'] },
    events: [],
  },
  {
    name: 'too-late withdrawal, stale If-Match',
    prepare: async (s) => ({
      path: `/accounts/${await s.account(100)}/withdrawals`,
      body: { amount: 50, occurredAt: tooLate() },
      ifMatch: '"5"',
    }),
    status: 412,
    problem: { type: '/problems/precondition-failed', fields: ['If-Match'] },
    events: [],
  },
  {
    name: 'too-late deposit to an unknown account',
    prepare: async () => ({ path: `/accounts/${randomUUID()}/deposits`, body: { amount: 50, occurredAt: tooLate() } }),
    status: 404,
    problem: { type: '/problems/account-not-found', fields: ['id'] },
    events: [],
  },
  {
    name: 'close',
    prepare: async (s) => ({ path: `/accounts/${await s.account(0)}/close`, body: {} }),
    status: 200,
    events: ['account:AccountClosed'],
  },
  {
    name: 'close with a balance',
    prepare: async (s) => ({ path: `/accounts/${await s.account(10)}/close`, body: {} }),
    status: 422,
    problem: { type: '/problems/account-has-balance', fields: ['id'] },
    events: [],
  },
  {
    name: 'close of a closed account',
    prepare: async (s) => ({ path: `/accounts/${await s.closed()}/close`, body: {} }),
    status: 422,
    problem: { type: '/problems/account-closed', fields: ['id'] },
    events: [],
  },
  {
    name: 'close with a stale If-Match',
    prepare: async (s) => ({ path: `/accounts/${await s.account(0)}/close`, body: {}, ifMatch: '"3"' }),
    status: 412,
    problem: { type: '/problems/precondition-failed', fields: ['If-Match'] },
    events: [],
  },
  {
    name: 'open',
    prepare: async () => ({ path: '/accounts', body: { ownerId: 'checks', currency: 'EUR', initialDeposit: 70 } }),
    status: 201,
    events: ['account:AccountOpened', 'account:MoneyDeposited'],
  },
  {
    name: 'open with an initial deposit beyond the balance limit',
    prepare: async () => ({ path: '/accounts', body: { ownerId: 'checks', currency: 'EUR', initialDeposit: 1_000_000_000_000_001 } }),
    status: 422,
    problem: { type: '/problems/balance-limit-exceeded', fields: ['initialDeposit'] },
    events: [],
  },
];

describe('account writes: one order of checks, with or without an Idempotency-Key', () => {
  let api: ApiStack;

  beforeAll(async () => {
    api = await ApiStack.create('account_write_checks', { startProjections: false });
  });
  afterAll(async () => api?.close());

  const setup: Setup = {
    account: async (balance) => {
      const accountId = randomUUID();
      const opened = await handleAccountCommand(
        api.accounts,
        accountId,
        { type: 'OpenAccount', accountId, ownerId: 'checks', currency: 'EUR', ...(balance > 0 ? { initialDeposit: balance } : {}) },
        { context: { occurredAt: new Date(Date.now() - 10 * DAY).toISOString() } },
      );
      expect(opened.ok).toBe(true);
      return accountId;
    },
    closed: async () => {
      const accountId = await setup.account(0);
      expect((await handleAccountCommand(api.accounts, accountId, { type: 'CloseAccount' })).ok).toBe(true);
      return accountId;
    },
  };

  /** Sends the request (with a fresh key when keyed); returns the answer and the events written meanwhile (stream kind:type). */
  async function run(request: { path: string; body: Record<string, unknown>; ifMatch?: string }, keyed: boolean) {
    const head: GlobalPosition | undefined = await api.store.headPosition();
    let req = api.http().post(request.path);
    if (keyed) req = req.set('Idempotency-Key', `checks-${randomUUID()}`);
    if (request.ifMatch !== undefined) req = req.set('If-Match', request.ifMatch);
    const res = await req.send(request.body);
    const written = await api.store.readAll(head ? { fromPosition: head } : {});
    return { res, events: written.map((e) => `${e.stream.split('-')[0]}:${e.type}`) };
  }

  const summary = (res: Response) => ({
    status: res.status,
    type: (res.body as { type?: string }).type,
    fields: ((res.body as { errors?: { field: string }[] }).errors ?? []).map((e) => e.field),
  });

  test('without a key, a too-late deposit with a failing If-Match answers 412 and writes nothing, exactly as with a key', async () => {
    for (const keyed of [true, false]) {
      const accountId = await setup.account(100);
      const { res, events } = await run(
        { path: `/accounts/${accountId}/deposits`, body: { amount: 50, occurredAt: tooLate() }, ifMatch: '"0"' },
        keyed,
      );
      expect({ keyed, ...summary(res) }).toEqual({ keyed, status: 412, type: '/problems/precondition-failed', fields: ['If-Match'] });
      expect({ keyed, events }).toEqual({ keyed, events: [] }); // no exception held, nothing on the account
    }
  });

  test.each(SCENARIOS)('$name: the same status, problem and events keyed and unkeyed', async (scenario) => {
    const outcomes = [];
    for (const keyed of [false, true]) {
      const request = await scenario.prepare(setup);
      const { res, events } = await run(request, keyed);
      outcomes.push({ keyed, answer: summary(res), events });
    }
    const expected = {
      answer: { status: scenario.status, type: scenario.problem?.type, fields: scenario.problem?.fields ?? [] },
      events: scenario.events,
    };
    expect(outcomes).toEqual([
      { keyed: false, ...expected },
      { keyed: true, ...expected },
    ]);
  });
});
