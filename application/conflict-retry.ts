import { WrongExpectedVersionError } from '../eventstore/errors';

export interface ConflictRetryOptions {
  /** Re-read-and-decide attempts after a conflict (default 8). Beyond that the error propagates (Temporal retries the activity). */
  maxRetries?: number;
  onConflict?: () => void;
}

/**
 * Runs `attempt` (read, decide, append with the expected revision it read) and, when another
 * writer got there first, runs it again after a short random pause (full jitter), a bounded number
 * of times. Persistent contention propagates the WrongExpectedVersionError.
 */
export async function retryOnConflict<T>(attempt: () => Promise<T>, options: ConflictRetryOptions = {}): Promise<T> {
  const maxRetries = options.maxRetries ?? 8;
  for (let retry = 0; ; retry++) {
    try {
      return await attempt();
    } catch (error) {
      if (!(error instanceof WrongExpectedVersionError) || retry >= maxRetries) throw error;
      options.onConflict?.();
      const ceiling = Math.min(200, 5 * 2 ** retry);
      await new Promise((r) => setTimeout(r, Math.random() * ceiling));
    }
  }
}
