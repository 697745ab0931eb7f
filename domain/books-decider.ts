import { addDays, businessDayBounds, daysBetween, isBusinessDate, isTimeZone } from './business-calendar';
import type { Decider } from './decider';
import { accept, reject, type Decision } from './rejection';

/**
 * The books of one time zone: the stream `books-<zone>` holds the business days closed, in order.
 * Closing a day publishes that day's statements as they stand; records of a closed day that arrive
 * later do not rewrite them, they produce correction notices (projections/business-time-projection.ts).
 *
 * Rules:
 * - a day closes only once it has ended (in the zone, by the clock the caller passes);
 * - days close in order: closing a day also closes every open day between the last closed one and
 *   it (one BusinessDayClosed each, in one append). The first close starts the books: days before
 *   it are never closed (closing one is refused);
 * - closing a closed day again writes nothing (idempotent); the append carries the revision read,
 *   so two closes racing are ordered by the store.
 */

export type BooksEvent = {
  type: 'BusinessDayClosed';
  /** startsAt/endsAt: the instants the day covered in its zone (ISO-8601), fixed when it closed. */
  data: { timezone: string; date: string; startsAt: string; endsAt: string };
};

/** Every books event type, derived from the union. */
const BOOKS_EVENT_TYPE_SET = { BusinessDayClosed: true } as const satisfies Record<BooksEvent['type'], true>;
export const BOOKS_EVENT_TYPES = Object.keys(BOOKS_EVENT_TYPE_SET) as BooksEvent['type'][];

export interface BooksState {
  timezone: string;
  /** The first day these books closed (days before it are never closed). */
  firstClosed?: string;
  lastClosed?: string;
}

export type BooksCommand = { type: 'CloseBusinessDay'; date: string; nowMs: number };

/** At most this many days close at once (a year and a day): a typo in a year must not close a century. */
export const MAX_DAYS_PER_CLOSE = 366;

/** Stream names allow letters, digits and _ . : @ -: a zone's '/' becomes '.', anything else ':' + its code. */
export function booksStream(zone: string): string {
  return `books-${zone.replace(/[^A-Za-z0-9_-]/g, (c) => (c === '/' ? '.' : `:${c.charCodeAt(0).toString(16)}`))}`;
}
export const BOOKS_STREAM_PREFIX = 'books-';

export function decideBooks(state: BooksState, command: BooksCommand): Decision<BooksEvent> {
  const zone = state.timezone;
  if (!isTimeZone(zone)) return reject('invalid_date', `Unknown time zone ${zone}`);
  if (!isBusinessDate(command.date)) return reject('invalid_date', `${command.date} is not a calendar date (YYYY-MM-DD)`);
  if (state.firstClosed !== undefined && command.date < state.firstClosed) {
    return reject('invalid_date', `${command.date} is before the first day these books closed (${state.firstClosed}): it is never closed`);
  }
  if (state.lastClosed !== undefined && command.date <= state.lastClosed) return accept([]); // closed already
  const { endsAt } = businessDayBounds(command.date, zone);
  if (endsAt > command.nowMs) {
    return reject(
      'day_not_ended',
      `Business day ${command.date} (${zone}) ends at ${new Date(endsAt).toISOString()}: it cannot close before it has ended`,
    );
  }
  const first = state.lastClosed === undefined ? command.date : addDays(state.lastClosed, 1);
  const count = daysBetween(first, command.date) + 1;
  if (count > MAX_DAYS_PER_CLOSE) {
    return reject(
      'books_gap_too_large',
      `Closing ${command.date} would close ${count} days from ${first} on; close at most ${MAX_DAYS_PER_CLOSE} at once (close an earlier day first)`,
    );
  }
  const events: BooksEvent[] = [];
  for (let i = 0; i < count; i++) {
    const date = addDays(first, i);
    const bounds = businessDayBounds(date, zone);
    events.push({
      type: 'BusinessDayClosed',
      data: { timezone: zone, date, startsAt: new Date(bounds.startsAt).toISOString(), endsAt: new Date(bounds.endsAt).toISOString() },
    });
  }
  return accept(events);
}

export function evolveBooks(state: BooksState, event: BooksEvent): BooksState {
  switch (event.type) {
    case 'BusinessDayClosed':
      return { ...state, firstClosed: state.firstClosed ?? event.data.date, lastClosed: event.data.date };
  }
}

/** The books as a decider; its id is the time zone. */
export const booksDecider: Decider<BooksState, BooksCommand, BooksEvent> = {
  name: 'Books',
  streamName: booksStream,
  eventTypes: BOOKS_EVENT_TYPES,
  initialState: (zone) => ({ timezone: zone }),
  evolve: evolveBooks,
  decide: decideBooks,
};
