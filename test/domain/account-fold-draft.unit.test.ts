import { randomUUID } from 'node:crypto';
import { fold } from '../../domain/decider';
import { accountDecider } from '../../domain/account-decider';
import type { AccountEvent } from '../../domain/account-events';
import { draftAccount, evolveAccount, initialAccountState, legsOf, sealAccount, type AccountState } from '../../domain/account-state';

/**
 * The fold of many events works on a draft of its own (domain/account-state.ts draftAccount): the leg maps are copied
 * once and changed in place. It must give exactly what evolving one event at a time gives, and never change the state
 * it started from, nor any state a caller holds.
 */
const opened = fold(
  accountDecider,
  [
    { type: 'AccountOpened', data: { accountId: 'a', ownerId: 'o', currency: 'EUR' } },
    { type: 'MoneyDeposited', data: { accountId: 'a', amount: 1_000_000, balanceAfter: 1_000_000 } },
  ],
  initialAccountState('a'),
);

function legEvents(ids: string[]): AccountEvent[] {
  const events: AccountEvent[] = [];
  let balance = opened.balance;
  ids.forEach((transferId, i) => {
    balance -= 10 + i;
    events.push({ type: 'TransferDebited', data: { accountId: 'a', transferId, amount: 10 + i, toAccountId: 'b', balanceAfter: balance } });
    if (i % 3 === 0) {
      balance += 10 + i;
      events.push({ type: 'TransferRefunded', data: { accountId: 'a', transferId, amount: 10 + i, balanceAfter: balance } });
    }
    if (i % 5 === 0) events.push({ type: 'TransferCreditVoided', data: { accountId: 'a', transferId } });
  });
  return events;
}
const oneByOne = (from: AccountState, events: AccountEvent[]) => events.reduce(evolveAccount, from);
const json = (state: AccountState) => JSON.stringify(state);

describe('account fold on a draft', () => {
  test('equals the fold of one event at a time, ids that are prototype names included, and leaves its start untouched', () => {
    const ids = [...Array.from({ length: 300 }, () => randomUUID()), '__proto__', 'constructor', 'hasOwnProperty', 'toString'];
    const events = legEvents(ids);
    const before = json(opened);
    const drafted = fold(accountDecider, events, opened);
    expect(json(drafted)).toBe(json(oneByOne(opened, events)));
    expect(json(opened)).toBe(before);
    expect(legsOf(drafted, '__proto__')).toMatchObject({ debited: expect.any(Number) });
    expect(Object.getPrototypeOf(drafted.transfers)).toBe(Object.prototype);
  });

  test('a sealed state is immutable again: a later evolve copies, and the state before it keeps its legs', () => {
    const first = fold(accountDecider, legEvents(['t1', 't2', 't3']), opened);
    const snapshot = json(first);
    const later = evolveAccount(first, { type: 'TransferCreditVoided', data: { accountId: 'a', transferId: 't1' } });
    const again = fold(accountDecider, legEvents(['t4', 't5']), first);
    expect(json(first)).toBe(snapshot);
    expect(legsOf(later, 't1')).toMatchObject({ creditVoided: true });
    expect(legsOf(again, 't4')).toBeDefined();
    expect(legsOf(first, 't4')).toBeUndefined();
  });

  test('a draft never reaches into the state it was drafted from, bucket by bucket', () => {
    const start = fold(accountDecider, legEvents(Array.from({ length: 2_000 }, (_, i) => `x${i}`)), opened);
    const snapshot = json(start);
    let draft = draftAccount(start);
    for (const transferId of ['x1', 'x2', 'x1999'])
      draft = evolveAccount(draft, { type: 'TransferRefunded', data: { accountId: 'a', transferId, amount: 5, balanceAfter: 0 } });
    const sealed = sealAccount(draft);
    expect(json(start)).toBe(snapshot);
    expect(legsOf(start, 'x1')?.refunded).toBeUndefined();
    expect(legsOf(sealed, 'x1')).toMatchObject({ debited: 11, refunded: 5 });
    expect(legsOf(sealed, 'x1999')).toMatchObject({ refunded: 5 });
  });
});
