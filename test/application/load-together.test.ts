import { randomUUID } from 'node:crypto';
import { handleAccountCommand } from '../../application/account-commands';
import { AccountRepository } from '../../application/account-repository';
import { EventSourcedRepository, loadTogether } from '../../application/event-sourced-repository';
import { TransferLog } from '../../application/transfer-log';
import { accountDecider } from '../../domain/account-decider';
import { accountStream } from '../../domain/account-events';
import type { EventStore, StreamRead } from '../../eventstore/event-store';
import { openAccount } from '../support/open-account';
import { unitOrPostgresStore, type TestStore } from '../support/unit-or-postgres-store';
import { event } from '../eventstore/event-store-contract';

/**
 * Loads of several streams in one read of the store (a transfer and its two accounts): each answer equals the
 * repository's own load, cached or not, with snapshots or not, for streams longer than one page, and after the store
 * went back; the streams that take one read each go out in one readStreams call.
 */
describe('loading several streams at once', () => {
  let testStore: TestStore;
  let store: EventStore;
  const calls: StreamRead[][] = [];
  beforeAll(async () => {
    testStore = await unitOrPostgresStore('loadtogether');
    const real = testStore.store;
    store = Object.create(real) as EventStore;
    store.readStreams = (reads) => {
      calls.push([...reads]);
      return real.readStreams(reads);
    };
  });
  afterAll(async () => testStore?.close());

  /** What a repository that never saw the stream folds from the whole of it. */
  const truth = async (accountId: string) => new AccountRepository(testStore.store, 50, undefined, 0).loadWithoutSnapshot(accountId);

  test('a transfer and two accounts, cached or not: one readStreams call, the same states as load()', async () => {
    const accounts = new AccountRepository(store, 5); // a snapshot every 5 events
    const transfers = new TransferLog(store);
    const a = await openAccount(accounts, 1_000, 'lt');
    const b = await openAccount(accounts, 0, 'lt');
    for (let i = 0; i < 7; i++) await handleAccountCommand(accounts, a, { type: 'Withdraw', amount: 10 });
    const transferId = randomUUID();

    // Another process's repositories: nothing cached, snapshots on for accounts (their loads read the snapshot first).
    const coldAccounts = new AccountRepository(store, 5);
    calls.length = 0;
    const [none, coldA, coldB] = await loadTogether(
      store,
      new TransferLog(store).planLoad(transferId),
      coldAccounts.planLoad(a),
      coldAccounts.planLoad(b),
    );
    expect(none.revision).toBe('no_stream');
    expect(coldA).toEqual(await truth(a));
    expect(coldB).toEqual(await truth(b));
    expect(calls).toHaveLength(1); // the transfer's read; the accounts loaded from their snapshots, as load() does

    // Now cached: the three in one call.
    calls.length = 0;
    const [t, warmA, warmB] = await loadTogether(store, transfers.planLoad(transferId), coldAccounts.planLoad(a), coldAccounts.planLoad(b));
    expect(calls).toHaveLength(1);
    expect(calls[0]!.map((r) => r.stream)).toEqual([`transfer-${transferId}`, accountStream(a), accountStream(b)]);
    expect(t.revision).toBe('no_stream');
    expect(warmA).toEqual(await truth(a));
    expect(warmB).toEqual(await truth(b));

    // Changed by someone else meanwhile: folded in.
    await handleAccountCommand(accounts, b, { type: 'Deposit', amount: 25 });
    const [againA, againB] = await coldAccounts.loadMany([a, b]);
    expect(againA).toEqual(await truth(a));
    expect(againB).toEqual(await truth(b));
    expect(againB.state.balance).toBe(25);
  });

  test('a stream longer than one page (1,000 events) is read to its end', async () => {
    const plain = new EventSourcedRepository(store, accountDecider); // no snapshots: every load is one read (and more pages)
    const accountId = randomUUID();
    const stream = accountStream(accountId);
    await store.appendToStream(stream, [event('AccountOpened', { accountId, ownerId: 'lt', currency: 'EUR' })], {
      expectedRevision: 'no_stream',
    });
    let balance = 0;
    for (let chunk = 0; chunk < 11; chunk++) {
      const events = Array.from({ length: 100 }, () => event('MoneyDeposited', { accountId, amount: 1, balanceAfter: ++balance }));
      await store.appendToStream(stream, events, { expectedRevision: BigInt(chunk * 100) });
    }
    const [cold] = await plain.loadMany([accountId]);
    expect(cold.revision).toBe(1_100n);
    expect(cold.state.balance).toBe(1_100);
    expect(cold).toEqual(await truth(accountId));
  });

  test('after the store went back (the kept event is gone): folded again from what the store holds', async () => {
    const accounts = new AccountRepository(store, 1_000_000);
    const accountId = await openAccount(accounts, 100, 'lt');
    await accounts.loadMany([accountId]); // kept at its last revision
    // Another store: the same stream name, other events (a restore that lost commits, then other writes).
    const other = await unitOrPostgresStore('loadtogether_restored');
    try {
      const restored = new AccountRepository(other.store, 1_000_000);
      await handleAccountCommand(restored, accountId, {
        type: 'OpenAccount',
        accountId,
        ownerId: 'lt',
        currency: 'EUR',
        initialDeposit: 40,
      });
      const switching = Object.create(other.store) as EventStore;
      // The first repository, now reading the restored store, must not trust its kept state.
      (accounts as unknown as { store: EventStore }).store = switching;
      const [after] = await accounts.loadMany([accountId]);
      expect(after.state.balance).toBe(40);
    } finally {
      await other.close();
    }
  });
});
