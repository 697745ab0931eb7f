import { WrongExpectedVersionError } from '../eventstore/errors';
import { timeLeftMs } from '../infra/attempt-deadline';

export interface ConflictRetryOptions {
  /** Re-read-and-decide attempts after a conflict (default 8). Beyond that the error propagates (Temporal retries the activity). */
  maxRetries?: number;
  /**
   * Time after which no new re-decide starts (default 3 s): a long run of conflicts gives the
   * activity attempt back to Temporal's retry instead of eating its start-to-close timeout.
   */
  maxElapsedMs?: number;
  onConflict?: () => void;
}

export const CONFLICT_RETRY_DEFAULTS = { maxRetries: 8, maxElapsedMs: 3_000, maxPauseMs: 200 } as const;

/**
 * Runs `attempt` (read, decide, append with the expected revision it read) and, when another
 * writer got there first, runs it again after a short random pause (full jitter). Bounded in count
 * (maxRetries), in time (maxElapsedMs from the first attempt) and by the activity attempt's
 * deadline (infra/attempt-deadline.ts): no pause ends past either, and persistent contention
 * propagates the last WrongExpectedVersionError.
 */
export async function retryOnConflict<T>(attempt: () => Promise<T>, options: ConflictRetryOptions = {}): Promise<T> {
  const maxRetries = options.maxRetries ?? CONFLICT_RETRY_DEFAULTS.maxRetries;
  const giveUpAt = Date.now() + (options.maxElapsedMs ?? CONFLICT_RETRY_DEFAULTS.maxElapsedMs);
  for (let retry = 0; ; retry++) {
    try {
      return await attempt();
    } catch (error) {
      if (!(error instanceof WrongExpectedVersionError) || retry >= maxRetries) throw error;
      const pause = Math.random() * Math.min(CONFLICT_RETRY_DEFAULTS.maxPauseMs, 5 * 2 ** retry);
      const left = Math.min(giveUpAt - Date.now(), timeLeftMs());
      if (left <= pause) throw error;
      options.onConflict?.();
      await new Promise((r) => setTimeout(r, pause));
    }
  }
}
