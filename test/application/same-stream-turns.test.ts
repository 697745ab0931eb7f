import { handleAccountCommand } from '../../application/account-commands';
import { AccountRepository } from '../../application/account-repository';
import { inTurn } from '../../application/stream-turns';
import type { EventStore } from '../../eventstore/event-store';
import { openAccount } from '../support/open-account';
import { unitOrPostgresStore, type TestStore } from '../support/unit-or-postgres-store';

/**
 * A hot account: many commands on one account at once. Within one process they take turns (no conflict retries, no
 * wasted appends); two processes still race, and the expected-revision check keeps the balance exact.
 */
describe('commands on one stream take turns within a process', () => {
  let testStore: TestStore;
  beforeAll(async () => {
    testStore = await unitOrPostgresStore('sameturns');
  });
  afterAll(async () => testStore?.close());

  test('40 withdrawals at once from one process: no conflict, every one lands once, the balance is exact', async () => {
    const accounts = new AccountRepository(testStore.store);
    const accountId = await openAccount(accounts, 1_000, 'hot');
    let conflicts = 0;
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        handleAccountCommand(accounts, accountId, { type: 'Withdraw', amount: i + 1 }, { onConflict: () => (conflicts += 1) }),
      ),
    );
    expect(results.every((r) => r.ok)).toBe(true);
    expect(conflicts).toBe(0);
    const after = await new AccountRepository(testStore.store, 50, undefined, 0).loadWithoutSnapshot(accountId);
    expect(after.state.balance).toBe(1_000 - (40 * 41) / 2);
    expect(after.revision).toBe(41n); // opened, deposited, 40 withdrawals
  });

  test('withdrawals beyond the balance at once: exactly those that fit land, in turn; the rest are refused, never an overdraft', async () => {
    const accounts = new AccountRepository(testStore.store);
    const accountId = await openAccount(accounts, 100, 'hot');
    const results = await Promise.all(
      Array.from({ length: 30 }, () => handleAccountCommand(accounts, accountId, { type: 'Withdraw', amount: 7 })),
    );
    expect(results.filter((r) => r.ok)).toHaveLength(14); // 14 x 7 = 98
    expect(results.filter((r) => !r.ok).every((r) => !r.ok && r.rejection.type === 'insufficient_funds')).toBe(true);
    const after = await new AccountRepository(testStore.store, 50, undefined, 0).loadWithoutSnapshot(accountId);
    expect(after.state.balance).toBe(2);
  });

  test('two repositories of one process (the API and the worker) take turns too', async () => {
    const api = new AccountRepository(testStore.store);
    const worker = new AccountRepository(testStore.store);
    const accountId = await openAccount(api, 1_000, 'hot');
    let conflicts = 0;
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        handleAccountCommand(
          i % 2 === 0 ? api : worker,
          accountId,
          { type: 'Withdraw', amount: 10 },
          { onConflict: () => (conflicts += 1) },
        ),
      ),
    );
    expect(results.every((r) => r.ok)).toBe(true);
    expect(conflicts).toBe(0);
  });

  test('two processes (each its own store client) at once: they race, conflicts are retried, the balance is exact', async () => {
    // Two processes: each its own client of the same store (an object of its own over the same data). They race for
    // sure: the first append of one waits until two has read the account, and two appends only after it, on what it read.
    const base = testStore.store;
    const clientOne = Object.create(base) as EventStore;
    const clientTwo = Object.create(base) as EventStore;
    let twoRead!: () => void;
    const twoHasRead = new Promise<void>((resolve) => (twoRead = resolve));
    let oneAppended!: () => void;
    const oneHasAppended = new Promise<void>((resolve) => (oneAppended = resolve));
    let racing = false;
    clientOne.appendToStream = async (...args) => {
      if (racing) await twoHasRead;
      const result = await base.appendToStream(...args);
      if (racing) oneAppended();
      return result;
    };
    clientTwo.readStream = async (...args) => {
      const events = await base.readStream(...args);
      if (args[0].startsWith('account-')) twoRead();
      return events;
    };
    clientTwo.appendToStream = async (...args) => {
      await oneHasAppended;
      return base.appendToStream(...args);
    };
    const one = new AccountRepository(clientOne);
    const two = new AccountRepository(clientTwo);
    const accountId = await openAccount(one, 10_000, 'hot');
    racing = true;
    let conflicts = 0;
    const onConflict = () => (conflicts += 1);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        handleAccountCommand(i % 2 === 0 ? one : two, accountId, { type: 'Withdraw', amount: 10 }, { onConflict }),
      ),
    );
    expect(results.every((r) => r.ok)).toBe(true);
    expect(conflicts).toBeGreaterThan(0);
    const after = await new AccountRepository(testStore.store, 50, undefined, 0).loadWithoutSnapshot(accountId);
    expect(after.state.balance).toBe(10_000 - 200);
  });

  test('the wait for a turn is bounded: behind a command stuck for longer, the next goes ahead and races', async () => {
    const order: string[] = [];
    let unstick!: () => void;
    const stuck = inTurn(testStore.store, 'turns-bounded', async () => {
      order.push('first starts');
      await new Promise<void>((resolve) => (unstick = resolve));
      order.push('first ends');
    });
    const started = Date.now();
    await inTurn(testStore.store, 'turns-bounded', async ({ waited }) => void order.push(`second starts (waited: ${waited})`), 200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(order).toEqual(['first starts', 'second starts (waited: true)']);
    unstick();
    await stuck;
    // And the queue is empty again: a new command runs at once.
    let waitedAgain: boolean | undefined;
    await inTurn(testStore.store, 'turns-bounded', async ({ waited }) => void (waitedAgain = waited));
    expect(waitedAgain).toBe(false);
  });

  test('a command in line starts from the state the one before it appended: no read, and the same balance', async () => {
    let loads = 0;
    const counting = Object.create(testStore.store) as EventStore;
    counting.readStream = (...a: Parameters<EventStore['readStream']>) => {
      loads += 1;
      return testStore.store.readStream(...a);
    };
    const accounts = new AccountRepository(counting, 1_000_000);
    const accountId = await openAccount(accounts, 1_000, 'hot');
    await accounts.load(accountId); // kept in the state cache: a load is one read
    loads = 0;
    const results = await Promise.all(
      Array.from({ length: 20 }, () => handleAccountCommand(accounts, accountId, { type: 'Withdraw', amount: 10 })),
    );
    expect(results.every((r) => r.ok)).toBe(true);
    // The first reads the stream; each of the 19 after it starts from what the one before it appended.
    expect(loads).toBe(1);
    const truth = await new AccountRepository(testStore.store, 50, undefined, 0).loadWithoutSnapshot(accountId);
    expect(truth.state.balance).toBe(800);
    expect(results.map((r) => (r.ok ? r.state.balance : -1))).toEqual(Array.from({ length: 20 }, (_, i) => 990 - 10 * i));
  });

  test('a refusal is never decided on a handed-over state: another process wrote meanwhile, the refusal is checked on a fresh read', async () => {
    const elsewhere = new AccountRepository(Object.create(testStore.store) as EventStore, 1_000_000);
    // Right after the first withdrawal lands (before the next in line decides), another process deposits 50.
    const hooked = Object.create(testStore.store) as EventStore;
    let accountId = '';
    let depositAfterNextWithdrawal = false;
    hooked.appendToStream = async (...a: Parameters<EventStore['appendToStream']>) => {
      const appended = await testStore.store.appendToStream(...a);
      if (depositAfterNextWithdrawal && a[1].some((e) => e.type === 'MoneyWithdrawn')) {
        depositAfterNextWithdrawal = false;
        const deposited = await handleAccountCommand(elsewhere, accountId, { type: 'Deposit', amount: 50 });
        expect(deposited.ok).toBe(true);
      }
      return appended;
    };
    const accounts = new AccountRepository(hooked, 1_000_000);
    accountId = await openAccount(accounts, 100, 'hot');
    depositAfterNextWithdrawal = true;
    // In line: a withdrawal of 100 (leaves 0 as far as it knows), then one of 50, which that handed-over state would
    // refuse; the account holds 50 by then.
    const [first, second] = await Promise.all([
      handleAccountCommand(accounts, accountId, { type: 'Withdraw', amount: 100 }),
      handleAccountCommand(accounts, accountId, { type: 'Withdraw', amount: 50 }),
    ]);
    expect(first.ok).toBe(true);
    expect(second.ok).toBe(true);
    const truth = await new AccountRepository(testStore.store, 50, undefined, 0).loadWithoutSnapshot(accountId);
    expect(truth.state.balance).toBe(0);
  });
});
