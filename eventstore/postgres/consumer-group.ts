import { Client, type Pool, type QueryResultRow } from 'pg';
import type { BatchHandler, GlobalPosition, RecordedEvent, SubscriptionFilter } from '../event-store';
import { blockedReason, START_POSITION } from '../event-store';
import { validateStreamName } from '../validation';
import type { AppendNotifier } from './append-notifier';
import { readHeadPosition } from './log-queries';
import type { SharedLogReads } from './shared-log-reads';
import { reportSafely, type StoreErrorListener } from './store-errors';
import { eventColumns, toRecordedEvent, type EventRow } from './row-mapping';

export interface ConsumerGroupSettings {
  maxAttempts: number;
  retryBackoffMs: number;
  pollIntervalMs: number;
  /** Most events per handler call (1 for per-event subscriptions). */
  maxBatchSize: number;
  /** Told when a round fails (store unreachable, lock connection lost) before the group backs off and retries. */
  onError?: StoreErrorListener;
}

const BATCH_SIZE = 500;
const CHECKPOINT_EVERY = 100;
const CHECKPOINT_MS = 250;
/**
 * How often the leader asks whether a replay of parked events was requested by another process (a request made
 * through this store instance is seen at once). Not every round: an idle-to-busy group would ask for every append.
 */
const REPLAY_CHECK_MS = 1_000;
/** A caught-up group that sees events held back looks again after this long, doubling up to the max while they stay held. */
const HELD_BACK_RECHECK_MS = 5;
const HELD_BACK_RECHECK_MAX_MS = 100;

/** Lock connection, client side: TCP keepalive probes start after this much silence, so a dead peer is noticed. */
const LOCK_KEEPALIVE_IDLE_MS = 10_000;
/** A statement on the lock connection that gets no answer within this long means the connection (and the lock) is lost. */
const LOCK_QUERY_TIMEOUT_MS = 10_000;
/** The leader proves its lock connection alive at least this often, busy or idle. */
const LOCK_HEARTBEAT_MS = 5_000;
/**
 * Lock connection, server side: PostgreSQL ends the session (which frees the advisory lock for a standby) once its
 * peer stops answering: after 10 s of silence, 3 keepalive probes 5 s apart, or 25 s of unacknowledged data. Without
 * this a leader whose host vanished keeps the lock until the kernel gives up on the socket (hours by default). The
 * session also opts out of an idle-session timeout, which would otherwise end a healthy leader's idle session.
 * (Ignored by the server on Unix-domain sockets, where a vanished peer cannot happen.)
 */
export const LOCK_SESSION_SETTINGS =
  'SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3; SET tcp_user_timeout = 25000; ' +
  'SET idle_session_timeout = 0';

/** application_name of a group's lock connections (pg_stat_activity shows who leads and who stands by). */
export function lockApplicationName(group: string): string {
  return `es-group:${group}`.slice(0, 63);
}

const LOCK_KEY = `hashtextextended('es_group:' || $1, 0)`;

type DeliveryOutcome = 'handled' | 'parked' | 'aborted';

/**
 * A durable consumer group on PostgreSQL (the counterpart of an EventStoreDB persistent subscription).
 * - The group's checkpoint lives in es_consumer_groups and survives restarts; delivery is at least
 *   once (the checkpoint moves only after the handler succeeded or the event was parked).
 * - One subscriber of a group is active at a time (the leader): it holds a session advisory lock on a
 *   dedicated connection with TCP keepalive on both ends, and writes the group's checkpoint and parked
 *   events through that same connection, so a leader that lost its lock cannot write them any more.
 *   Others of the same group keep their own lock connection and poll for the lock as hot standbys; they
 *   take over when the leader stops, its connection dies, or its host stops answering.
 * - A failing event is retried with exponential backoff; after maxAttempts it is parked with its
 *   error. The later events of its stream are then parked behind it at once, without being attempted
 *   (they could only fail the stream's order, each after its own retry budget). `replayParked` hands
 *   a stream's parked events to the leader again, in revision order.
 * - Events are delivered in (transaction_id, position) order, which never skips a late commit and
 *   keeps each stream in revision order.
 */
