import { jest } from '@jest/globals';

/**
 * Runs `work` as if this process's wall clock were `offsetMs` off (negative: behind), as on a host whose
 * clock drifted. Only `Date` is faked, and it keeps running; timers, hrtime and performance stay real, so
 * drivers, pools and timeouts behave as usual. Restores the real clock afterwards, even on failure.
 */
export async function withClockOffset<T>(offsetMs: number, work: () => Promise<T>): Promise<T> {
  jest.useFakeTimers({
    now: Date.now() + offsetMs,
    advanceTimers: true,
    doNotFake: [
      'hrtime',
      'nextTick',
      'performance',
      'queueMicrotask',
      'requestAnimationFrame',
      'cancelAnimationFrame',
      'requestIdleCallback',
      'cancelIdleCallback',
      'setImmediate',
      'clearImmediate',
      'setInterval',
      'clearInterval',
      'setTimeout',
      'clearTimeout',
      'Temporal',
    ],
  });
  try {
    return await work();
  } finally {
    jest.useRealTimers();
  }
}
