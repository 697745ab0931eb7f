import {
  addDays,
  businessDateOf,
  businessDayBounds,
  EARLIEST_BUSINESS_TIME,
  isBusinessDate,
  isBusinessTime,
  isTimeZone,
  LATEST_BUSINESS_TIME,
  startOfBusinessDay,
} from '../../domain/business-calendar';
import { booksDecider, booksStream, decideBooks, MAX_DAYS_PER_CLOSE, type BooksState } from '../../domain/books-decider';
import { fold } from '../../domain/decider';
import {
  decideException,
  evolveException,
  exceptionDecider,
  type ExceptionState,
  type HeldLateRecord,
} from '../../domain/late-record-exception';
import { describeDuration, parseDuration, timeliness } from '../../domain/lateness';

describe('business calendar', () => {
  test.each([
    ['2026-03-02', true],
    ['2024-02-29', true],
    ['2026-02-29', false],
    ['2026-13-01', false],
    ['2026-3-2', false],
    ['', false],
  ])('isBusinessDate(%s) = %s', (text, valid) => expect(isBusinessDate(text)).toBe(valid));

  test.each([
    ['0000-01-01T00:00:00Z', false],
    ['1899-12-31T23:59:59.999Z', false],
    [EARLIEST_BUSINESS_TIME, true],
    ['2026-03-02T10:00:00+01:00', true],
    [LATEST_BUSINESS_TIME, true],
    ['9999-12-31T23:00:00-05:00', false],
    ['not a time', false],
  ])('isBusinessTime(%s) = %s (the instants every store holds)', (text, valid) => expect(isBusinessTime(Date.parse(text))).toBe(valid));

  test('time zones the runtime knows', () => {
    expect(isTimeZone('UTC')).toBe(true);
    expect(isTimeZone('Europe/Berlin')).toBe(true);
    expect(isTimeZone('Mars/Olympus_Mons')).toBe(false);
  });

  test('a business day is local midnight to local midnight: 24 h, 23 h and 25 h around daylight saving', () => {
    expect(businessDayBounds('2026-03-02', 'UTC')).toEqual({
      startsAt: Date.parse('2026-03-02T00:00:00Z'),
      endsAt: Date.parse('2026-03-03T00:00:00Z'),
    });
    // Berlin: UTC+1 in winter, UTC+2 from 2026-03-29 02:00 local, back on 2026-10-25.
    expect(startOfBusinessDay('2026-03-02', 'Europe/Berlin')).toBe(Date.parse('2026-03-01T23:00:00Z'));
    const spring = businessDayBounds('2026-03-29', 'Europe/Berlin');
    expect((spring.endsAt - spring.startsAt) / 3_600_000).toBe(23);
    const autumn = businessDayBounds('2026-10-25', 'Europe/Berlin');
    expect((autumn.endsAt - autumn.startsAt) / 3_600_000).toBe(25);
    // New York: the business date of an instant late in the UTC day is the day before.
    expect(businessDateOf(Date.parse('2026-03-03T02:00:00Z'), 'America/New_York')).toBe('2026-03-02');
    expect(businessDateOf(Date.parse('2026-03-03T02:00:00Z'), 'UTC')).toBe('2026-03-03');
    expect(addDays('2026-02-28', 1)).toBe('2026-03-01');
    expect(addDays('2026-01-01', -1)).toBe('2025-12-31');
  });

  test('every instant of a day maps back to that day, the instant before it to the day before', () => {
    for (const zone of ['UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Kolkata', 'Pacific/Chatham']) {
      for (const date of ['2026-01-15', '2026-03-08', '2026-03-29', '2026-10-25', '2026-11-01']) {
        const { startsAt, endsAt } = businessDayBounds(date, zone);
        expect([zone, businessDateOf(startsAt, zone), businessDateOf(endsAt - 1, zone), businessDateOf(startsAt - 1, zone)]).toEqual([
          zone,
          date,
          date,
          addDays(date, -1),
        ]);
      }
    }
  });
});