export class PostgresConsumerGroup {
  private stopping = false;
  /** This subscriber holds the group's lock (on `connection`). */
  private leader = false;
  /** The dedicated lock connection (leader or standby); undefined until connected or after it was lost. */
  private connection?: Client;
  private lastLockProof = 0;
  private loop?: Promise<void>;
  private wake?: (reason: 'append' | 'stop' | 'lost') => void;
  /** An append notification arrived while the loop was not sleeping. */
  private appendedWhileBusy = false;
  private unlisten?: () => void;
  private checkpoint: GlobalPosition = START_POSITION;
  /** Events delivered since the checkpoint was last saved, and when it was (see deliverNextBatch). */
  private unsaved = 0;
  private savedAt = 0;
  /** The last read found events held back behind an open transaction (see LogRead.heldBack). */
  private heldBack = false;
  /** The current wait before looking again for held-back events (0 when none are). */
  private recheckMs = 0;
  /** When the leader last asked whether a replay was requested (0: ask at once). */
  private replayCheckedAt = 0;
  /**
   * Streams with a parked event in this group -> the lowest parked revision. An event of such a stream at or after
   * that revision is parked behind it. Loaded when the lock is taken and after replays (only the leader parks).
   */
  private blocked = new Map<string, bigint>();

  constructor(
    /** The store's pool (reads, and the group's row); the lock connection is made from its settings. */
    private readonly pool: Pool,
    private readonly notifier: AppendNotifier,
    /** Log reads shared with the store's other groups. */
    private readonly reads: SharedLogReads,
    readonly group: string,
    private readonly filter: SubscriptionFilter,
    private readonly handler: BatchHandler,
    private readonly settings: ConsumerGroupSettings,
  ) {}

  async start(): Promise<void> {
    validateStreamName(this.group);
    if (this.filter.from !== 'start' && this.filter.from !== 'end') throw new Error("subscription 'from' must be 'start' or 'end'");
    const initial = this.filter.from === 'end' ? ((await readHeadPosition(this.pool)) ?? START_POSITION) : START_POSITION;
    await this.pool.query(
      `INSERT INTO es_consumer_groups (group_name, stream_prefix, event_types, checkpoint_commit, checkpoint_prepare)
       VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (group_name) DO UPDATE SET stream_prefix = EXCLUDED.stream_prefix, event_types = EXCLUDED.event_types`,
      [
        this.group,
        this.filter.streamPrefix ?? null,
        this.filter.eventTypes ? [...this.filter.eventTypes] : null,
        initial.commit.toString(),
        initial.prepare.toString(),
      ],
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
    await this.closeConnection();
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      try {
        if (!this.leader && !(await this.tryLead())) {
          await this.sleep(this.settings.pollIntervalMs);
          continue;
        }
        await this.proveLock();
        const replayed = await this.deliverReplays();
        const delivered = await this.deliverNextBatch();
        if (delivered === 'full' || replayed) continue;
        // Caught up with what readers may see, but events are held back behind an open transaction: look again soon
        // (5 ms, doubling to 100 ms while it lasts), since its end may send no notification.
        const recheck = this.heldBack
          ? (this.recheckMs = Math.min(HELD_BACK_RECHECK_MAX_MS, this.recheckMs * 2 || HELD_BACK_RECHECK_MS))
          : 0;
        if (!this.heldBack) this.recheckMs = 0;
        // Caught up. A checkpoint not saved yet is saved once it is CHECKPOINT_MS old (a crash redelivers at most
        // that much); meanwhile new events are delivered as they come.
        if (this.unsaved > 0) {
          const due = CHECKPOINT_MS - (Date.now() - this.savedAt);
          if (due > 0) {
            await this.sleep(Math.min(due, recheck || this.settings.pollIntervalMs));
            continue;
          }
          await this.saveCheckpoint(this.checkpoint);
        }
        await this.sleep(recheck || this.settings.pollIntervalMs);
      } catch (error) {
        // Store unreachable or lock connection lost: let a standby lead, back off, then retry from the saved checkpoint.
        if (!this.stopping) reportSafely(this.settings.onError, error, `consumer group ${this.group}`);
        this.dropConnection();
        await this.sleep(this.settings.pollIntervalMs);
      }
    }
    // Stopping while a checkpoint waited to be saved: save it, so a restart does not redeliver those events.
    if (this.unsaved > 0 && this.leader) await this.saveCheckpoint(this.checkpoint).catch(() => undefined); // a restart then redelivers them: harmless
  }

  // --- the lock connection -------------------------------------------------------------------------------------

