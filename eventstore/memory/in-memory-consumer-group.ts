import type { BatchHandler, GlobalPosition, ParkedEvent, ParkedSummary, RecordedEvent, SubscriptionFilter } from '../event-store';
import { blockedReason, comparePositions } from '../event-store';
import { copyEvent } from './copy';

/** Most events read from the log per round (as the PostgreSQL adapter). */
const BATCH_SIZE = 500;

export interface InMemoryConsumerSettings {
  maxAttempts: number;
  retryBackoffMs: number;
  /** Most events per handler call (1 for per-event subscriptions). */
  maxBatchSize: number;
}

/** A parked event of a group. */
export interface ParkedRecord {
  event: RecordedEvent;
  error: string;
  /** Handler attempts so far (0: parked behind an earlier parked event of its stream, never attempted). */
  attempts: number;
  parkedAt: string;
  replayRequested: boolean;
}

/**
 * A consumer group's durable state: it lives as long as the store (single process), so it outlives its
 * subscribers: a group joined again resumes from its checkpoint, with its parked events.
 */
export class GroupState {
  checkpoint: GlobalPosition;
  /** Parked events, by the event's prepare position (unique in the log). */
  readonly parked = new Map<bigint, ParkedRecord>();
  /** The one subscriber that delivers; the others wait as standbys, in the order they joined. */
  leader?: InMemoryConsumerGroup;
  readonly standbys: InMemoryConsumerGroup[] = [];

  constructor(
    readonly name: string,
    checkpoint: GlobalPosition,
  ) {
    this.checkpoint = checkpoint;
  }

  /** The lowest parked revision of a stream in this group (undefined: none parked). */
  firstParkedRevision(stream: string): bigint | undefined {
    let first: bigint | undefined;
    for (const record of this.parked.values()) {
      if (record.event.stream === stream && (first === undefined || record.event.revision < first)) first = record.event.revision;
    }
    return first;
  }

  /** Parked records in the log's order. */
  parkedInOrder(): ParkedRecord[] {
    return [...this.parked.values()].sort((a, b) => comparePositions(a.event.position, b.event.position));
  }

  listParked(): ParkedEvent[] {
    return this.parkedInOrder().map((r) => ({
      group: this.name,
      event: copyEvent(r.event),
      error: r.error,
      attempts: r.attempts,
      parkedAt: r.parkedAt,
      blocked: r.attempts === 0,
    }));
  }

  summary(upTo?: GlobalPosition): ParkedSummary {
    const records = this.parkedInOrder().filter((r) => upTo === undefined || comparePositions(r.event.position, upTo) <= 0);
    if (records.length === 0) return { count: 0 };
    const oldest = records.reduce(
      (min, r) => (Date.parse(r.event.recordedAt) < Date.parse(min) ? r.event.recordedAt : min),
      records[0]!.event.recordedAt,
    );
    return { count: records.length, first: { ...records[0]!.event.position }, oldestRecordedAt: oldest };
  }

  /** Marks every parked event not yet asked for for replay; returns how many. */
  requestReplay(): number {
    let queued = 0;
    for (const record of this.parked.values()) {
      if (!record.replayRequested) {
        record.replayRequested = true;
        queued += 1;
      }
    }
    if (queued > 0) this.leader?.notify();
    return queued;
  }
}

/** What a consumer needs from the store. */
export interface ConsumerHost {
  /** Copies of the events strictly after `position`, in the log's order, at most `max`. */
  eventsAfter(position: GlobalPosition, max: number): RecordedEvent[];
  /** The store's clock, ISO-8601. */
  now(): string;
}

type DeliveryOutcome = 'handled' | 'parked' | 'aborted';
type WakeReason = 'append' | 'stop' | 'leadership' | 'replay';

/**
 * One subscriber of a durable consumer group, in process: the same delivery rules as the PostgreSQL adapter's
 * consumer group (eventstore/postgres/consumer-group.ts), without a database:
 * - one active subscriber per group (the leader); later ones wait as standbys and take over, in order, when it stops;
 * - at least once: the checkpoint moves only past events that were handled or parked;
 * - batches of what is ready; a failing batch is delivered again one event at a time, with retries and backoff;
 * - a failing event is parked after maxAttempts; the later events of its stream are parked behind it unattempted;
 *   a replay delivers each stream's parked chain in revision order;
 * - woken by appends, replay requests and leadership changes (no polling).
 */