describe('lateness', () => {
  const policy = { maxLatenessMs: 5 * 86_400_000, maxClockSkewMs: 120_000 };
  const now = Date.parse('2026-03-10T12:00:00Z');
  test.each([
    ['now', now, 'in_time'],
    ['a day ago', now - 86_400_000, 'in_time'],
    ['exactly the limit', now - 5 * 86_400_000, 'in_time'],
    ['a millisecond beyond the limit', now - 5 * 86_400_000 - 1, 'too_late'],
    ['a minute ahead (clock skew)', now + 60_000, 'in_time'],
    ['an hour ahead', now + 3_600_000, 'future'],
  ])('%s -> %s', (_label, occurredAt, kind) => expect(timeliness(occurredAt, now, policy).kind).toBe(kind));

  // Issue 23: a record dated before its account was opened cannot belong to it, in time or too late; the future first.
  const openedAt = now - 2 * 86_400_000;
  test.each([
    ['at the opening', openedAt, 'in_time'],
    ['a millisecond before the opening (in time otherwise)', openedAt - 1, 'before_opening'],
    ['before the opening and too late', now - 6 * 86_400_000, 'before_opening'],
    ['an hour ahead', now + 3_600_000, 'future'],
  ])('opened two days ago: %s -> %s', (_label, occurredAt, kind) => expect(timeliness(occurredAt, now, policy, openedAt).kind).toBe(kind));

  test.each([
    ['5d', 5 * 86_400_000],
    ['36h', 36 * 3_600_000],
    ['90m', 90 * 60_000],
    ['30s', 30_000],
    ['P5D', 5 * 86_400_000],
    ['PT36H', 36 * 3_600_000],
    ['P1DT12H', 36 * 3_600_000],
    ['five days', undefined],
    ['P', undefined],
    ['5', undefined],
  ])('parseDuration(%s) = %s', (text, ms) => expect(parseDuration(text)).toBe(ms));

  test('durations for people', () => {
    expect(describeDuration(6 * 86_400_000 + 2 * 3_600_000 + 3 * 60_000 + 4_000)).toBe('6d 2h 3m 4s');
    expect(describeDuration(5 * 86_400_000)).toBe('5d');
  });
});

describe('the books: closing business days', () => {
  const zone = 'Europe/Berlin';
  const state = (lastClosed?: string): BooksState => ({ timezone: zone, lastClosed, firstClosed: lastClosed });
  const at = (iso: string) => Date.parse(iso);

  test('a day closes once it has ended in its zone, not before', () => {
    // 2026-03-02 ends at 2026-03-02T23:00:00Z in Berlin.
    const early = decideBooks(state(), { type: 'CloseBusinessDay', date: '2026-03-02', nowMs: at('2026-03-02T22:59:59.999Z') });
    expect(early).toMatchObject({ ok: false, rejection: { type: 'day_not_ended' } });
    const closed = decideBooks(state(), { type: 'CloseBusinessDay', date: '2026-03-02', nowMs: at('2026-03-02T23:00:00Z') });
    expect(closed).toEqual({
      ok: true,
      events: [
        {
          type: 'BusinessDayClosed',
          data: { timezone: zone, date: '2026-03-02', startsAt: '2026-03-01T23:00:00.000Z', endsAt: '2026-03-02T23:00:00.000Z' },
        },
      ],
    });
  });

  test('closing a day closes every open day before it, in order; closing a closed day writes nothing', () => {
    const decision = decideBooks(state('2026-03-02'), { type: 'CloseBusinessDay', date: '2026-03-05', nowMs: at('2026-03-10T00:00:00Z') });
    if (!decision.ok) throw new Error(decision.rejection.message);
    expect(decision.events.map((e) => e.data.date)).toEqual(['2026-03-03', '2026-03-04', '2026-03-05']);
    const after = fold(booksDecider, decision.events, state('2026-03-02'));
    expect(after.lastClosed).toBe('2026-03-05');
    for (const date of ['2026-03-05', '2026-03-03'])
      expect(decideBooks(after, { type: 'CloseBusinessDay', date, nowMs: at('2026-03-10T00:00:00Z') })).toEqual({ ok: true, events: [] });
    // Before the books started: never closed, and not closable now.
    expect(decideBooks(after, { type: 'CloseBusinessDay', date: '2026-03-01', nowMs: at('2026-03-10T00:00:00Z') })).toMatchObject({
      ok: false,
      rejection: { type: 'invalid_date' },
    });
  });

  test('the first close starts the books; a gap beyond a year is refused; bad dates are refused', () => {
    const first = decideBooks(state(), { type: 'CloseBusinessDay', date: '2026-03-05', nowMs: at('2026-03-10T00:00:00Z') });
    expect(first.ok && first.events.map((e) => e.data.date)).toEqual(['2026-03-05']);
    const far = decideBooks(state('2024-01-01'), {
      type: 'CloseBusinessDay',
      date: addDays('2024-01-01', MAX_DAYS_PER_CLOSE + 1),
      nowMs: at('2026-03-10T00:00:00Z'),
    });
    expect(far).toMatchObject({ ok: false, rejection: { type: 'books_gap_too_large' } });
    expect(decideBooks(state(), { type: 'CloseBusinessDay', date: '2026-02-30', nowMs: at('2026-03-10T00:00:00Z') })).toMatchObject({
      ok: false,
      rejection: { type: 'invalid_date' },
    });
  });

  test('stream names hold any zone', () => {
    expect(booksStream('UTC')).toBe('books-UTC');
    expect(booksStream('America/Argentina/Buenos_Aires')).toBe('books-America.Argentina.Buenos_Aires');
    expect(booksStream('Etc/GMT+5')).toBe('books-Etc.GMT:2b5');
  });
});

