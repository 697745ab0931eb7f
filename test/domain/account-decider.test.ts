import fc from 'fast-check';
import { decideAccount, type AccountCommand } from '../../domain/account-decider';
import type { AccountEvent } from '../../domain/account-events';
import {
  allLegs,
  evolveAccount,
  foldAccount,
  initialAccountState,
  legBucket,
  legsInBuckets,
  legsOf,
  type AccountState,
  type LegBucket,
} from '../../domain/account-state';
import { MAX_BALANCE } from '../../domain/money';
import type { Decision, RejectionType } from '../../domain/rejection';

const ID = 'acc-1';
const OTHER = 'acc-2';
/** The most an account may hold (deposits and credits stop there; refunds may pass it). */
const MAX = MAX_BALANCE;

// ---------------------------------------------------------------------------------------------
// Helpers: build a state by deciding commands (so every fixture is reachable), fold, inspect.
// ---------------------------------------------------------------------------------------------

const open = (initialDeposit?: number, currency = 'EUR'): AccountCommand => ({
  type: 'OpenAccount',
  accountId: ID,
  ownerId: 'owner-1',
  currency,
  ...(initialDeposit === undefined ? {} : { initialDeposit }),
});
const deposit = (amount: number): AccountCommand => ({ type: 'Deposit', amount });
const withdraw = (amount: number): AccountCommand => ({ type: 'Withdraw', amount });
const close = (): AccountCommand => ({ type: 'CloseAccount' });
const debit = (transferId: string, amount: number, currency = 'EUR', toAccountId = OTHER): AccountCommand => ({
  type: 'DebitForTransfer',
  transferId,
  amount,
  currency,
  toAccountId,
});
const credit = (transferId: string, amount: number, currency = 'EUR', fromAccountId = OTHER): AccountCommand => ({
  type: 'CreditForTransfer',
  transferId,
  amount,
  currency,
  fromAccountId,
});
const refund = (transferId: string): AccountCommand => ({ type: 'RefundForTransfer', transferId });

function accepted(decision: Decision<AccountEvent>): AccountEvent[] {
  if (!decision.ok) throw new Error(`expected acceptance, got ${decision.rejection.type}: ${decision.rejection.message}`);
  return decision.events;
}

/** Decides and folds each command in turn; every one must be accepted. */
function given(...commands: AccountCommand[]): { state: AccountState; events: AccountEvent[] } {
  let state = initialAccountState(ID);
  const events: AccountEvent[] = [];
  for (const command of commands) {
    const decided = accepted(decideAccount(state, command));
    events.push(...decided);
    state = foldAccount(decided, state);
  }
  return { state, events };
}

const stateOf = (...commands: AccountCommand[]): AccountState => given(...commands).state;

function balanceAfterOf(event: AccountEvent): number | undefined {
  return 'balanceAfter' in event.data ? event.data.balanceAfter : undefined;
}

/** Folds the events one by one, checking that each carried balanceAfter equals the folded balance. */
function expectBalanceAfterMatchesFold(from: AccountState, events: readonly AccountEvent[]): AccountState {
  let state = from;
  for (const event of events) {
    state = evolveAccount(state, event);
    const after = balanceAfterOf(event);
    if (after !== undefined) expect(after).toBe(state.balance);
  }
  return state;
}

/**
 * The money an event moves, exactly: a BigInt, so sums of them never round (a Number sum past 2^53
 * rounds, and would round the same way as the code under test). Throws on a non-integer amount.
 */
