import { randomUUID } from 'node:crypto';
import { HoldLog } from '../../application/hold-log';
import { handleAccountCommand } from '../../application/account-commands';
import { accountStream, MOVEMENT_TYPES } from '../../domain/account-events';
import { holdStream, HOLD_STREAM_PREFIX, type HoldCommand } from '../../domain/hold';
import type { RecordedEvent } from '../../eventstore/event-store';
import { businessTimeOf } from '../../api/business-time-settings';
import { businessDateOf } from '../../domain/business-calendar';
import { accountHistoryProjection } from '../../projections/account-history-projection';
import { businessTimeProjection } from '../../projections/business-time-projection';
import { holdsProjection } from '../../projections/holds-projection';
import { findHold, holdRowView, listHolds, type HoldRow } from '../../projections/holds-queries';
import { liveTables, OutOfOrderError, type BatchProjection } from '../../projections/projection';
import { ProjectionRunner, projectionLag, readCheckpoint } from '../../projections/projection-runner';
import { rebuildProjection } from '../../projections/rebuild-projection';
import { acceptHold, captureHold, voidHold, type HoldDeps } from '../../temporal/hold-client';
import { holdStatusQuery } from '../../workflows/hold-saga-contract';
import { ApiStack, DeliveryLog } from '../support/api-stack';
import { freshTables, readWholeLog, seededRandom, shuffle } from '../support/read-model-checks';

/**
 * The holds read model (issue 25): rm_holds from the hold streams, and `held` / `available` beside the balance in the
 * account views. Holds run through their saga on Temporal and PostgreSQL (as test/saga/hold-saga.test.ts runs them);
 * a few more streams are written with HoldLog alone, for the rare paths (a void while the placement is in flight, a
 * capture whose debit was refused).
 */
