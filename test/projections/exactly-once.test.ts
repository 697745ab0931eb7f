import { randomUUID } from 'node:crypto';
import { BatchLog } from '../../application/batch-log';
import { HoldLog } from '../../application/hold-log';
import type { RecordedEvent } from '../../eventstore/event-store';
import { ALL_PROJECTIONS } from '../../projections/all-projections';
import { canBatch, OutOfOrderError, type BatchProjection, type Projection } from '../../projections/projection';
import { ProjectionRunner, readCheckpoint } from '../../projections/projection-runner';
import { rebuildProjection } from '../../projections/rebuild-projection';
import { acceptBatch, type AcceptBatchDeps } from '../../temporal/batch-client';
import { acceptHold, captureHold, voidHold, type HoldDeps } from '../../temporal/hold-client';
import { holdStatusQuery } from '../../workflows/hold-saga-contract';
import { ApiLoad, ApiStack, DeliveryLog } from '../support/api-stack';
import {
  allTables,
  expectReadModelsToMatchStore,
  freshTables,
  keptBy,
  readWholeLog,
  seededRandom,
  shuffle,
  tableRows,
} from '../support/read-model-checks';

/** A breath between two reads of a reader loop (readers must not starve the rest of this process). */
const pause = () => new Promise((resolve) => setTimeout(resolve, 5));

/** The physical table map of every projection for one variant (`<table>__<suffix>`). */
const variant = (suffix: string) => (logical: string) => `${logical}__${suffix}`;

