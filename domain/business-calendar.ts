/**
 * Business days in a time zone (BOOKS_TIMEZONE), pure: the IANA zone rules come with the runtime
 * (Intl), nothing here reads a clock. A business day is a calendar date `YYYY-MM-DD`; it covers the
 * instants [startOfBusinessDay(date), startOfBusinessDay(next day)) of its zone, 23, 24 or 25 hours
 * around a daylight-saving change.
 */

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DAY_MS = 86_400_000;

/**
 * The business times the service takes (a late record's occurredAt, a balance's asOf, the bounds of a read): instants
 * every store holds and compares the same way. PostgreSQL's timestamptz has no year 0 (`0000-01-01` is out of range),
 * ISO-8601 strings of four-digit years end at 9999, and a JS Date written back past them becomes `+010000-...`, which
 * PostgreSQL does not read. Outside this range a request is refused at the edge (400 naming the field), so no event
 * carries a time that a projection cannot store.
 */
export const EARLIEST_BUSINESS_TIME = '1900-01-01T00:00:00.000Z';
export const LATEST_BUSINESS_TIME = '9999-12-31T23:59:59.999Z';
const EARLIEST_MS = Date.parse(EARLIEST_BUSINESS_TIME);
const LATEST_MS = Date.parse(LATEST_BUSINESS_TIME);

/** An instant (ms since the epoch) within [EARLIEST_BUSINESS_TIME, LATEST_BUSINESS_TIME]. */
export function isBusinessTime(instantMs: number): boolean {
  return Number.isFinite(instantMs) && instantMs >= EARLIEST_MS && instantMs <= LATEST_MS;
}

/** The business dates the service takes (statements, closing the books): the bounds of their days, in any zone, are instants every store holds. */
export const EARLIEST_BUSINESS_DATE = '1900-01-01';
export const LATEST_BUSINESS_DATE = '9998-12-31';

/** A real calendar date written `YYYY-MM-DD` (2026-02-30 is not). */
export function isBusinessDate(text: unknown): text is string {
  if (typeof text !== 'string') return false;
  const match = DATE.exec(text);
  if (!match) return false;
  const [y, m, d] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const t = new Date(Date.UTC(y, m - 1, d));
  return t.getUTCFullYear() === y && t.getUTCMonth() === m - 1 && t.getUTCDate() === d;
}

/** An IANA time zone the runtime knows (e.g. UTC, Europe/Berlin). */
export function isTimeZone(zone: unknown): zone is string {
  if (typeof zone !== 'string' || zone.length === 0 || zone.length > 64) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false; // the runtime does not know this zone: that is the answer
  }
}

const formats = new Map<string, Intl.DateTimeFormat>();
function dateFormat(zone: string): Intl.DateTimeFormat {
  let format = formats.get(zone);
  if (!format) {
    // en-CA writes dates as YYYY-MM-DD.
    format = new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit' });
    formats.set(zone, format);
  }
  return format;
}

/** The business date of an instant (ms since the epoch) in a zone. */
export function businessDateOf(instantMs: number, zone: string): string {
  const parts = dateFormat(zone).formatToParts(new Date(instantMs));
  const get = (type: string) => parts.find((p) => p.type === type)!.value;
  return `${get('year')}-${get('month')}-${get('day')}`;
}

/** The date `days` calendar days after `date` (before, when negative). */
export function addDays(date: string, days: number): string {
  const match = DATE.exec(date);
  if (!match) throw new RangeError(`not a date: ${date}`);
  return new Date(Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3])) + days * DAY_MS).toISOString().slice(0, 10);
}

/** Calendar days from `from` to `to` (negative when `to` comes first). */
export function daysBetween(from: string, to: string): number {
  return Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / DAY_MS);
}

/**
 * The first instant of a business day in a zone (its local midnight, or the first instant after it
 * when a daylight-saving change skips midnight): the smallest instant whose business date is `date`
 * or later, found by bisection within the ±18 h every zone offset lies in.
 */
export function startOfBusinessDay(date: string, zone: string): number {
  const midnightUtc = Date.parse(`${date}T00:00:00Z`);
  if (Number.isNaN(midnightUtc) || !isBusinessDate(date)) throw new RangeError(`not a date: ${date}`);
  let low = midnightUtc - 18 * 3_600_000; // business date before `date` in every zone
  let high = midnightUtc + 18 * 3_600_000; // business date `date` or later in every zone
  while (high - low > 1) {
    const mid = Math.floor((low + high) / 2);
    if (businessDateOf(mid, zone) >= date) high = mid;
    else low = mid;
  }
  return high;
}

/** The instants a business day covers: [startsAt, endsAt). */
export function businessDayBounds(date: string, zone: string): { startsAt: number; endsAt: number } {
  return { startsAt: startOfBusinessDay(date, zone), endsAt: startOfBusinessDay(addDays(date, 1), zone) };
}