describe('projections: the holds read model and held/available on accounts', () => {
  let api: ApiStack;
  let deps: HoldDeps;
  const operator = { actor: 'test-operator', correlationId: 'corr-holds-rm' };
  const owners = { a: `hold-owner-a-${randomUUID().slice(0, 8)}`, b: `hold-owner-b-${randomUUID().slice(0, 8)}` };
  const ids: Record<string, string> = {};
  const acc: Record<string, string> = {};

  const inSeconds = (s: number) => new Date(Date.now() + s * 1000).toISOString();
  async function placed(from: string, to: string, amount: number, expiresInSeconds = 3600) {
    const holdId = randomUUID();
    const accepted = await acceptHold(
      deps,
      { holdId, fromAccountId: from, toAccountId: to, amount, expiresAt: inSeconds(expiresInSeconds) },
      operator,
    );
    for (let i = 0; i < 600; i++) {
      if ((await accepted.handle.query(holdStatusQuery)).status !== 'pending') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    return { holdId, handle: accepted.handle };
  }
  /** A hold stream written with HoldLog alone (no saga): one event per command. */
  async function written(commands: HoldCommand[]): Promise<string> {
    const holdId = randomUUID();
    const request = { holdId, fromAccountId: randomUUID(), toAccountId: randomUUID(), amount: 70, expiresAt: inSeconds(3600) };
    const all: HoldCommand[] = [{ type: 'RequestHold', request, accepted: operator }, ...commands];
    for (const command of all) expect(await deps.holds.record(holdId, command)).toMatchObject({ ok: true });
    return holdId;
  }
  const rows = async (table: string) =>
    (await api.readModels.query(`SELECT * FROM ${table} ORDER BY hold_id COLLATE "C"`)).rows as Record<string, unknown>[];
  const holdEvents = () => readWholeLog(api.store, { streamPrefix: HOLD_STREAM_PREFIX });

  beforeAll(async () => {
    api = await ApiStack.create('proj_holds');
    deps = { client: api.stack.client, taskQueue: api.stack.taskQueue, holds: new HoldLog(api.store), transfers: api.stack.transfers };
    acc.a1 = await api.openAccount(owners.a, 1_000);
    acc.a2 = await api.openAccount(owners.a, 500);
    acc.b1 = await api.openAccount(owners.b);
    acc.c = await api.openAccount(`hold-owner-c-${randomUUID().slice(0, 8)}`, 300);
    acc.d = await api.openAccount(`hold-owner-d-${randomUUID().slice(0, 8)}`);

    // Captured in part.
    ids.captured = (await placed(acc.a1, acc.b1, 600)).holdId;
    expect((await captureHold(deps, ids.captured, 250, operator)).status).toBe('captured');
    // Voided.
    ids.voided = (await placed(acc.a2, acc.b1, 500)).holdId;
    expect((await voidHold(deps, ids.voided, operator)).status).toBe('voided');
    // Refused: more than the source has.
    ids.failed = (await placed(acc.c, acc.a1, 1_000)).holdId;
    // Expired by its own timer.
    const expiring = await placed(acc.c, acc.b1, 200, 2);
    ids.expired = expiring.holdId;
    expect((await expiring.handle.result()).status).toBe('expired');
    // Compensated: the target closed before the capture.
    ids.compensated = (await placed(acc.a1, acc.d, 100)).holdId;
    expect((await handleAccountCommand(api.accounts, acc.d, { type: 'CloseAccount' })).ok).toBe(true);
    expect((await captureHold(deps, ids.compensated, undefined, operator)).status).toBe('compensated');
    // Still open.
    ids.open = (await placed(acc.a1, acc.b1, 50)).holdId;
    // The rare paths, written by hand.
    ids.voidBeforePlaced = await written([
      { type: 'RequestVoid', accepted: operator },
      { type: 'RecordReserved', accountId: 'x', amount: 70, currency: 'EUR' },
      { type: 'RecordReleased', amount: 70, reason: 'voided' },
    ]);
    ids.debitRefused = await written([
      { type: 'RecordReserved', accountId: 'x', amount: 70, currency: 'EUR' },
      { type: 'RequestCapture', amount: 30, accepted: operator },
      { type: 'RecordReleased', amount: 70, reason: 'voided' },
    ]);
    ids.expiredPending = await written([{ type: 'ReachExpiry' }, { type: 'RecordReleased', amount: 0, reason: 'expired' }]);
    ids.compensatedByHand = await written([
      { type: 'RecordReserved', accountId: 'x', amount: 70, currency: 'EUR' },
      { type: 'RequestCapture', accepted: operator },
      { type: 'RecordCaptureCompensated', amount: 70, reason: 'account_closed', message: 'closed' },
    ]);
    await api.caughtUp();
  });
  afterAll(async () => api?.close());

  test('each row is the fold of its hold stream: status, amounts, failure, revision and the position of its last event', async () => {
    const expected = {
      captured: { status: 'captured', captured: '250', released: '350' },
      voided: { status: 'voided', captured: null, released: '500' },
      failed: { status: 'failed', captured: null, released: null, failure_reason: 'insufficient_funds', reserved: null },
      expired: { status: 'expired', captured: null, released: '200' },
      compensated: { status: 'compensated', captured: '0', released: '100' },
      open: { status: 'held', captured: null, released: null, reserved: '50', currency: 'EUR' },
      voidBeforePlaced: { status: 'voided', released: '70', reserved: '70' },
      debitRefused: { status: 'compensated', captured: '0', released: '70' },
      expiredPending: { status: 'expired', released: '0', reserved: null },
      compensatedByHand: { status: 'compensated', captured: '0', released: '70', failure_reason: 'account_closed' },
    };
    for (const [name, want] of Object.entries(expected)) {
      const holdId = ids[name]!;
      const row = await findHold(api.readModels, holdId);
      expect({ name, ...row }).toMatchObject({ name, ...want });
      const { state, revision } = await deps.holds.load(holdId);
      const [last] = await api.store.readStream(holdStream(holdId), { direction: 'backwards', maxCount: 1 });
      expect({
        status: row!.status,
        amount: Number(row!.amount),
        from: row!.from_account_id,
        to: row!.to_account_id,
        reserved: row!.reserved === null ? undefined : Number(row!.reserved),
        currency: row!.currency ?? undefined,
        captured: row!.captured === null ? undefined : Number(row!.captured),
        released: row!.released === null ? undefined : Number(row!.released),
        failureReason: row!.failure_reason ?? undefined,
        expiresAt: row!.expires_at.getTime(),
        revision: BigInt(row!.revision),
        position: `${row!.pos_commit}.${row!.pos_prepare}`,
      }).toEqual({
        status: state.status,
        amount: state.request!.amount,
        from: state.request!.fromAccountId,
        to: state.request!.toAccountId,
        reserved: state.reserved,
        currency: state.currency,
        captured: state.captured,
        released: state.released,
        failureReason: state.failureReason,
        expiresAt: Date.parse(state.request!.expiresAt),
        revision,
        position: `${last!.position.commit}.${last!.position.prepare}`,
      });
    }
    expect(await findHold(api.readModels, 'no-such-hold')).toBeUndefined();
  });

  test("holdRowView: the API's shape, captured and released only once known", async () => {
    const captured = holdRowView((await findHold(api.readModels, ids.captured!))!);
    expect(captured).toEqual({
      holdId: ids.captured,
      fromAccountId: acc.a1,
      toAccountId: acc.b1,
      amount: 600,
      captured: 250,
      released: 350,
      status: 'captured',
      expiresAt: expect.stringMatching(/Z$/),
      createdAt: expect.stringMatching(/Z$/),
    });
    const open = holdRowView((await findHold(api.readModels, ids.open!))!);
    expect(Object.keys(open).sort()).toEqual(['amount', 'createdAt', 'expiresAt', 'fromAccountId', 'holdId', 'status', 'toAccountId']);
    expect(open).toMatchObject({ status: 'held', amount: 50 });
  });

  test('listHolds: by account (source or target), status and owner; keyset pages oldest first, no gaps, no repeats', async () => {
    const list = async (filter: Omit<Parameters<typeof listHolds>[1], 'limit'>) =>
      (await listHolds(api.readModels, { ...filter, limit: 500 })).rows.map((r) => r.hold_id);
    const sortById = (xs: string[]) => [...xs].sort();
    expect(sortById(await list({ accountId: acc.a1 }))).toEqual(sortById([ids.captured!, ids.failed!, ids.compensated!, ids.open!]));
    expect(sortById(await list({ accountId: acc.b1 }))).toEqual(sortById([ids.captured!, ids.voided!, ids.expired!, ids.open!]));
    expect(await list({ accountId: acc.a1, status: 'held' })).toEqual([ids.open]);
    expect(sortById(await list({ status: 'compensated' }))).toEqual(
      sortById([ids.compensated!, ids.debitRefused!, ids.compensatedByHand!]),
    );
    // An owner sees the holds from or to its accounts: owner a holds a1 and a2 (c's refused hold to a1 counts).
    expect(sortById(await list({ ownerId: owners.a }))).toEqual(
      sortById([ids.captured!, ids.voided!, ids.failed!, ids.compensated!, ids.open!]),
    );
    expect(sortById(await list({ ownerId: owners.b, status: 'expired' }))).toEqual([ids.expired]);
    expect(await list({ ownerId: 'nobody' })).toEqual([]);

    // Pages of 3 walk the whole list in (created_at, hold_id) order.
    const whole = (await listHolds(api.readModels, { limit: 500 })).rows;
    expect(whole).toHaveLength(Object.keys(ids).length);
    const order = (r: HoldRow) => [r.created_at.getTime(), r.hold_id] as const;
    for (let i = 1; i < whole.length; i++) {
      const [a, b] = [order(whole[i - 1]!), order(whole[i]!)];
      expect(a[0] < b[0] || (a[0] === b[0] && a[1] < b[1])).toBe(true);
    }
    const walked: string[] = [];
    let after: { at: string; id: string } | undefined;
    for (let pages = 0; ; pages++) {
      expect(pages).toBeLessThan(10);
      const page = await listHolds(api.readModels, { limit: 3, ...(after ? { after } : {}) });
      walked.push(...page.rows.map((r) => r.hold_id));
      if (!page.more) break;
      const last = page.rows.at(-1)!;
      after = { at: last.created_at.toISOString(), id: last.hold_id };
    }
    expect(walked).toEqual(whole.map((r) => r.hold_id));
    // A filtered walk too.
    const first = await listHolds(api.readModels, { accountId: acc.a1, limit: 2 });
    expect(first.more).toBe(true);
    const last = first.rows.at(-1)!;
    const second = await listHolds(api.readModels, {
      accountId: acc.a1,
      limit: 2,
      after: { at: last.created_at.toISOString(), id: last.hold_id },
    });
    expect(second.more).toBe(false);
    expect([...first.rows, ...second.rows].map((r) => r.hold_id)).toEqual(await list({ accountId: acc.a1 }));
  });

  test('redelivered and reordered one at a time, or in batches of any size (mixed with redeliveries, some ahead of their stream): the same rows as live, each event applied once', async () => {
    const events = await holdEvents();
    expect(events.length).toBeGreaterThan(30);
    const live = await rows('rm_holds');
    const deliveries = new DeliveryLog();
    const runner = new ProjectionRunner(api.store, api.readModels, [holdsProjection], deliveries.observer());

    // In order, then everything again: all duplicates, nothing changes.
    const inOrder = await freshTables(api.readModels, holdsProjection, 'inorder');
    for (const event of events) await runner.applyOne(holdsProjection, inOrder, event, 'holds__inorder');
    expect(deliveries.count('holds', 'applied')).toBe(events.length);
    expect(await rows(inOrder.rm_holds!)).toEqual(live);
    for (const event of events) await runner.applyOne(holdsProjection, inOrder, event, 'holds__inorder');
    expect(deliveries.count('holds', 'duplicate')).toBe(events.length);
    expect(await rows(inOrder.rm_holds!)).toEqual(live);
    expect(await readCheckpoint(api.readModels, 'holds__inorder')).toEqual(events.at(-1)!.position);

    // Twice shuffled: an event ahead of its stream is refused (OutOfOrderError) and delivered again later.
    const random = seededRandom(2_025);
    const shuffled = await freshTables(api.readModels, holdsProjection, 'shuffled');
    const queue = shuffle([...events, ...events], random);
    let outOfOrder = 0;
    const appliedBefore = deliveries.count('holds', 'applied');
    for (let attempts = 0; queue.length > 0; attempts++) {
      expect(attempts).toBeLessThan(events.length * 200);
      const event = queue.shift()!;
      try {
        await runner.applyOne(holdsProjection, shuffled, event, 'holds__shuffled');
      } catch (error) {
        if (!(error instanceof OutOfOrderError)) throw error;
        outOfOrder += 1;
        queue.push(event);
      }
    }
    expect(outOfOrder).toBeGreaterThan(0);
    expect(deliveries.count('holds', 'applied') - appliedBefore).toBe(events.length);
    expect(await rows(shuffled.rm_holds!)).toEqual(live);

    // Batches: a clean pass writes every event by the batch statement, none by apply().
    let oneByOne = 0;
    const counted: BatchProjection = {
      ...holdsProjection,
      apply: async (client, event, tables) => {
        oneByOne += 1;
        return holdsProjection.apply(client, event, tables);
      },
    };
    const pick = (n: number) => 1 + Math.floor(random() * n);
    const batchLog = new DeliveryLog();
    const batchRunner = new ProjectionRunner(api.store, api.readModels, [counted], batchLog.observer());
    const batched = await freshTables(api.readModels, holdsProjection, 'batched');
    for (let i = 0; i < events.length;) {
      const size = pick(12);
      await batchRunner.applyMany(counted, batched, events.slice(i, i + size), 'holds__batched');
      i += size;
    }
    expect(oneByOne).toBe(0);
    expect(batchLog.count('holds', 'applied')).toBe(events.length);
    expect(await rows(batched.rm_holds!)).toEqual(live);

    // A messy pass: windows going back over applied events, or ahead of events still to come.
    const messy = await freshTables(api.readModels, holdsProjection, 'messy');
    const messyLog = new DeliveryLog();
    const messyRunner = new ProjectionRunner(api.store, api.readModels, [counted], messyLog.observer());
    for (let done = 0; done < events.length;) {
      const from = random() < 0.2 ? done + pick(6) : Math.max(0, done - (random() < 0.4 ? pick(8) : 0));
      const to = Math.max(from, done) + pick(10);
      try {
        await messyRunner.applyMany(counted, messy, events.slice(from, to), 'holds__messy');
        if (from <= done) done = Math.min(events.length, Math.max(done, to));
      } catch (error) {
        if (!(error instanceof OutOfOrderError)) throw error;
      }
    }
    const appliedIds = messyLog.entries.filter((e) => e.outcome === 'applied').map((e) => e.event.id);
    expect(appliedIds).toHaveLength(events.length);
    expect(new Set(appliedIds).size).toBe(events.length);
    expect(await rows(messy.rm_holds!)).toEqual(live);

    // A stream's second event alone, before its first: refused, nothing written, no checkpoint.
    const ahead = await freshTables(api.readModels, holdsProjection, 'ahead');
    await expect(runner.applyMany(holdsProjection, ahead, [events.find((e) => e.revision === 1n)!], 'holds__ahead')).rejects.toThrow(
      OutOfOrderError,
    );
    expect(await readCheckpoint(api.readModels, 'holds__ahead')).toBeUndefined();
    expect(await rows(ahead.rm_holds!)).toEqual([]);
  });

  test('every split of every hold stream into batches leaves the same row (the run folded whatever status the row had)', async () => {
    const events = await holdEvents();
    const byStream = new Map<string, RecordedEvent[]>();
    for (const e of events) byStream.set(e.stream, [...(byStream.get(e.stream) ?? []), e]);
    const longest = Math.max(...[...byStream.values()].map((s) => s.length));
    expect(longest).toBeGreaterThanOrEqual(4);
    const runner = new ProjectionRunner(api.store, api.readModels, [holdsProjection]);
    const live = await rows('rm_holds');
    // Bit i of the mask: a batch ends after the stream's event i.
    for (let mask = 0; mask < 2 ** (longest - 1); mask++) {
      const tables = await freshTables(api.readModels, holdsProjection, 'split');
      for (const stream of byStream.values()) {
        let batch: RecordedEvent[] = [];
        for (const [i, event] of stream.entries()) {
          batch.push(event);
          if (i === stream.length - 1 || (mask & (1 << i)) !== 0) {
            await runner.applyMany(holdsProjection, tables, batch, 'holds__split');
            batch = [];
          }
        }
      }
      expect({ mask, rows: await rows(tables.rm_holds!) }).toEqual({ mask, rows: live });
    }
  });

  test('npm run projections:rebuild -- holds: the rebuilt table equals live processing', async () => {
    const live = await rows('rm_holds');
    const report = await rebuildProjection(api.store, api.readModels, holdsProjection);
    expect(report.projection).toBe('holds');
    expect(report.events).toBe((await holdEvents()).length);
    expect(await rows('rm_holds')).toEqual(live);
    const indexes = await api.readModels.query<{ indexname: string }>(
      `SELECT indexname FROM pg_indexes WHERE tablename = 'rm_holds' ORDER BY indexname`,
    );
    expect(indexes.rows.map((r) => r.indexname)).toEqual([
      'rm_holds_created',
      'rm_holds_from_created',
      'rm_holds_pkey',
      'rm_holds_status_created',
      'rm_holds_to_created',
    ]);
  });

  test('accounts show held and available beside the balance (one account, the list, asOf before and after a hold); a hold moves no money in history or statements', async () => {
    const owner = `hold-view-${randomUUID().slice(0, 8)}`;
    const x = await api.openAccount(owner, 1_000);
    const y = await api.openAccount(owner);
    const { holdId } = await placed(x, y, 600);
    await api.caughtUp();
    const view = async (id: string) => {
      const res = await api.http().get(`/accounts/${id}`);
      expect(res.status).toBe(200);
      return res.body as { balance: number; held: number; available: number };
    };
    // A hold changes what is available, never the balance.
    expect(await view(x)).toMatchObject({ balance: 1_000, held: 600, available: 400 });
    expect(await view(y)).toMatchObject({ balance: 0, held: 0, available: 0 });
    const listed = await api.http().get('/accounts').query({ ownerId: owner });
    expect(listed.status).toBe(200);
    expect(listed.body.accounts.find((a: { accountId: string }) => a.accountId === x)).toMatchObject({
      balance: 1_000,
      held: 600,
      available: 400,
    });

    expect((await captureHold(deps, holdId, 250, operator)).status).toBe('captured');
    await api.caughtUp();
    expect(await view(x)).toMatchObject({ balance: 750, held: 0, available: 750 });
    expect(await view(y)).toMatchObject({ balance: 250, held: 0, available: 250 });

    // asOf: from the same fold as the balance, at the times of the account's own events.
    const stream = await api.store.readStream(accountStream(x));
    const at = (type: string) => stream.find((e) => e.type === type)!.metadata.occurredAt;
    const deposited = at('MoneyDeposited');
    const placedAt = at('HoldPlaced');
    const debitedAt = at('TransferDebited');
    expect(Date.parse(deposited)).toBeLessThan(Date.parse(placedAt));
    expect(stream.find((e) => e.type === 'HoldReleased')!.metadata.occurredAt).toBe(debitedAt); // one append
    const asOf = async (when: string) => {
      const res = await api.http().get(`/accounts/${x}/balance`).query({ asOf: when });
      expect(res.status).toBe(200);
      return res.body as { balance: number; held: number; available: number };
    };
    expect(await asOf(deposited)).toMatchObject({ balance: 1_000, held: 0, available: 1_000 });
    expect(await asOf(placedAt)).toMatchObject({ balance: 1_000, held: 600, available: 400 });
    expect(await asOf(debitedAt)).toMatchObject({ balance: 750, held: 0, available: 750 });

    // History and statements: the capture's debit is a movement; HoldPlaced/HoldReleased are not.
    const history = await api.http().get(`/accounts/${x}/history`);
    expect(history.status).toBe(200);
    const kinds = history.body.movements.map((m: { kind: string; transferId?: string | null }) => `${m.kind}:${m.transferId ?? ''}`);
    expect([...kinds].sort()).toEqual(['MoneyDeposited:', `TransferDebited:${holdId}`]);
    const statementRows = await api.readModels.query<{ kind: string }>(
      'SELECT kind FROM rm_statement_movements WHERE account_id = $1 ORDER BY kind',
      [x],
    );
    expect(statementRows.rows.map((r) => r.kind)).toEqual(['MoneyDeposited', 'TransferDebited']);
    const date = businessDateOf(Date.parse(debitedAt), businessTimeOf(api.deps).timezone);
    const statement = await api.http().get(`/accounts/${x}/statements/${date}`);
    expect(statement.status).toBe(200);
    expect(statement.body.closingBalance).toBe(750); // a hold is no movement: the day closes on the ledger balance
    const lines = statement.body.movements as { kind: string; transferId: string | null; amount: number }[];
    expect(lines.every((l) => (MOVEMENT_TYPES as string[]).includes(l.kind))).toBe(true);
    expect(lines.find((l) => l.transferId === holdId)).toMatchObject({ kind: 'TransferDebited', amount: -250 });

    // Handed a hold event anyway (a rebuild reading unfiltered, a replay), those projections ignore it.
    const holdPlaced = stream.find((e) => e.type === 'HoldPlaced')!;
    const client = await api.readModels.connect();
    try {
      expect(await accountHistoryProjection.apply(client, holdPlaced, liveTables(accountHistoryProjection))).toBe('ignored');
      expect(await businessTimeProjection.apply(client, holdPlaced, liveTables(businessTimeProjection))).toBe('ignored');
    } finally {
      client.release();
    }
    // Nothing parked anywhere.
    for (const projection of [accountHistoryProjection, businessTimeProjection, holdsProjection])
      expect(await projectionLag(api.store, api.readModels, projection)).toMatchObject({ parkedEvents: 0, caughtUp: true });
  });
});
