import { randomUUID } from 'node:crypto';
import type { Response } from 'supertest';
import { handleAccountCommand } from '../../application/account-commands';
import { handleCommand } from '../../application/command-handler';
import { ACCEPT_LEASE_MS, appliedEventId, ExceptionLog } from '../../application/late-record-exceptions';
import { booksStream } from '../../domain/books-decider';
import { accountStream } from '../../domain/account-events';
import { addDays, businessDateOf } from '../../domain/business-calendar';
import { exceptionStream } from '../../domain/late-record-exception';
import { ApiStack, storeFingerprint } from '../support/api-stack';
import { OpenApiResponses } from '../support/openapi-responses';

/**
 * Business time (issue 14), through the HTTP API on the real event store and projections: late
 * records within MAX_LATENESS, too-late ones held as exceptions (accepted, refused, rejected), closing
 * the books, statements as published with their corrections, the corrections feed, and balances by
 * business and by recorded time. The books are UTC (the default); dates are taken relative to now so
 * that every record lies within the default 5-day limit.
 */

const DAY = 86_400_000;
const POSITION = /^\d+\.\d+$/;

function expectProblem(res: Response, status: number, type: string, field?: string): void {
  expect({ status: res.status, body: res.body as unknown }).toMatchObject({ status, body: { status, type } });
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  if (field) expect((res.body.errors as { field: string }[]).map((e) => e.field)).toContain(field);
}