describe('late records held as exceptions', () => {
  const record: HeldLateRecord = {
    exceptionId: 'e1',
    accountId: 'a1',
    kind: 'withdrawal',
    amount: 500,
    occurredAt: '2026-03-01T10:00:00.000Z',
    lateByMs: 7 * 86_400_000,
    maxLatenessMs: 5 * 86_400_000,
    request: {
      method: 'POST',
      path: '/accounts/a1/withdrawals',
      body: { amount: 500, occurredAt: '2026-03-01T10:00:00.000Z' },
      idempotencyKey: null,
      requestId: 'r1',
    },
    by: 'op',
  };
  const run = (state: ExceptionState, ...commands: Parameters<typeof decideException>[1][]) => {
    let s = state;
    for (const command of commands) {
      const d = decideException(s, command);
      if (!d.ok) return { state: s, rejection: d.rejection.type };
      s = d.events.reduce((acc, e) => evolveException(acc, { ...e, occurredAt: '2026-03-08T10:00:00.000Z' }), s);
    }
    return { state: s };
  };
  const none = exceptionDecider.initialState('e1');
  const now = Date.parse('2026-03-08T10:00:10.000Z');
  const start = { type: 'StartAcceptance' as const, accountRevision: '3', by: 'op2', nowMs: now, leaseMs: 30_000 };

  test('a record dated outside the business times is not held (no projection could store it)', () => {
    for (const occurredAt of ['0000-01-01T00:00:00.000Z', '+010000-01-01T00:00:00.000Z', 'yesterday'])
      expect(run(none, { type: 'HoldLateRecord', record: { ...record, occurredAt } }).rejection).toBe('invalid_date');
  });

  test('held, accepted in steps, then closed both ways', () => {
    const held = run(none, { type: 'HoldLateRecord', record });
    expect(held.state).toMatchObject({ status: 'open', held: record });
    // Holding the same again writes nothing.
    expect(decideException(held.state, { type: 'HoldLateRecord', record })).toEqual({ ok: true, events: [] });
    const accepting = run(held.state, start);
    expect(accepting.state).toMatchObject({ status: 'accepting', attempts: 1, firstBaseRevision: '3' });
    // While an attempt runs: no reject, no second attempt (until its lease ran out).
    expect(run(accepting.state, { type: 'RejectException', by: 'op3' }).rejection).toBe('exception_in_progress');
    expect(run(accepting.state, start).rejection).toBe('exception_in_progress');
    expect(run(accepting.state, { ...start, nowMs: now + 60_000, accountRevision: '5' }).state).toMatchObject({
      attempts: 2,
      firstBaseRevision: '3',
    });
    const accepted = run(accepting.state, { type: 'RecordAcceptance', accountRevision: '4', position: '10.10' });
    expect(accepted.state).toMatchObject({ status: 'accepted', applied: { accountRevision: '4', position: '10.10' }, by: 'op2' });
    expect(decideException(accepted.state, start)).toEqual({ ok: true, events: [] });
    expect(run(accepted.state, { type: 'RejectException', by: 'op3' }).rejection).toBe('exception_closed');
  });

  test('an account that refuses it leaves it open; rejecting closes it for good', () => {
    const refused = run(none, { type: 'HoldLateRecord', record }, start, {
      type: 'RefuseAcceptance',
      reason: 'insufficient_funds',
      message: 'no money',
    });
    expect(refused.state).toMatchObject({ status: 'open', lastRefusal: { reason: 'insufficient_funds' } });
    const rejected = run(refused.state, { type: 'RejectException', by: 'op3', reason: 'duplicate of a record already booked' });
    expect(rejected.state).toMatchObject({ status: 'rejected', rejectReason: 'duplicate of a record already booked', by: 'op3' });
    expect(decideException(rejected.state, { type: 'RejectException', by: 'op3' })).toEqual({ ok: true, events: [] });
    expect(run(rejected.state, start).rejection).toBe('exception_closed');
    expect(run(none, start).rejection).toBe('exception_not_found');
  });
});
