import type { PoolClient } from 'pg';
import type { BatchHandler, GlobalPosition, RecordedEvent, SubscriptionFilter } from '../event-store';
import { START_POSITION } from '../event-store';
import { validateStreamName } from '../validation';
import type { AppendNotifier } from './append-notifier';
import type { PostgresEventStore } from './postgres-event-store';
import { VISIBLE_TO_READERS } from './postgres-event-store';
import { EVENT_COLUMNS, eventColumns, toRecordedEvent, type EventRow } from './row-mapping';

export interface ConsumerGroupSettings {
  maxAttempts: number;
  retryBackoffMs: number;
  pollIntervalMs: number;
  /** Most events per handler call (1 for per-event subscriptions). */
  maxBatchSize: number;
}

const BATCH_SIZE = 500;
const CHECKPOINT_EVERY = 100;
const CHECKPOINT_MS = 250;

/**
 * A durable consumer group on PostgreSQL (the counterpart of an EventStoreDB persistent subscription).
 * - The group's checkpoint lives in es_consumer_groups and survives restarts; delivery is at least
 *   once (the checkpoint moves only after the handler succeeded or the event was parked).
 * - One subscriber of a group is active at a time: it holds a session advisory lock; others of the
 *   same group wait as hot standbys and take over when it stops or its connection dies.
 * - A failing event is retried with exponential backoff; after maxAttempts it is parked with its
 *   error, and `replayParked` hands it to the active subscriber again.
 * - Events are delivered in (transaction_id, position) order, which never skips a late commit and
 *   keeps each stream in revision order.
 */
export class PostgresConsumerGroup {
  private stopping = false;
  private locked = false;
  private lockClient?: PoolClient;
  private loop?: Promise<void>;
  private wake?: (reason: 'append' | 'stop') => void;
  /** An append notification arrived while the loop was not sleeping. */
  private appendedWhileBusy = false;
  private unlisten?: () => void;
  private checkpoint: GlobalPosition = START_POSITION;

  constructor(
    private readonly store: PostgresEventStore,
    private readonly notifier: AppendNotifier,
    readonly group: string,
    private readonly filter: SubscriptionFilter,
    private readonly handler: BatchHandler,
    private readonly settings: ConsumerGroupSettings,
  ) {}

