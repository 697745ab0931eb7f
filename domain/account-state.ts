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

/**
 * Every transfer's legs on this account, by transfer id, in buckets chosen by a hash of the id. Recording one leg copies
 * the bucket map and one bucket, not every transfer the account ever had: with one flat map, a hot account's fold
 * copied the whole map per event (2.7 ms per event at 10,000 transfers, 21 ms at 50,000; `npm run bench -- fold`).
 * Plain objects, so a state still goes into a snapshot as JSON and two folds of the same events are deep-equal.
 * Read it with legsOf().
 */
export type TransferLegsByBucket = Readonly<Record<string, Readonly<Record<string, TransferLegs>>>>;

export interface AccountState {
  status: 'none' | 'open' | 'closed';
  accountId: string;
  ownerId: string;
  currency: string;
  balance: MinorUnits;
  transfers: TransferLegsByBucket;
}

/** How many buckets the legs are spread over: a leg's write copies at most this many bucket references and 1/1024 of the legs. */
const LEG_BUCKETS = 1024;

/** The bucket of a transfer id: FNV-1a of its UTF-16 code units, the same in every process and version. */
export function legBucket(transferId: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < transferId.length; i++) {
    hash ^= transferId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return String((hash >>> 0) % LEG_BUCKETS);
}

/** Every transfer's legs on this account, by transfer id (a flat copy: for audits and tests, not for the fold). */
export function allLegs(state: AccountState): Record<string, TransferLegs> {
  return Object.assign({}, ...Object.values(state.transfers)) as Record<string, TransferLegs>;
}

/** What transfer `transferId` did to this account (undefined: nothing yet). */
export function legsOf(state: AccountState, transferId: string): TransferLegs | undefined {
  return state.transfers[legBucket(transferId)]?.[transferId];
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
  const b = legBucket(transferId);
  const bucket = state.transfers[b];
  return { ...state, transfers: { ...state.transfers, [b]: { ...bucket, [transferId]: { ...bucket?.[transferId], ...leg } } } };
}

export function foldAccount(events: readonly AccountEvent[], from: AccountState = initialAccountState()): AccountState {
  return events.reduce(evolveAccount, from);
}
