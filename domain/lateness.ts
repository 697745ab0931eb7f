/**
 * Late records: a deposit or withdrawal may say when it happened (`occurredAt`, business time) when
 * it is reported after the fact. How late is acceptable is a policy (MAX_LATENESS); older records go
 * to manual handling. Pure: the caller passes the time it checks against.
 */

export interface LatenessPolicy {
  /** A record that happened longer ago than this is too late (default 5 days). */
  maxLatenessMs: number;
  /** How far in the future `occurredAt` may lie (the clocks of the sender and ours disagree a little). */
  maxClockSkewMs: number;
}

export type Timeliness =
  /** Within the limit: recorded with its business time. */
  | { kind: 'in_time'; lateByMs: number }
  /** Older than the limit: refused, kept as an exception for manual handling. */
  | { kind: 'too_late'; lateByMs: number }
  /** In the future beyond the clock-skew allowance: refused as bad input. */
  | { kind: 'future'; aheadByMs: number }
  /** Before its account was opened (business time): it cannot belong to the account; refused, never held. */
  | { kind: 'before_opening'; openedAtMs: number };

/**
 * How a record dated `occurredAtMs` stands at `nowMs`. With `openedAtMs` (its account's opening, business time), a
 * record dated before it is `before_opening`, whether it would be in time or too late: an exception held for it could
 * never be applied, so none is held.
 */
export function timeliness(occurredAtMs: number, nowMs: number, policy: LatenessPolicy, openedAtMs?: number): Timeliness {
  const lateByMs = nowMs - occurredAtMs;
  if (lateByMs < -policy.maxClockSkewMs) return { kind: 'future', aheadByMs: -lateByMs };
  if (openedAtMs !== undefined && isBeforeOpening(occurredAtMs, openedAtMs)) return { kind: 'before_opening', openedAtMs };
  if (lateByMs > policy.maxLatenessMs) return { kind: 'too_late', lateByMs };
  return { kind: 'in_time', lateByMs: Math.max(0, lateByMs) };
}

/** A record dated before its account was opened (both business times, ms): refused, at the edge and when an exception is accepted. */
export function isBeforeOpening(occurredAtMs: number, openedAtMs: number): boolean {
  return occurredAtMs < openedAtMs;
}

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const SHORT = /^(\d{1,9})(ms|s|m|h|d)$/;
const ISO = /^P(?:(\d{1,6})D)?(?:T(?:(\d{1,9})H)?(?:(\d{1,9})M)?(?:(\d{1,9})S)?)?$/;

/**
 * A duration as configured: a number with a unit (`5d`, `36h`, `90m`, `30s`, `500ms`) or an ISO 8601
 * duration in days, hours, minutes and seconds (`P5D`, `PT36H`, `P1DT12H`). Undefined when neither.
 */
export function parseDuration(text: string): number | undefined {
  const short = SHORT.exec(text.trim());
  if (short) return Number(short[1]) * UNIT_MS[short[2] as keyof typeof UNIT_MS];
  const iso = ISO.exec(text.trim().toUpperCase());
  if (!iso || text.trim().toUpperCase() === 'P' || text.trim().toUpperCase().endsWith('T')) return undefined;
  const [d, h, m, s] = [iso[1], iso[2], iso[3], iso[4]].map((v) => Number(v ?? 0));
  return d! * UNIT_MS.d + h! * UNIT_MS.h + m! * UNIT_MS.m + s! * UNIT_MS.s;
}

/** A duration for people: `5d`, `36h`, `90m`, `30s` (the largest whole unit). */
export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const)
    if (ms % UNIT_MS[unit] === 0 && ms >= UNIT_MS[unit]) return `${ms / UNIT_MS[unit]}${unit}`;
  return `${ms}ms`;
}

/** A duration in whole units, largest first: `6d 2h 3m 4s` (`0s` for nothing). */
export function describeDuration(ms: number): string {
  const parts: string[] = [];
  let left = Math.max(0, Math.round(ms / 1000)) * 1000;
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const n = Math.floor(left / UNIT_MS[unit]);
    if (n > 0) parts.push(`${n}${unit}`);
    left -= n * UNIT_MS[unit];
  }
  return parts.length > 0 ? parts.join(' ') : '0s';
}