  private async connect(): Promise<Client> {
    if (this.connection) return this.connection;
    const client = new Client({
      ...this.pool.options,
      keepAlive: true,
      keepAliveInitialDelayMillis: LOCK_KEEPALIVE_IDLE_MS,
      query_timeout: LOCK_QUERY_TIMEOUT_MS,
    });
    // An idle connection that dies (terminated, network gone) reports here; without a listener it would crash the process.
    client.on('error', () => this.connectionLost(client));
    try {
      await client.connect();
      await client.query(`SELECT set_config('application_name', $1, false)`, [lockApplicationName(this.group)]);
      try {
        await client.query(LOCK_SESSION_SETTINGS);
      } catch {
        // A server or role that refuses these settings: the lock still works, a vanished leader is just noticed later.
      }
    } catch (error) {
      void client.end().catch(() => undefined); // a broken connection may fail to close: it is dropped either way
      throw error;
    }
    this.connection = client;
    return client;
  }

  /** The lock connection died: whatever it held is gone with it. Never reused: closed and forgotten. */
  private connectionLost(client: Client): void {
    if (this.connection === client) {
      this.connection = undefined;
      this.leader = false;
      this.wake?.('lost');
    }
    void client.end().catch(() => undefined); // a broken connection may fail to close: it is dropped either way
  }

  /** After an error: the lock connection may be broken, so it is closed (never returned anywhere) and the lock with it. */
  private dropConnection(): void {
    const client = this.connection;
    this.leader = false;
    if (client) this.connectionLost(client);
  }

  /** Orderly stop: unlock and close. */
  private async closeConnection(): Promise<void> {
    const client = this.connection;
    this.connection = undefined;
    const wasLeader = this.leader;
    this.leader = false;
    if (!client) return;
    try {
      if (wasLeader) await client.query(`SELECT pg_advisory_unlock(${LOCK_KEY})`, [this.group]);
    } catch {
      // closing the session frees the lock anyway
    }
    await client.end().catch(() => undefined); // a broken connection may fail to close: it is dropped either way
  }