describe('projections: exactly-once effect under duplicates and reordering; rebuild equals live processing', () => {
  let api: ApiStack;
  let accounts: string[];
  /** The last event of the store when the deliveries below were taken. */
  let log: RecordedEvent[];

  beforeAll(async () => {
    api = await ApiStack.create('proj_exactly_once');
    // A varied history: deposits, withdrawals, transfers that complete, fail and are compensated, a closed account.
    const open = async (initialDeposit: number, currency = 'EUR') => {
      const res = await api
        .http()
        .post('/accounts')
        .send({ ownerId: 'p', currency, ...(initialDeposit > 0 ? { initialDeposit } : {}) });
      expect(res.status).toBe(201);
      return res.body.accountId as string;
    };
    accounts = [await open(50_000), await open(20_000), await open(5_000), await open(0), await open(1_000), await open(0, 'USD')];
    const closed = await open(0);
    expect((await api.http().post(`/accounts/${closed}/close`)).status).toBe(200);
    for (const [i, account] of accounts.slice(0, 5).entries()) {
      expect(
        (
          await api
            .http()
            .post(`/accounts/${account}/deposits`)
            .send({ amount: 100 * (i + 1) })
        ).status,
      ).toBe(200);
      expect([200, 422]).toContain((await api.http().post(`/accounts/${account}/withdrawals`).send({ amount: 300 })).status);
    }
    const transfers: [string, string, number][] = [
      [accounts[0]!, accounts[1]!, 2_500],
      [accounts[1]!, accounts[2]!, 7_000],
      [accounts[2]!, accounts[3]!, 1_000],
      [accounts[3]!, accounts[0]!, 99_999], // fails: insufficient funds
      [accounts[0]!, closed, 400], // compensated: target closed
      [accounts[4]!, accounts[0]!, 1_000],
      [accounts[0]!, accounts[4]!, 3_000],
    ];
    for (const [fromAccountId, toAccountId, amount] of transfers) {
      const transferId = randomUUID();
      expect((await api.http().post('/transfers').send({ transferId, fromAccountId, toAccountId, amount })).status).toBe(202);
      expect(['completed', 'failed', 'compensated']).toContain(
        (await api.http().get(`/transfers/${transferId}`).query({ wait: 20 })).body.status,
      );
    }
    // Holds (issue 25), each settled: captured in part, voided, refused (not enough funds), expired by its timer.
    const holdDeps: HoldDeps = {
      client: api.stack.client,
      taskQueue: api.stack.taskQueue,
      holds: new HoldLog(api.store),
      transfers: api.stack.transfers,
    };
    const by = { actor: 'test-operator' };
    const hold = async (fromAccountId: string, toAccountId: string, amount: number, expiresInSeconds = 3600) => {
      const holdId = randomUUID();
      const expiresAt = new Date(Date.now() + expiresInSeconds * 1000).toISOString();
      const { handle } = await acceptHold(holdDeps, { holdId, fromAccountId, toAccountId, amount, expiresAt }, by);
      for (let i = 0; i < 600 && (await handle.query(holdStatusQuery)).status === 'pending'; i++)
        await new Promise((r) => setTimeout(r, 50));
      return { holdId, handle };
    };
    expect((await captureHold(holdDeps, (await hold(accounts[0]!, accounts[1]!, 1_000)).holdId, 400, by)).status).toBe('captured');
    expect((await voidHold(holdDeps, (await hold(accounts[1]!, accounts[2]!, 500)).holdId, by)).status).toBe('voided');
    expect((await (await hold(accounts[3]!, accounts[0]!, 99_999)).handle.result()).status).toBe('failed');
    expect((await (await hold(accounts[4]!, accounts[0]!, 100, 2)).handle.result()).status).toBe('expired');
    // Batches (issue 26): one not atomic (completed, refused for funds, compensated by a closed target), one atomic
    // that fails whole.
    const batchDeps: AcceptBatchDeps = { client: api.stack.client, taskQueue: api.stack.taskQueue, batches: new BatchLog(api.store) };
    const batch = async (atomic: boolean, items: [string, string, number][]) => {
      const request = {
        batchId: randomUUID(),
        atomic,
        items: items.map(([fromAccountId, toAccountId, amount]) => ({ transferId: randomUUID(), fromAccountId, toAccountId, amount })),
      };
      return (await (await acceptBatch(batchDeps, request, by)).handle.result()).status;
    };
    expect(
      await batch(false, [
        [accounts[0]!, accounts[1]!, 100],
        [accounts[3]!, accounts[0]!, 99_999],
        [accounts[0]!, closed, 50],
        [accounts[1]!, accounts[4]!, 70],
      ]),
    ).toBe('partially_completed');
    expect(
      await batch(true, [
        [accounts[0]!, accounts[1]!, 10],
        [accounts[3]!, accounts[0]!, 99_999],
        [accounts[1]!, accounts[2]!, 20],
      ]),
    ).toBe('failed');
    accounts.push(closed);
    await api.caughtUp();
    log = await readWholeLog(api.store);
  });
  afterAll(async () => api?.close());

  const relevant = (projection: Projection) =>
    log.filter((e) => e.stream.startsWith(projection.streamPrefix) && (!projection.eventTypes || projection.eventTypes.includes(e.type)));
  /**
   * Of those, the events a projection leaves alone ('ignored'): the batches read model is given every transfer's outcome
   * (by event type) and keeps only those of batch items (metadata.batchId). The others keep every event they are given.
   */
  const ignoredBy = (projection: Projection) => new Set(relevant(projection).filter((e) => !keptBy(projection, e)));

  test('the history has every kind of event and transfer outcome', async () => {
    const types = new Set(log.map((e) => e.type));
    for (const type of [
      'AccountOpened',
      'MoneyDeposited',
      'MoneyWithdrawn',
      'AccountClosed',
      'TransferDebited',
      'TransferCredited',
      'TransferRefunded',
      'TransferCompleted',
      'TransferFailed',
      'TransferCompensated',
      'HoldPlaced',
      'HoldReleased',
      'HoldCaptured',
      'HoldRefused',
    ]) {
      expect(types).toContain(type);
    }
    await expectReadModelsToMatchStore(api.store, api.readModels);
  });

  test('the same events delivered twice and shuffled (out-of-order ones retried) end identical to one in-order pass and to the folds', async () => {
    const deliveries = new DeliveryLog();
    const runner = new ProjectionRunner(api.store, api.readModels, ALL_PROJECTIONS, deliveries.observer());
    const random = seededRandom(20_240_601);
    const outOfOrder: Record<string, number> = {};

    for (const projection of ALL_PROJECTIONS) {
      const events = relevant(projection);
      const ignored = ignoredBy(projection);
      const kept = events.length - ignored.size;
      expect(kept).toBeGreaterThan(10);
      const last = events.at(-1)!.position;

      // One in-order pass: every event applied once (or ignored).
      const inOrder = await freshTables(api.readModels, projection, 'inorder');
      for (const event of events) await runner.applyOne(projection, inOrder, event, `${projection.name}__inorder`);
      expect(deliveries.count(projection.name, 'applied')).toBe(kept);
      expect(deliveries.count(projection.name, 'ignored')).toBe(ignored.size);
      expect(await readCheckpoint(api.readModels, `${projection.name}__inorder`)).toEqual(last);

      // The same again: every delivery is a duplicate (or ignored) and changes nothing.
      const snapshot = async () =>
        Promise.all(Object.entries(inOrder).map(([logical, physical]) => tableRows(api.readModels, logical, physical)));
      const before = await snapshot();
      for (const event of events) await runner.applyOne(projection, inOrder, event, `${projection.name}__inorder`);
      expect(deliveries.count(projection.name, 'duplicate')).toBe(kept);
      expect(await snapshot()).toEqual(before);

      // Every event twice (a third time for some), shuffled. A delivery that comes before the revision
      // it follows throws OutOfOrderError and is delivered again later, as a subscription redelivers.
      const shuffledTables = await freshTables(api.readModels, projection, 'shuffled');
      const queue = shuffle([...events, ...events, ...events.filter(() => random() < 0.3)], random);
      const deliveredTotal = queue.filter((e) => !ignored.has(e)).length;
      const appliedBefore = deliveries.count(projection.name, 'applied');
      const duplicatesBefore = deliveries.count(projection.name, 'duplicate');
      outOfOrder[projection.name] = 0;
      for (let attempts = 0; queue.length > 0; attempts++) {
        expect(attempts).toBeLessThan(deliveredTotal * 50);
        const event = queue.shift()!;
        try {
          await runner.applyOne(projection, shuffledTables, event, `${projection.name}__shuffled`);
        } catch (error) {
          if (!(error instanceof OutOfOrderError)) throw error;
          outOfOrder[projection.name]! += 1;
          queue.push(event);
        }
      }
      expect(deliveries.count(projection.name, 'applied') - appliedBefore).toBe(kept);
      expect(deliveries.count(projection.name, 'duplicate') - duplicatesBefore).toBe(deliveredTotal - kept);
      expect(await readCheckpoint(api.readModels, `${projection.name}__shuffled`)).toEqual(last);
    }

    // Balances and transfers keep one row per stream and must see each stream in order; history lines go in any order.
    expect(outOfOrder['account-balances']).toBeGreaterThan(0);
    expect(outOfOrder.transfers).toBeGreaterThan(0);
    expect(outOfOrder['account-history']).toBe(0);

    // Whole tables, every column: shuffled+duplicated == in order == live processing.
    const inOrderTables = await allTables(api.readModels, variant('inorder'));
    expect(await allTables(api.readModels, variant('shuffled'))).toEqual(inOrderTables);
    expect(await allTables(api.readModels)).toEqual(inOrderTables);
    // And the folds of the event store.
    await expectReadModelsToMatchStore(api.store, api.readModels, variant('shuffled'));
  });

  test('batches in one statement: random sizes, overlapping redeliveries and batches ahead of their stream end identical to live processing, each event applied once', async () => {
    const random = seededRandom(4_711);
    const pick = (n: number) => 1 + Math.floor(random() * n);
    for (const projection of ALL_PROJECTIONS) {
      if (!canBatch(projection)) throw new Error(`${projection.name} has no batch path`);
      const events = relevant(projection);
      const kept = events.length - ignoredBy(projection).size;
      let oneByOne = 0;
      // The same projection, counting the events its statement leaves to apply().
      const counted: BatchProjection = {
        ...projection,
        apply: async (client, event, tables) => {
          oneByOne += 1;
          return projection.apply(client, event, tables);
        },
      };

      // A clean pass in batches of 1 to 40: every event written by the batch statement, none by apply().
      const deliveries = new DeliveryLog();
      const runner = new ProjectionRunner(api.store, api.readModels, [counted], deliveries.observer());
      const clean = await freshTables(api.readModels, projection, 'batched');
      for (let i = 0; i < events.length;) {
        const size = pick(40);
        await runner.applyMany(counted, clean, events.slice(i, i + size), `${projection.name}__batched`);
        i += size;
      }
      expect(oneByOne).toBe(0);
      expect(deliveries.count(projection.name, 'applied')).toBe(kept);
      expect(await readCheckpoint(api.readModels, `${projection.name}__batched`)).toEqual(events.at(-1)!.position);

      // A messy pass: each batch may go back over events already applied (a redelivery after a crash, mixing applied
      // and new ones in one batch), and some batches come ahead of the events they follow (refused, then redelivered).
      const messy = await freshTables(api.readModels, projection, 'messy');
      const messyLog = new DeliveryLog();
      const messyRunner = new ProjectionRunner(api.store, api.readModels, [counted], messyLog.observer());
      let refused = 0;
      for (let done = 0; done < events.length;) {
        // A window [from, to): back over applied events, or ahead, skipping some (which still have to come).
        const from = random() < 0.2 ? done + pick(10) : Math.max(0, done - (random() < 0.4 ? pick(15) : 0));
        const to = Math.max(from, done) + pick(30);
        try {
          await messyRunner.applyMany(counted, messy, events.slice(from, to), `${projection.name}__messy`);
          if (from <= done) done = Math.min(events.length, Math.max(done, to));
        } catch (error) {
          if (!(error instanceof OutOfOrderError)) throw error;
          refused += 1; // as a subscription would, deliver from where it stood
        }
      }
      expect(messyLog.count(projection.name, 'applied')).toBe(kept);
      const appliedIds = messyLog.entries.filter((e) => e.outcome === 'applied').map((e) => e.event.id);
      expect(new Set(appliedIds).size).toBe(kept);
      if (projection.name === 'account-history' || projection.name === 'business-time') expect(refused).toBe(0); // lines: any order
      // The same events twice in one batch: each applied once.
      const twice = await freshTables(api.readModels, projection, 'twice');
      const twiceLog = new DeliveryLog();
      const twiceRunner = new ProjectionRunner(api.store, api.readModels, [counted], twiceLog.observer());
      const first = events.filter((e) => !ignoredBy(projection).has(e)).slice(0, 6);
      await twiceRunner.applyMany(counted, twice, [...first, ...first], `${projection.name}__twice`);
      expect(twiceLog.count(projection.name, 'applied')).toBe(first.length);
      expect(twiceLog.count(projection.name, 'duplicate')).toBe(first.length);
      // A stream's second event alone, before its first: refused (its row is not at the revision before it), nothing written.
      // (The batches read model keeps a row per stream for the batch streams only: an item's outcome is keyed.)
      const second = events.find((e) => e.revision === 1n && (projection.name !== 'transfer-batches' || e.stream.startsWith('batch-')))!;
      const ahead = await freshTables(api.readModels, projection, 'ahead');
      const attempt = runner.applyMany(counted, ahead, [second], `${projection.name}__ahead`);
      if (['account-balances', 'transfers', 'holds', 'transfer-batches'].includes(projection.name)) {
        await expect(attempt).rejects.toThrow(OutOfOrderError);
        expect(await readCheckpoint(api.readModels, `${projection.name}__ahead`)).toBeUndefined();
      } else await attempt;
    }
    // Whole tables, every column: batched == messy == live processing, and the folds of the event store.
    expect(await allTables(api.readModels, variant('messy'))).toEqual(await allTables(api.readModels, variant('batched')));
    expect(await allTables(api.readModels, variant('batched'))).toEqual(await allTables(api.readModels));
    await expectReadModelsToMatchStore(api.store, api.readModels, variant('batched'));
  });

  test('rebuild yields the same tables as live processing, while GET /accounts/:id keeps answering', async () => {
    const live = await allTables(api.readModels);
    const reads = { started: 0, statuses: new Map<number, number>(), balances: [] as [string, number][] };
    let rebuilding = true;
    const expectedBalance = new Map((live.rm_account_balances ?? []).map((r) => [String(r.account_id), Number(r.balance)]));
    const reader = async () => {
      for (let i = 0; rebuilding; i++) {
        const accountId = accounts[i % accounts.length]!;
        reads.started += 1;
        const paths = [`/accounts/${accountId}`, `/accounts/${accountId}/history?limit=5`];
        const res = await api.http().get(paths[i % 2]!);
        reads.statuses.set(res.status, (reads.statuses.get(res.status) ?? 0) + 1);
        if (i % 2 === 0 && res.status === 200) reads.balances.push([accountId, res.body.balance as number]);
        await pause();
      }
    };
    const readers = Array.from({ length: 4 }, () => reader());
    const reports = [];
    try {
      for (const projection of ALL_PROJECTIONS) reports.push(await rebuildProjection(api.store, api.readModels, projection));
    } finally {
      rebuilding = false;
      await Promise.all(readers);
    }
    expect(reports.map((r) => r.projection)).toEqual(ALL_PROJECTIONS.map((p) => p.name));
    for (const [i, projection] of ALL_PROJECTIONS.entries())
      expect(reports[i]!.events).toBe(
        log.filter(
          (e) => e.stream.startsWith(projection.streamPrefix) && (!projection.eventTypes || projection.eventTypes.includes(e.type)),
        ).length,
      );
    expect(reads.started).toBeGreaterThan(0);
    expect([...reads.statuses.keys()]).toEqual([200]);
    for (const [accountId, balance] of reads.balances) expect(balance).toBe(expectedBalance.get(accountId));
    expect(await allTables(api.readModels)).toEqual(live);
    // The shadow tables are gone; the live tables keep their primary keys.
    const leftovers = await api.readModels.query(
      `SELECT tablename FROM pg_tables WHERE tablename LIKE 'rm\\_%\\_\\_rebuild' OR tablename LIKE 'rm\\_%\\_\\_old'`,
    );
    expect(leftovers.rows).toEqual([]);
    const pkeys = await api.readModels.query(
      `SELECT indexname FROM pg_indexes WHERE tablename IN ('rm_account_balances', 'rm_account_history', 'rm_transfers') AND indexname LIKE '%pkey' ORDER BY indexname`,
    );
    expect(pkeys.rows.map((r) => r.indexname)).toEqual(['rm_account_balances_pkey', 'rm_account_history_pkey', 'rm_transfers_pkey']);
  });

  test('rebuild under live writes: after catching up, the rebuilt tables equal an in-order pass of the log and the folds', async () => {
    const load = new ApiLoad(api, accounts, seededRandom(7), 2, 10).start();
    const reads = new Map<number, number>();
    let rebuilding = true;
    const reader = async () => {
      for (let i = 0; rebuilding; i++) {
        const res = await api.http().get(`/accounts/${accounts[i % accounts.length]!}`);
        reads.set(res.status, (reads.get(res.status) ?? 0) + 1);
        await pause();
      }
    };
    const readers = Array.from({ length: 3 }, () => reader());
    try {
      // Let traffic start, then rebuild everything while it runs.
      const base = load.requests;
      while (load.requests < base + 20) await new Promise((r) => setTimeout(r, 20));
      for (const projection of ALL_PROJECTIONS) await rebuildProjection(api.store, api.readModels, projection);
      expect(load.requests).toBeGreaterThan(base + 20);
    } finally {
      rebuilding = false;
      await Promise.all(readers);
      await load.stop();
    }
    expect(load.unexpected).toEqual([]);
    expect([...reads.keys()]).toEqual([200]);
    await api.caughtUp();

    // The reference: a single in-order pass over the whole log into fresh tables.
    const events = await readWholeLog(api.store);
    const runner = new ProjectionRunner(api.store, api.readModels, ALL_PROJECTIONS);
    for (const projection of ALL_PROJECTIONS) {
      const tables = await freshTables(api.readModels, projection, 'reference');
      for (const event of events)
        if (event.stream.startsWith(projection.streamPrefix))
          await runner.applyOne(projection, tables, event, `${projection.name}__reference`);
    }
    expect(await allTables(api.readModels)).toEqual(await allTables(api.readModels, variant('reference')));
    const counted = await expectReadModelsToMatchStore(api.store, api.readModels);
    expect(counted.transfers).toBeGreaterThan(7);
  });
});
