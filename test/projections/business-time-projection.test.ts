import { randomUUID } from 'node:crypto';
import { handleAccountCommand } from '../../application/account-commands';
import { addDays, businessDateOf } from '../../domain/business-calendar';
import { comparePositions, formatPosition, type RecordedEvent } from '../../eventstore/event-store';
import { BUSINESS_TIME_TABLES, businessTimeProjection } from '../../projections/business-time-projection';
import { OutOfOrderError } from '../../projections/projection';
import { ProjectionRunner, readCheckpoint } from '../../projections/projection-runner';
import { rebuildProjection } from '../../projections/rebuild-projection';
import { ApiStack } from '../support/api-stack';
import { freshTables, readWholeLog, seededRandom, shuffle, tableRows } from '../support/read-model-checks';

/**
 * The business-time read model (statement movements, closed days, correction notices, exceptions):
 * whatever the order and number of deliveries, it ends identical to live processing, to an in-order
 * pass and to a rebuild; its correction notices are exactly the records of a closed day that the log
 * holds after that day's close.
 */

const DAY = 86_400_000;
const TABLES = Object.keys(BUSINESS_TIME_TABLES);
const wanted = (e: RecordedEvent) => businessTimeProjection.eventTypes!.includes(e.type);

describe('business-time projection: rebuild equals live, idempotent under redelivery and reordering', () => {
  let api: ApiStack;
  let log: RecordedEvent[];
  const D = businessDateOf(Date.now() - 4 * DAY, 'UTC');
  const at = (date: string, time: string) => `${date}T${time}.000Z`;

  const snapshot = async (suffix?: string) => {
    const out: Record<string, unknown[]> = {};
    for (const t of TABLES) out[t] = await tableRows(api.readModels, t, suffix ? `${t}__${suffix}` : t);
    return out;
  };

  beforeAll(async () => {
    api = await ApiStack.create('proj_business_time');
    const http = () => api.http();
    const open = async (initialDeposit: number) => {
      const accountId = randomUUID();
      const opened = await handleAccountCommand(
        api.accounts,
        accountId,
        { type: 'OpenAccount', accountId, ownerId: 'p', currency: 'EUR', initialDeposit: initialDeposit || undefined },
        { context: { occurredAt: new Date(Date.now() - 20 * DAY).toISOString() } },
      );
      expect(opened.ok).toBe(true);
      return accountId;
    };
    const [a, b, c] = [await open(10_000), await open(2_000), await open(0)];
    const ok = async (p: Promise<{ status: number; text: string }>, status = 200) => expect((await p).status).toBe(status);
    // Day D and D+1: records in time and late, before any close.
    await ok(
      http()
        .post(`/accounts/${a}/deposits`)
        .send({ amount: 100, occurredAt: at(D, '08:00:00') }),
    );
    await ok(
      http()
        .post(`/accounts/${b}/withdrawals`)
        .send({ amount: 50, occurredAt: at(D, '09:30:00') }),
    );
    await ok(
      http()
        .post(`/accounts/${c}/deposits`)
        .send({ amount: 70, occurredAt: at(addDays(D, 1), '23:59:59') }),
    );
    await ok(http().post('/books/close').send({ date: D }));
    // After D closed: corrections of D; a record of D+1 (still open) is not one.
    await ok(
      http()
        .post(`/accounts/${a}/withdrawals`)
        .send({ amount: 30, occurredAt: at(D, '10:00:00') }),
    );
    await ok(
      http()
        .post(`/accounts/${c}/deposits`)
        .send({ amount: 5, occurredAt: at(addDays(D, 1), '00:00:00') }),
    );
    const transferId = `bt-${randomUUID().slice(0, 8)}`;
    await ok(http().post('/transfers').send({ transferId, fromAccountId: a, toAccountId: c, amount: 400 }), 202);
    expect((await http().get(`/transfers/${transferId}`).query({ wait: 30 })).body.status).toBe('completed');
    await ok(
      http()
        .post('/books/close')
        .send({ date: addDays(D, 2) }),
    ); // closes D+1 and D+2
    await ok(
      http()
        .post(`/accounts/${b}/deposits`)
        .send({ amount: 20, occurredAt: at(addDays(D, 1), '12:00:00') }),
    );
    await ok(
      http()
        .post(`/accounts/${c}/withdrawals`)
        .send({ amount: 1, occurredAt: at(addDays(D, 2), '01:00:00') }),
    );
    await ok(
      http()
        .post(`/accounts/${a}/deposits`)
        .send({ amount: 9, occurredAt: at(D, '23:59:59') }),
    );
    // Exceptions: one accepted (a late record of a closed day: a correction too), one refused then rejected, one left open.
    const tooLate = new Date(Date.now() - 6 * DAY).toISOString();
    const held = await Promise.all([
      http().post(`/accounts/${b}/deposits`).send({ amount: 11, occurredAt: tooLate }),
      http().post(`/accounts/${c}/withdrawals`).send({ amount: 1_000_000, occurredAt: tooLate }),
      http().post(`/accounts/${a}/deposits`).send({ amount: 12, occurredAt: tooLate }),
    ]);
    for (const res of held) expect(res.status).toBe(422);
    await ok(http().post(`/exceptions/${held[0]!.body.exceptionId as string}/accept`));
    await ok(http().post(`/exceptions/${held[1]!.body.exceptionId as string}/accept`), 422);
    await ok(
      http()
        .post(`/exceptions/${held[1]!.body.exceptionId as string}/reject`)
        .send({ reason: 'test' }),
    );
    await api.caughtUp();
    log = (await readWholeLog(api.store)).filter(wanted);
  });
  afterAll(async () => api?.close());

  test('the history has every kind of event this read model keeps', () => {
    const types = new Set(log.map((e) => e.type));
    for (const type of [
      'MoneyDeposited',
      'MoneyWithdrawn',
      'TransferDebited',
      'TransferCredited',
      'BusinessDayClosed',
      'LateRecordHeld',
      'ExceptionAcceptanceStarted',
      'ExceptionAccepted',
      'ExceptionAcceptanceRefused',
      'ExceptionRejected',
    ]) {
      expect(types).toContain(type);
    }
  });

  test('the correction notices are exactly the records of a closed day that the log holds after its close', async () => {
    const closes = log
      .filter((e) => e.type === 'BusinessDayClosed')
      .map((e) => ({ event: e, data: e.data as { date: string; startsAt: string; endsAt: string } }));
    const expected = log
      .filter((e) => e.stream.startsWith('account-'))
      .flatMap((m) => {
        const t = Date.parse(m.metadata.occurredAt);
        const day = closes.find(
          (c) => Date.parse(c.data.startsAt) <= t && t < Date.parse(c.data.endsAt) && comparePositions(c.event.position, m.position) < 0,
        );
        return day
          ? [
              {
                cursor: formatPosition(m.position),
                date: day.data.date,
                accountId: (m.data as { accountId: string }).accountId,
                revision: String(m.revision),
              },
            ]
          : [];
      });
    const rows = await tableRows(api.readModels, 'rm_correction_notices');
    expect(
      rows.map((r) => ({
        cursor: `${String(r.pos_commit)}.${String(r.pos_prepare)}`,
        date: r.business_date,
        accountId: r.account_id,
        revision: String(r.revision),
      })),
    ).toEqual(expected);
    // 4 corrections from the API (D twice, D+1, D+2) and the accepted exception's deposit, if its business day was closed.
    expect(expected.length).toBeGreaterThanOrEqual(4);
    // The feed serves the same, in the same order.
    const feed = await api.http().get('/corrections').query({ limit: 500 });
    expect((feed.body.corrections as { cursor: string }[]).map((n) => n.cursor)).toEqual(expected.map((n) => n.cursor));
  });

  test('an in-order pass, the same again, every event twice shuffled, and the log backwards all end identical to live processing', async () => {
    const live = await snapshot();
    const runner = new ProjectionRunner(api.store, api.readModels, [businessTimeProjection]);
    const last = log.at(-1)!.position;

    const inOrder = await freshTables(api.readModels, businessTimeProjection, 'inorder');
    for (const event of log) await runner.applyOne(businessTimeProjection, inOrder, event, 'business-time__inorder');
    expect(await snapshot('inorder')).toEqual(live);
    expect(await readCheckpoint(api.readModels, 'business-time__inorder')).toEqual(last);
    for (const event of log) await runner.applyOne(businessTimeProjection, inOrder, event, 'business-time__inorder');
    expect(await snapshot('inorder')).toEqual(live);

    // Shuffled with duplicates: an exception event before the one it follows is retried later (its revision guard).
    const random = seededRandom(14);
    for (const [suffix, queue] of [
      ['shuffled', shuffle([...log, ...log, ...log.filter(() => random() < 0.3)], random)],
      ['backwards', [...log].reverse()],
    ] as const) {
      const tables = await freshTables(api.readModels, businessTimeProjection, suffix);
      const pending = [...queue];
      for (let attempts = 0; pending.length > 0; attempts++) {
        expect(attempts).toBeLessThan(queue.length * 50);
        const event = pending.shift()!;
        try {
          await runner.applyOne(businessTimeProjection, tables, event, `business-time__${suffix}`);
        } catch (error) {
          if (!(error instanceof OutOfOrderError)) throw error;
          pending.push(event);
        }
      }
      expect([suffix, await snapshot(suffix)]).toEqual([suffix, live]);
    }
  });

  test('a rebuild (twice) swaps in the same tables, with their indexes under their own names', async () => {
    const live = await snapshot();
    const indexes = async () =>
      (
        await api.readModels.query<{ indexname: string }>(`SELECT indexname FROM pg_indexes WHERE tablename = ANY($1) ORDER BY indexname`, [
          TABLES,
        ])
      ).rows.map((r) => r.indexname);
    const before = await indexes();
    expect(before).toContain('rm_statement_movements_occurred');
    for (let i = 0; i < 2; i++) {
      const report = await rebuildProjection(api.store, api.readModels, businessTimeProjection);
      expect(report.events).toBe(log.length);
      expect(await snapshot()).toEqual(live);
      expect(await indexes()).toEqual(before);
    }
    // Reads keep answering from the rebuilt tables.
    const feed = await api.http().get('/corrections');
    expect(feed.status).toBe(200);
    expect(feed.body.corrections.length).toBeGreaterThan(0);
  });
});
