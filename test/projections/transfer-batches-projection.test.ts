import { randomUUID } from 'node:crypto';
import { BatchLog } from '../../application/batch-log';
import { handleAccountCommand } from '../../application/account-commands';
import { businessTimeOf } from '../../api/business-time-settings';
import { businessDateOf } from '../../domain/business-calendar';
import { accountStream } from '../../domain/account-events';
import { batchStream, type BatchItem, type BatchRequest } from '../../domain/transfer-batch';
import { TRANSFER_STREAM_PREFIX, transferStream } from '../../domain/transfer-events';
import type { RecordedEvent } from '../../eventstore/event-store';
import { formatPosition } from '../../eventstore/event-store';
import { OutOfOrderError, type BatchProjection } from '../../projections/projection';
import { ProjectionRunner, projectionLag, readCheckpoint } from '../../projections/projection-runner';
import { rebuildProjection } from '../../projections/rebuild-projection';
import { transferBatchesProjection } from '../../projections/transfer-batches-projection';
import { getBatch, listBatches, listBatchItems, type BatchItemRow } from '../../projections/transfer-batches-queries';
import { findTransfer, listTransfers, transferRowView } from '../../projections/transfers-queries';
import { acceptBatch, type AcceptBatchDeps } from '../../temporal/batch-client';
import { ApiStack, DeliveryLog } from '../support/api-stack';
import { freshTables, readWholeLog, seededRandom, shuffle, tableRows } from '../support/read-model-checks';

const TABLES = ['rm_transfer_batches', 'rm_transfer_batch_items', 'rm_transfer_batch_outcomes'];

/**
 * The batches read model (issue 26): rm_transfer_batches, rm_transfer_batch_items and rm_transfer_batch_outcomes from the
 * batch streams and the batch items' transfer streams, and `batchId` on the transfers, histories and statements. The
 * batches run through their saga on Temporal and PostgreSQL (as test/saga/batch-saga.test.ts runs them); one more is
 * only accepted (its saga never started), so that it stays pending.
 */
