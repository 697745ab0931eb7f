import { handleAccountCommand } from '../../application/account-commands';
import { AccountRepository, snapshotStream } from '../../application/account-repository';
import { accountStream } from '../../domain/account-events';
import type { EventStore, ReadStreamOptions, RecordedEvent } from '../../eventstore/event-store';
import { InMemoryEventStore } from '../../eventstore/memory/in-memory-event-store';
import { openAccount } from '../support/open-account';
import { unitOrPostgresStore, type TestStore } from '../support/unit-or-postgres-store';

/**
 * The repository's state cache: a load after the first reads only the events after the state it kept (one read, no
 * snapshot read), sees what other processes appended meanwhile, and never makes a stale state decide: a second
 * repository (another worker) writing to the same account is folded in before the next decision.
 */
describe('the repository keeps folded states in memory', () => {
  let testStore: TestStore;
  let store: EventStore;
  const reads: { stream: string; fromRevision?: bigint }[] = [];
  beforeAll(async () => {
    testStore = await unitOrPostgresStore('statecache');
    // Every stream read the repositories make, recorded.
    const real = testStore.store;
    store = Object.create(real) as EventStore;
    store.readStream = (stream: string, options?: ReadStreamOptions): Promise<RecordedEvent[]> => {
      reads.push({ stream, fromRevision: options?.fromRevision });
      return real.readStream(stream, options);
    };
  });
  afterAll(async () => testStore?.close());

  test('a second load reads only from the event its state was folded up to: one read, no snapshot read', async () => {
    const accounts = new AccountRepository(store, 2);
    const accountId = await openAccount(accounts, 100, 'cache');
    for (let i = 0; i < 5; i++) expect((await handleAccountCommand(accounts, accountId, { type: 'Deposit', amount: 10 })).ok).toBe(true);
    await accounts.load(accountId);
    reads.length = 0;
    const loaded = await accounts.load(accountId);
    expect(loaded.state.balance).toBe(150);
    // From the kept event on: it must still be there, with the same id (see the next test but one).
    expect(reads).toEqual([{ stream: accountStream(accountId), fromRevision: BigInt(loaded.revision) }]);
    expect(reads.some((r) => r.stream === snapshotStream(accountId))).toBe(false);
    expect(loaded).toStrictEqual(await accounts.loadWithoutSnapshot(accountId));
  });

  test('another process appending meanwhile is folded in; its writes never meet a stale decision', async () => {
    const here = new AccountRepository(store, 50);
    const elsewhere = new AccountRepository(store, 50); // another worker, with its own cache
    const accountId = await openAccount(here, 100, 'cache');
    expect((await here.load(accountId)).state.balance).toBe(100);
    // The other worker withdraws 80: our cached state (100) is now behind.
    expect((await handleAccountCommand(elsewhere, accountId, { type: 'Withdraw', amount: 80 })).ok).toBe(true);
    // Our next decision sees 20, not 100: withdrawing 50 is refused, nothing written, no overdraft.
    const refused = await handleAccountCommand(here, accountId, { type: 'Withdraw', amount: 50 });
    expect(refused.ok).toBe(false);
    expect((await here.load(accountId)).state.balance).toBe(20);
    expect(await here.loadWithoutSnapshot(accountId)).toStrictEqual(await here.load(accountId));
  });

  test('a store that went back (a restore, a failover that lost commits) is folded again, never trusted from memory', async () => {
    // The repository reads through `current`: first the live store, then a copy restored from before the last deposit,
    // in which another process has since written other events (so its revision passes the one kept in memory).
    const live = testStore.store;
    const restored = new InMemoryEventStore();
    let current: EventStore = live;
    const switching = Object.create(live) as EventStore;
    switching.readStream = (stream: string, options?: ReadStreamOptions) => current.readStream(stream, options);
    switching.appendToStream = (stream, events, options) => current.appendToStream(stream, events, options);
    const accounts = new AccountRepository(switching, 50);
    const accountId = await openAccount(accounts, 100, 'cache'); // revisions 0 (opened) and 1 (initial deposit)
    expect((await handleAccountCommand(accounts, accountId, { type: 'Deposit', amount: 500 })).ok).toBe(true); // revision 2
    expect((await accounts.load(accountId)).state.balance).toBe(600); // kept in memory at revision 2

    // The restored copy: revisions 0 and 1 only; then another process withdraws twice (revisions 2 and 3).
    const history = await live.readStream(accountStream(accountId));
    await restored.appendToStream(
      accountStream(accountId),
      history.slice(0, 2).map(({ id, type, data, metadata }) => ({ id, type, data, metadata })),
      {
        expectedRevision: 'no_stream',
      },
    );
    current = restored;
    const other = new AccountRepository(restored, 50);
    expect((await handleAccountCommand(other, accountId, { type: 'Withdraw', amount: 30 })).ok).toBe(true);
    expect((await handleAccountCommand(other, accountId, { type: 'Withdraw', amount: 30 })).ok).toBe(true);

    // What the store holds now: 100 - 60 = 40. The 500 of the lost deposit must not come back from memory.
    const loaded = await accounts.load(accountId);
    expect(loaded.state.balance).toBe(40);
    expect(loaded).toStrictEqual(await other.loadWithoutSnapshot(accountId));
    // And a decision on it sees 40: withdrawing 100 is refused.
    expect((await handleAccountCommand(accounts, accountId, { type: 'Withdraw', amount: 100 })).ok).toBe(false);
  });

  test('it is bounded: the least recently used state goes first, and a state that went is loaded as usual', async () => {
    const accounts = new AccountRepository(store, 50, undefined, 2);
    const [a, b, c] = [
      await openAccount(accounts, 1, 'cache'),
      await openAccount(accounts, 2, 'cache'),
      await openAccount(accounts, 3, 'cache'),
    ];
    for (const id of [a, b, c]) await accounts.load(id); // a is the oldest now, and goes
    reads.length = 0;
    expect((await accounts.load(a)).state.balance).toBe(1);
    // Not kept: the snapshot stream is read, then the whole account stream.
    expect(reads.map((r) => r.stream)).toEqual([snapshotStream(a), accountStream(a)]);
    reads.length = 0;
    const kept = await accounts.load(c);
    expect(kept.state.balance).toBe(3);
    expect(reads).toEqual([{ stream: accountStream(c), fromRevision: BigInt(kept.revision) }]); // kept: the tail only
  });
});