  async start(): Promise<void> {
    validateStreamName(this.group);
    if (this.filter.from !== 'start' && this.filter.from !== 'end') throw new Error("subscription 'from' must be 'start' or 'end'");
    const initial = this.filter.from === 'end' ? ((await this.store.headPosition()) ?? START_POSITION) : START_POSITION;
    await this.store.pool.query(
      `INSERT INTO es_consumer_groups (group_name, stream_prefix, event_types, checkpoint_commit, checkpoint_prepare)
       VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (group_name) DO UPDATE SET stream_prefix = EXCLUDED.stream_prefix, event_types = EXCLUDED.event_types`,
      [this.group, this.filter.streamPrefix ?? null, this.filter.eventTypes ? [...this.filter.eventTypes] : null, initial.commit.toString(), initial.prepare.toString()],
    );
    this.unlisten = this.notifier.onAppend(() => {
      if (this.wake) this.wake('append');
      else this.appendedWhileBusy = true;
    });
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    if (this.stopping) return this.loop;
    this.stopping = true;
    this.wake?.('stop');
    this.unlisten?.();
    await this.loop;
    await this.releaseLock();
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      try {
        if (!this.locked && !(await this.tryLock())) {
          await this.sleep(this.settings.pollIntervalMs);
          continue;
        }
        const replayed = await this.deliverReplays();
        const delivered = await this.deliverNextBatch();
        if (!delivered && !replayed) await this.sleep(this.settings.pollIntervalMs);
      } catch {
        // Store unreachable or lock connection lost: back off, then retry from the saved checkpoint.
        await this.releaseLock();
        await this.sleep(this.settings.pollIntervalMs);
      }
    }
  }

  private async tryLock(): Promise<boolean> {
    const client = await this.store.pool.connect();
    const result = await client.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(hashtextextended('es_group:' || $1, 0)) AS ok`, [this.group]);
    if (!result.rows[0]?.ok) {
      client.release();
      return false;
    }
    client.on('error', () => {
      this.locked = false;
    });
    this.lockClient = client;
    this.locked = true;
    const saved = await this.store.pool.query<{ c: string; p: string }>(
      'SELECT checkpoint_commit::text AS c, checkpoint_prepare::text AS p FROM es_consumer_groups WHERE group_name = $1',
      [this.group],
    );
    const row = saved.rows[0]!;
    this.checkpoint = { commit: BigInt(row.c), prepare: BigInt(row.p) };
    return true;
  }

  private async releaseLock(): Promise<void> {
    const client = this.lockClient;
    this.lockClient = undefined;
    this.locked = false;
    if (!client) return;
    try {
      await client.query(`SELECT pg_advisory_unlock(hashtextextended('es_group:' || $1, 0))`, [this.group]);
      client.release();
    } catch (error) {
      client.release(error instanceof Error ? error : true);
    }
  }

  private matches(event: RecordedEvent): boolean {
    if (this.filter.streamPrefix !== undefined && !event.stream.startsWith(this.filter.streamPrefix)) return false;
    if (this.filter.eventTypes !== undefined && !this.filter.eventTypes.includes(event.type)) return false;
    return true;
  }

  /** Reads the next batch (unfiltered, so the checkpoint also moves past events of no interest). */
  private async deliverNextBatch(): Promise<boolean> {
    const from = this.checkpoint;
    const result = await this.store.pool.query<EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM es_events
       WHERE (transaction_id, position) > ($1::text::xid8, $2::bigint) AND ${VISIBLE_TO_READERS}
       ORDER BY es_events.transaction_id, es_events.position LIMIT ${BATCH_SIZE}`,
      [from.commit < 0n ? '0' : from.commit.toString(), from.prepare.toString()],
    );
    if (result.rows.length === 0) return false;
    // The checkpoint is saved every CHECKPOINT_EVERY events or CHECKPOINT_MS, and at the end of the
    // batch: a crash redelivers at most that much (at-least-once; consumers are idempotent).
    let unsaved = 0;
    let savedAt = Date.now();
    const events = result.rows.map(toRecordedEvent);
    try {
      let i = 0;
      while (i < events.length && !this.stopping && this.locked) {
        // The next chunk: up to maxBatchSize matching events (events of no interest in between are passed over).
        const chunk: RecordedEvent[] = [];
        let end = i;
        while (end < events.length && chunk.length < this.settings.maxBatchSize) {
          if (this.matches(events[end]!)) chunk.push(events[end]!);
          end += 1;
        }
        const { done, aborted } = chunk.length > 0 ? await this.deliverChunk(chunk) : { done: 0, aborted: false };
        if (aborted) {
          // Stopped mid-retry: leave the checkpoint before the undelivered event, so it comes again.
          if (done > 0) {
            this.checkpoint = chunk[done - 1]!.position;
            unsaved += 1;
          }
          break;
        }
        this.checkpoint = events[end - 1]!.position;
        unsaved += end - i;
        i = end;
        if (unsaved >= CHECKPOINT_EVERY || Date.now() - savedAt >= CHECKPOINT_MS) {
          await this.saveCheckpoint(this.checkpoint);
          unsaved = 0;
          savedAt = Date.now();
        }
      }
    } finally {
      if (unsaved > 0) await this.saveCheckpoint(this.checkpoint);
    }
    return true;
  }

  /** A chunk in one handler call; when that fails, each event alone (with retries and parking). */
  private async deliverChunk(chunk: RecordedEvent[]): Promise<{ done: number; aborted: boolean }> {
    if (chunk.length > 1) {
      try {
        await this.handler(chunk);
        return { done: chunk.length, aborted: false };
      } catch {
        // Fall through: isolate the failing event(s).
      }
    }
    for (let k = 0; k < chunk.length; k++) {
      if ((await this.deliver(chunk[k]!, 0)) === 'aborted') return { done: k, aborted: true };
    }
    return { done: chunk.length, aborted: false };
  }

  /** Calls the handler with retries; parks the event after the last failed attempt. */
  private async deliver(event: RecordedEvent, previousAttempts: number): Promise<'handled' | 'parked' | 'aborted'> {
    let lastError: unknown;
    for (let attempt = 1; attempt <= this.settings.maxAttempts; attempt++) {
      if (attempt > 1 && this.stopping) return 'aborted';
      try {
        await this.handler([event]);
        return 'handled';
      } catch (error) {
        lastError = error;
        if (attempt < this.settings.maxAttempts) await this.sleep(this.settings.retryBackoffMs * 2 ** (attempt - 1), false);
      }
    }
    const message = lastError instanceof Error ? `${lastError.name}: ${lastError.message}` : String(lastError);
    await this.store.pool.query(
      `INSERT INTO es_parked_events (group_name, event_position, error, attempts)
       VALUES ($1, $2, $3, $4)
       ON CONFLICT (group_name, event_position) DO UPDATE
         SET error = EXCLUDED.error, attempts = EXCLUDED.attempts, parked_at = now(), replay_requested_at = NULL`,
      [this.group, event.position.prepare.toString(), message.slice(0, 4000), previousAttempts + this.settings.maxAttempts],
    );
    return 'parked';
  }

  private async deliverReplays(): Promise<boolean> {
    const result = await this.store.pool.query<EventRow & { attempts: number }>(
      `SELECT ${eventColumns('e')}, p.attempts FROM es_parked_events p JOIN es_events e ON e.position = p.event_position
       WHERE p.group_name = $1 AND p.replay_requested_at IS NOT NULL ORDER BY e.transaction_id, e.position LIMIT ${BATCH_SIZE}`,
      [this.group],
    );
    for (const row of result.rows) {
      if (this.stopping) break;
      const outcome = await this.deliver(toRecordedEvent(row), row.attempts);
      if (outcome === 'aborted') break;
      if (outcome === 'handled') {
        await this.store.pool.query('DELETE FROM es_parked_events WHERE group_name = $1 AND event_position = $2', [this.group, row.position]);
      }
    }
    return result.rows.length > 0;
  }

  private async saveCheckpoint(position: GlobalPosition): Promise<void> {
    this.checkpoint = position;
    await this.store.pool.query(
      `UPDATE es_consumer_groups SET checkpoint_commit = $2, checkpoint_prepare = $3, updated_at = now() WHERE group_name = $1`,
      [this.group, position.commit.toString(), position.prepare.toString()],
    );
  }

  /** Waits for a wake-up (new append, stop) or the timeout. Retry backoffs are cut short only by stop. */
  private sleep(ms: number, wakeOnAppend = true): Promise<void> {
    if (this.stopping) return Promise.resolve();
    if (wakeOnAppend && this.appendedWhileBusy) {
      this.appendedWhileBusy = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = (reason) => {
        if (wakeOnAppend || reason === 'stop') done();
      };
    });
  }
}
