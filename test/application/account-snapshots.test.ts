import { randomUUID } from 'node:crypto';
import { handleAccountCommand, type AccountCommandResult } from '../../application/account-commands';
import { AccountRepository, snapshotStream } from '../../application/account-repository';
import { toNewEvent } from '../../application/event-envelope';
import type { AccountCommand } from '../../domain/account-decider';
import { accountStream } from '../../domain/account-events';
import { allLegs, legsOf } from '../../domain/account-state';
import { deterministicUuid } from '../../domain/deterministic-id';
import type { EventStore, RecordedEvent } from '../../eventstore/event-store';
import { openAccount } from '../support/open-account';
import { testStoreKind, unitOrPostgresStore, type TestStore } from '../support/unit-or-postgres-store';

const SNAPSHOT_EVERY = 5;

/** A small seeded PRNG (mulberry32), so a failing sequence can be replayed from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Event ids as the transfer activities derive them: a re-sent leg re-sends the same ids. */
const legId = (transferId: string, leg: string) => (index: number, type: string) =>
  deterministicUuid('transfer', transferId, leg, type, String(index));

interface Model {
  balance: number;
  /** Revision of the last event in the account stream (-1: none). */
  revision: number;
  debited: Map<string, number>;
  refunded: Set<string>;
  credited: Set<string>;
  expectedSnapshots: number[];
}

/** Picks a command the account will accept, given the model of its state. */
function nextCommand(random: () => number, model: Model): { command: AccountCommand; leg?: string; writes: number; delta: number } {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const amountUpTo = (max: number) => 1 + Math.floor(random() * max);
  const options: (() => ReturnType<typeof nextCommand>)[] = [
    () => {
      const amount = amountUpTo(5_000);
      return { command: { type: 'Deposit', amount }, writes: 1, delta: amount };
    },
    () => {
      const transferId = `in-${randomUUID()}`;
      const amount = amountUpTo(3_000);
      model.credited.add(transferId);
      return {
        command: { type: 'CreditForTransfer', transferId, amount, currency: 'EUR', fromAccountId: 'elsewhere' },
        leg: 'credit',
        writes: 1,
        delta: amount,
      };
    },
  ];
  if (model.balance > 0) {
    options.push(
      () => {
        const amount = amountUpTo(model.balance);
        return { command: { type: 'Withdraw', amount }, writes: 1, delta: -amount };
      },
      () => {
        const transferId = `out-${randomUUID()}`;
        const amount = amountUpTo(model.balance);
        model.debited.set(transferId, amount);
        return {
          command: { type: 'DebitForTransfer', transferId, amount, currency: 'EUR', toAccountId: 'elsewhere' },
          leg: 'debit',
          writes: 1,
          delta: -amount,
        };
      },
    );
  }
  const refundable = [...model.debited.keys()].filter((t) => !model.refunded.has(t));
  if (refundable.length > 0) {
    options.push(() => {
      const transferId = pick(refundable);
      model.refunded.add(transferId);
      return { command: { type: 'RefundForTransfer', transferId }, leg: 'refund', writes: 1, delta: model.debited.get(transferId)! };
    });
  }
  // Re-sent legs (a retried activity): accepted, and write nothing. (A debit re-sent after its refund is refused:
  // the transfer was settled; see the account decider's tests.)
  if (refundable.length > 0) {
    options.push(() => {
      const transferId = pick(refundable);
      return {
        command: {
          type: 'DebitForTransfer',
          transferId,
          amount: model.debited.get(transferId)!,
          currency: 'EUR',
          toAccountId: 'elsewhere',
        },
        leg: 'debit',
        writes: 0,
        delta: 0,
      };
    });
  }
  if (model.refunded.size > 0) {
    options.push(() => ({
      command: { type: 'RefundForTransfer', transferId: pick([...model.refunded]) },
      leg: 'refund',
      writes: 0,
      delta: 0,
    }));
  }
  return pick(options)();
}

