import { timeLeftMs } from '../infra/attempt-deadline';

/** Per event store (the object), per stream: the end of the queue of commands this process runs on the stream. */
const queues = new WeakMap<object, Map<string, Promise<void>>>();

/** The longest a command waits for its turn; then it goes ahead and races, as without turns. */
export const MAX_TURN_WAIT_MS = 3_000;

/**
 * Runs `work` once the commands this process is already running on the stream (through the same store) have
 * finished: commands on one stream take turns instead of racing to append at the same revision, so a hot account
 * costs no conflict retries and no wasted appends within a process. Other processes still race, and the expected-
 * revision check decides between them. The wait is bounded (MAX_TURN_WAIT_MS, and the activity attempt's deadline):
 * a command stuck in front (a slow append) delays the others that long at most, after which they race as before,
 * so there is no unbounded queue. `work` learns whether it waited: a state loaded before waiting is stale.
 * (A command must not start another command on the same stream from inside its turn: it would wait for itself until
 * the bound.)
 */
export async function inTurn<T>(
  store: object,
  stream: string,
  work: (waited: boolean) => Promise<T>,
  maxWaitMs = MAX_TURN_WAIT_MS,
): Promise<T> {
  let streams = queues.get(store);
  if (!streams) queues.set(store, (streams = new Map()));
  const before = streams.get(stream);
  let release!: () => void;
  const mine = new Promise<void>((resolve) => (release = resolve));
  const end = before ? before.then(() => mine) : mine;
  streams.set(stream, end);
  try {
    if (before) await atMost(before, Math.max(0, Math.min(maxWaitMs, timeLeftMs())));
    return await work(before !== undefined);
  } finally {
    release();
    if (streams.get(stream) === end) streams.delete(stream);
  }
}

function atMost(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]).finally(() => clearTimeout(timer));
}
