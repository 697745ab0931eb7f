import type { AccountEvent } from '../domain/account-events';
import { ACCOUNT_EVENT_TYPES, accountStream } from '../domain/account-events';
import { foldAccount, initialAccountState, type AccountState } from '../domain/account-state';
import type { AppendResult, EventStore, ExpectedRevision, NewEvent, RecordedEvent } from '../eventstore/event-store';
import { toDomainEvent, toNewEvent } from './event-envelope';

export interface LoadedAccount {
  state: AccountState;
  /** The revision to expect when appending ('no_stream' for an account never opened). */
  revision: bigint | 'no_stream';
}

const SNAPSHOT_SCHEMA = 1;
export const snapshotStream = (accountId: string): string => `snapshot-account-${accountId}`;

/**
 * Loads accounts as a fold of their stream, starting from the latest snapshot when there is one.
 * A snapshot of the state is written after every `snapshotEvery` events (best effort: a lost
 * snapshot only costs a longer fold). Snapshots carry a schema number; a snapshot of another
 * schema is ignored, so changing the state shape never needs a migration.
 */
export class AccountRepository {
  constructor(
    private readonly store: EventStore,
    private readonly snapshotEvery = 50,
  ) {}

  async load(accountId: string): Promise<LoadedAccount> {
    const snapshot = await this.latestSnapshot(accountId);
    const from = snapshot ? snapshot.revision + 1n : 0n;
    const tail = await this.readAllFrom(accountStream(accountId), from);
    const state = foldAccount(tail.map((e) => toDomainEvent<AccountEvent>(e)), snapshot?.state ?? initialAccountState(accountId));
    const last = tail.at(-1)?.revision ?? snapshot?.revision;
    return { state, revision: last ?? 'no_stream' };
  }

  /** The full fold, ignoring snapshots (for audits and the snapshot test). */
  async loadWithoutSnapshot(accountId: string, until?: (e: RecordedEvent) => boolean): Promise<LoadedAccount> {
    let events = await this.readAllFrom(accountStream(accountId), 0n);
    if (until) events = events.filter(until);
    return {
      state: foldAccount(events.map((e) => toDomainEvent<AccountEvent>(e)), initialAccountState(accountId)),
      revision: events.at(-1)?.revision ?? 'no_stream',
    };
  }

  async append(accountId: string, events: NewEvent[], expectedRevision: ExpectedRevision, stateAfter: AccountState): Promise<AppendResult> {
    const result = await this.store.appendToStream(accountStream(accountId), events, { expectedRevision });
    const before = typeof expectedRevision === 'bigint' ? expectedRevision : -1n;
    const every = BigInt(this.snapshotEvery);
    if ((result.nextExpectedRevision + 1n) / every > (before + 1n) / every) {
      await this.writeSnapshot(accountId, stateAfter, result.nextExpectedRevision).catch(() => undefined);
    }
    return result;
  }

  private async writeSnapshot(accountId: string, state: AccountState, revision: bigint): Promise<void> {
    await this.store.appendToStream(
      snapshotStream(accountId),
      [toNewEvent({ type: 'AccountSnapshot', data: { schema: SNAPSHOT_SCHEMA, revision: revision.toString(), state } }, {})],
      { expectedRevision: 'any' },
    );
  }

  private async latestSnapshot(accountId: string): Promise<{ state: AccountState; revision: bigint } | undefined> {
    const [latest] = await this.store.readStream(snapshotStream(accountId), { direction: 'backwards', maxCount: 1 });
    const data = latest?.data as { schema?: number; revision?: string; state?: AccountState } | undefined;
    if (!data || data.schema !== SNAPSHOT_SCHEMA || !data.state || typeof data.revision !== 'string') return undefined;
    return { state: data.state, revision: BigInt(data.revision) };
  }

  private async readAllFrom(stream: string, from: bigint): Promise<RecordedEvent[]> {
    const out: RecordedEvent[] = [];
    for (let next = from; ; ) {
      const page = await this.store.readStream(stream, { fromRevision: next, maxCount: 1000 });
      out.push(...page.filter((e) => (ACCOUNT_EVENT_TYPES as readonly string[]).includes(e.type)));
      if (page.length < 1000) return out;
      next = page.at(-1)!.revision + 1n;
    }
  }
}

