import { accountDecider, type AccountCommand } from '../domain/account-decider';
import type { AccountEvent } from '../domain/account-events';
import { legsInBuckets, type AccountState, type LegsById } from '../domain/account-state';
import type { EventStore } from '../eventstore/event-store';
import { DEFAULT_STATE_CACHE, EventSourcedRepository, type Loaded } from './event-sourced-repository';

export type LoadedAccount = Loaded<AccountState>;

/**
 * Bump when AccountState changes shape: older snapshots are then ignored (a longer fold), unless upgradeSnapshot can
 * read them exactly. 3: `held` (holds, issue 25); 2: the transfers' legs in buckets (domain/account-state.ts); 1: one
 * flat map of them.
 */
const SNAPSHOT_SCHEMA = 3;

/**
 * An older snapshot in today's shape, exactly, or undefined (then ignored): schema 2 had no holds (no event of theirs
 * existed), so `held` is 0; schema 1's flat map of legs goes into buckets. Anything malformed is ignored.
 */
export function upgradeSnapshot(schema: number, state: unknown): AccountState | undefined {
  if (typeof state !== 'object' || state === null) return undefined;
  if (schema === 2) {
    const previous = state as Omit<AccountState, 'held'>;
    const { transfers, balance } = previous as { transfers?: unknown; balance?: unknown };
    if (typeof transfers !== 'object' || transfers === null || Array.isArray(transfers) || !Number.isSafeInteger(balance)) return undefined;
    return { ...previous, held: 0 };
  }
  if (schema !== 1) return undefined;
  const { transfers, ...rest } = state as Omit<AccountState, 'transfers' | 'held'> & { transfers?: unknown };
  if (typeof transfers !== 'object' || transfers === null || Array.isArray(transfers)) return undefined;
  const legs: unknown[] = Object.values(transfers);
  if (!legs.every((l) => typeof l === 'object' && l !== null && !Array.isArray(l))) return undefined;
  return { ...rest, held: 0, transfers: legsInBuckets(transfers as LegsById) };
}
export const snapshotStream = (accountId: string): string => `snapshot-${accountDecider.streamName(accountId)}`;

/**
 * Accounts: a fold of `account-<id>`, from the latest snapshot when there is one. A snapshot of the
 * state is written after every `snapshotEvery` events (best effort).
 */
export class AccountRepository extends EventSourcedRepository<AccountState, AccountCommand, AccountEvent> {
  constructor(
    store: EventStore,
    snapshotEvery = 50,
    onSnapshotError?: (error: unknown, accountId: string) => void,
    /** Accounts whose state is kept in memory (see EventSourcedRepository; 0: none). */
    cacheSize = DEFAULT_STATE_CACHE,
  ) {
    super(
      store,
      accountDecider,
      { every: snapshotEvery, schema: SNAPSHOT_SCHEMA, onError: onSnapshotError, upgrade: upgradeSnapshot },
      cacheSize,
    );
  }
}
