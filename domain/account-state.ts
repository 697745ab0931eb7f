import { balanceChange, type AccountEvent, type HoldReleaseReason } from './account-events';
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
  /** A hold of this id reserved this much on this account (its capture is the transfer of the same id). */
  held?: MinorUnits;
  /** The hold's reservation ended (voided, expired, or captured: then `debited` is the captured part). */
  holdReleased?: HoldReleaseReason;
}

/**
 * Every transfer's legs on this account, by transfer id, in buckets chosen by a hash of the id. Recording one leg copies
 * the bucket map and one bucket, not every transfer the account ever had: with one flat map, a hot account's fold
 * copied the whole map per event (2.8 ms per event at 10,000 transfers, 23 ms at 50,000; `npm run bench -- fold`).
 * Plain objects, so a state still goes into a snapshot as JSON and two folds of the same events are deep-equal.
 * The bucket keys are typed (`b0`..`b1023`), so reading it as the flat map it was (`transfers[transferId]`) does not
 * compile: read it with legsOf().
 */
export type LegBucket = `b${number}`;
/**
 * One bucket: legs by transfer id. A plain object (a snapshot is JSON), so every read is an own-property read
 * (legsOf, withLeg): a transfer id `constructor` finds its own legs or none, never Object's constructor.
 */
// eslint-disable-next-line no-restricted-syntax -- keyed by transfer ids, read through own properties only (see above)
export type LegsById = Readonly<Record<string, TransferLegs>>;
export type TransferLegsByBucket = Readonly<Partial<Record<LegBucket, LegsById>>>;

export interface AccountState {
  status: 'none' | 'open' | 'closed';
  accountId: string;
  ownerId: string;
  currency: string;
  balance: MinorUnits;
  /** Reserved by open holds: never more than the balance. Every debit checks `available = balance - held`. */
  held: MinorUnits;
  transfers: TransferLegsByBucket;
}

/** What the account can pay out now: its balance less what open holds reserve. */
export function availableOf(state: AccountState): MinorUnits {
  return state.balance - state.held;
}

/**
 * How many buckets the legs are spread over: a leg's write copies at most this many bucket references and about 1/1024
 * of the legs. Changing it (or legBucket) changes where legs are: it needs a new snapshot schema
 * (application/account-repository.ts), or snapshots written before would hide legs from legsOf.
 */
const LEG_BUCKETS = 1024;

/** The bucket of a transfer id: FNV-1a of its UTF-16 code units, the same in every process and version. */
export function legBucket(transferId: string): LegBucket {
  let hash = 0x811c9dc5;
  for (let i = 0; i < transferId.length; i++) {
    hash ^= transferId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return `b${(hash >>> 0) % LEG_BUCKETS}`;
}

/** The legs of a flat map (by transfer id) in buckets: what the state holds for them. */
export function legsInBuckets(flat: LegsById): TransferLegsByBucket {
  const buckets: Partial<Record<LegBucket, { -readonly [K in keyof LegsById]: TransferLegs }>> = {};
  for (const [transferId, legs] of Object.entries(flat)) {
    const bucket = (buckets[legBucket(transferId)] ??= {});
    Object.defineProperty(bucket, transferId, { value: legs, enumerable: true, writable: true, configurable: true });
  }
  return buckets;
}

/** Every transfer's legs on this account, by transfer id (a flat copy: for audits, tests and snapshots of schema 1). */
export function allLegs(state: AccountState): LegsById {
  return Object.fromEntries(Object.values(state.transfers).flatMap((bucket) => Object.entries(bucket ?? {})));
}

/** What transfer `transferId` did to this account (undefined: nothing yet). Own properties only (no `constructor`). */
export function legsOf(state: AccountState, transferId: string): TransferLegs | undefined {
  const bucket = state.transfers[legBucket(transferId)];
  return bucket && Object.hasOwn(bucket, transferId) ? bucket[transferId] : undefined;
}

export const initialAccountState = (accountId = ''): AccountState => ({
  status: 'none',
  accountId,
  ownerId: '',
  currency: '',
  balance: 0,
  held: 0,
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
    case 'HoldPlaced':
      return withLeg({ ...state, held: state.held + event.data.amount }, event.data.holdId, { held: event.data.amount });
    case 'HoldReleased':
      return withLeg({ ...state, held: state.held - event.data.amount }, event.data.holdId, { holdReleased: event.data.reason });
  }
}

/**
 * Leg maps (the bucket map and buckets) that a fold in progress owns and may change in place: draftAccount() makes one,
 * sealAccount() ends it. A hot account's append of a hundred legs then copies the bucket map once, not a hundred times
 * (the copy of 1,024 references per leg was most of a batch's fold). Only folds whose intermediate states nobody keeps
 * use it (domain/decider.ts fold, application/command-legs.ts planLegs); every other evolve copies, as before.
 */
const drafts = new WeakSet<object>();

/** A copy of the state whose leg maps the folds after it may change in place, until sealAccount(). */
export function draftAccount(state: AccountState): AccountState {
  const transfers = { ...state.transfers };
  drafts.add(transfers);
  return { ...state, transfers };
}

/** Ends a draft: from here on the state is immutable again (an evolve copies what it changes). */
export function sealAccount(state: AccountState): AccountState {
  if (drafts.delete(state.transfers)) for (const bucket of Object.values(state.transfers)) if (bucket) drafts.delete(bucket);
  return state;
}

function withLeg(state: AccountState, transferId: string, leg: TransferLegs): AccountState {
  const b = legBucket(transferId);
  const bucket = state.transfers[b];
  const before = bucket && Object.hasOwn(bucket, transferId) ? bucket[transferId] : undefined;
  if (!drafts.has(state.transfers))
    return { ...state, transfers: { ...state.transfers, [b]: { ...bucket, [transferId]: { ...before, ...leg } } } };
  // A draft: its bucket map is this fold's own; a bucket is copied once, on its first change in the draft.
  const transfers = state.transfers as Record<LegBucket, LegsById>;
  let own = bucket;
  if (!own || !drafts.has(own)) {
    own = { ...bucket };
    drafts.add(own);
    transfers[b] = own;
  }
  // defineProperty, not assignment: an id such as `__proto__` is an own property like any other.
  Object.defineProperty(own, transferId, { value: { ...before, ...leg }, enumerable: true, writable: true, configurable: true });
  return state;
}

export function foldAccount(events: readonly AccountEvent[], from: AccountState = initialAccountState()): AccountState {
  return events.reduce(evolveAccount, from);
}