describe('projections: the batches read model, and batchId in transfers, histories and statements', () => {
  let api: ApiStack;
  let deps: AcceptBatchDeps;
  let batches: BatchLog;
  const operator = { actor: 'test-operator', correlationId: 'corr-batches-rm' };
  const owner = `batch-owner-${randomUUID().slice(0, 8)}`;
  const acc: Record<string, string> = {};
  const req: Record<string, BatchRequest> = {};
  let taken: string;

  const item = (fromAccountId: string, toAccountId: string, amount: number, transferId: string = randomUUID()): BatchItem => ({
    transferId,
    fromAccountId,
    toAccountId,
    amount,
  });
  const rows = async (tables: Record<string, string> = {}) => {
    const out: Record<string, Record<string, unknown>[]> = {};
    for (const logical of TABLES) out[logical] = await tableRows(api.readModels, logical, tables[logical] ?? logical);
    return out;
  };
  /** The events this projection is given (its event types, every stream), in log order. */
  const relevant = async () => (await readWholeLog(api.store)).filter((e) => (transferBatchesProjection.eventTypes ?? []).includes(e.type));
  /** Those it keeps: the batch streams' and the outcomes of batch items (metadata.batchId); other transfers' are ignored. */
  const concerned = (e: RecordedEvent) => e.stream.startsWith('batch-') || typeof e.metadata.batchId === 'string';

  beforeAll(async () => {
    api = await ApiStack.create('proj_batches');
    batches = new BatchLog(api.store);
    deps = { client: api.stack.client, taskQueue: api.stack.taskQueue, batches };
    acc.rich = await api.openAccount(owner, 10_000);
    acc.poor = await api.openAccount(owner, 50);
    acc.to = await api.openAccount(owner);
    acc.closed = await api.openAccount(`batch-other-${randomUUID().slice(0, 8)}`);
    acc.outsider = await api.openAccount(`batch-outsider-${randomUUID().slice(0, 8)}`, 1_000);
    acc.outsiderTo = await api.openAccount(`batch-outsider-${randomUUID().slice(0, 8)}`);
    expect((await handleAccountCommand(api.accounts, acc.closed, { type: 'CloseAccount' })).ok).toBe(true);
    // A transfer that is no batch's item (its outcome is ignored here), whose id a batch item then names.
    taken = randomUUID();
    const single = await api
      .http()
      .post('/transfers')
      .send({ transferId: taken, fromAccountId: acc.rich, toAccountId: acc.to, amount: 10 });
    expect(single.status).toBe(202);
    expect((await api.http().get(`/transfers/${taken}`).query({ wait: 20 })).body.status).toBe('completed');

    const run = async (name: string, request: BatchRequest) => {
      req[name] = request;
      const { handle } = await acceptBatch(deps, request, operator);
      return handle.result();
    };
    // Not atomic: completed, refused for funds, compensated (a closed target), an id of another transfer, completed.
    expect(
      await run('mixed', {
        batchId: `mixed-${randomUUID()}`,
        atomic: false,
        items: [
          item(acc.rich, acc.to, 300),
          item(acc.poor, acc.to, 80),
          item(acc.rich, acc.closed, 7),
          item(acc.rich, acc.to, 999, taken),
          item(acc.rich, acc.poor, 200),
        ],
      }),
    ).toMatchObject({ status: 'partially_completed', counts: { completed: 2, failed: 2, compensated: 1 } });
    // Atomic, one item refused: every item fails.
    expect(
      await run('atomic', {
        batchId: `atomic-${randomUUID()}`,
        atomic: true,
        items: [item(acc.rich, acc.to, 100), item(acc.poor, acc.to, 10_000), item(acc.rich, acc.poor, 5)],
      }),
    ).toMatchObject({ status: 'failed', counts: { completed: 0, failed: 3, compensated: 0 } });
    // All completed, between accounts of other owners.
    expect(
      await run('outsiders', {
        batchId: `outsiders-${randomUUID()}`,
        atomic: false,
        items: [item(acc.outsider, acc.outsiderTo, 1), item(acc.outsider, acc.outsiderTo, 2)],
      }),
    ).toMatchObject({ status: 'completed', counts: { completed: 2, failed: 0, compensated: 0 } });
    // Accepted only: no saga, so pending with every item pending.
    req.pending = { batchId: `pending-${randomUUID()}`, atomic: false, items: [item(acc.rich, acc.to, 1), item(acc.rich, acc.to, 2)] };
    expect((await batches.accept(req.pending, operator)).ok).toBe(true);
    await api.caughtUp();
  });
  afterAll(async () => api?.close());

  test('a batch row and its items: status, counts by outcome, reasons, actor, times and the position of the last event applied', async () => {
    const mixed = req.mixed!;
    const batch = await getBatch(api.readModels, mixed.batchId);
    expect(batch).toMatchObject({
      batchId: mixed.batchId,
      atomic: false,
      status: 'partially_completed',
      itemCount: 5,
      counts: { completed: 2, failed: 2, compensated: 1, pending: 0 },
      actor: 'test-operator',
    });
    const batchEvents = await api.store.readStream(batchStream(mixed.batchId));
    expect(batchEvents.map((e) => e.type)).toEqual(['TransferBatchAccepted', 'TransferBatchItemsRejected', 'TransferBatchSettled']);
    expect(batch!.acceptedAt).toBe(new Date(batchEvents[0]!.metadata.occurredAt).toISOString());
    expect(batch!.settledAt).toBe(new Date(batchEvents[2]!.metadata.occurredAt).toISOString());
    expect(batch!.message).toBeUndefined();
    // The position: the latest of its stream's last event and its items' outcomes (the batch settles after them).
    expect(batch!.position).toBe(formatPosition(batchEvents[2]!.position));

    const items = await listBatchItems(api.readModels, mixed.batchId, { limit: 100 });
    const want: Partial<BatchItemRow>[] = [
      { status: 'completed' },
      { status: 'failed', failureReason: 'insufficient_funds' },
      { status: 'compensated', failureReason: 'account_closed' },
      { status: 'failed', failureReason: 'transfer_conflict' },
      { status: 'completed' },
    ];
    expect(items.map((i) => i.index)).toEqual([0, 1, 2, 3, 4]);
    for (const [index, row] of items.entries()) {
      const given = mixed.items[index]!;
      expect(row).toMatchObject({
        ...want[index],
        transferId: given.transferId,
        fromAccountId: given.fromAccountId,
        toAccountId: given.toAccountId,
        amount: given.amount,
      });
      if (row.status === 'completed')
        expect(Object.keys(row).sort()).toEqual(['amount', 'fromAccountId', 'index', 'status', 'toAccountId', 'transferId']);
      else expect(row.failureMessage).toEqual(expect.any(String));
    }
    // Each registered item's outcome is its own stream's; the refused one has no stream of its own (the id's transfer is untouched).
    for (const row of items.filter((i) => i.index !== 3)) {
      const { state } = await api.stack.transfers.load(row.transferId);
      expect({ status: row.status, reason: row.failureReason }).toEqual({ status: state.status, reason: state.failureReason });
    }
    expect((await api.stack.transfers.load(taken)).state.accepted?.batchId).toBeUndefined();

    const atomic = await getBatch(api.readModels, req.atomic!.batchId);
    expect(atomic).toMatchObject({ atomic: true, status: 'failed', counts: { completed: 0, failed: 3, compensated: 0, pending: 0 } });
    const pending = await getBatch(api.readModels, req.pending!.batchId);
    expect(pending).toMatchObject({ status: 'pending', itemCount: 2, counts: { completed: 0, failed: 0, compensated: 0, pending: 2 } });
    expect(pending!.settledAt).toBeUndefined();
    const [accepted] = await api.store.readStream(batchStream(req.pending!.batchId));
    expect(pending!.position).toBe(formatPosition(accepted!.position));
    expect(await getBatch(api.readModels, 'no-such-batch')).toBeUndefined();
    expect(await listBatchItems(api.readModels, 'no-such-batch', { limit: 10 })).toEqual([]);
  });

  test('listBatchItems pages by index (afterIndex) and filters by status; listBatches is newest first, by status and owner, paged by (acceptedAt, batchId)', async () => {
    const id = req.mixed!.batchId;
    const walked: number[] = [];
    let afterIndex: number | undefined;
    for (let pages = 0; ; pages++) {
      expect(pages).toBeLessThan(10);
      const page = await listBatchItems(api.readModels, id, { limit: 2, ...(afterIndex !== undefined ? { afterIndex } : {}) });
      walked.push(...page.map((i) => i.index));
      if (page.length < 2) break;
      afterIndex = page.at(-1)!.index;
    }
    expect(walked).toEqual([0, 1, 2, 3, 4]);
    expect((await listBatchItems(api.readModels, id, { limit: 10, status: 'failed' })).map((i) => i.index)).toEqual([1, 3]);
    expect((await listBatchItems(api.readModels, id, { limit: 10, status: 'completed', afterIndex: 0 })).map((i) => i.index)).toEqual([4]);
    expect((await listBatchItems(api.readModels, id, { limit: 10, status: 'pending' })).map((i) => i.index)).toEqual([]);

    const all = await listBatches(api.readModels, { limit: 100 });
    const order = ['mixed', 'atomic', 'outsiders', 'pending'].map((n) => req[n]!.batchId).reverse();
    expect(all.map((b) => b.batchId)).toEqual(order);
    for (let i = 1; i < all.length; i++) expect(Date.parse(all[i - 1]!.acceptedAt)).toBeGreaterThanOrEqual(Date.parse(all[i]!.acceptedAt));
    const paged: string[] = [];
    let before: { acceptedAt: string; batchId: string } | undefined;
    for (let pages = 0; ; pages++) {
      expect(pages).toBeLessThan(10);
      const page = await listBatches(api.readModels, { limit: 3, ...(before ? { before } : {}) });
      paged.push(...page.map((b) => b.batchId));
      if (page.length < 3) break;
      before = { acceptedAt: page.at(-1)!.acceptedAt, batchId: page.at(-1)!.batchId };
    }
    expect(paged).toEqual(order);
    expect((await listBatches(api.readModels, { limit: 10, status: 'pending' })).map((b) => b.batchId)).toEqual([req.pending!.batchId]);
    expect((await listBatches(api.readModels, { limit: 10, status: 'partially_completed' })).map((b) => b.batchId)).toEqual([
      req.mixed!.batchId,
    ]);
    // An owner's batches: those with an item from or to one of its accounts.
    expect((await listBatches(api.readModels, { limit: 10, ownerId: owner })).map((b) => b.batchId)).toEqual(
      ['mixed', 'atomic', 'pending'].map((n) => req[n]!.batchId).reverse(),
    );
    expect(await listBatches(api.readModels, { limit: 10, ownerId: 'nobody' })).toEqual([]);
  });

  test('batch items carry batchId in the transfers read model (GET /transfers?batchId=, GET /transfers/{id}); other transfers have none', async () => {
    const mixed = req.mixed!;
    const registered = mixed.items.filter((i) => i.transferId !== taken).map((i) => i.transferId);
    const listed = await listTransfers(api.readModels, { batchId: mixed.batchId, limit: 100 });
    expect(listed.rows.map((r) => r.transfer_id).sort()).toEqual([...registered].sort());
    for (const row of listed.rows) expect(transferRowView(row).batchId).toBe(mixed.batchId);
    const other = (await findTransfer(api.readModels, taken))!;
    expect(other.batch_id).toBeNull();
    expect(transferRowView(other)).not.toHaveProperty('batchId');
    // Accepted only: its items have no transfer stream yet, so no transfer row either.
    expect((await listTransfers(api.readModels, { batchId: req.pending!.batchId, limit: 10 })).rows).toEqual([]);

    const res = await api.http().get('/transfers').query({ batchId: mixed.batchId, limit: 100 });
    expect(res.status).toBe(200);
    const views = res.body.transfers as { transferId: string; batchId?: string }[];
    expect(views.map((t) => t.transferId).sort()).toEqual([...registered].sort());
    expect(views.every((t) => t.batchId === mixed.batchId)).toBe(true);
    const one = await api.http().get(`/transfers/${registered[0]}`);
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ transferId: registered[0], batchId: mixed.batchId, status: 'completed' });
    const unbatched = await api.http().get(`/transfers/${taken}`);
    expect(unbatched.body).not.toHaveProperty('batchId');
    const bad = await api.http().get('/transfers').query({ batchId: 'not an id!' });
    expect(bad.status).toBe(400);
    expect(bad.body.errors).toEqual([expect.objectContaining({ field: 'batchId' })]);
  });

  test("account history lines and statement movements of a batch's legs carry its batchId; the others none", async () => {
    const mixed = req.mixed!;
    const legs = (await api.store.readStream(accountStream(acc.rich!))).filter((e) => e.metadata.batchId === mixed.batchId);
    expect(legs.map((e) => e.type).sort()).toEqual(['TransferDebited', 'TransferDebited', 'TransferDebited', 'TransferRefunded']);
    const history = await api.http().get(`/accounts/${acc.rich}/history`).query({ limit: 100 });
    expect(history.status).toBe(200);
    const lines = history.body.movements as { revision: number; kind: string; transferId: string | null; batchId?: string }[];
    const batchIds = new Map(legs.map((e) => [Number(e.revision), e.metadata.batchId]));
    for (const line of lines) {
      expect({ revision: line.revision, batchId: line.batchId }).toEqual({ revision: line.revision, batchId: batchIds.get(line.revision) });
    }
    expect(lines.filter((l) => l.batchId === mixed.batchId)).toHaveLength(4);
    expect(lines.find((l) => l.transferId === taken)).not.toHaveProperty('batchId');
    expect(lines.find((l) => l.kind === 'MoneyDeposited')).not.toHaveProperty('batchId');

    const date = businessDateOf(Date.parse(legs[0]!.metadata.occurredAt), businessTimeOf(api.deps).timezone);
    const statement = await api.http().get(`/accounts/${acc.rich}/statements/${date}`);
    expect(statement.status).toBe(200);
    const movements = statement.body.movements as { revision: number; batchId?: string }[];
    expect(movements.filter((m) => m.batchId !== undefined).map((m) => [m.revision, m.batchId])).toEqual(
      legs
        .filter((e) => businessDateOf(Date.parse(e.metadata.occurredAt), businessTimeOf(api.deps).timezone) === date)
        .map((e) => [Number(e.revision), mixed.batchId]),
    );
    expect(movements.filter((m) => m.batchId === undefined).length).toBeGreaterThan(0);
  });

  test('redelivered and reordered one at a time, or in batches of any size (mixed with redeliveries, some ahead of their stream): the same rows as live, each event applied once', async () => {
    const events = await relevant();
    const kept = events.filter(concerned);
    expect(kept.length).toBeGreaterThan(15);
    expect(events.length).toBeGreaterThan(kept.length); // other transfers' outcomes are among them, and ignored
    const live = await rows();
    const deliveries = new DeliveryLog();
    const runner = new ProjectionRunner(api.store, api.readModels, [transferBatchesProjection], deliveries.observer());
    const name = transferBatchesProjection.name;

    // In order, then everything again: all duplicates (or ignored), nothing changes.
    const inOrder = await freshTables(api.readModels, transferBatchesProjection, 'inorder');
    for (const event of events) await runner.applyOne(transferBatchesProjection, inOrder, event, `${name}__inorder`);
    expect(deliveries.count(name, 'applied')).toBe(kept.length);
    expect(deliveries.count(name, 'ignored')).toBe(events.length - kept.length);
    expect(await rows(inOrder)).toEqual(live);
    for (const event of events) await runner.applyOne(transferBatchesProjection, inOrder, event, `${name}__inorder`);
    expect(deliveries.count(name, 'duplicate')).toBe(kept.length);
    expect(await rows(inOrder)).toEqual(live);
    expect(await readCheckpoint(api.readModels, `${name}__inorder`)).toEqual(events.at(-1)!.position);

    // Twice shuffled: a batch event ahead of its stream is refused (OutOfOrderError) and delivered again later; an item's
    // outcome before its batch's acceptance is applied at once.
    const random = seededRandom(2_026);
    const shuffled = await freshTables(api.readModels, transferBatchesProjection, 'shuffled');
    const queue = shuffle([...kept, ...kept], random);
    let outOfOrder = 0;
    const appliedBefore = deliveries.count(name, 'applied');
    for (let attempts = 0; queue.length > 0; attempts++) {
      expect(attempts).toBeLessThan(kept.length * 200);
      const event = queue.shift()!;
      try {
        await runner.applyOne(transferBatchesProjection, shuffled, event, `${name}__shuffled`);
      } catch (error) {
        if (!(error instanceof OutOfOrderError)) throw error;
        outOfOrder += 1;
        queue.push(event);
      }
    }
    expect(outOfOrder).toBeGreaterThan(0);
    expect(deliveries.count(name, 'applied') - appliedBefore).toBe(kept.length);
    expect(await rows(shuffled)).toEqual(live);

    // Batches: a clean pass writes every event by the batch statement, none by apply().
    let oneByOne = 0;
    const counted: BatchProjection = {
      ...transferBatchesProjection,
      apply: async (client, event, tables) => {
        oneByOne += 1;
        return transferBatchesProjection.apply(client, event, tables);
      },
    };
    const pick = (n: number) => 1 + Math.floor(random() * n);
    const batchLog = new DeliveryLog();
    const batchRunner = new ProjectionRunner(api.store, api.readModels, [counted], batchLog.observer());
    const batched = await freshTables(api.readModels, transferBatchesProjection, 'batched');
    for (let i = 0; i < events.length;) {
      const size = pick(12);
      await batchRunner.applyMany(counted, batched, events.slice(i, i + size), `${name}__batched`);
      i += size;
    }
    expect(oneByOne).toBe(0);
    expect(batchLog.count(name, 'applied')).toBe(kept.length);
    expect(await rows(batched)).toEqual(live);

    // A messy pass: windows going back over applied events, or ahead of events still to come.
    const messy = await freshTables(api.readModels, transferBatchesProjection, 'messy');
    const messyLog = new DeliveryLog();
    const messyRunner = new ProjectionRunner(api.store, api.readModels, [counted], messyLog.observer());
    for (let done = 0; done < events.length;) {
      const from = random() < 0.2 ? done + pick(6) : Math.max(0, done - (random() < 0.4 ? pick(8) : 0));
      const to = Math.max(from, done) + pick(10);
      try {
        await messyRunner.applyMany(counted, messy, events.slice(from, to), `${name}__messy`);
        if (from <= done) done = Math.min(events.length, Math.max(done, to));
      } catch (error) {
        if (!(error instanceof OutOfOrderError)) throw error; // as a subscription would, deliver from where it stood
      }
    }
    const appliedIds = messyLog.entries.filter((e) => e.outcome === 'applied').map((e) => e.event.id);
    expect(appliedIds).toHaveLength(kept.length);
    expect(new Set(appliedIds).size).toBe(kept.length);
    expect(await rows(messy)).toEqual(live);

    // Every batch's events in one delivery, its items' outcomes first: the same rows.
    const outcomesFirst = await freshTables(api.readModels, transferBatchesProjection, 'outcomesfirst');
    const firstLog = new DeliveryLog();
    const firstRunner = new ProjectionRunner(api.store, api.readModels, [counted], firstLog.observer());
    oneByOne = 0;
    await firstRunner.applyMany(
      counted,
      outcomesFirst,
      [...kept.filter((e) => e.stream.startsWith(TRANSFER_STREAM_PREFIX)), ...kept.filter((e) => e.stream.startsWith('batch-'))],
      `${name}__outcomesfirst`,
    );
    expect(oneByOne).toBe(0);
    expect(firstLog.count(name, 'applied')).toBe(kept.length);
    expect(await rows(outcomesFirst)).toEqual(live);

    // A batch stream's second event alone, before its first: refused, nothing written, no checkpoint.
    const ahead = await freshTables(api.readModels, transferBatchesProjection, 'ahead');
    const second = kept.find((e) => e.stream.startsWith('batch-') && e.revision === 1n)!;
    await expect(runner.applyMany(transferBatchesProjection, ahead, [second], `${name}__ahead`)).rejects.toThrow(OutOfOrderError);
    expect(await readCheckpoint(api.readModels, `${name}__ahead`)).toBeUndefined();
    expect(await rows(ahead)).toEqual({ rm_transfer_batches: [], rm_transfer_batch_items: [], rm_transfer_batch_outcomes: [] });
  });

  test('an outcome applied before its batch is accepted shows once the acceptance comes; a later revision of its stream wins, an earlier one is a duplicate', async () => {
    const tables = await freshTables(api.readModels, transferBatchesProjection, 'early');
    const runner = new ProjectionRunner(api.store, api.readModels, [transferBatchesProjection]);
    const mixed = req.mixed!;
    const first = mixed.items[0]!.transferId;
    const [completed] = (await api.store.readStream(transferStream(first))).filter((e) => e.type === 'TransferCompleted');
    const batchEvents = await api.store.readStream(batchStream(mixed.batchId));
    await runner.applyOne(transferBatchesProjection, tables, completed!, 'transfer-batches__early');
    // No batch row yet: the read model does not know the batch.
    expect(await getBatchIn(tables, mixed.batchId)).toEqual([]);
    await runner.applyOne(transferBatchesProjection, tables, batchEvents[0]!, 'transfer-batches__early');
    const items = (
      await api.readModels.query(
        `SELECT i.item_index, COALESCE(o.status, i.status) AS status FROM ${tables.rm_transfer_batch_items} i
       LEFT JOIN ${tables.rm_transfer_batch_outcomes} o ON o.batch_id = i.batch_id AND o.transfer_id = i.transfer_id
       WHERE i.batch_id = $1 ORDER BY i.item_index`,
        [mixed.batchId],
      )
    ).rows;
    expect(items).toEqual([
      { item_index: 0, status: 'completed' },
      { item_index: 1, status: 'pending' },
      { item_index: 2, status: 'pending' },
      { item_index: 3, status: 'pending' },
      { item_index: 4, status: 'pending' },
    ]);
    // The same outcome at an earlier revision of its stream (a stale redelivery as another event would carry it) changes nothing.
    const client = await api.readModels.connect();
    try {
      const stale = {
        ...completed!,
        revision: completed!.revision - 1n,
        type: 'TransferFailed',
        data: { transferId: first, reason: 'insufficient_funds', message: 'stale' },
      };
      expect(await transferBatchesProjection.apply(client, stale, tables)).toBe('duplicate');
      const later = { ...stale, revision: completed!.revision + 1n, data: { ...stale.data, message: 'later' } };
      expect(await transferBatchesProjection.apply(client, later, tables)).toBe('applied');
      const outcome = await client.query(
        `SELECT status, failure_message FROM ${tables.rm_transfer_batch_outcomes} WHERE transfer_id = $1`,
        [first],
      );
      expect(outcome.rows).toEqual([{ status: 'failed', failure_message: 'later' }]);
      // An outcome without a batch in its metadata is no batch's: ignored.
      expect(
        await transferBatchesProjection.apply(client, { ...completed!, metadata: { occurredAt: completed!.metadata.occurredAt } }, tables),
      ).toBe('ignored');
    } finally {
      client.release();
    }
  });

  test('npm run projections:rebuild -- transfer-batches: the rebuilt tables equal live processing, with their indexes', async () => {
    const live = await rows();
    const report = await rebuildProjection(api.store, api.readModels, transferBatchesProjection);
    expect(report.projection).toBe('transfer-batches');
    expect(report.events).toBe((await relevant()).length);
    expect(await rows()).toEqual(live);
    const indexes = await api.readModels.query<{ indexname: string }>(
      `SELECT indexname FROM pg_indexes WHERE tablename IN ('rm_transfer_batches', 'rm_transfer_batch_items', 'rm_transfer_batch_outcomes') ORDER BY indexname`,
    );
    expect(indexes.rows.map((r) => r.indexname)).toEqual([
      'rm_transfer_batch_items_pkey',
      'rm_transfer_batch_items_transfer',
      'rm_transfer_batch_outcomes_pkey',
      'rm_transfer_batches_accepted',
      'rm_transfer_batches_pkey',
      'rm_transfer_batches_status_accepted',
    ]);
    expect(await projectionLag(api.store, api.readModels, transferBatchesProjection)).toMatchObject({ parkedEvents: 0, caughtUp: true });
  });

  async function getBatchIn(tables: Record<string, string>, batchId: string) {
    return (await api.readModels.query(`SELECT batch_id FROM ${tables.rm_transfer_batches} WHERE batch_id = $1`, [batchId])).rows;
  }
});
