import { AsyncLocalStorage } from 'node:async_hooks';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';

/**
 * The time an activity attempt has left, so that no write of an attempt lands after Temporal gave
 * up on it (start-to-close timeout) and scheduled another attempt, or settled the saga.
 *
 * The worker runs each activity attempt inside `runWithDeadline` (see `attemptDeadlineInterceptor`),
 * with the deadline = attempt start + start-to-close timeout - DEADLINE_MARGIN_MS. Code below reads
 * it: a write refuses to *start* when it could not finish before the deadline
 * (`assertTimeLeft`), and conflict re-decide loops stop early. Outside an activity (HTTP requests,
 * projections, tests calling the store directly) there is no deadline and nothing changes.
 */
const storage = new AsyncLocalStorage<number>();

/** Clock skew and dispatch latency between Temporal starting the attempt's timer and our code running. */
export const DEADLINE_MARGIN_MS = 1_000;

/** The deadline (epoch ms) of the activity attempt running in this async context, if any. */
export function currentDeadline(): number | undefined {
  return storage.getStore();
}

/** Milliseconds left before the current attempt's deadline (Infinity outside an attempt). */
export function timeLeftMs(): number {
  const deadline = storage.getStore();
  return deadline === undefined ? Infinity : deadline - Date.now();
}

export function runWithDeadline<T>(deadline: number, work: () => T): T {
  const outer = storage.getStore();
  return storage.run(outer === undefined ? deadline : Math.min(outer, deadline), work);
}

/** A write that could not finish before its attempt's deadline was not started. Retryable. */
export class AttemptDeadlineError extends Error {
  override name = 'AttemptDeadlineError';
  constructor(
    readonly what: string,
    readonly neededMs: number,
    readonly leftMs: number,
  ) {
    super(`${what} not started: it may take up to ${neededMs} ms and the activity attempt has ${Math.max(0, Math.round(leftMs))} ms left`);
  }
}

/** Throws AttemptDeadlineError unless `neededMs` fit before the current attempt's deadline. */
export function assertTimeLeft(what: string, neededMs: number): void {
  const left = timeLeftMs();
  if (left < neededMs) throw new AttemptDeadlineError(what, neededMs, left);
}

/** Worker interceptor: every activity attempt runs with its deadline (start-to-close from now, minus the margin). */
export const attemptDeadlineInterceptor: ActivityInterceptorsFactory = (ctx) => ({
  inbound: {
    execute: (input, next) => {
      const timeout = ctx.info.startToCloseTimeoutMs;
      if (!timeout || !Number.isFinite(timeout)) return next(input);
      return runWithDeadline(Date.now() + timeout - DEADLINE_MARGIN_MS, () => next(input));
    },
  },
});
