import type { ApiDeps } from './api-deps';

/** Business time (issue 14): the books' time zone and how late a record may be (BOOKS_TIMEZONE, MAX_LATENESS, MAX_CLOCK_SKEW). */
export interface BusinessTimeSettings {
  /** IANA zone of the business days (default UTC). */
  timezone?: string;
  /** Records that happened longer ago are refused (422 too-late) and held as exceptions. Default 5 days. */
  maxLatenessMs?: number;
  /** How far in the future an occurredAt may lie (clock skew between the sender and us). Default 2 minutes. */
  maxClockSkewMs?: number;
  /** The clock the lateness and "has the day ended" checks use (tests move it). Default Date.now. */
  now?: () => number;
}

export const BUSINESS_TIME_DEFAULTS = { timezone: 'UTC', maxLatenessMs: 5 * 86_400_000, maxClockSkewMs: 120_000 } as const;

/** The settings in force, read at each request (so a test may change deps.businessTime on a running app). */
export function businessTimeOf(deps: ApiDeps): Required<BusinessTimeSettings> {
  const s = deps.businessTime ?? {};
  return {
    timezone: s.timezone ?? BUSINESS_TIME_DEFAULTS.timezone,
    maxLatenessMs: s.maxLatenessMs ?? BUSINESS_TIME_DEFAULTS.maxLatenessMs,
    maxClockSkewMs: s.maxClockSkewMs ?? BUSINESS_TIME_DEFAULTS.maxClockSkewMs,
    now: s.now ?? Date.now,
  };
}