// The store: in memory in the fast tier (npm run test:unit), PostgreSQL in npm test.
describe(`AccountRepository snapshots on the ${testStoreKind()} store`, () => {
  let testStore: TestStore;
  let store: EventStore;
  let repository: AccountRepository;

  beforeAll(async () => {
    testStore = await unitOrPostgresStore('account_snapshots');
    store = testStore.store;
    repository = new AccountRepository(store, SNAPSHOT_EVERY, undefined, 0); // snapshots are what is tested: no state cache
  });
  afterAll(async () => {
    await testStore?.close();
  });
  afterEach(() => jest.restoreAllMocks());

  async function snapshotsOf(accountId: string): Promise<RecordedEvent[]> {
    return store.readStream(snapshotStream(accountId));
  }

  /** Where load() started reading the account stream (the revision after the snapshot it used, or 0). */
  async function loadReadingFrom(accountId: string) {
    const spy = jest.spyOn(store, 'readStream');
    try {
      const loaded = await repository.load(accountId);
      const accountRead = spy.mock.calls.find(([stream]) => stream === accountStream(accountId));
      return { loaded, fromRevision: accountRead?.[1]?.fromRevision };
    } finally {
      spy.mockRestore();
    }
  }

  async function expectLoadEqualsFullFold(accountId: string) {
    const [loaded, full] = await Promise.all([repository.load(accountId), repository.loadWithoutSnapshot(accountId)]);
    expect(loaded).toStrictEqual(full);
    return loaded;
  }

  /** Records where a snapshot is due: after an append that crosses a multiple of SNAPSHOT_EVERY events. */
  function track(model: Model, result: AccountCommandResult, writes: number) {
    if (!result.ok) throw new Error(`command rejected: ${result.rejection.type} ${result.rejection.message}`);
    expect(result.eventsWritten).toBe(writes);
    if (writes === 0) return;
    const before = model.revision;
    model.revision += writes;
    expect(result.revision).toBe(BigInt(model.revision));
    if (Math.floor((model.revision + 1) / SNAPSHOT_EVERY) > Math.floor((before + 1) / SNAPSHOT_EVERY))
      model.expectedSnapshots.push(model.revision);
  }

  test.each([101, 202, 303])(
    'seed %d: after every one of ~37 random accepted commands, load (snapshot + tail) equals the full fold',
    async (seed) => {
      const random = prng(seed);
      const accountId = randomUUID();
      const model: Model = {
        balance: 0,
        revision: -1,
        debited: new Map(),
        refunded: new Set(),
        credited: new Set(),
        expectedSnapshots: [],
      };

      // The opening writes two events at once (revisions 0 and 1).
      const opened = await handleAccountCommand(repository, accountId, {
        type: 'OpenAccount',
        accountId,
        ownerId: 'owner',
        currency: 'EUR',
        initialDeposit: 10_000,
      });
      track(model, opened, 2);
      model.balance = 10_000;
      await expectLoadEqualsFullFold(accountId);

      const commandCount = 35 + Math.floor(random() * 5); // ~37
      const kinds: string[] = [];
      for (let i = 0; i < commandCount; i++) {
        const { command, leg, writes, delta } = nextCommand(random, model);
        kinds.push(command.type + (writes === 0 ? '(again)' : ''));
        const eventId = leg && 'transferId' in command ? legId(command.transferId, leg) : undefined;
        const result = await handleAccountCommand(repository, accountId, command, { eventId });
        track(model, result, writes);
        model.balance += delta;

        const loaded = await expectLoadEqualsFullFold(accountId);
        expect(loaded.state.balance).toBe(model.balance);
        expect(loaded.revision).toBe(BigInt(model.revision));
        if (result.ok) expect(result.state).toStrictEqual(loaded.state);

        // Snapshots exist exactly where due, and each holds the full fold up to its revision.
        const snapshots = await snapshotsOf(accountId);
        expect(snapshots.map((s) => Number(s.data.revision))).toEqual(model.expectedSnapshots);
      }

      // The sequence exercised the interesting cases: several snapshots, no-op re-sends, transfer legs.
      expect(model.expectedSnapshots.length).toBeGreaterThanOrEqual(4);
      expect(kinds.some((k) => k.endsWith('(again)'))).toBe(true);

      for (const snapshot of await snapshotsOf(accountId)) {
        expect(snapshot.type).toBe('AccountSnapshot');
        expect(snapshot.data.schema).toBe(3);
        const revision = BigInt(snapshot.data.revision as string);
        const upTo = await repository.loadWithoutSnapshot(accountId, (e) => e.revision <= revision);
        expect(upTo.revision).toBe(revision);
        expect(snapshot.data.state).toStrictEqual(JSON.parse(JSON.stringify(upTo.state)));
      }

      // load() really starts from the latest snapshot: it reads the account stream only after it.
      const latest = model.expectedSnapshots.at(-1)!;
      const { loaded, fromRevision } = await loadReadingFrom(accountId);
      expect(fromRevision).toBe(BigInt(latest + 1));
      expect(loaded).toStrictEqual(await repository.loadWithoutSnapshot(accountId));

      // The stream itself holds each transfer leg once, whatever was re-sent.
      const events = await store.readStream(accountStream(accountId));
      const legs = events.filter((e) => e.type.startsWith('Transfer')).map((e) => `${e.type}:${e.data.transferId as string}`);
      expect(new Set(legs).size).toBe(legs.length);
    },
  );

  test('a snapshot of schema 1 (the legs in one flat map) is read exactly: its legs put in buckets, only the tail folded', async () => {
    const accountId = await openAccount(repository, 1_000, 'owner');
    for (const [i, transferId] of ['t-1', 't-2', 't-3'].entries())
      await handleAccountCommand(repository, accountId, {
        type: 'DebitForTransfer',
        transferId,
        amount: 10 * (i + 1),
        currency: 'EUR',
        toAccountId: 'x',
      });
    await handleAccountCommand(repository, accountId, { type: 'RefundForTransfer', transferId: 't-2' });
    await handleAccountCommand(repository, accountId, {
      type: 'CreditForTransfer',
      transferId: 't-4',
      amount: 5,
      currency: 'EUR',
      fromAccountId: 'y',
    });
    const full = await repository.loadWithoutSnapshot(accountId);
    // What a process of the previous version wrote: the same state, its legs in one flat map, at the head's revision.
    const { transfers: _buckets, ...rest } = full.state;
    await store.appendToStream(
      snapshotStream(accountId),
      [
        toNewEvent(
          {
            type: 'AccountSnapshot',
            data: { schema: 1, revision: full.revision.toString(), state: { ...rest, transfers: allLegs(full.state) } },
          },
          {},
        ),
      ],
      { expectedRevision: 'any' },
    );
    const { loaded, fromRevision } = await loadReadingFrom(accountId);
    expect(fromRevision).toBe((full.revision as bigint) + 1n); // the snapshot was used
    expect(loaded).toStrictEqual(full);
    expect(legsOf(loaded.state, 't-2')).toEqual({ debited: 20, refunded: 20 });
    // A retried leg is still a no-op on it: nothing is written twice.
    const retried = await handleAccountCommand(repository, accountId, {
      type: 'DebitForTransfer',
      transferId: 't-1',
      amount: 10,
      currency: 'EUR',
      toAccountId: 'x',
    });
    expect(retried).toMatchObject({ ok: true, eventsWritten: 0 });
  });

  test('a snapshot of schema 2 (before holds: no `held`) is read exactly, with nothing held', async () => {
    const accountId = await openAccount(repository, 1_000, 'owner');
    await handleAccountCommand(repository, accountId, { type: 'Withdraw', amount: 100 });
    const full = await repository.loadWithoutSnapshot(accountId);
    const { held: _held, ...previous } = full.state;
    await store.appendToStream(
      snapshotStream(accountId),
      [toNewEvent({ type: 'AccountSnapshot', data: { schema: 2, revision: full.revision.toString(), state: previous } }, {})],
      { expectedRevision: 'any' },
    );
    const { loaded, fromRevision } = await loadReadingFrom(accountId);
    expect(fromRevision).toBe((full.revision as bigint) + 1n); // the snapshot was used
    expect(loaded).toStrictEqual(full);
    expect(loaded.state.held).toBe(0);
  });

  test('a snapshot of an unknown schema (or malformed) is ignored: load equals the full fold', async () => {
    const accountId = await openAccount(repository, 1_000, 'owner');
    for (let i = 1; i <= 6; i++) await handleAccountCommand(repository, accountId, { type: 'Deposit', amount: i * 10 });
    // 8 events (revisions 0..7): one genuine snapshot at revision 4.
    expect((await snapshotsOf(accountId)).map((s) => s.data.revision)).toEqual(['4']);
    const full = await repository.loadWithoutSnapshot(accountId);
    expect(full.state.balance).toBe(1_210);

    const lying = { ...full.state, balance: 999_999_999, status: 'closed' };
    const bogusSnapshots = [
      { schema: 4, revision: '7', state: lying },
      // Schema 2 (no holds yet), malformed: ignored too.
      { schema: 2, revision: '7', state: { ...lying, held: undefined, transfers: 'not a map' } },
      // The previous shape (schema 1: one flat map of the transfers' legs), malformed: ignored too.
      { schema: 1, revision: '7', state: { ...lying, transfers: 'not a map' } },
      { schema: 1, revision: '7', state: { ...lying, transfers: { 't-1': 5 } } },
      { schema: 1, revision: '7', state: { ...lying, transfers: [] } },
      { schema: 0, revision: '7', state: lying },
      { schema: '3', revision: '7', state: lying },
      { revision: '7', state: lying },
      { schema: 3, revision: 7, state: lying }, // revision must be a string
      { schema: 3, revision: '7' }, // no state
    ];
    for (const data of bogusSnapshots) {
      await store.appendToStream(snapshotStream(accountId), [toNewEvent({ type: 'AccountSnapshot', data }, {})], {
        expectedRevision: 'any',
      });
      const { loaded, fromRevision } = await loadReadingFrom(accountId);
      expect(loaded).toStrictEqual(full);
      expect(fromRevision).toBe(0n); // the bogus latest snapshot was ignored: a full read
    }

    // Commands still decide on the true state, and the next genuine snapshot is used again.
    const rejected = await handleAccountCommand(repository, accountId, { type: 'Withdraw', amount: 1_211 });
    expect(rejected).toMatchObject({ ok: false, rejection: { type: 'insufficient_funds' } });
    await handleAccountCommand(repository, accountId, { type: 'Withdraw', amount: 10 }); // revision 8
    await handleAccountCommand(repository, accountId, { type: 'Withdraw', amount: 10 }); // revision 9: snapshot due
    const snapshots = await snapshotsOf(accountId);
    expect(snapshots.at(-1)!.data).toMatchObject({ schema: 3, revision: '9' });
    const { loaded, fromRevision } = await loadReadingFrom(accountId);
    expect(fromRevision).toBe(10n);
    expect(loaded).toStrictEqual(await repository.loadWithoutSnapshot(accountId));
    expect(loaded.state.balance).toBe(1_190);
  });

  test('a snapshot at the very head of the stream: load reads an empty tail and keeps the revision', async () => {
    const accountId = randomUUID();
    await handleAccountCommand(repository, accountId, { type: 'OpenAccount', accountId, ownerId: 'owner', currency: 'EUR' });
    for (let i = 0; i < 4; i++) await handleAccountCommand(repository, accountId, { type: 'Deposit', amount: 1 });
    expect((await snapshotsOf(accountId)).map((s) => s.data.revision)).toEqual(['4']);
    const loaded = await expectLoadEqualsFullFold(accountId);
    expect(loaded.revision).toBe(4n);
    expect(loaded.state.balance).toBe(4);
  });

  test('an account never opened loads as none at no_stream, with or without snapshots', async () => {
    const accountId = randomUUID();
    const loaded = await expectLoadEqualsFullFold(accountId);
    expect(loaded).toMatchObject({ revision: 'no_stream', state: { status: 'none', accountId, balance: 0 } });
  });
});

