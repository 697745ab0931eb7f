import fc from 'fast-check';
import { decideAccount, type AccountCommand } from '../../domain/account-decider';
import type { AccountEvent } from '../../domain/account-events';
import { availableOf, evolveAccount, initialAccountState, legsOf, type AccountState } from '../../domain/account-state';
import type { Decision } from '../../domain/rejection';

/** Holds on an account (issue 25): reserve, then capture in part or release; every debit checks `available`. */

const ID = 'acc-1';
const OTHER = 'acc-2';
const open = (deposit: number): AccountCommand[] => [
  { type: 'OpenAccount', accountId: ID, ownerId: 'o', currency: 'EUR', ...(deposit > 0 ? { initialDeposit: deposit } : {}) },
];
const place = (holdId: string, amount: number, toAccountId = OTHER): AccountCommand => ({
  type: 'PlaceHold',
  holdId,
  amount,
  currency: 'EUR',
  toAccountId,
});
const capture = (holdId: string, amount: number): AccountCommand => ({
  type: 'CaptureHold',
  holdId,
  amount,
  currency: 'EUR',
  toAccountId: OTHER,
});
const release = (holdId: string, reason: 'voided' | 'expired' = 'voided'): AccountCommand => ({ type: 'ReleaseHold', holdId, reason });

function run(state: AccountState, command: AccountCommand): { state: AccountState; decision: Decision<AccountEvent> } {
  const decision = decideAccount(state, command);
  return { state: decision.ok ? decision.events.reduce(evolveAccount, state) : state, decision };
}

function given(...commands: AccountCommand[]): AccountState {
  return commands.reduce((state, command) => {
    const { state: next, decision } = run(state, command);
    if (!decision.ok) throw new Error(`given: ${command.type} rejected: ${decision.rejection.message}`);
    return next;
  }, initialAccountState(ID));
}

const rejection = (state: AccountState, command: AccountCommand) => {
  const decision = decideAccount(state, command);
  return decision.ok ? undefined : decision.rejection.type;
};

