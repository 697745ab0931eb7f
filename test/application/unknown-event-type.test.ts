import { randomUUID } from 'node:crypto';
import { handleAccountCommand } from '../../application/account-commands';
import { AccountRepository } from '../../application/account-repository';
import { UnknownEventTypeError } from '../../application/event-envelope';
import { accountStream } from '../../domain/account-events';
import type { EventStore } from '../../eventstore/event-store';
import { unitOrPostgresStore, type TestStore } from '../support/unit-or-postgres-store';

/**
 * An event type the account union does not name (written by newer code, or by hand) must never be
 * dropped from the fold: the state would be wrong and the revision stale, so every append to the
 * account would conflict until retries ran out. Loading fails loudly, naming the stream, revision and type.
 */
describe('an unknown event type in an account stream', () => {
  // The store: in memory in the fast tier (npm run test:unit), PostgreSQL in npm test.
  let testStore: TestStore;
  let store: EventStore;
  beforeAll(async () => {
    testStore = await unitOrPostgresStore('unknowntype');
    store = testStore.store;
  });
  afterAll(async () => {
    await testStore?.close();
  });

  test('fails the load and the command loudly (UnknownEventTypeError), writing nothing', async () => {
    const accounts = new AccountRepository(store, 50);
    const accountId = randomUUID();
    const opened = await handleAccountCommand(accounts, accountId, {
      type: 'OpenAccount',
      accountId,
      ownerId: 'o',
      currency: 'EUR',
      initialDeposit: 100,
    });
    expect(opened.ok).toBe(true);
    await store.appendToStream(
      accountStream(accountId),
      [{ id: randomUUID(), type: 'MoneyFrozen', data: { accountId, amount: 50 }, metadata: {} }],
      { expectedRevision: 1n },
    );

    const loading = accounts.load(accountId);
    await expect(loading).rejects.toBeInstanceOf(UnknownEventTypeError);
    await expect(accounts.load(accountId)).rejects.toMatchObject({
      stream: accountStream(accountId),
      revision: 2n,
      eventType: 'MoneyFrozen',
    });

    await expect(handleAccountCommand(accounts, accountId, { type: 'Deposit', amount: 10 })).rejects.toBeInstanceOf(UnknownEventTypeError);
    expect((await store.readStream(accountStream(accountId))).map((e) => e.type)).toEqual([
      'AccountOpened',
      'MoneyDeposited',
      'MoneyFrozen',
    ]);
  });
});