function exactSignedAmount(event: AccountEvent): bigint {
  switch (event.type) {
    case 'MoneyDeposited':
    case 'TransferCredited':
    case 'TransferRefunded':
      return BigInt(event.data.amount);
    case 'MoneyWithdrawn':
    case 'TransferDebited':
      return -BigInt(event.data.amount);
    case 'HoldPlaced':
    case 'HoldReleased':
    case 'AccountOpened':
    case 'AccountClosed':
    case 'TransferDebitVoided':
    case 'TransferCreditVoided':
      return 0n;
  }
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

const missing = () => initialAccountState(ID);
const openWith = (balance: number) => (balance > 0 ? stateOf(open(balance)) : stateOf(open()));
const closed = () => stateOf(open(), close());

const BAD_AMOUNTS: [string, unknown][] = [
  ['zero', 0],
  ['negative', -1],
  ['fraction', 1.5],
  ['NaN', NaN],
  ['Infinity', Infinity],
  ['-Infinity', -Infinity],
  ['2**53 (not a safe integer)', 2 ** 53],
  ["the string '100'", '100'],
  ['null', null],
  ['undefined on a required amount', undefined],
];

/** Commands carrying an amount, applicable to an open EUR account holding 1000. */
const AMOUNT_COMMANDS: [string, (amount: unknown) => AccountCommand][] = [
  ['Deposit', (a) => deposit(a as number)],
  ['Withdraw', (a) => withdraw(a as number)],
  ['DebitForTransfer', (a) => debit('t-amount', a as number)],
  ['CreditForTransfer', (a) => credit('t-amount', a as number)],
];

describe('decideAccount: amounts', () => {
  describe.each(AMOUNT_COMMANDS)('%s', (_name, make) => {
    test.each(BAD_AMOUNTS)('rejects %s with invalid_amount and writes nothing', (_label, amount) => {
      const decision = decideAccount(openWith(1_000), make(amount));
      expect(decision).toEqual({ ok: false, rejection: { type: 'invalid_amount', message: expect.any(String) } });
    });

    test('accepts 1 (the smallest positive amount)', () => {
      expect(accepted(decideAccount(openWith(1_000), make(1)))).toHaveLength(1);
    });
  });

  // undefined means "no initial deposit" for OpenAccount, so it is not a bad amount there.
  test.each(BAD_AMOUNTS.filter(([, amount]) => amount !== undefined))('OpenAccount rejects an initial deposit of %s', (_label, amount) => {
    const decision = decideAccount(missing(), {
      type: 'OpenAccount',
      accountId: ID,
      ownerId: 'owner-1',
      currency: 'EUR',
      initialDeposit: amount as number,
    });
    expect(decision).toMatchObject({ ok: false, rejection: { type: 'invalid_amount' } });
  });

  test('an initial deposit of exactly MAX_BALANCE is accepted; one more is balance_limit_exceeded', () => {
    const events = accepted(decideAccount(missing(), open(MAX)));
    expect(foldAccount(events).balance).toBe(MAX);
    expect(decideAccount(missing(), open(MAX + 1))).toMatchObject({ ok: false, rejection: { type: 'balance_limit_exceeded' } });
    expect(decideAccount(missing(), open(Number.MAX_SAFE_INTEGER))).toMatchObject({
      ok: false,
      rejection: { type: 'balance_limit_exceeded' },
    });
  });
});

describe('decideAccount: OpenAccount', () => {
  test('opens an account without a deposit', () => {
    expect(accepted(decideAccount(missing(), open()))).toEqual([
      { type: 'AccountOpened', data: { accountId: ID, ownerId: 'owner-1', currency: 'EUR' } },
    ]);
  });

  test('opens an account with an initial deposit', () => {
    const events = accepted(decideAccount(missing(), open(250)));
    expect(events).toEqual([
      { type: 'AccountOpened', data: { accountId: ID, ownerId: 'owner-1', currency: 'EUR' } },
      { type: 'MoneyDeposited', data: { accountId: ID, amount: 250, balanceAfter: 250 } },
    ]);
    expect(foldAccount(events, missing())).toEqual({
      status: 'open',
      accountId: ID,
      ownerId: 'owner-1',
      currency: 'EUR',
      balance: 250,
      held: 0,
      transfers: {},
    });
  });

  test.each(['EUR', 'USD', 'JPY', 'XAU'])('accepts currency %s', (currency) => {
    expect(accepted(decideAccount(missing(), open(undefined, currency)))[0]).toMatchObject({ data: { currency } });
  });

  test.each(['eur', 'Eur', 'EU', 'EURO', '', 'E1R', ' EUR', 'EUR ', 'ÉUR', 'EUR\n'])(
    'rejects currency %j with invalid_currency',
    (currency) => {
      expect(decideAccount(missing(), open(100, currency))).toMatchObject({ ok: false, rejection: { type: 'invalid_currency' } });
    },
  );

  test.each([
    ['open', () => openWith(0)],
    ['open with money', () => openWith(500)],
    ['closed', closed],
  ])('opening an account that is %s -> account_already_exists', (_label, state) => {
    expect(decideAccount(state(), open(100))).toMatchObject({ ok: false, rejection: { type: 'account_already_exists' } });
  });
});

describe('decideAccount: missing and closed accounts', () => {
  const COMMANDS: [string, AccountCommand][] = [
    ['Deposit', deposit(100)],
    ['Withdraw', withdraw(100)],
    ['CloseAccount', close()],
    ['DebitForTransfer', debit('t-1', 100)],
    ['CreditForTransfer', credit('t-1', 100)],
  ];

  test.each(COMMANDS)('%s on a missing account -> account_not_found', (_name, command) => {
    expect(decideAccount(missing(), command)).toMatchObject({ ok: false, rejection: { type: 'account_not_found' } });
  });

  test.each(COMMANDS)('%s on a closed account -> account_closed', (_name, command) => {
    expect(decideAccount(closed(), command)).toMatchObject({ ok: false, rejection: { type: 'account_closed' } });
  });

  test('an existence check comes before the amount check', () => {
    expect(decideAccount(missing(), deposit(-5))).toMatchObject({ ok: false, rejection: { type: 'account_not_found' } });
    expect(decideAccount(closed(), withdraw(0))).toMatchObject({ ok: false, rejection: { type: 'account_closed' } });
  });
});

describe('decideAccount: deposits and withdrawals', () => {
  test('a deposit adds to the balance', () => {
    const events = accepted(decideAccount(openWith(100), deposit(50)));
    expect(events).toEqual([{ type: 'MoneyDeposited', data: { accountId: ID, amount: 50, balanceAfter: 150 } }]);
  });

  test.each([
    [100, 1, true],
    [100, 99, true],
    [100, 100, true], // exactly the balance is allowed
    [100, 101, false],
    [0, 1, false],
    [MAX, MAX, true],
  ])('balance %d, withdraw %d -> allowed: %s', (balance, amount, allowed) => {
    const decision = decideAccount(openWith(balance), withdraw(amount));
    if (allowed) {
      expect(accepted(decision)).toEqual([{ type: 'MoneyWithdrawn', data: { accountId: ID, amount, balanceAfter: balance - amount } }]);
    } else {
      expect(decision).toMatchObject({ ok: false, rejection: { type: 'insufficient_funds' } });
    }
  });
});

describe('decideAccount: CloseAccount', () => {
  test('closes an empty account', () => {
    const state = stateOf(open(100), withdraw(100));
    const events = accepted(decideAccount(state, close()));
    expect(events).toEqual([{ type: 'AccountClosed', data: { accountId: ID } }]);
    expect(evolveAccount(state, events[0]!).status).toBe('closed');
  });

  test.each([1, 100, MAX])('refuses to close an account holding %d -> account_has_balance', (balance) => {
    expect(decideAccount(openWith(balance), close())).toMatchObject({ ok: false, rejection: { type: 'account_has_balance' } });
  });

  test('closing twice -> account_closed', () => {
    expect(decideAccount(closed(), close())).toMatchObject({ ok: false, rejection: { type: 'account_closed' } });
  });
});

describe('decideAccount: transfer legs', () => {
  test('a debit takes the money and remembers the leg', () => {
    const state = openWith(1_000);
    const events = accepted(decideAccount(state, debit('t-1', 300)));
    expect(events).toEqual([
      { type: 'TransferDebited', data: { accountId: ID, transferId: 't-1', amount: 300, toAccountId: OTHER, balanceAfter: 700 } },
    ]);
    const after = foldAccount(events, state);
    expect(after.balance).toBe(700);
    expect(allLegs(after)).toEqual({ 't-1': { debited: 300 } });
  });

  test('a credit adds the money and remembers the leg', () => {
    const state = openWith(10);
    const events = accepted(decideAccount(state, credit('t-1', 300)));
    expect(events).toEqual([
      { type: 'TransferCredited', data: { accountId: ID, transferId: 't-1', amount: 300, fromAccountId: OTHER, balanceAfter: 310 } },
    ]);
    expect(allLegs(foldAccount(events, state))).toEqual({ 't-1': { credited: 300 } });
  });

  test.each([
    ['exactly the balance', 1_000, true],
    ['one more than the balance', 1_001, false],
  ])('a debit of %s', (_label, amount, allowed) => {
    const decision = decideAccount(openWith(1_000), debit('t-1', amount));
    if (allowed) expect(accepted(decision)[0]).toMatchObject({ data: { balanceAfter: 0 } });
    else expect(decision).toMatchObject({ ok: false, rejection: { type: 'insufficient_funds' } });
  });

  test.each([
    ['DebitForTransfer', debit('t-1', 100, 'USD')],
    ['CreditForTransfer', credit('t-1', 100, 'USD')],
  ])('%s in another currency -> currency_mismatch', (_name, command) => {
    expect(decideAccount(openWith(1_000), command)).toMatchObject({ ok: false, rejection: { type: 'currency_mismatch' } });
  });

  test.each([
    ['DebitForTransfer to itself', debit('t-1', 100, 'EUR', ID)],
    ['CreditForTransfer from itself', credit('t-1', 100, 'EUR', ID)],
  ])('%s -> same_account', (_name, command) => {
    expect(decideAccount(openWith(1_000), command)).toMatchObject({ ok: false, rejection: { type: 'same_account' } });
  });

  describe('idempotency: a leg already applied for the transfer id decides to no events', () => {
    test.each([
      ['the same debit again', [open(1_000), debit('t-1', 300)], debit('t-1', 300)],
      ['a debit with another amount', [open(1_000), debit('t-1', 300)], debit('t-1', 999_999)],
      ['the same credit again', [open(), credit('t-1', 300)], credit('t-1', 300)],
      ['a credit in another currency', [open(), credit('t-1', 300)], credit('t-1', 300, 'USD')],
      ['the same debit on the account since closed', [open(300), debit('t-1', 300), close()], debit('t-1', 300)],
      ['the same credit on the account since emptied and closed', [open(), credit('t-1', 300), withdraw(300), close()], credit('t-1', 300)],
    ])('%s', (_label, history, command) => {
      const state = stateOf(...history);
      expect(decideAccount(state, command)).toEqual({ ok: true, events: [] });
    });

    test('another transfer id is a new leg', () => {
      const state = stateOf(open(1_000), debit('t-1', 300));
      expect(accepted(decideAccount(state, debit('t-2', 300)))).toHaveLength(1);
    });

    test('a credit for a transfer this account was debited by is a separate leg', () => {
      const state = stateOf(open(1_000), debit('t-1', 300));
      expect(accepted(decideAccount(state, credit('t-1', 300)))).toHaveLength(1);
    });
  });

  describe('balance limit', () => {
    test.each([
      ['Deposit', deposit(1)],
      ['CreditForTransfer', credit('t-big', 1)],
    ])('%s of 1 onto MAX_BALANCE -> balance_limit_exceeded', (_name, command) => {
      expect(decideAccount(openWith(MAX), command)).toMatchObject({ ok: false, rejection: { type: 'balance_limit_exceeded' } });
    });

    test.each([
      ['Deposit', deposit(1)],
      ['CreditForTransfer', credit('t-big', 1)],
    ])('%s that lands exactly on MAX_BALANCE is allowed', (_name, command) => {
      const state = openWith(MAX - 1);
      const events = accepted(decideAccount(state, command));
      expect(foldAccount(events, state).balance).toBe(MAX);
      expect(balanceAfterOf(events[0]!)).toBe(MAX);
    });

    test('a large deposit onto a large balance is refused even though each amount is valid', () => {
      const state = openWith(MAX / 2 + 1);
      expect(decideAccount(state, deposit(MAX / 2))).toMatchObject({ ok: false, rejection: { type: 'balance_limit_exceeded' } });
    });
  });
});

describe('decideAccount: RefundForTransfer', () => {
  test('without a debit for the transfer it moves no money: it voids the transfer (nothing at all on a missing account)', () => {
    expect(decideAccount(missing(), refund('t-1'))).toEqual({ ok: true, events: [] });
    const voided = [{ type: 'TransferDebitVoided', data: { accountId: ID, transferId: 't-1' } }];
    expect(decideAccount(openWith(100), refund('t-1'))).toEqual({ ok: true, events: voided });
    expect(decideAccount(stateOf(open(), credit('t-1', 50)), refund('t-1'))).toEqual({ ok: true, events: voided });
  });

  test('refunds exactly the debited amount, once', () => {
    const { state } = given(open(1_000), debit('t-1', 300), deposit(5));
    const events = accepted(decideAccount(state, refund('t-1')));
    expect(events).toEqual([{ type: 'TransferRefunded', data: { accountId: ID, transferId: 't-1', amount: 300, balanceAfter: 1_005 } }]);
    const after = foldAccount(events, state);
    expect(after.balance).toBe(1_005);
    expect(legsOf(after, 't-1')).toEqual({ debited: 300, refunded: 300 });
    expect(decideAccount(after, refund('t-1'))).toEqual({ ok: true, events: [] });
  });

  test('refunds only the transfer named', () => {
    const { state } = given(open(1_000), debit('t-1', 300), debit('t-2', 200));
    const after = foldAccount(accepted(decideAccount(state, refund('t-2'))), state);
    expect(after.balance).toBe(700);
    expect(allLegs(after)).toEqual({ 't-1': { debited: 300 }, 't-2': { debited: 200, refunded: 200 } });
  });

  // Was a known issue (test.failing): a refund skipped the limit, so a credit received between the
  // debit and its refund could push the balance past MAX_SAFE_INTEGER. Under MAX_BALANCE (deposits and
  // credits stop there) the refund of a debit in flight always fits, and it always lands.
  test('a refund lands past MAX_BALANCE and never takes the balance past MAX_SAFE_INTEGER', () => {
    const { state } = given(open(100), debit('t-1', 100), credit('t-2', MAX));
    expect(state.balance).toBe(MAX);
    const events = accepted(decideAccount(state, refund('t-1')));
    const after = foldAccount(events, state);
    expect(after.balance).toBe(MAX + 100);
    expect(Number.isSafeInteger(after.balance)).toBe(true);
  });

  test('property: with deposits, credits, debits and refunds in any order, every refund lands and the balance stays a safe integer', () => {
    type Op = { kind: 'deposit' | 'credit' | 'debit' | 'refund'; amount: number; transfer: number };
    const op = fc.record({
      kind: fc.constantFrom<Op['kind']>('deposit', 'credit', 'debit', 'refund'),
      amount: fc.oneof(fc.integer({ min: 1, max: MAX }), fc.constant(MAX)),
      transfer: fc.integer({ min: 0, max: 7 }),
    });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        let state = stateOf(open());
        let exact = 0n; // the expected balance, in exact integer arithmetic
        let n = 0;
        for (const o of ops) {
          const id = `t-${o.kind === 'credit' ? `in-${n++}` : o.transfer}`;
          const command =
            o.kind === 'deposit'
              ? deposit(o.amount)
              : o.kind === 'credit'
                ? credit(id, o.amount)
                : o.kind === 'debit'
                  ? debit(id, o.amount)
                  : refund(id);
          const decision = decideAccount(state, command);
          if (o.kind === 'refund') expect(decision.ok).toBe(true); // a refund always lands
          if (decision.ok) {
            state = foldAccount(decision.events, state);
            for (const event of decision.events) exact += exactSignedAmount(event);
          }
          expect(Number.isSafeInteger(state.balance)).toBe(true);
          expect(BigInt(state.balance)).toBe(exact);
          expect(exact >= 0n).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });

  test('works on an account closed since the debit', () => {
    const { state } = given(open(300), debit('t-1', 300), close());
    expect(state.status).toBe('closed');
    const events = accepted(decideAccount(state, refund('t-1')));
    expect(events).toEqual([{ type: 'TransferRefunded', data: { accountId: ID, transferId: 't-1', amount: 300, balanceAfter: 300 } }]);
    const after = foldAccount(events, state);
    expect(after).toMatchObject({ status: 'closed', balance: 300 });
  });
});

describe('evolveAccount', () => {
  test('does not mutate its input', () => {
    const state = stateOf(open(1_000), debit('t-1', 100));
    const snapshot = structuredClone(state);
    evolveAccount(state, { type: 'TransferRefunded', data: { accountId: ID, transferId: 't-1', amount: 100, balanceAfter: 1_000 } });
    evolveAccount(state, {
      type: 'TransferDebited',
      data: { accountId: ID, transferId: 't-2', amount: 1, toAccountId: OTHER, balanceAfter: 899 },
    });
    evolveAccount(state, { type: 'AccountClosed', data: { accountId: ID } });
    expect(state).toEqual(snapshot);
  });

  test('balanceAfter in every event of a long history equals the folded balance', () => {
    const { events } = given(
      open(1_000),
      deposit(250),
      withdraw(1_250),
      credit('t-1', 700),
      debit('t-2', 699),
      refund('t-2'),
      debit('t-3', 700),
      credit('t-4', 5),
      refund('t-3'),
      withdraw(705),
      close(),
      refund('t-5'),
    );
    const final = expectBalanceAfterMatchesFold(initialAccountState(ID), events);
    expect(final.balance).toBe(0);
    expect(final.status).toBe('closed');
    expect(events.map((e) => e.type)).toEqual([
      'AccountOpened',
      'MoneyDeposited',
      'MoneyDeposited',
      'MoneyWithdrawn',
      'TransferCredited',
      'TransferDebited',
      'TransferRefunded',
      'TransferDebited',
      'TransferCredited',
      'TransferRefunded',
      'MoneyWithdrawn',
      'AccountClosed',
      'TransferDebitVoided', // refund of t-5, never debited: voided so a late debit cannot land
    ]);
  });
});

// ---------------------------------------------------------------------------------------------
// Property: random command sequences
// ---------------------------------------------------------------------------------------------

describe('decideAccount + evolveAccount: properties over random command sequences', () => {
  const transferIds = ['t-1', 't-2', 't-3', 't-4'];
  // Mostly small amounts (so withdrawals and debits often succeed), some invalid, some huge.
  const amount = fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: 1, max: 2_000 }) },
    { weight: 1, arbitrary: fc.constantFrom<unknown>(0, -1, 1.5, NaN, Infinity, 2 ** 53, '100') },
    { weight: 1, arbitrary: fc.integer({ min: 1, max: MAX }) },
  ) as fc.Arbitrary<number>;
  const currency = fc.constantFrom('EUR', 'EUR', 'EUR', 'USD', 'eur');
  const counterpart = fc.constantFrom(OTHER, OTHER, OTHER, ID);

  const command: fc.Arbitrary<AccountCommand> = fc.oneof(
    fc.record({
      type: fc.constant('OpenAccount' as const),
      accountId: fc.constant(ID),
      ownerId: fc.constant('owner-1'),
      currency,
      initialDeposit: fc.option(amount, { nil: undefined }),
    }),
    fc.record({ type: fc.constant('Deposit' as const), amount }),
    fc.record({ type: fc.constant('Withdraw' as const), amount }),
    fc.constant<AccountCommand>({ type: 'CloseAccount' }),
    fc.record({
      type: fc.constant('DebitForTransfer' as const),
      transferId: fc.constantFrom(...transferIds),
      amount,
      currency,
      toAccountId: counterpart,
    }),
    fc.record({
      type: fc.constant('CreditForTransfer' as const),
      transferId: fc.constantFrom(...transferIds),
      amount,
      currency,
      fromAccountId: counterpart,
    }),
    fc.record({ type: fc.constant('RefundForTransfer' as const), transferId: fc.constantFrom(...transferIds) }),
  );

  const REJECTIONS: readonly RejectionType[] = [
    'invalid_amount',
    'invalid_currency',
    'account_not_found',
    'account_already_exists',
    'account_closed',
    'account_has_balance',
    'insufficient_funds',
    'balance_limit_exceeded',
    'currency_mismatch',
    'same_account',
    'transfer_finished', // a debit after the transfer was voided on this account
  ];

  test('the balance is never negative, equals the sum of signed amounts, and every balanceAfter equals the running fold', () => {
    fc.assert(
      fc.property(fc.array(command, { maxLength: 60 }), (commands) => {
        let state = initialAccountState(ID);
        const all: AccountEvent[] = [];
        // The expectation in exact integer arithmetic (BigInt), independent of the fold's Number additions.
        let exact = 0n;
        for (const cmd of commands) {
          const decision = decideAccount(state, cmd);
          if (!decision.ok) {
            expect(REJECTIONS).toContain(decision.rejection.type);
            continue;
          }
          for (const event of decision.events) {
            state = evolveAccount(state, event);
            all.push(event);
            exact += exactSignedAmount(event);
            expect(BigInt(state.balance)).toBe(exact);
            const after = balanceAfterOf(event);
            if (after !== undefined) expect(BigInt(after)).toBe(exact);
            expect(exact >= 0n).toBe(true);
          }
        }
        expect(BigInt(state.balance)).toBe(all.reduce((sum, e) => sum + exactSignedAmount(e), 0n));
        expect(foldAccount(all, initialAccountState(ID))).toEqual(state);
      }),
      { numRuns: 500 },
    );
  });

  test('every transfer leg is applied at most once per transfer id, and a refund never exceeds its debit', () => {
    fc.assert(
      fc.property(fc.array(command, { maxLength: 60 }), (commands) => {
        let state = initialAccountState(ID);
        const all: AccountEvent[] = [];
        for (const cmd of commands) {
          const decision = decideAccount(state, cmd);
          if (!decision.ok) continue;
          all.push(...decision.events);
          state = foldAccount(decision.events, state);
        }
        for (const transferId of transferIds) {
          const count = (type: AccountEvent['type']) =>
            all.filter((e) => e.type === type && 'transferId' in e.data && e.data.transferId === transferId).length;
          expect(count('TransferDebited')).toBeLessThanOrEqual(1);
          expect(count('TransferCredited')).toBeLessThanOrEqual(1);
          expect(count('TransferRefunded')).toBeLessThanOrEqual(count('TransferDebited'));
          const legs = legsOf(state, transferId);
          if (legs?.refunded !== undefined) expect(legs.refunded).toBe(legs.debited);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('a transfer settled without a debit is voided on the source', () => {
  const T = 'tr-late';
  const debit = { type: 'DebitForTransfer', transferId: T, amount: 100, currency: 'EUR', toAccountId: 'other' } as const;

  test('refund with no debit voids the transfer, and a late debit is then refused', () => {
    const state = openWith(1_000);
    const refund = decideAccount(state, { type: 'RefundForTransfer', transferId: T });
    expect(refund).toEqual({ ok: true, events: [{ type: 'TransferDebitVoided', data: { accountId: state.accountId, transferId: T } }] });
    const voided = foldAccount(refund.ok ? refund.events : [], state);
    expect(voided.balance).toBe(1_000);
    expect(decideAccount(voided, debit)).toMatchObject({ ok: false, rejection: { type: 'transfer_finished' } });
    expect(decideAccount(voided, { type: 'RefundForTransfer', transferId: T })).toEqual({ ok: true, events: [] });
  });

  test('a debit after its refund is refused, never taken as already debited (a credit could follow it: money created)', () => {
    const state = openWith(1_000);
    const debited = decideAccount(state, debit);
    const afterDebit = foldAccount(debited.ok ? debited.events : [], state);
    const refunded = decideAccount(afterDebit, { type: 'RefundForTransfer', transferId: T });
    const afterRefund = foldAccount(refunded.ok ? refunded.events : [], afterDebit);
    expect(afterRefund.balance).toBe(1_000);
    expect(decideAccount(afterRefund, debit)).toMatchObject({ ok: false, rejection: { type: 'transfer_finished' } });
  });

  test('a missing account gets nothing (no stream is created for it)', () => {
    expect(decideAccount(missing(), { type: 'RefundForTransfer', transferId: T })).toEqual({ ok: true, events: [] });
  });

  test('a debit that landed is refunded, not voided', () => {
    const debited = foldAccount((decideAccount(openWith(1_000), debit) as { events: AccountEvent[] }).events, openWith(1_000));
    const refund = decideAccount(debited, { type: 'RefundForTransfer', transferId: T });
    expect(refund).toMatchObject({ ok: true, events: [{ type: 'TransferRefunded', data: { amount: 100, balanceAfter: 1_000 } }] });
  });
});

describe('a transfer settled without a credit is voided on the target', () => {
  const T = 'tr-cancelled';
  const creditCmd = { type: 'CreditForTransfer', transferId: T, amount: 100, currency: 'EUR', fromAccountId: 'other' } as const;
  const voidCmd = { type: 'VoidCreditForTransfer', transferId: T } as const;

  test('voiding before the credit landed writes TransferCreditVoided; a late credit is then refused and moves nothing', () => {
    const state = openWith(500);
    const voided = accepted(decideAccount(state, voidCmd));
    expect(voided).toEqual([{ type: 'TransferCreditVoided', data: { accountId: state.accountId, transferId: T } }]);
    const after = foldAccount(voided, state);
    expect(after.balance).toBe(500);
    expect(legsOf(after, T)).toEqual({ creditVoided: true });
    expect(decideAccount(after, creditCmd)).toMatchObject({ ok: false, rejection: { type: 'transfer_finished' } });
    expect(decideAccount(after, voidCmd)).toEqual({ ok: true, events: [] }); // idempotent
  });

  test('a credit that landed is not voided: nothing is written and the state shows the credit (the transfer must complete)', () => {
    const credited = foldAccount(accepted(decideAccount(openWith(500), creditCmd)), openWith(500));
    expect(decideAccount(credited, voidCmd)).toEqual({ ok: true, events: [] });
    expect(legsOf(credited, T)).toEqual({ credited: 100 });
  });

  test('a missing or closed account gets nothing (no credit can ever land there)', () => {
    expect(decideAccount(missing(), voidCmd)).toEqual({ ok: true, events: [] });
    const closed = stateOf(open(), close());
    expect(decideAccount(closed, voidCmd)).toEqual({ ok: true, events: [] });
    expect(decideAccount(closed, creditCmd)).toMatchObject({ ok: false, rejection: { type: 'account_closed' } });
  });
});

describe('account state: the legs of many transfers (a hot account)', () => {
  const debited = (transferId: string): AccountEvent => ({
    type: 'TransferDebited',
    data: { accountId: ID, transferId, amount: 1, toAccountId: 'other', balanceAfter: 0 },
  });

  test("recording one transfer's leg copies its bucket only: every other bucket is the same object as before", () => {
    let state = foldAccount([{ type: 'AccountOpened', data: { accountId: ID, ownerId: 'o', currency: 'EUR' } }], missing());
    for (let i = 0; i < 3_000; i++) state = evolveAccount(state, debited(`transfer-${i}`));
    const before = state.transfers;
    const after = evolveAccount(state, debited('one-more')).transfers;
    const changed = (Object.keys(after) as LegBucket[]).filter((b) => after[b] !== before[b]);
    expect(changed).toEqual([legBucket('one-more')]);
    // The legs are spread: no bucket holds more than a small share of 3,000 transfers.
    expect(Object.keys(before).length).toBeGreaterThan(900);
    expect(Math.max(...Object.values(before).map((bucket) => Object.keys(bucket ?? {}).length))).toBeLessThan(20);
    // Nothing was mutated, and every transfer is found.
    expect(before[legBucket('one-more')]?.['one-more']).toBeUndefined();
    expect(legsOf({ ...state, transfers: after }, 'one-more')).toEqual({ debited: 1 });
    for (let i = 0; i < 3_000; i += 97) expect(legsOf(state, `transfer-${i}`)).toEqual({ debited: 1 });
  });

  test('the bucket of an id is fixed (states folded by other processes and snapshots agree): FNV-1a of the id, mod 1024', () => {
    expect(['', 'a', 't-1', '0f8fad5b-d9cb-469f-a165-70867728950e'].map(legBucket)).toEqual(['b453', 'b300', 'b97', 'b705']);
  });

  test("legsOf finds a transfer's own legs only: ids like an object's built-in names find nothing until recorded", () => {
    const { state } = given(open(1_000), debit('t-1', 300));
    for (const id of ['constructor', 'toString', 'hasOwnProperty', 'valueOf']) expect(legsOf(state, id)).toBeUndefined();
    const after = foldAccount([debited('constructor')], state);
    expect(legsOf(after, 'constructor')).toEqual({ debited: 1 });
    expect(allLegs(after)).toEqual({ 't-1': { debited: 300 }, constructor: { debited: 1 } });
  });

  test('legsInBuckets puts a flat map of legs (a snapshot of schema 1) where the fold puts them', () => {
    const { state } = given(open(1_000), debit('t-1', 300), credit('t-2', 50), refund('t-1'));
    expect(legsInBuckets(allLegs(state))).toEqual(state.transfers);
  });

  test('a state through JSON (a snapshot) reads the same legs and folds on equally', () => {
    const { state } = given(open(1_000), debit('t-1', 300), credit('t-2', 50));
    const revived = JSON.parse(JSON.stringify(state)) as AccountState;
    expect(legsOf(revived, 't-1')).toEqual({ debited: 300 });
    expect(legsOf(revived, 't-2')).toEqual({ credited: 50 });
    expect(foldAccount([debited('t-3')], revived)).toEqual(foldAccount([debited('t-3')], state));
  });
});
