import { randomUUID } from 'node:crypto';
import type { Response } from 'supertest';
import { handleAccountCommand } from '../../application/account-commands';
import { ExceptionLog, holdLateRecord } from '../../application/late-record-exceptions';
import { accountStream } from '../../domain/account-events';
import { businessDateOf } from '../../domain/business-calendar';
import { exceptionStream } from '../../domain/late-record-exception';
import { formatPosition } from '../../eventstore/event-store';
import { ALL_PROJECTIONS } from '../../projections/all-projections';
import { businessTimeProjection } from '../../projections/business-time-projection';
import { groupName, ProjectionRunner } from '../../projections/projection-runner';
import { ApiStack, resilientPool, storeFingerprint, withApplicationName } from '../support/api-stack';
import { waitUntil } from '../support/wait-until';

/**
 * Issue 23, item 8: one bad date must not degrade every statement.
 * - Business times are checked at the edge against the range every store holds (1900-01-01T00:00:00Z to
 *   9999-12-31T23:59:59.999Z): outside it, 400 naming the field, and nothing is written (a deposit dated 0000-01-01
 *   used to answer 422 too-late and hold an exception the business-time projection could not apply).
 * - A late record dated before its account was opened is refused (422), whether it would be written (in time) or
 *   held as an exception (too late), and an exception held for one (by an earlier version) cannot be accepted.
 * - An event a projection cannot apply is parked: reads it concerns answer 503, reads of other accounts do not.
 */

const DAY = 86_400_000;
const GROUP = groupName(businessTimeProjection);

function expectProblem(res: Response, status: number, type: string, field?: string): void {
  expect({ status: res.status, type: res.body?.type as unknown }).toEqual({ status, type });
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  if (field) expect((res.body.errors as { field: string }[]).map((e) => e.field)).toContain(field);
}