describe(`handleAccountCommand under concurrency (${testStoreKind()} store)`, () => {
  let testStore: TestStore;
  let store: EventStore;

  beforeAll(async () => {
    testStore = await unitOrPostgresStore('account_concurrency', { poolSize: 30 });
    store = testStore.store;
  });
  afterAll(async () => {
    await testStore?.close();
  });

  test.each([
    ['without snapshots', 1_000_000],
    ['with a snapshot every 5 events', SNAPSHOT_EVERY],
  ])(
    '20 concurrent withdrawals of 100 from 1000 (%s): exactly 10 succeed, 10 insufficient_funds, balance 0',
    async (_label, snapshotEvery) => {
      const repository = new AccountRepository(store, snapshotEvery, undefined, 0);
      const accountId = randomUUID();
      const opened = await handleAccountCommand(repository, accountId, {
        type: 'OpenAccount',
        accountId,
        ownerId: 'owner',
        currency: 'EUR',
        initialDeposit: 1_000,
      });
      expect(opened.ok).toBe(true);

      // Two processes (within one, commands on a stream take turns and never conflict): the other has its own client
      // of the same store. Whether they conflict depends on timing (same-stream-turns.test.ts makes that race certain);
      // what holds either way is asserted below: exactly what fits lands, once each, and the balance is exact.
      const other = new AccountRepository(Object.create(store) as EventStore, snapshotEvery, undefined, 0);
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          handleAccountCommand(i % 2 === 0 ? repository : other, accountId, { type: 'Withdraw', amount: 100 }),
        ),
      );

      const succeeded = results.filter((r) => r.ok);
      const rejected = results.filter((r) => !r.ok);
      expect(succeeded).toHaveLength(10);
      expect(rejected).toHaveLength(10);
      for (const r of rejected) expect(r).toMatchObject({ ok: false, rejection: { type: 'insufficient_funds' } });

      // Every success wrote one event at its own revision.
      const revisions = succeeded.map((r) => (r.ok ? r.revision : undefined));
      expect(new Set(revisions).size).toBe(10);
      expect(succeeded.map((r) => (r.ok ? r.state.balance : -1)).sort((a, b) => a - b)).toEqual([
        0, 100, 200, 300, 400, 500, 600, 700, 800, 900,
      ]);

      const events = await store.readStream(accountStream(accountId));
      expect(events.filter((e) => e.type === 'MoneyWithdrawn')).toHaveLength(10);
      expect(events.map((e) => e.revision)).toEqual(Array.from({ length: 12 }, (_, i) => BigInt(i)));
      // balanceAfter tells the same story as the order of the stream.
      expect(events.slice(2).map((e) => e.data.balanceAfter)).toEqual([900, 800, 700, 600, 500, 400, 300, 200, 100, 0]);

      const loaded = await repository.load(accountId);
      expect(loaded.state.balance).toBe(0);
      expect(loaded.revision).toBe(11n);
      expect(loaded).toStrictEqual(await repository.loadWithoutSnapshot(accountId));
    },
  );
});
