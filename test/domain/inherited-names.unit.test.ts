import { evolveAccount, initialAccountState, legsOf } from '../../domain/account-state';
import { decideTransfer } from '../../domain/transfer-decider';
import { evolveTransfer, initialTransferState, reversibleAmount } from '../../domain/transfer-state';
import { terminalStatusOf } from '../../domain/transfer-events';

/** Issue 23, item 3: ids that clients choose, named like what a plain object inherits, are ids like any other in the folds. */
const NAMES = ['constructor', 'toString', 'valueOf', 'hasOwnProperty', '__proto__', 'isPrototypeOf'];

describe('folds keyed by client-chosen ids never find inherited names', () => {
  test.each(NAMES)('an account: the legs of transfer %s are its own, none before', (transferId) => {
    let state = evolveAccount(initialAccountState('a'), {
      type: 'AccountOpened',
      data: { accountId: 'a', ownerId: 'o', currency: 'EUR' },
    } as never);
    expect(legsOf(state, transferId)).toBeUndefined();
    state = evolveAccount(state, {
      type: 'TransferCredited',
      data: { accountId: 'a', transferId, amount: 300, fromAccountId: 'b', balanceAfter: 300 },
    } as never);
    expect(legsOf(state, transferId)).toEqual({ credited: 300 });
    state = evolveAccount(state, { type: 'TransferCreditVoided', data: { accountId: 'a', transferId } } as never);
    expect(legsOf(state, transferId)).toEqual({ credited: 300, creditVoided: true });
    expect(Object.getPrototypeOf(state.transfers)).toBe(Object.prototype); // no prototype was set through a key
    expect(state.balance).toBe(300);
  });

  test.each(NAMES)('a transfer: reversal %s holds its amount, is released, and leaves the rest reversible', (reversalId) => {
    let state = initialTransferState();
    state = evolveTransfer(state, {
      type: 'TransferRequested',
      data: { transferId: 't', fromAccountId: 'a', toAccountId: 'b', amount: 1_000 },
    } as never);
    state = evolveTransfer(state, { type: 'TransferCompleted', data: { transferId: 't' } } as never);
    const held = decideTransfer(state, { type: 'ReserveReversal', reversalId, amount: 400 });
    expect(held).toEqual({ ok: true, events: [{ type: 'TransferReversalReserved', data: { transferId: 't', reversalId, amount: 400 } }] });
    if (!held.ok) return;
    state = evolveTransfer(state, held.events[0] as never);
    expect(reversibleAmount(state)).toBe(600);
    expect(decideTransfer(state, { type: 'ReserveReversal', reversalId, amount: 400 })).toEqual({ ok: true, events: [] });
    const released = decideTransfer(state, { type: 'ReleaseReversal', reversalId });
    expect(released.ok && released.events).toHaveLength(1);
  });

  test.each(NAMES)('the terminal status of an event type %s is none', (type) => {
    expect(terminalStatusOf(type)).toBeUndefined();
  });
});