describe('business time: late records, exceptions, closing the books, statements and corrections', () => {
  let api: ApiStack;
  const responses = new OpenApiResponses();
  const http = () => responses.http(api.http());
  /** D: the business day three days ago (UTC); D+1 and D+2 have ended too. */
  const now = Date.now();
  const D = businessDateOf(now - 3 * DAY, 'UTC');
  const at = (date: string, time: string) => `${date}T${time}.000Z`;

  beforeAll(async () => {
    api = await ApiStack.create('business_time');
  });
  afterAll(async () => api?.close());

  /** An account whose opening is back-dated ten days in business time (written as a late record would be). */
  async function openAccount(ownerId = 'bt'): Promise<string> {
    const accountId = randomUUID();
    const opened = await handleAccountCommand(
      api.accounts,
      accountId,
      { type: 'OpenAccount', accountId, ownerId, currency: 'EUR' },
      { context: { occurredAt: new Date(now - 10 * DAY).toISOString() } },
    );
    expect(opened.ok).toBe(true);
    return accountId;
  }

  const deposit = (accountId: string, body: Record<string, unknown>, headers: Record<string, string> = {}) =>
    http().post(`/accounts/${accountId}/deposits`).set(headers).send(body);
  const withdraw = (accountId: string, body: Record<string, unknown>) => http().post(`/accounts/${accountId}/withdrawals`).send(body);
  const statement = async (accountId: string, date: string, minPosition?: string) => {
    const res = await http()
      .get(`/accounts/${accountId}/statements/${date}`)
      .query(minPosition ? { minPosition } : {});
    expect(res.status).toBe(200);
    return res.body as Record<string, unknown> & { movements: Record<string, unknown>[]; corrections: Record<string, unknown>[] };
  };
  const streamOf = async (accountId: string) => api.store.readStream(accountStream(accountId));

  test("a late deposit within the limit is recorded with its business time and appears in its day's statement", async () => {
    const a = await openAccount();
    const late = await deposit(a, { amount: 1_000, occurredAt: `${D}T10:00:00Z` });
    expect(late.status).toBe(200);
    const onTime = await deposit(a, { amount: 200 });
    expect(onTime.status).toBe(200);
    const events = await streamOf(a);
    const lateEvent = events.find((e) => e.type === 'MoneyDeposited' && (e.data as { amount: number }).amount === 1_000)!;
    expect(lateEvent.metadata.occurredAt).toBe(at(D, '10:00:00'));
    expect(Date.parse(lateEvent.recordedAt)).toBeGreaterThan(Date.parse(lateEvent.metadata.occurredAt) + 2 * DAY);

    const day = await statement(a, D, onTime.body.position as string);
    expect(day).toMatchObject({
      accountId: a,
      date: D,
      timezone: 'UTC',
      status: 'open',
      closedAt: null,
      openingBalance: 0,
      closingBalance: 1_000,
      belowZero: false,
      corrections: [],
    });
    expect(day.movements).toEqual([
      expect.objectContaining({
        kind: 'MoneyDeposited',
        amount: 1_000,
        balanceAfter: 1_000,
        belowZero: false,
        occurredAt: at(D, '10:00:00'),
        recordedAt: lateEvent.recordedAt,
      }),
    ]);
    expect({ from: day.from, to: day.to }).toEqual({ from: at(D, '00:00:00'), to: at(addDays(D, 1), '00:00:00') });
    // Today's statement opens with the late deposit and holds the on-time one.
    const today = await statement(a, businessDateOf(Date.now(), 'UTC'));
    expect(today).toMatchObject({ openingBalance: 1_000, closingBalance: 1_200 });
    // The same instant written in another offset is the same occurredAt.
    const offset = await deposit(a, { amount: 5, occurredAt: `${D}T12:00:00+02:00` });
    expect(offset.status).toBe(200);
    expect((await streamOf(a)).at(-1)!.metadata.occurredAt).toBe(at(D, '10:00:00'));
  });

  test('beyond MAX_LATENESS: 422 too-late, nothing written to the account, the request kept as an exception', async () => {
    const a = await openAccount();
    const before = await streamOf(a);
    const occurredAt = new Date(now - 6 * DAY).toISOString();
    const res = await deposit(a, { amount: 777, occurredAt });
    expectProblem(res, 422, '/problems/too-late', 'occurredAt');
    const exceptionId = res.body.exceptionId as string;
    expect(exceptionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.body.maxLateness).toBe('5d');
    expect(await streamOf(a)).toEqual(before);
    expect((await api.store.readStream(exceptionStream(exceptionId))).map((e) => e.type)).toEqual(['LateRecordHeld']);

    const listed = await http()
      .get('/exceptions')
      .query({ accountId: a, minPosition: res.body.position as string });
    expect(listed.status).toBe(200);
    expect(listed.body.exceptions).toEqual([
      expect.objectContaining({
        exceptionId,
        status: 'open',
        accountId: a,
        kind: 'deposit',
        amount: 777,
        occurredAt,
        reason: 'too_late',
        maxLateness: '5d',
        heldBy: 'env-operator',
        request: {
          method: 'POST',
          path: `/accounts/${a}/deposits`,
          body: { amount: 777, occurredAt },
          idempotencyKey: null,
          requestId: res.headers['x-request-id'],
        },
      }),
    ]);
    expect(listed.body.exceptions[0].lateBy).toMatch(/^6d/);

    // In the future beyond the clock-skew allowance, or malformed: refused, nothing written, nothing held.
    const written = await storeFingerprint(api.pool);
    expectProblem(
      await deposit(a, { amount: 1, occurredAt: new Date(Date.now() + 3_600_000).toISOString() }),
      422,
      '/problems/occurred-at-in-future',
      'occurredAt',
    );
    expectProblem(await withdraw(a, { amount: 1, occurredAt: 'yesterday' }), 400, '/problems/validation-error', 'occurredAt');
    expectProblem(await deposit(a, { amount: 1, occurredAt: '2026-03-02T10:00:00' }), 400, '/problems/validation-error', 'occurredAt');
    expect(await storeFingerprint(api.pool)).toEqual(written);
  });

  test('with an Idempotency-Key, a too-late record is held once and its 422 replayed; a record in time is never turned into an exception by a retry', async () => {
    const a = await openAccount();
    const key = `late-${randomUUID()}`;
    const occurredAt = new Date(now - 7 * DAY).toISOString();
    const first = await deposit(a, { amount: 300, occurredAt }, { 'Idempotency-Key': key });
    expectProblem(first, 422, '/problems/too-late', 'occurredAt');
    const again = await deposit(a, { amount: 300, occurredAt }, { 'Idempotency-Key': key });
    expect({ status: again.status, replayed: again.headers['idempotent-replayed'], exceptionId: again.body.exceptionId }).toEqual({
      status: 422,
      replayed: 'true',
      exceptionId: first.body.exceptionId,
    });
    expect((await api.store.readStream(exceptionStream(first.body.exceptionId as string))).length).toBe(1);
    // Another occurredAt under the same key is another request: 409.
    expect((await deposit(a, { amount: 300, occurredAt: new Date(now - 8 * DAY).toISOString() }, { 'Idempotency-Key': key })).status).toBe(
      409,
    );

    // In time with a key: the retry replays the 200 (the occurredAt is part of the request).
    const inTime = `${D}T08:00:00.000Z`;
    const ok = await deposit(a, { amount: 40, occurredAt: inTime }, { 'Idempotency-Key': `${key}-2` });
    expect(ok.status).toBe(200);
    const replay = await deposit(a, { amount: 40, occurredAt: inTime }, { 'Idempotency-Key': `${key}-2` });
    expect({ status: replay.status, replayed: replay.headers['idempotent-replayed'], body: replay.body }).toEqual({
      status: 200,
      replayed: 'true',
      body: ok.body,
    });
    expect((await streamOf(a)).filter((e) => e.type === 'MoneyDeposited').map((e) => e.metadata.occurredAt)).toEqual([inTime]);
  });

  test('accepting an exception applies it as a late record, an operator override; idempotent; a refused or rejected one moves nothing', async () => {
    const a = await openAccount();
    expect((await deposit(a, { amount: 100 })).status).toBe(200);
    const occurredAt = new Date(now - 6 * DAY).toISOString();
    const held = await deposit(a, { amount: 900, occurredAt });
    const exceptionId = held.body.exceptionId as string;

    const accepted = await http().post(`/exceptions/${exceptionId}/accept`).set('X-Request-Id', 'accept-1');
    expect(accepted.status).toBe(200);
    expect(accepted.body.exception).toMatchObject({
      exceptionId,
      status: 'accepted',
      decidedBy: 'env-operator',
      applied: { revision: accepted.body.account.revision, position: accepted.body.account.position },
    });
    expect(accepted.body.account).toMatchObject({ accountId: a, balance: 1_000 });
    const appliedEvent = (await streamOf(a)).at(-1)!;
    expect(appliedEvent).toMatchObject({ type: 'MoneyDeposited', data: { amount: 900, balanceAfter: 1_000 } });
    expect(appliedEvent.metadata).toMatchObject({
      occurredAt,
      override: true,
      exceptionId,
      actor: 'env-operator',
      correlationId: 'accept-1',
    });
    expect((await api.store.readStream(exceptionStream(exceptionId))).map((e) => e.type)).toEqual([
      'LateRecordHeld',
      'ExceptionAcceptanceStarted',
      'ExceptionAccepted',
    ]);

    // Again: the same answer, nothing written.
    const written = await storeFingerprint(api.pool);
    const again = await http().post(`/exceptions/${exceptionId}/accept`);
    expect({ status: again.status, account: again.body.account, exception: again.body.exception }).toEqual({
      status: 200,
      account: accepted.body.account,
      exception: accepted.body.exception,
    });
    expect(await storeFingerprint(api.pool)).toEqual(written);
    expectProblem(await http().post(`/exceptions/${exceptionId}/reject`).send({}), 409, '/problems/exception-closed');
    expectProblem(await http().post(`/exceptions/${randomUUID()}/accept`), 404, '/problems/exception-not-found');

    // A late withdrawal the account cannot pay (the overdraft rule, in recorded order): refused, the exception stays open.
    const big = await withdraw(a, { amount: 50_000, occurredAt });
    const bigId = big.body.exceptionId as string;
    const refused = await http().post(`/exceptions/${bigId}/accept`);
    expectProblem(refused, 422, '/problems/insufficient-funds');
    await api.caughtUp();
    const open = (await http().get('/exceptions').query({ accountId: a, status: 'open' })).body.exceptions as Record<string, unknown>[];
    expect(open).toEqual([
      expect.objectContaining({
        exceptionId: bigId,
        status: 'open',
        lastRefusal: expect.objectContaining({ reason: 'insufficient_funds' }),
      }),
    ]);
    const rejected = await http().post(`/exceptions/${bigId}/reject`).send({ reason: 'the branch sent it twice' });
    expect(rejected.status).toBe(200);
    expect(rejected.body.exception).toMatchObject({
      status: 'rejected',
      rejectReason: 'the branch sent it twice',
      decidedBy: 'env-operator',
    });
    expect((await http().post(`/exceptions/${bigId}/reject`).send({})).status).toBe(200);
    expectProblem(await http().post(`/exceptions/${bigId}/accept`), 409, '/problems/exception-closed');
    expect((await streamOf(a)).filter((e) => e.type === 'MoneyWithdrawn')).toEqual([]);
    expectProblem(await http().post(`/exceptions/${bigId}/reject`).send({ note: 'x' }), 400, '/problems/validation-error', 'note');

    // The read model lists both with what became of them, in the order they were held.
    await api.caughtUp();
    const all = (await http().get('/exceptions').query({ accountId: a })).body.exceptions as {
      exceptionId: string;
      status: string;
      applied: unknown;
    }[];
    expect(all.map((e) => [e.exceptionId, e.status])).toEqual([
      [exceptionId, 'accepted'],
      [bigId, 'rejected'],
    ]);
    expect(all[0]!.applied).toEqual({ revision: accepted.body.account.revision, position: accepted.body.account.position });
    const page = await http().get('/exceptions').query({ accountId: a, limit: 1 });
    expect(page.body.next).toMatch(POSITION);
    const rest = await http()
      .get('/exceptions')
      .query({ accountId: a, limit: 1, after: page.body.next as string });
    expect(rest.body).toMatchObject({ exceptions: [{ exceptionId: bigId }], next: null });
  });

  test('closing the books: ordered, idempotent, not before the day has ended; a late record of a closed day becomes a correction and leaves the published statement as it was', async () => {
    const b = await openAccount();
    expect((await deposit(b, { amount: 1_000, occurredAt: at(D, '09:00:00') })).status).toBe(200);
    // Never closed (the books start at D): a record of D-1 is never a correction.
    expect((await deposit(b, { amount: 10, occurredAt: at(addDays(D, -1), '09:00:00') })).status).toBe(200);

    const close = await http().post('/books/close').send({ date: D });
    expect(close.status).toBe(200);
    expect(close.body).toMatchObject({ timezone: 'UTC', closed: [D], firstClosedDate: D, lastClosedDate: D });
    expect(close.body.position).toMatch(POSITION);
    const published = await statement(b, D, close.body.position as string);
    expect(published).toMatchObject({
      status: 'closed',
      openingBalance: 10,
      closingBalance: 1_010,
      corrections: [],
      correctedOpeningBalance: 10,
      correctedClosingBalance: 1_010,
    });
    expect(published.movements.map((m) => m.amount)).toEqual([1_000]);

    // Idempotent; a day not ended yet; bad input.
    const written = await storeFingerprint(api.pool);
    expect((await http().post('/books/close').send({ date: D })).body).toMatchObject({ closed: [], lastClosedDate: D });
    expectProblem(
      await http()
        .post('/books/close')
        .send({ date: addDays(D, -2) }),
      422,
      '/problems/invalid-date',
      'date',
    ); // before the books started
    expectProblem(
      await http()
        .post('/books/close')
        .send({ date: businessDateOf(Date.now(), 'UTC') }),
      422,
      '/problems/day-not-ended',
      'date',
    );
    expectProblem(await http().post('/books/close').send({ date: '2026-02-30' }), 400, '/problems/validation-error', 'date');
    expectProblem(await http().post('/books/close').send({}), 400, '/problems/validation-error', 'date');
    expect(await storeFingerprint(api.pool)).toEqual(written);

    // Late records of the closed day: accepted (within MAX_LATENESS), recorded after the close.
    const c1 = await deposit(b, { amount: 250, occurredAt: at(D, '15:00:00') });
    const c2 = await withdraw(b, { amount: 100, occurredAt: at(D, '16:00:00') });
    expect([c1.status, c2.status]).toEqual([200, 200]);
    const now2 = await statement(b, D, c2.body.position as string);
    // Published figures unchanged; the corrections listed with their recorded time; the corrected closing balance.
    for (const field of ['openingBalance', 'movements', 'closingBalance', 'closedAt', 'status'])
      expect([field, now2[field]]).toEqual([field, published[field]]);
    const events = await streamOf(b);
    const recordedAt = (revision: number) => events.find((e) => e.revision === BigInt(revision))!.recordedAt;
    expect(now2.corrections).toEqual([
      expect.objectContaining({
        kind: 'MoneyDeposited',
        amount: 250,
        occurredAt: at(D, '15:00:00'),
        revision: c1.body.revision,
        recordedAt: recordedAt(c1.body.revision as number),
      }),
      expect.objectContaining({
        kind: 'MoneyWithdrawn',
        amount: -100,
        occurredAt: at(D, '16:00:00'),
        revision: c2.body.revision,
        recordedAt: recordedAt(c2.body.revision as number),
      }),
    ]);
    expect(now2).toMatchObject({ correctedOpeningBalance: 10, correctedClosingBalance: 1_160 });
    // The next (open) day starts from everything known now.
    expect(await statement(b, addDays(D, 1))).toMatchObject({
      status: 'open',
      openingBalance: 1_160,
      closingBalance: 1_160,
      movements: [],
    });

    // The feed: these notices, in the order they arose, paged; a follower keeps its cursor.
    const feed = await http()
      .get('/corrections')
      .query({ minPosition: c2.body.position as string });
    const mine = (feed.body.corrections as Record<string, unknown>[]).filter((n) => n.accountId === b);
    expect(mine).toEqual([
      expect.objectContaining({
        accountId: b,
        date: D,
        timezone: 'UTC',
        amount: 250,
        revision: c1.body.revision,
        cursor: now2.corrections[0]!.cursor,
        closedAt: published.closedAt,
      }),
      expect.objectContaining({ accountId: b, date: D, amount: -100, revision: c2.body.revision, cursor: now2.corrections[1]!.cursor }),
    ]);
    const first = await http().get('/corrections').query({ limit: 1 });
    expect(first.body.corrections).toHaveLength(1);
    let cursor = first.body.next as string;
    const seen = [first.body.corrections[0].cursor as string];
    for (;;) {
      const page = await http().get('/corrections').query({ limit: 1, after: cursor });
      if (page.body.corrections.length === 0) {
        expect(page.body.next).toBe(cursor);
        break;
      }
      seen.push(page.body.corrections[0].cursor as string);
      cursor = page.body.next as string;
    }
    expect(seen).toEqual((feed.body.corrections as { cursor: string }[]).map((n) => n.cursor));

    // Closing a later day closes the open days before it; two closes at once: one closes, the other finds them closed.
    const both = await Promise.all(
      [1, 2].map(() =>
        http()
          .post('/books/close')
          .send({ date: addDays(D, 2) }),
      ),
    );
    expect(both.map((r) => r.status)).toEqual([200, 200]);
    const later = both.find((r) => (r.body.closed as string[]).length > 0)!;
    expect(later.body).toMatchObject({ closed: [addDays(D, 1), addDays(D, 2)], firstClosedDate: D, lastClosedDate: addDays(D, 2) });
    expect(both.map((r) => (r.body.closed as string[]).length).sort()).toEqual([0, 2]);
    expect((await api.store.readStream(booksStream('UTC'))).map((e) => (e.data as { date: string }).date)).toEqual([
      D,
      addDays(D, 1),
      addDays(D, 2),
    ]);
    const dayAfter = await statement(b, addDays(D, 1), later.body.position as string);
    expect(dayAfter).toMatchObject({ status: 'closed', openingBalance: 1_160, closingBalance: 1_160 });
  });

  test('an accept that stopped half-way (its deposit landed, the acceptance not recorded) is finished by the next accept after the lease; accepts at once apply it once', async () => {
    const a = await openAccount();
    const occurredAt = new Date(now - 6 * DAY).toISOString();
    const id = (await deposit(a, { amount: 40, occurredAt })).body.exceptionId as string;
    const log = new ExceptionLog(api.store);
    // The attempt that crashed: it started, and its deposit landed (with the exception's event id).
    const head = (await streamOf(a)).at(-1)!.revision;
    expect(
      (
        await handleCommand(log, id, {
          type: 'StartAcceptance',
          accountRevision: String(head),
          by: 'crashed',
          nowMs: Date.now(),
          leaseMs: ACCEPT_LEASE_MS,
        })
      ).ok,
    ).toBe(true);
    const landed = await handleAccountCommand(
      api.accounts,
      a,
      { type: 'Deposit', amount: 40 },
      { eventId: () => appliedEventId(id), context: { occurredAt, extra: { override: true, exceptionId: id } } },
    );
    expect(landed.ok).toBe(true);
    // Within its lease: another accept (or a reject) is told to wait.
    const busy = await http().post(`/exceptions/${id}/accept`);
    expectProblem(busy, 409, '/problems/exception-in-progress');
    expect(busy.headers['retry-after']).toBe('1');
    expectProblem(await http().post(`/exceptions/${id}/reject`).send({}), 409, '/problems/exception-in-progress');
    // After it: taken over; the deposit is found, not made again.
    api.deps.businessTime = { now: () => Date.now() + ACCEPT_LEASE_MS + 5_000 };
    try {
      const done = await http().post(`/exceptions/${id}/accept`);
      expect(done.status).toBe(200);
      expect(done.body.account).toMatchObject({ accountId: a, balance: 40, revision: Number(head) + 1 });
      expect(done.body.exception).toMatchObject({ status: 'accepted', decidedBy: 'env-operator' });
    } finally {
      api.deps.businessTime = undefined;
    }
    expect((await streamOf(a)).filter((e) => e.type === 'MoneyDeposited').length).toBe(1);

    // Three accepts at once: one applies it, the others are told it is in progress (or find it accepted).
    const id2 = (await deposit(a, { amount: 7, occurredAt })).body.exceptionId as string;
    const racing = await Promise.all([1, 2, 3].map(() => http().post(`/exceptions/${id2}/accept`)));
    expect(racing.map((r) => r.status)).toContain(200);
    for (const r of racing) expect([200, 409]).toContain(r.status);
    expect((await http().post(`/exceptions/${id2}/accept`)).status).toBe(200);
    expect((await streamOf(a)).filter((e) => e.type === 'MoneyDeposited').map((e) => (e.data as { amount: number }).amount)).toEqual([
      40, 7,
    ]);
  });

  test('a late withdrawal may take the business-time running balance below zero: the statement shows it and flags it', async () => {
    const c = await openAccount();
    expect((await deposit(c, { amount: 100 })).status).toBe(200);
    // The overdraft rule holds in recorded order (100 >= 80); on its business day, the account held nothing yet.
    const day = addDays(D, -1); // never closed
    const w = await withdraw(c, { amount: 80, occurredAt: at(day, '12:00:00') });
    expect(w.status).toBe(200);
    const s = await statement(c, day, w.body.position as string);
    expect(s).toMatchObject({ status: 'open', openingBalance: 0, closingBalance: -80, belowZero: true });
    expect(s.movements).toEqual([expect.objectContaining({ amount: -80, balanceAfter: -80, belowZero: true })]);
    expect(
      (
        await http()
          .get(`/accounts/${c}`)
          .query({ minPosition: w.body.position as string })
      ).body.balance,
    ).toBe(20);
  });

  test('balance asOf: basis=business counts what had happened, basis=recorded what the system knew', async () => {
    const e = await openAccount();
    const late = await deposit(e, { amount: 500, occurredAt: at(D, '12:00:00') });
    const onTime = await deposit(e, { amount: 100 });
    expect([late.status, onTime.status]).toEqual([200, 200]);
    const events = await streamOf(e);
    const [opened, r1, r2] = events.map((x) => x.recordedAt);
    const balance = async (asOf: string, basis?: 'business' | 'recorded') => {
      const res = await http()
        .get(`/accounts/${e}/balance`)
        .query({ asOf, ...(basis ? { basis } : {}) });
      expect(res.status).toBe(200);
      return { basis: res.body.basis as string, balance: res.body.balance as number, status: res.body.status as string };
    };
    const justBefore = (iso: string) => new Date(Date.parse(iso) - 1).toISOString();
    // Business time: the late deposit happened on D at noon.
    expect(await balance(at(D, '11:59:59'))).toEqual({ basis: 'business', balance: 0, status: 'open' });
    expect(await balance(at(D, '12:00:00'), 'business')).toEqual({ basis: 'business', balance: 500, status: 'open' });
    expect(await balance(justBefore(r2!))).toEqual({ basis: 'business', balance: 500, status: 'open' });
    // Recorded time: on D the system knew nothing of this account; then the opening, the late deposit, the other.
    expect(await balance(at(D, '12:00:00'), 'recorded')).toEqual({ basis: 'recorded', balance: 0, status: 'not_opened_yet' });
    expect(await balance(justBefore(r1!), 'recorded')).toEqual({ basis: 'recorded', balance: 0, status: 'open' });
    expect(opened! <= justBefore(r1!)).toBe(true);
    expect(await balance(r1!, 'recorded')).toEqual({ basis: 'recorded', balance: 500, status: 'open' });
    expect(await balance(justBefore(r2!), 'recorded')).toEqual({ basis: 'recorded', balance: 500, status: 'open' });
    expect(await balance(r2!, 'recorded')).toEqual({ basis: 'recorded', balance: 600, status: 'open' });
    expect(await balance(r2!, 'business')).toEqual({ basis: 'business', balance: 600, status: 'open' });
    expectProblem(
      await http().get(`/accounts/${e}/balance`).query({ asOf: r2!, basis: 'wall-clock' }),
      400,
      '/problems/validation-error',
      'basis',
    );
  });

  test('statements: an unknown account is 404; a malformed date is 400', async () => {
    expectProblem(await http().get(`/accounts/${randomUUID()}/statements/${D}`), 404, '/problems/account-not-found');
    const a = await openAccount();
    expectProblem(await http().get(`/accounts/${a}/statements/2026-02-30`), 400, '/problems/validation-error', 'date');
    expectProblem(await http().get(`/accounts/${a}/statements/yesterday`), 400, '/problems/validation-error', 'date');
    expectProblem(await http().get(`/accounts/${a}/statements/9999-12-31`), 400, '/problems/validation-error', 'date');
    expect((await http().get(`/accounts/${a}/statements/1900-01-01`)).body).toMatchObject({
      status: 'open',
      openingBalance: 0,
      movements: [],
    });
  });

  test('every response above matched the OpenAPI document', () => {
    for (const op of [
      'POST /books/close 200',
      'GET /accounts/{id}/statements/{date} 200',
      'GET /corrections 200',
      'GET /exceptions 200',
      'POST /exceptions/{id}/accept 200',
      'POST /exceptions/{id}/reject 200',
    ]) {
      expect([...responses.checked].some((c) => c.startsWith(op))).toBe(true);
    }
  });
});