export class InMemoryConsumerGroup {
  private stopping = false;
  private stopped?: Promise<void>;
  private loop?: Promise<void>;
  private wake?: (reason: WakeReason) => void;
  /** Something happened while the loop was not idle-sleeping. */
  private pendingWake = false;
  /** The last unexpected error of the delivery loop (not a handler's: those are retried and parked). */
  lastError?: unknown;

  constructor(
    private readonly host: ConsumerHost,
    private readonly state: GroupState,
    private readonly filter: SubscriptionFilter,
    private readonly handler: BatchHandler,
    private readonly settings: InMemoryConsumerSettings,
  ) {}

  get group(): string {
    return this.state.name;
  }

  private get leading(): boolean {
    return this.state.leader === this;
  }

  start(): void {
    if (!this.state.leader) this.state.leader = this;
    else this.state.standbys.push(this);
    this.loop = this.run();
  }

  /** A new append, a replay request or a change of leader. */
  notify(reason: WakeReason = 'append'): void {
    if (this.wake) this.wake(reason);
    else this.pendingWake = true;
  }

  /** Stops delivery; resolves once the in-flight event is done; hands the group to the next standby. Idempotent. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.stopping = true;
      this.notify('stop');
      await this.loop;
      if (this.state.leader === this) {
        this.state.leader = this.state.standbys.shift();
        this.state.leader?.notify('leadership');
      } else {
        const i = this.state.standbys.indexOf(this);
        if (i >= 0) this.state.standbys.splice(i, 1);
      }
    })();
    return this.stopped;
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      if (!this.leading) {
        await this.sleep();
        continue;
      }
      try {
        const replayed = await this.deliverReplays();
        const delivered = await this.deliverNextBatch();
        if (!delivered && !replayed) await this.sleep();
      } catch (error) {
        // Not a handler's failure (those are retried and parked): keep it visible and try again shortly.
        this.lastError = error;
        await this.sleep(100);
      }
    }
  }

  private matches(event: RecordedEvent): boolean {
    if (this.filter.streamPrefix !== undefined && !event.stream.startsWith(this.filter.streamPrefix)) return false;
    if (this.filter.eventTypes !== undefined && !this.filter.eventTypes.includes(event.type)) return false;
    return true;
  }

  private isBlocked(event: RecordedEvent): boolean {
    const first = this.state.firstParkedRevision(event.stream);
    return first !== undefined && event.revision >= first;
  }

  /** The next events after the checkpoint (all of them, so the checkpoint also moves past events of no interest). */
  private async deliverNextBatch(): Promise<boolean> {
    const events = this.host.eventsAfter(this.state.checkpoint, BATCH_SIZE);
    if (events.length === 0) return false;
    let i = 0;
    while (i < events.length && !this.stopping && this.leading) {
      const chunk: RecordedEvent[] = [];
      let end = i;
      while (end < events.length && chunk.length < this.settings.maxBatchSize) {
        if (this.matches(events[end]!)) chunk.push(events[end]!);
        end += 1;
      }
      const undelivered = chunk.length > 0 ? await this.deliverChunk(chunk) : undefined;
      if (undelivered !== undefined) {
        // Stopped mid-retry: the checkpoint stays before the undelivered event, so it comes again.
        if (undelivered > 0) this.state.checkpoint = chunk[undelivered - 1]!.position;
        break;
      }
      this.state.checkpoint = events[end - 1]!.position;
      i = end;
    }
    return true;
  }