describe('holds on an account', () => {
  test('a hold reserves: the balance stays, held grows, available shrinks; the target is not touched here', () => {
    const state = given(...open(1_000), place('h1', 300));
    expect({ balance: state.balance, held: state.held, available: availableOf(state) }).toEqual({
      balance: 1_000,
      held: 300,
      available: 700,
    });
    expect(legsOf(state, 'h1')).toEqual({ held: 300 });
  });

  test('every debit checks available: withdrawals, transfers and other holds', () => {
    const state = given(...open(1_000), place('h1', 800));
    expect(rejection(state, { type: 'Withdraw', amount: 201 })).toBe('insufficient_funds');
    expect(rejection(state, { type: 'DebitForTransfer', transferId: 't', amount: 201, currency: 'EUR', toAccountId: OTHER })).toBe(
      'insufficient_funds',
    );
    expect(rejection(state, place('h2', 201))).toBe('insufficient_funds');
    expect(rejection(state, { type: 'Withdraw', amount: 200 })).toBeUndefined();
    expect(decideAccount(state, { type: 'Withdraw', amount: 201 })).toMatchObject({
      rejection: { message: expect.stringContaining('200 available (1000 less 800 held)') },
    });
  });

  test('capture in part: the reservation ends, the captured part is debited as the transfer of the hold id, the rest is available again', () => {
    const state = given(...open(1_000), place('h1', 500), capture('h1', 300));
    expect({ balance: state.balance, held: state.held, available: availableOf(state) }).toEqual({ balance: 700, held: 0, available: 700 });
    expect(legsOf(state, 'h1')).toEqual({ held: 500, holdReleased: 'captured', debited: 300 });
  });

  test('a capture never exceeds what is held, needs a placed hold, and happens once (a repeat is a no-op; another amount is refused)', () => {
    const placed = given(...open(1_000), place('h1', 500));
    expect(rejection(placed, capture('h1', 501))).toBe('capture_exceeds_hold');
    expect(rejection(given(...open(1_000)), capture('h1', 1))).toBe('hold_not_placed');
    const captured = given(...open(1_000), place('h1', 500), capture('h1', 300));
    expect(decideAccount(captured, capture('h1', 300))).toEqual({ ok: true, events: [] });
    expect(rejection(captured, capture('h1', 200))).toBe('hold_finished');
    expect(rejection(captured, place('h1', 500))).toBe('hold_finished');
  });

  test('release: all of it back to available; idempotent; a release before placement blocks a late placement', () => {
    const released = given(...open(1_000), place('h1', 400), release('h1'));
    expect({ held: released.held, available: availableOf(released) }).toEqual({ held: 0, available: 1_000 });
    expect(decideAccount(released, release('h1', 'expired'))).toEqual({ ok: true, events: [] });
    expect(rejection(released, capture('h1', 1))).toBe('hold_finished');
    const early = given(...open(1_000), release('h9', 'expired'));
    expect(rejection(early, place('h9', 10))).toBe('hold_finished');
    expect(early.held).toBe(0);
  });

  test('a hold id is not a transfer id of the same account: neither takes the other over', () => {
    const debited = given(...open(1_000), { type: 'DebitForTransfer', transferId: 'x', amount: 10, currency: 'EUR', toAccountId: OTHER });
    expect(rejection(debited, place('x', 10))).toBe('hold_conflict');
    const held = given(...open(1_000), place('y', 10));
    expect(rejection(held, { type: 'DebitForTransfer', transferId: 'y', amount: 10, currency: 'EUR', toAccountId: OTHER })).toBe(
      'transfer_conflict',
    );
  });

  test('a captured hold that the target refused is refunded like any transfer: the money is available again', () => {
    const refunded = given(...open(1_000), place('h1', 500), capture('h1', 500), { type: 'RefundForTransfer', transferId: 'h1' });
    expect({ balance: refunded.balance, held: refunded.held }).toEqual({ balance: 1_000, held: 0 });
  });

  test('property: under any sequence of holds, captures, releases, withdrawals and deposits, 0 <= held <= balance, and the balance is what moved', () => {
    const ids = ['h1', 'h2', 'h3'];
    const command = fc.oneof(
      fc.record({ type: fc.constant('PlaceHold' as const), holdId: fc.constantFrom(...ids), amount: fc.integer({ min: 1, max: 600 }) }),
      fc.record({ type: fc.constant('CaptureHold' as const), holdId: fc.constantFrom(...ids), amount: fc.integer({ min: 1, max: 600 }) }),
      fc.record({
        type: fc.constant('ReleaseHold' as const),
        holdId: fc.constantFrom(...ids),
        reason: fc.constantFrom('voided' as const, 'expired' as const),
      }),
      fc.record({ type: fc.constant('Withdraw' as const), amount: fc.integer({ min: 1, max: 600 }) }),
      fc.record({ type: fc.constant('Deposit' as const), amount: fc.integer({ min: 1, max: 600 }) }),
    );
    fc.assert(
      fc.property(fc.array(command, { maxLength: 40 }), (commands) => {
        let state = given(...open(500));
        let moved = 500;
        for (const c of commands) {
          const full: AccountCommand =
            c.type === 'PlaceHold' || c.type === 'CaptureHold' ? { ...c, currency: 'EUR', toAccountId: OTHER } : (c as AccountCommand);
          const { state: next, decision } = run(state, full);
          if (decision.ok)
            for (const e of decision.events) {
              if (e.type === 'MoneyDeposited') moved += e.data.amount;
              if (e.type === 'MoneyWithdrawn' || e.type === 'TransferDebited') moved -= e.data.amount;
            }
          state = next;
          expect(state.held).toBeGreaterThanOrEqual(0);
          expect(state.held).toBeLessThanOrEqual(state.balance);
          expect(availableOf(state)).toBeGreaterThanOrEqual(0);
          expect(state.balance).toBe(moved);
        }
      }),
    );
  });
});
