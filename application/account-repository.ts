import { accountDecider, type AccountCommand } from '../domain/account-decider';
import type { AccountEvent } from '../domain/account-events';
import type { AccountState } from '../domain/account-state';
import type { EventStore } from '../eventstore/event-store';
import { DEFAULT_STATE_CACHE, EventSourcedRepository, type Loaded } from './event-sourced-repository';

export type LoadedAccount = Loaded<AccountState>;

/** Bump when AccountState changes shape: older snapshots are then ignored (a longer fold, no migration). */
const SNAPSHOT_SCHEMA = 2; // 2: the transfers' legs in buckets (domain/account-state.ts)
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
    super(store, accountDecider, { every: snapshotEvery, schema: SNAPSHOT_SCHEMA, onError: onSnapshotError }, cacheSize);
  }
}
