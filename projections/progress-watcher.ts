/**
 * A shared long poll. Any number of waiters on one source of progress (a projection's checkpoint) are answered from
 * one read of it per tick, instead of each reading it in a loop of its own: the reads made while M requests wait do
 * not grow with M. It reads only while someone waits: at once when a waiter comes (its first look), then every
 * `intervalMs` until the last one is answered, times out or is abandoned.
 *
 * What a read returns (the sample) and what it means for a waiter are the caller's: see waitForProjection
 * (projection-runner.ts). The sample is read from the database, so progress made by another process (the projections
 * process of docker-compose, the local stack's projections thread) wakes the waiters as well as progress made here.
 */
export interface Watch<S, R> {
  /**
   * Decides from a sample read after the wait began: the answer, or undefined to keep waiting. It may read more (e.g.
   * the details of an answer), once per waiter it answers; what every waiter needs belongs in the sample.
   */
  decide(sample: S): R | undefined | Promise<R | undefined>;
  /**
   * An answer from the last sample read before the wait began (no read of its own), for what such a sample proves
   * whenever it was read (progress that only moves forward); undefined to take a fresh look.
   */
  settledBy?(sample: S): R | undefined;
  /** Longest wait; then the wait answers `timedOut`. */
  timeoutMs: number;
  /** The answer when the wait times out or is abandoned. */
  timedOut: R;
  /** Abandons the wait (the client went away): it answers `timedOut` at once. */
  signal?: AbortSignal;
  /**
   * Called once, when the waiter's first look (a sample read after it came) did not answer it, before it waits: it
   * may refuse the wait by throwing (the wait rejects with that error), else returns what to call when the wait ends.
   */
  beforeWaiting?(): () => void;
}

interface Waiter<S> {
  watch: Watch<S, unknown>;
  looked: boolean;
  release?: () => void;
  timer?: NodeJS.Timeout;
  onAbort?: () => void;
  settle(outcome: { value: unknown } | { error: unknown }): void;
}

export class ProgressWatcher<S> {
  private readonly waiters = new Set<Waiter<S>>();
  private last?: { sample: S };
  private reading = false;
  private timer?: NodeJS.Timeout;
  private readonly readListeners: (() => void)[] = [];
  private completedReads = 0;

  constructor(
    private readonly read: () => Promise<S>,
    private readonly intervalMs = 25,
  ) {}

  /** Waiters not answered yet. */
  get waiting(): number {
    return this.waiters.size;
  }

  /** Reads made so far (each one answered every waiter it could). */
  get reads(): number {
    return this.completedReads;
  }

  /** Resolves when the next read (and the answers it gave) is done, failed or not. */
  afterRead(): Promise<void> {
    return new Promise((resolve) => this.readListeners.push(resolve));
  }

  wait<R>(watch: Watch<S, R>): Promise<R> {
    if (watch.signal?.aborted) return Promise.resolve(watch.timedOut);
    if (this.last && watch.settledBy) {
      const answer = watch.settledBy(this.last.sample);
      if (answer !== undefined) return Promise.resolve(answer);
    }
    return new Promise<R>((resolve, reject) => {
      const waiter: Waiter<S> = {
        watch: watch as Watch<S, unknown>,
        looked: false,
        settle: (outcome) => ('error' in outcome ? reject(outcome.error) : resolve(outcome.value as R)),
      };
      this.waiters.add(waiter);
      waiter.timer = setTimeout(() => this.finish(waiter, { value: watch.timedOut }), watch.timeoutMs);
      if (watch.signal) {
        waiter.onAbort = () => this.finish(waiter, { value: watch.timedOut });
        watch.signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      // Its first look comes with the next read, at once: a read already under way may have begun before it came.
      if (!this.reading && this.timer) {
        clearTimeout(this.timer);
        this.timer = undefined;
      }
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.reading || this.timer || this.waiters.size === 0) return;
    const firstLook = [...this.waiters].some((w) => !w.looked);
    this.timer = setTimeout(() => void this.tick(), firstLook ? 0 : this.intervalMs);
  }

  private async tick(): Promise<void> {
    this.timer = undefined;
    this.reading = true;
    const looking = [...this.waiters];
    try {
      const sample = await this.read();
      this.last = { sample };
      await Promise.all(looking.map((waiter) => this.look(waiter, sample)));
    } catch (error) {
      // The read failed: every waiter it was for fails as its own read would have.
      for (const waiter of looking) this.finish(waiter, { error });
    } finally {
      this.completedReads += 1;
      this.reading = false;
      for (const listener of this.readListeners.splice(0)) listener();
      this.schedule();
    }
  }

  private async look(waiter: Waiter<S>, sample: S): Promise<void> {
    if (!this.waiters.has(waiter)) return; // answered meanwhile (timed out, abandoned)
    let answer: unknown;
    try {
      answer = await waiter.watch.decide(sample);
    } catch (error) {
      this.finish(waiter, { error });
      return;
    }
    if (answer !== undefined) this.finish(waiter, { value: answer });
    else if (!waiter.looked && this.waiters.has(waiter)) {
      waiter.looked = true;
      try {
        waiter.release = waiter.watch.beforeWaiting?.();
      } catch (error) {
        this.finish(waiter, { error });
      }
    }
  }

  private finish(waiter: Waiter<S>, outcome: { value: unknown } | { error: unknown }): void {
    if (!this.waiters.delete(waiter)) return;
    clearTimeout(waiter.timer);
    if (waiter.onAbort) waiter.watch.signal?.removeEventListener('abort', waiter.onAbort);
    waiter.release?.();
    waiter.settle(outcome);
    if (this.waiters.size === 0 && this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }
}