  private async tryLead(): Promise<boolean> {
    const client = await this.connect();
    const result = await client.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(${LOCK_KEY}) AS ok`, [this.group]);
    if (!result.rows[0]?.ok) return false;
    this.leader = true;
    this.lastLockProof = Date.now();
    const saved = await client.query<{ c: string; p: string }>(
      'SELECT checkpoint_commit::text AS c, checkpoint_prepare::text AS p FROM es_consumer_groups WHERE group_name = $1',
      [this.group],
    );
    const row = saved.rows[0]!;
    this.checkpoint = { commit: BigInt(row.c), prepare: BigInt(row.p) };
    this.unsaved = 0;
    this.savedAt = Date.now();
    this.replayCheckedAt = 0;
    await this.loadBlocked();
    return true;
  }

  /** A statement on the lock connection (the lock holds as long as that session lives); throws when it is lost. */
  private async onLock<R extends QueryResultRow = QueryResultRow>(sql: string, values: unknown[]) {
    const client = this.connection;
    if (!client || !this.leader) throw new Error(`consumer group ${this.group}: lock lost`);
    const result = await client.query<R>(sql, values);
    this.lastLockProof = Date.now();
    return result;
  }

  private async proveLock(): Promise<void> {
    if (Date.now() - this.lastLockProof >= LOCK_HEARTBEAT_MS) await this.onLock('SELECT 1', []);
  }

  // --- delivery ------------------------------------------------------------------------------------------------

  private matches(event: RecordedEvent): boolean {
    if (this.filter.streamPrefix !== undefined && !event.stream.startsWith(this.filter.streamPrefix)) return false;
    if (this.filter.eventTypes !== undefined && !this.filter.eventTypes.includes(event.type)) return false;
    return true;
  }

  private isBlocked(event: RecordedEvent): boolean {
    const first = this.blocked.get(event.stream);
    return first !== undefined && event.revision >= first;
  }

  /**
   * Reads the next batch (unfiltered, so the checkpoint also moves past events of no interest) and delivers it:
   * 'full' when there may be more to read at once, 'partial' when the group has caught up, 'none' when nothing was new.
   */
  private async deliverNextBatch(): Promise<'full' | 'partial' | 'none'> {
    const from = this.checkpoint;
    // On the lock connection (idle between the loop's own statements), not the store's pool: under load the pool is
    // busy with the commands' reads and appends, and waiting for it would add to every projection's lag.
    const lock = this.connection;
    if (!lock || !this.leader) throw new Error(`consumer group ${this.group}: lock lost`);
    const { events, heldBack, shared } = await this.reads.after(from, BATCH_SIZE, this.notifier.generation, lock);
    if (!shared) this.lastLockProof = Date.now(); // a read that ran on another group's connection proves nothing of ours
    this.heldBack = heldBack;
    if (!heldBack) this.recheckMs = 0;
    if (events.length === 0) return 'none';
    // The checkpoint is saved every CHECKPOINT_EVERY events or CHECKPOINT_MS (here, or by run() once caught up): a
    // crash redelivers at most that much (at-least-once; consumers are idempotent).
    try {
      let i = 0;
      while (i < events.length && !this.stopping && this.leader) {
        // The next chunk: up to maxBatchSize matching events (events of no interest in between are passed over).
        const chunk: RecordedEvent[] = [];
        let end = i;
        while (end < events.length && chunk.length < this.settings.maxBatchSize) {
          if (this.matches(events[end]!)) chunk.push(events[end]!);
          end += 1;
        }
        const undelivered = chunk.length > 0 ? await this.deliverChunk(chunk) : undefined;
        if (undelivered !== undefined) {
          // Stopped (or deposed) mid-retry: leave the checkpoint before the undelivered event, so it comes again.
          if (undelivered > 0) {
            this.checkpoint = chunk[undelivered - 1]!.position;
            this.unsaved += 1;
          }
          // Cut short (stopping, or no longer the leader): what was delivered is saved now, if we still lead.
          if (this.unsaved > 0 && this.leader) await this.saveCheckpoint(this.checkpoint);
          return 'partial';
        }
        this.checkpoint = events[end - 1]!.position;
        this.unsaved += end - i;
        i = end;
        if (this.unsaved >= CHECKPOINT_EVERY || Date.now() - this.savedAt >= CHECKPOINT_MS) await this.saveCheckpoint(this.checkpoint);
      }
    } catch (error) {
      // A failed round (store unreachable, lock lost): keep what was delivered if we can, then let run() back off.
      if (this.unsaved > 0 && this.leader) await this.saveCheckpoint(this.checkpoint).catch(() => undefined); // the round's own error is reported
      throw error;
    }
    if (this.stopping && this.unsaved > 0 && this.leader) await this.saveCheckpoint(this.checkpoint);
    return events.length === BATCH_SIZE ? 'full' : 'partial';
  }

  /** A replay was requested through this process's store: look at once instead of at the next REPLAY_CHECK_MS. */
  replayRequested(): void {
    this.replayCheckedAt = 0;
    this.wake?.('append');
  }

  /**
   * A chunk in one handler call; when that fails, each event alone (with retries and parking). Events of a stream
   * with a parked event are parked behind it and never handed over. Returns the index (in the chunk) of the first
   * event not dealt with when delivery was cut short, or undefined when the whole chunk was handled or parked.
   */
  private async deliverChunk(chunk: RecordedEvent[]): Promise<number | undefined> {
    const ready: RecordedEvent[] = [];
    for (const event of chunk) {
      if (this.isBlocked(event)) await this.parkBehind(event);
      else ready.push(event);
    }
    if (ready.length > 1) {
      try {
        await this.handler(ready);
        return undefined;
      } catch {
        // Fall through: isolate the failing event(s).
      }
    }
    for (const event of ready) {
      // An earlier event of this chunk may have been parked just now.
      if (this.isBlocked(event)) {
        await this.parkBehind(event);
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
      if (attempt > 1 && (this.stopping || !this.leader)) return 'aborted';
      try {
        await this.handler([event]);
        return 'handled';
      } catch (error) {
        lastError = error;
        if (attempt < this.settings.maxAttempts) await this.sleep(this.settings.retryBackoffMs * 2 ** (attempt - 1), false);
      }
    }
    const message = lastError instanceof Error ? `${lastError.name}: ${lastError.message}` : String(lastError);
    await this.onLock(
      `INSERT INTO es_parked_events (group_name, event_position, error, attempts)
       VALUES ($1, $2, $3, $4)
       ON CONFLICT (group_name, event_position) DO UPDATE
         SET error = EXCLUDED.error, attempts = EXCLUDED.attempts, parked_at = now(), replay_requested_at = NULL`,
      [this.group, event.position.prepare.toString(), message.slice(0, 4000), previousAttempts + this.settings.maxAttempts],
    );
    const first = this.blocked.get(event.stream);
    if (first === undefined || event.revision < first) this.blocked.set(event.stream, event.revision);
    return 'parked';
  }

  /** Parks an event behind the parked event of its stream, unattempted (a redelivered one keeps its record). */
  private async parkBehind(event: RecordedEvent): Promise<void> {
    await this.onLock(
      `INSERT INTO es_parked_events (group_name, event_position, error, attempts) VALUES ($1, $2, $3, 0)
       ON CONFLICT (group_name, event_position) DO NOTHING`,
      [this.group, event.position.prepare.toString(), blockedReason(event.stream, this.blocked.get(event.stream)!)],
    );
  }

  /** Every stream with a parked event in this group, and its lowest parked revision. */
  private async loadBlocked(): Promise<void> {
    const result = await this.onLock<{ stream: string; first: string }>(
      `SELECT e.stream, min(e.revision)::text AS first FROM es_parked_events p JOIN es_events e ON e.position = p.event_position
       WHERE p.group_name = $1 GROUP BY e.stream`,
      [this.group],
    );
    this.blocked = new Map(result.rows.map((r) => [r.stream, BigInt(r.first)]));
  }

  /**
   * Parked events whose replay was asked for, in the log's order (so each stream's in revision order). The request
   * covers a stream's whole chain: the events parked behind the first come with it. An event is delivered only once
   * nothing before it in its stream is parked; when one fails again (and is parked again), the rest of its stream
   * stays parked behind it without being attempted.
   */
  private async deliverReplays(): Promise<boolean> {
    if (Date.now() - this.replayCheckedAt < REPLAY_CHECK_MS) return false;
    this.replayCheckedAt = Date.now();
    // On the lock connection, as the log reads: under load the store's pool is busy with commands.
    const asked = await this.onLock('SELECT 1 FROM es_parked_events WHERE group_name = $1 AND replay_requested_at IS NOT NULL LIMIT 1', [
      this.group,
    ]);
    if (asked.rows.length === 0) return false;
    await this.onLock(
      `UPDATE es_parked_events p SET replay_requested_at = now()
       FROM es_events e
       WHERE p.group_name = $1 AND p.replay_requested_at IS NULL AND e.position = p.event_position
         AND e.stream IN (SELECT e2.stream FROM es_parked_events p2 JOIN es_events e2 ON e2.position = p2.event_position
                          WHERE p2.group_name = $1 AND p2.replay_requested_at IS NOT NULL)`,
      [this.group],
    );
    await this.loadBlocked();
    const result = await this.onLock<EventRow & { attempts: number }>(
      `SELECT ${eventColumns('e')}, p.attempts FROM es_parked_events p JOIN es_events e ON e.position = p.event_position
       WHERE p.group_name = $1 AND p.replay_requested_at IS NOT NULL ORDER BY e.transaction_id, e.position LIMIT ${BATCH_SIZE}`,
      [this.group],
    );
    for (const row of result.rows) {
      if (this.stopping || !this.leader) break;
      const event = toRecordedEvent(row);
      if (this.blocked.get(event.stream)! < event.revision) {
        // An earlier event of its stream is (again) parked: it stays parked behind it, unattempted.
        await this.onLock(
          'UPDATE es_parked_events SET replay_requested_at = NULL, parked_at = now() WHERE group_name = $1 AND event_position = $2',
          [this.group, row.position],
        );
        continue;
      }
      const outcome = await this.deliver(event, row.attempts);
      if (outcome === 'aborted') break;
      if (outcome === 'handled') {
        await this.onLock('DELETE FROM es_parked_events WHERE group_name = $1 AND event_position = $2', [this.group, row.position]);
        const next = await this.onLock<{ first: string | null }>(
          `SELECT min(e.revision)::text AS first FROM es_parked_events p JOIN es_events e ON e.position = p.event_position
           WHERE p.group_name = $1 AND e.stream = $2`,
          [this.group, event.stream],
        );
        const first = next.rows[0]?.first;
        if (first === null || first === undefined) this.blocked.delete(event.stream);
        else this.blocked.set(event.stream, BigInt(first));
      }
    }
    if (result.rows.length > 0) this.replayCheckedAt = 0; // more may be waiting: look again next round
    return result.rows.length > 0;
  }

  private async saveCheckpoint(position: GlobalPosition): Promise<void> {
    this.checkpoint = position;
    this.unsaved = 0;
    this.savedAt = Date.now();
    await this.onLock(
      `UPDATE es_consumer_groups SET checkpoint_commit = $2, checkpoint_prepare = $3, updated_at = now() WHERE group_name = $1`,
      [this.group, position.commit.toString(), position.prepare.toString()],
    );
  }

  /** Waits for a wake-up (new append, stop, lock lost) or the timeout. Retry backoffs are cut short only by stop or a lost lock. */
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
        if (wakeOnAppend || reason !== 'append') done();
      };
    });
  }
}
