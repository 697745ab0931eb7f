import { accountDecider, type AccountCommand } from '../domain/account-decider';
import type { AccountEvent } from '../domain/account-events';
import { legsInBuckets, type AccountState, type LegsById } from '../domain/account-state';
import type { EventStore } from '../eventstore/event-store';
import { DEFAULT_STATE_CACHE, EventSourcedRepository, type Loaded } from './event-sourced-repository';

export type LoadedAccount = Loaded<AccountState>;

/**
 * Bump when AccountState changes shape: older snapshots are then ignored (a longer fold), unless upgradeSnapshot can
 * read them exactly. 2: the transfers' legs in buckets (domain/account-state.ts); 1: one flat map of them.
 */
const SNAPSHOT_SCHEMA = 2;

/** A snapshot of schema 1 in today's shape: its flat map of legs put in buckets (exact), anything malformed ignored. */
export function upgradeSnapshot(schema: number, state: unknown): AccountState | undefined {
  if (schema !== 1 || typeof state !== 'object' || state === null) return undefined;
  const { transfers, ...rest } = state as Omit<AccountState, 'transfers'> & { transfers?: unknown };
  if (typeof transfers !== 'object' || transfers === null || Array.isArray(transfers)) return undefined;
  const legs: unknown[] = Object.values(transfers);
  if (!legs.every((l) => typeof l === 'object' && l !== null && !Array.isArray(l))) return undefined;
  return { ...rest, transfers: legsInBuckets(transfers as LegsById) };
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
