import { timeLeftMs } from '../infra/attempt-deadline';

/** A stream's queue in one process: its end, and what the command that finished last handed to the next. */
interface Queue {
  end: Promise<void>;
  handoff?: { value: unknown; revision: bigint };
}

/** Per event store (the object), per stream: the queue of commands this process runs on the stream. */
const queues = new WeakMap<object, Map<string, Queue>>();

/** The longest a command waits for its turn; then it goes ahead and races, as without turns. */
export const MAX_TURN_WAIT_MS = 3_000;

/** A command's turn on a stream. */
export interface Turn {
  /** It waited for another command of this process: a state loaded before waiting is stale. */
  waited: boolean;
  /** What the command before it handed over (its state after its append), when it came straight after that one. */
  handoff?: unknown;
  /** Hands the stream's state after this command's append (at `revision`) to the next command in line. */
  handOver(value: unknown, revision: bigint): void;
}

/**
 * Runs `work` once the commands this process is already running on the stream (through the same store) have
 * finished: commands on one stream take turns instead of racing to append at the same revision, so a hot account
 * costs no conflict retries and no wasted appends within a process, and a command can start from the state the one
 * before it appended (no read). Other processes still race, and the expected-revision check decides between them.
 * The wait is bounded (MAX_TURN_WAIT_MS, and the activity attempt's deadline): a command stuck in front (a slow
 * append) delays the others that long at most, after which they race as before, so there is no unbounded queue.
 * (A command must not start another command on the same stream from inside its turn: it would wait for itself until
 * the bound.)
 */
export async function inTurn<T>(store: object, stream: string, work: (turn: Turn) => Promise<T>, maxWaitMs = MAX_TURN_WAIT_MS): Promise<T> {
  let streams = queues.get(store);
  if (!streams) queues.set(store, (streams = new Map()));
  const queue = streams.get(stream);
  const before = queue?.end;
  let release!: () => void;
  const mine = new Promise<void>((resolve) => (release = resolve));
  const end = before ? before.then(() => mine) : mine;
  const current: Queue = queue ?? { end };
  current.end = end;
  streams.set(stream, current);
  let handedOver: Queue['handoff'];
  try {
    // Whether the ones in front finished (true) or the wait ran out (false: a hand-over may be older than the stream).
    const inOrder = before ? await atMost(before, Math.max(0, Math.min(maxWaitMs, timeLeftMs()))) : true;
    const handoff = inOrder ? current.handoff?.value : undefined;
    current.handoff = undefined;
    return await work({ waited: before !== undefined, handoff, handOver: (value, revision) => (handedOver = { value, revision }) });
  } finally {
    // The newest state wins: a command that went ahead after its wait ran out may finish after a later one.
    if (handedOver && (!current.handoff || handedOver.revision > current.handoff.revision)) current.handoff = handedOver;
    release();
    if (streams.get(stream) === current && current.end === end) streams.delete(stream);
  }
}

/** True when the promise settled within `ms`, false when the time ran out first. */
function atMost(promise: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.then(() => true),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms))),
  ]).finally(() => clearTimeout(timer));
}