describe('business time: bad dates are refused at the edge, and a parked event degrades only the reads it concerns', () => {
  let api: ApiStack;
  let stopRunner: (() => Promise<void>) | undefined;
  const http = () => api.http();
  const now = Date.now();
  const D = businessDateOf(now - 2 * DAY, 'UTC');

  beforeAll(async () => {
    api = await ApiStack.create('business_time_dates', { startProjections: false, maxConsistencyWaitMs: 5_000 });
    // Our own runner, so a poison event is parked after 3 attempts (not the ~25 s of the default).
    const pool = resilientPool(withApplicationName(api.stack.db.url, 'bad-dates-projections'), 5);
    const runner = new ProjectionRunner(api.store, pool, ALL_PROJECTIONS, {}, { maxAttempts: 3, retryBackoffMs: 20 });
    await runner.start();
    stopRunner = async () => (await runner.stop(), await pool.end());
  });
  afterAll(async () => {
    await stopRunner?.();
    await api?.close();
  });

  /** A LateRecordHeld's data as the API writes it. */
  const heldData = (exceptionId: string, accountId: string, occurredAt: string) => ({
    exceptionId,
    accountId,
    kind: 'deposit',
    amount: 5,
    occurredAt,
    lateByMs: now - Date.parse(occurredAt),
    maxLatenessMs: 5 * DAY,
    request: {
      method: 'POST',
      path: `/accounts/${accountId}/deposits`,
      body: { amount: 5, occurredAt },
      idempotencyKey: null,
      requestId: null,
    },
    by: 'env-operator',
    reason: 'too_late',
  });

  /** An account opened (in business time) `daysAgo` days ago. */
  async function openAccount(daysAgo: number): Promise<{ accountId: string; openedAt: string }> {
    const accountId = randomUUID();
    const openedAt = new Date(now - daysAgo * DAY).toISOString();
    const opened = await handleAccountCommand(
      api.accounts,
      accountId,
      { type: 'OpenAccount', accountId, ownerId: 'dates', currency: 'EUR', initialDeposit: 1_000 },
      { context: { occurredAt: openedAt } },
    );
    expect(opened.ok).toBe(true);
    return { accountId, openedAt };
  }

  test('business times outside 1900-01-01T00:00:00Z .. 9999-12-31T23:59:59.999Z: 400 naming the field, nothing written, nothing held', async () => {
    const { accountId: a } = await openAccount(10);
    const written = await storeFingerprint(api.pool);
    for (const occurredAt of [
      '0000-01-01T00:00:00Z',
      '0001-01-01T00:30:00+01:00', // year 0 once in UTC
      '1899-12-31T23:59:59.999Z',
      '9999-12-31T23:00:00-05:00', // year 10000 once in UTC
    ]) {
      for (const endpoint of ['deposits', 'withdrawals']) {
        const res = await http().post(`/accounts/${a}/${endpoint}`).send({ amount: 10, occurredAt });
        expectProblem(res, 400, '/problems/validation-error', 'occurredAt');
        expect(res.body.errors[0].message).toContain('1900-01-01T00:00:00.000Z');
      }
      const keyed = await http().post(`/accounts/${a}/deposits`).set('Idempotency-Key', randomUUID()).send({ amount: 10, occurredAt });
      expectProblem(keyed, 400, '/problems/validation-error', 'occurredAt');
      expectProblem(await http().get(`/accounts/${a}/balance`).query({ asOf: occurredAt }), 400, '/problems/validation-error', 'asOf');
      for (const field of ['occurredFrom', 'occurredTo', 'from', 'to'])
        expectProblem(
          await http()
            .get('/events')
            .query({ [field]: occurredAt }),
          400,
          '/problems/validation-error',
          field,
        );
    }
    expect(await storeFingerprint(api.pool)).toEqual(written);

    // The bounds themselves are business times every store holds.
    const first = await http().get(`/accounts/${a}/balance`).query({ asOf: '1900-01-01T00:00:00Z' });
    expect(first.status).toBe(200);
    expect(first.body.balance).toBe(0);
    const last = await http().get(`/accounts/${a}/balance`).query({ asOf: '9999-12-31T23:59:59.999Z' });
    expect(last.status).toBe(200);
    expect(last.body.balance).toBe(1_000);
    const events = await http()
      .get('/events')
      .query({ occurredFrom: '1900-01-01T00:00:00Z', occurredTo: '9999-12-31T23:59:59.999Z', limit: 1 });
    expect(events.status).toBe(200);
  });

  test('a late record dated before its account was opened: 422, in time or too late, keyed or not; nothing written, nothing held', async () => {
    const { accountId: a, openedAt } = await openAccount(3);
    const beforeOpening = new Date(Date.parse(openedAt) - 1).toISOString(); // in time (within 5 days)
    const longBefore = new Date(now - 7 * DAY).toISOString(); // too late as well
    const written = await storeFingerprint(api.pool);
    for (const occurredAt of [beforeOpening, longBefore]) {
      for (const endpoint of ['deposits', 'withdrawals']) {
        const res = await http().post(`/accounts/${a}/${endpoint}`).send({ amount: 10, occurredAt });
        expectProblem(res, 422, '/problems/before-account-opened', 'occurredAt');
        expect(res.body.detail).toContain(openedAt);
        expect(res.body.exceptionId).toBeUndefined();
        const keyed = await http().post(`/accounts/${a}/${endpoint}`).set('Idempotency-Key', randomUUID()).send({ amount: 10, occurredAt });
        expectProblem(keyed, 422, '/problems/before-account-opened', 'occurredAt');
      }
    }
    expect(await storeFingerprint(api.pool)).toEqual(written);

    // At the opening instant itself: the account exists, the record is written.
    const atOpening = await http().post(`/accounts/${a}/deposits`).send({ amount: 10, occurredAt: openedAt });
    expect(atOpening.status).toBe(200);
  });

  test('an exception held (by an earlier version) for a record dated before the opening cannot be accepted: 422, nothing reaches the account', async () => {
    const { accountId: a, openedAt } = await openAccount(3);
    const occurredAt = new Date(now - 8 * DAY).toISOString();
    const exceptionId = randomUUID();
    await holdLateRecord(
      new ExceptionLog(api.store),
      {
        exceptionId,
        accountId: a,
        kind: 'deposit',
        amount: 500,
        occurredAt,
        lateByMs: 8 * DAY,
        maxLatenessMs: 5 * DAY,
        request: {
          method: 'POST',
          path: `/accounts/${a}/deposits`,
          body: { amount: 500, occurredAt },
          idempotencyKey: null,
          requestId: null,
        },
        by: 'env-operator',
      },
      {},
    );
    const account = await api.store.readStream(accountStream(a));
    const refused = await http().post(`/exceptions/${exceptionId}/accept`);
    expectProblem(refused, 422, '/problems/before-account-opened');
    expect(refused.body.detail).toContain(openedAt);
    expect(await api.store.readStream(accountStream(a))).toEqual(account);
    expect((await api.store.readStream(exceptionStream(exceptionId))).map((e) => e.type)).toEqual([
      'LateRecordHeld',
      'ExceptionAcceptanceStarted',
      'ExceptionAcceptanceRefused',
    ]);
    // It stays open for an operator to reject.
    expect((await http().post(`/exceptions/${exceptionId}/reject`).send({ reason: 'dated before the account' })).status).toBe(200);
  });

  test('an exception an earlier version held with a year-0 time is projected (its time from the request) and can only be rejected', async () => {
    const { accountId: a } = await openAccount(10);
    const exceptionId = randomUUID();
    const occurredAt = '0000-01-01T00:00:00.000Z';
    // What an earlier version held for a deposit dated 0000-01-01 (the decider now refuses it): it used to be parked,
    // and a replay of it now applies.
    const held = await api.store.appendToStream(
      exceptionStream(exceptionId),
      [{ id: randomUUID(), type: 'LateRecordHeld', data: heldData(exceptionId, a, occurredAt), metadata: {} }],
      { expectedRevision: 'no_stream' },
    );
    const listed = await http()
      .get('/exceptions')
      .query({ accountId: a, minPosition: formatPosition(held.position) });
    expect(listed.status).toBe(200);
    expect(listed.body.exceptions).toEqual([expect.objectContaining({ exceptionId, status: 'open', occurredAt })]);
    expect(await api.store.listParked(GROUP)).toEqual([]);
    expectProblem(await http().post(`/exceptions/${exceptionId}/accept`), 422, '/problems/before-account-opened');
    expect((await http().post(`/exceptions/${exceptionId}/reject`).send({})).status).toBe(200);
  });

  test('an event the business-time projection cannot apply is parked: reads it concerns answer 503, reads of other accounts are answered', async () => {
    const { accountId: x } = await openAccount(10);
    const { accountId: y } = await openAccount(10);
    const beforePoison = formatPosition((await api.store.readStream(accountStream(y))).at(-1)!.position);
    // An exception stream the projection cannot apply: a decision with no held record before it.
    const poisonId = randomUUID();
    await api.store.appendToStream(
      exceptionStream(poisonId),
      [
        {
          id: randomUUID(),
          type: 'ExceptionRejected',
          data: { exceptionId: poisonId, accountId: x, by: 'someone', reason: null },
          metadata: {},
        },
      ],
      { expectedRevision: 'no_stream' },
    );
    await waitUntil('the poison exception to be parked', async () =>
      (await api.store.listParked(GROUP)).some((p) => p.event.stream === exceptionStream(poisonId)),
    );

    // Writes after it, on another account and on the poisoned one.
    const onY = await http()
      .post(`/accounts/${y}/deposits`)
      .send({ amount: 70, occurredAt: `${D}T10:00:00Z` });
    expect(onY.status).toBe(200);
    const onX = await http()
      .post(`/accounts/${x}/deposits`)
      .send({ amount: 30, occurredAt: `${D}T11:00:00Z` });
    expect(onX.status).toBe(200);
    const after = onX.body.position as string;

    // /ready shows the parked event to the operator.
    const ready = await http().get('/ready');
    expect(ready.body.status).toBe('degraded');
    expect(ready.body.projections['business-time']).toMatchObject({ status: 'degraded', parkedEvents: 1 });

    // Reads the parked event does not concern are answered, with everything up to the position asked.
    const statementY = await http().get(`/accounts/${y}/statements/${D}`).query({ minPosition: after });
    expect(statementY.status).toBe(200);
    expect(statementY.body).toMatchObject({ closingBalance: 1_070, movements: [expect.objectContaining({ amount: 70 })] });
    // X's statement is made of X's movements and the closed days: the exception is not part of it.
    const statementX = await http().get(`/accounts/${x}/statements/${D}`).query({ minPosition: after });
    expect(statementX.status).toBe(200);
    expect(statementX.body.movements).toEqual([expect.objectContaining({ amount: 30 })]);
    expect((await http().get('/corrections').query({ minPosition: after })).status).toBe(200);
    const exceptionsY = await http().get('/exceptions').query({ accountId: y, minPosition: after });
    expect(exceptionsY.status).toBe(200);
    expect(exceptionsY.body.exceptions).toEqual([]);

    // Reads that would lack it: refused, naming the parked event.
    for (const query of [{ accountId: x, minPosition: after }, { minPosition: after }]) {
      const res = await http().get('/exceptions').query(query);
      expectProblem(res, 503, '/problems/projection-degraded');
      expect(res.body).toMatchObject({ projection: 'business-time', parkedEvents: 1 });
    }
    // A read up to a position before the parked event is answered as before.
    const early = await http().get('/exceptions').query({ accountId: x, minPosition: beforePoison });
    expect(early.status).toBe(200);
  });
});
