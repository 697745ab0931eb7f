import { ActivityFailure, ApplicationFailure, isCancellation } from '@temporalio/workflow';

/** A business rejection (non-retryable) or a cancel: never handed on to another attempt. */
export function isFinal(error: unknown): boolean {
  if (isCancellation(error)) return true;
  const cause = error instanceof ActivityFailure ? error.cause : error;
  return cause instanceof ApplicationFailure && cause.nonRetryable === true;
}

/** The leg as a local activity first; on an infrastructure failure, the remote activity (its own retry policy). */
export async function localThenRemote<T>(local: (() => Promise<T>) | undefined, remote: () => Promise<T>): Promise<T> {
  if (!local) return remote();
  try {
    return await local();
  } catch (error) {
    if (isFinal(error)) throw error;
    return remote();
  }
}