  /**
   * A chunk in one handler call; when that fails, each event alone (with retries and parking). Events of a stream
   * with a parked event are parked behind it and never handed over. Returns the index (in the chunk) of the first
   * event not dealt with when delivery was cut short, or undefined when the whole chunk was handled or parked.
   */
  private async deliverChunk(chunk: RecordedEvent[]): Promise<number | undefined> {
    const ready: RecordedEvent[] = [];
    for (const event of chunk) {
      if (this.isBlocked(event)) this.parkBehind(event);
      else ready.push(event);
    }
    if (ready.length > 1) {
      try {
        await this.handler(ready.map(copyEvent));
        return undefined;
      } catch {
        // Fall through: isolate the failing event(s).
      }
    }
    for (const event of ready) {
      // An earlier event of this chunk may have been parked just now.
      if (this.isBlocked(event)) {
        this.parkBehind(event);
        continue;
      }
      if ((await this.deliver(event, 0)) === 'aborted') return chunk.indexOf(event);
    }
    return undefined;
  }

  /** Calls the handler with retries; parks the event after the last failed attempt. */
  private async deliver(event: RecordedEvent, previousAttempts: number): Promise<DeliveryOutcome> {
    let lastError: unknown;
    for (let attempt = 1; attempt <= this.settings.maxAttempts; attempt++) {
      if (attempt > 1 && (this.stopping || !this.leading)) return 'aborted';
      try {
        await this.handler([copyEvent(event)]);
        return 'handled';
      } catch (error) {
        lastError = error;
        if (attempt < this.settings.maxAttempts) await this.sleep(this.settings.retryBackoffMs * 2 ** (attempt - 1), false);
      }
    }
    const message = lastError instanceof Error ? `${lastError.name}: ${lastError.message}` : String(lastError);
    this.state.parked.set(event.position.prepare, {
      event,
      error: message.slice(0, 4000),
      attempts: previousAttempts + this.settings.maxAttempts,
      parkedAt: this.host.now(),
      replayRequested: false,
    });
    return 'parked';
  }

  /** Parks an event behind the parked event of its stream, unattempted (one already parked keeps its record). */
  private parkBehind(event: RecordedEvent): void {
    if (this.state.parked.has(event.position.prepare)) return;
    this.state.parked.set(event.position.prepare, {
      event,
      error: blockedReason(event.stream, this.state.firstParkedRevision(event.stream)!),
      attempts: 0,
      parkedAt: this.host.now(),
      replayRequested: false,
    });
  }

  /**
   * Parked events whose replay was asked for, in the log's order (so each stream's in revision order). The request
   * covers a stream's whole chain. An event is delivered only once nothing before it in its stream is parked; when one
   * fails again (and is parked again), the rest of its stream stays parked behind it without being attempted.
   */
  private async deliverReplays(): Promise<boolean> {
    const requested = [...this.state.parked.values()].filter((r) => r.replayRequested);
    if (requested.length === 0) return false;
    const streams = new Set(requested.map((r) => r.event.stream));
    for (const record of this.state.parked.values()) if (streams.has(record.event.stream)) record.replayRequested = true;
    const queue = this.state
      .parkedInOrder()
      .filter((r) => r.replayRequested)
      .slice(0, BATCH_SIZE);
    for (const record of queue) {
      if (this.stopping || !this.leading) break;
      const key = record.event.position.prepare;
      if (this.state.parked.get(key) !== record) continue;
      const event = record.event;
      if (this.state.firstParkedRevision(event.stream)! < event.revision) {
        // An earlier event of its stream is (again) parked: it stays parked behind it, unattempted.
        record.replayRequested = false;
        record.parkedAt = this.host.now();
        continue;
      }
      const outcome = await this.deliver(event, record.attempts);
      if (outcome === 'aborted') break;
      if (outcome === 'handled') this.state.parked.delete(key);
    }
    return queue.length > 0;
  }

  /**
   * Waits for a wake-up or the timeout (none: until woken). Retry backoffs (wakeOnEvents false) are cut short only by
   * stop; what woke them is remembered for the next idle wait, so no append is missed.
   */
  private sleep(ms?: number, wakeOnEvents = true): Promise<void> {
    if (this.stopping) return Promise.resolve();
    if (wakeOnEvents && this.pendingWake) {
      this.pendingWake = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        if (timer) clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      if (ms !== undefined) timer = setTimeout(done, ms);
      this.wake = (reason) => {
        if (wakeOnEvents || reason === 'stop') done();
        else this.pendingWake = true;
      };
    });
  }
}
