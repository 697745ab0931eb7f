/** An error the store recovered from on its own, and where (e.g. 'consumer group projection-transfers'). */
export type StoreErrorListener = (error: unknown, where: string) => void;

/** Tells the listener; a listener that throws must not stop what recovers (a consumer group, the LISTEN reconnects). */
export function reportSafely(listener: StoreErrorListener | undefined, error: unknown, where: string): void {
  try {
    listener?.(error, where);
  } catch {
    // the listener's own failure: the recovery goes on regardless
  }
}
