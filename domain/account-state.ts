import { balanceChange, type AccountEvent } from './account-events';
import type { MinorUnits } from './money';

/** What each transfer did to this account: the legs are remembered so that retries and refunds are exact. */
export interface TransferLegs {
  debited?: MinorUnits;
  credited?: MinorUnits;
  refunded?: MinorUnits;
  /** No debit may land for this transfer any more (it was settled without one). */
  voided?: boolean;
  /** No credit may land for this transfer any more (it was settled without one). */
  creditVoided?: boolean;
}

export interface AccountState {
  status: 'none' | 'open' | 'closed';
  accountId: string;
  ownerId: string;
  currency: string;
  balance: MinorUnits;
  transfers: Record<string, TransferLegs>;
}

export const initialAccountState = (accountId = ''): AccountState => ({
  status: 'none',
  accountId,
  ownerId: '',
  currency: '',
  balance: 0,
  transfers: {},
});

/** The pure fold: state after one more event. Never mutates its input. */
export function evolveAccount(state: AccountState, event: AccountEvent): AccountState {
  switch (event.type) {
    case 'AccountOpened':
      return { ...state, status: 'open', accountId: event.data.accountId, ownerId: event.data.ownerId, currency: event.data.currency };
    case 'MoneyDeposited':
    case 'MoneyWithdrawn':
      return { ...state, balance: state.balance + balanceChange(event) };
    case 'AccountClosed':
      return { ...state, status: 'closed' };
    case 'TransferDebited':
      return withLeg({ ...state, balance: state.balance + balanceChange(event) }, event.data.transferId, { debited: event.data.amount });
    case 'TransferCredited':
      return withLeg({ ...state, balance: state.balance + balanceChange(event) }, event.data.transferId, { credited: event.data.amount });
    case 'TransferDebitVoided':
      return withLeg(state, event.data.transferId, { voided: true });
    case 'TransferCreditVoided':
      return withLeg(state, event.data.transferId, { creditVoided: true });
    case 'TransferRefunded':
      return withLeg({ ...state, balance: state.balance + balanceChange(event) }, event.data.transferId, { refunded: event.data.amount });
  }
}

function withLeg(state: AccountState, transferId: string, leg: TransferLegs): AccountState {
  return { ...state, transfers: { ...state.transfers, [transferId]: { ...state.transfers[transferId], ...leg } } };
}

export function foldAccount(events: readonly AccountEvent[], from: AccountState = initialAccountState()): AccountState {
  return events.reduce(evolveAccount, from);
}
