import type { Pool } from 'pg';
import { prepared } from '../infra/pg-prepared';
import { withTransaction } from '../infra/pg-transaction';
import type { EventStore, GlobalPosition, ParkedSummary, RecordedEvent, Subscription } from '../eventstore/event-store';
import { comparePositions, formatPosition } from '../eventstore/event-store';
import type { BatchPlan, BatchProjection, Projection } from './projection';
import { canBatch, liveTables } from './projection';
import { ProgressWatcher } from './progress-watcher';
import { ensureReadModelSchema } from './read-model-schema';

/** What a projection did with an event. */
export type ProjectionOutcome = 'applied' | 'duplicate' | 'ignored';

export interface ProjectionObserver {
  applied?(projection: string, event: RecordedEvent, outcome: ProjectionOutcome): void;
}

export const groupName = (projection: Projection): string => `projection-${projection.name}`;

export interface ProjectionRunnerOptions {
  /** Handler attempts before an event is parked (default 10). */
  maxAttempts?: number;
  /** First retry delay, doubling each attempt (default 50 ms: 10 attempts take about 25 s). */
  retryBackoffMs?: number;
  /** Events per read-model transaction (default 100). */
  maxBatchSize?: number;
}

/**
 * Feeds read models from durable consumer groups. For each event, the read-model change and the
 * projection's checkpoint (rm_checkpoints) commit in one transaction; rows carry the stream
 * revision they applied, so redeliveries (at-least-once, EventStoreDB may also reorder) are
 * skipped or retried, never applied twice.
 */
export class ProjectionRunner {
  private readonly subscriptions: Subscription[] = [];

  constructor(
    private readonly store: EventStore,
    private readonly readModels: Pool,
    private readonly projections: readonly Projection[],
    private readonly observer: ProjectionObserver = {},
    private readonly options: ProjectionRunnerOptions = {},
  ) {}

  async start(): Promise<void> {
    await ensureReadModelSchema(
      this.readModels,
      this.projections.flatMap((p) => Object.entries(p.tables).map(([name, ddl]) => ddl(name))),
    );
    for (const projection of this.projections) {
      const tables = liveTables(projection);
      const subscription = await this.store.subscribeInBatches(
        groupName(projection),
        { streamPrefix: projection.streamPrefix, from: 'start' },
        (events) => this.applyMany(projection, tables, events),
        {
          maxAttempts: this.options.maxAttempts ?? 10,
          retryBackoffMs: this.options.retryBackoffMs ?? 50,
          maxBatchSize: this.options.maxBatchSize ?? 100,
        },
      );
      this.subscriptions.push(subscription);
    }
  }

  async applyOne(
    projection: Projection,
    tables: Record<string, string>,
    event: RecordedEvent,
    checkpointName = projection.name,
  ): Promise<void> {
    await this.applyMany(projection, tables, [event], checkpointName);
  }

  /**
   * Applies a batch with the checkpoint of its furthest event. A projection that can (BatchProjection) writes the batch
   * with its checkpoint in one statement (see BatchPlan); what that statement leaves, and every event of the other
   * projections, is applied one event at a time in one transaction with the checkpoint. If an event fails, nothing of
   * that transaction is kept (the subscription then delivers the events one at a time). Outcomes are reported once
   * what they report has committed.
   */
  async applyMany(
    projection: Projection,
    tables: Record<string, string>,
    events: RecordedEvent[],
    checkpointName = projection.name,
  ): Promise<void> {
    const wanted = events.filter((e) => !projection.eventTypes || projection.eventTypes.includes(e.type));
    if (wanted.length === 0) return;
    // The furthest position of the batch (EventStoreDB may deliver out of order; the checkpoint only moves forward).
    const furthest = wanted.reduce((a, e) => (comparePositions(e.position, a) > 0 ? e.position : a), wanted[0]!.position);
    let left = wanted;
    if (canBatch(projection)) {
      const rest = await this.writeBatch(projection, projection.planBatch(wanted, tables), checkpointName, furthest);
      if (rest === 'all') return;
      left = rest;
    }
    const outcomes = await withTransaction(this.readModels, async (client) => {
      const applied: [ProjectionOutcome, RecordedEvent][] = [];
      for (const event of left) applied.push([await projection.apply(client, event, tables), event]);
      await saveCheckpoint(client, checkpointName, furthest);
      return applied;
    });
    for (const [outcome, event] of outcomes) this.observer.applied?.(projection.name, event, outcome);
  }

  /**
   * The fast path: the plan's statement, with the checkpoint when nothing is left for apply(). Returns 'all' when the
   * statement settled the batch (checkpoint included), else the events left for apply(), each stream's in delivery
   * order (a stream is either in a unit or left whole; the same event delivered twice is left as often as it was).
   */
  private async writeBatch(
    projection: BatchProjection,
    plan: BatchPlan,
    checkpointName: string,
    furthest: GlobalPosition,
  ): Promise<'all' | RecordedEvent[]> {
    const report = (events: readonly RecordedEvent[], outcome: ProjectionOutcome) => {
      for (const event of events) this.observer.applied?.(projection.name, event, outcome);
    };
    // Ignored events are settled here only with everything else; otherwise they go with the transaction that saves the
    // checkpoint past them.
    if (plan.units.length === 0) {
      if (plan.rest.length > 0) return [...plan.ignored, ...plan.rest];
      await saveCheckpoint(this.readModels, checkpointName, furthest);
      report(plan.ignored, 'ignored');
      return 'all';
    }
    const n = plan.values.length;
    // The checkpoint moves in the same statement only when the statement settles every event: nothing left to apply()
    // and every unit written (a unit not written is then a duplicate, or goes to apply()).
    // Prepared: the text is the same for every batch of a projection (its tables), only the arrays change.
    const result = await this.readModels.query<{ k: string }>(
      prepared(
        `WITH ${plan.ctes.join(',\n')},
       written AS (${plan.written}),
       checkpoint AS (
         INSERT INTO rm_checkpoints (projection, commit, prepare)
         SELECT $${n + 1}, $${n + 2}, $${n + 3}
         WHERE $${n + 4}::boolean AND ($${n + 5}::boolean OR (SELECT count(*) FROM written) = $${n + 6})
         ${CHECKPOINT_FORWARD}
       )
       SELECT k FROM written`,
        [
          ...plan.values,
          checkpointName,
          furthest.commit.toString(),
          furthest.prepare.toString(),
          plan.rest.length === 0,
          plan.unwritten === 'duplicate',
          plan.units.length,
        ],
      ),
    );
    const written = new Set(result.rows.map((r) => r.k));
    const oneByOne: RecordedEvent[] = [];
    for (const unit of plan.units) {
      if (written.has(unit.key)) report(unit.events, 'applied');
      else if (plan.unwritten === 'duplicate') report(unit.events, 'duplicate');
      else oneByOne.push(...unit.events);
    }
    if (plan.rest.length === 0 && oneByOne.length === 0) {
      report(plan.ignored, 'ignored');
      return 'all';
    }
    return [...plan.ignored, ...oneByOne, ...plan.rest];
  }

  async stop(): Promise<void> {
    await Promise.all(this.subscriptions.splice(0).map((s) => s.stop()));
  }
}

/** A projection's checkpoint only moves forward. */
const CHECKPOINT_FORWARD = `ON CONFLICT (projection) DO UPDATE SET commit = EXCLUDED.commit, prepare = EXCLUDED.prepare, updated_at = now()
  WHERE (rm_checkpoints.commit, rm_checkpoints.prepare) < (EXCLUDED.commit, EXCLUDED.prepare)`;

export async function saveCheckpoint(client: { query: Pool['query'] }, projection: string, position: GlobalPosition): Promise<void> {
  await client.query(`INSERT INTO rm_checkpoints (projection, commit, prepare) VALUES ($1, $2, $3) ${CHECKPOINT_FORWARD}`, [
    projection,
    position.commit.toString(),
    position.prepare.toString(),
  ]);
}

export async function readCheckpoint(pool: Pool, projection: string): Promise<GlobalPosition | undefined> {
  const result = await pool.query<{ commit: string; prepare: string }>(
    'SELECT commit::text AS commit, prepare::text AS prepare FROM rm_checkpoints WHERE projection = $1',
    [projection],
  );
  const row = result.rows[0];
  return row ? { commit: BigInt(row.commit), prepare: BigInt(row.prepare) } : undefined;
}

export interface ProjectionLag {
  projection: string;
  checkpoint?: GlobalPosition;
  /** Seconds since the oldest event this projection has not applied yet (pending or parked) was recorded (0 when none). */
  lagSeconds: number;
  /** Events of this projection not applied yet: those after its checkpoint plus the parked ones before it. */
  eventsBehind: number;
  /** Events its consumer group parked (failed, or blocked behind a failed one of their stream); counted in eventsBehind. */
  parkedEvents: number;
  /** Nothing pending and nothing parked. */
  caughtUp: boolean;
  /** Parked events: the read model lacks them (and their streams' later events) until they are replayed. */
  degraded: boolean;
}

/**
 * How far a projection is behind the log: one count over the events after its checkpoint (an indexed range scan on
 * PostgreSQL, no events read), plus its parked events, which lie behind the checkpoint but are not applied either.
 */
export async function projectionLag(store: EventStore, pool: Pool, projection: Projection): Promise<ProjectionLag> {
  const checkpoint = await readCheckpoint(pool, projection.name);
  const [pending, parked] = await Promise.all([
    store.countEvents({ fromPosition: checkpoint, streamPrefix: projection.streamPrefix, eventTypes: projection.eventTypes }),
    store.parkedSummary(groupName(projection)),
  ]);
  // Parked events after the checkpoint are already among the pending ones.
  const parkedBehind = parked.count === 0 ? 0 : checkpoint ? (await store.parkedSummary(groupName(projection), checkpoint)).count : 0;
  const oldest = [pending.oldestRecordedAt, parked.oldestRecordedAt].filter((t): t is string => t !== undefined).map((t) => Date.parse(t));
  const lagSeconds = oldest.length > 0 ? Math.max(0, (Date.now() - Math.min(...oldest)) / 1000) : 0;
  return {
    projection: projection.name,
    checkpoint,
    lagSeconds,
    eventsBehind: pending.count + parkedBehind,
    parkedEvents: parked.count,
    caughtUp: pending.count === 0 && parked.count === 0,
    degraded: parked.count > 0,
  };
}

export type ProjectionProgress =
  | { state: 'reached' }
  | { state: 'behind' }
  /** A parked event at or before the position: the read model cannot reflect it until the parked events are replayed. */
  | { state: 'degraded'; parkedEvents: number; firstParked: GlobalPosition };

/**
 * Whether the projection has applied everything up to `position`. Its checkpoint only moves on
 * events it applies, so `position` may be an event it never sees (another stream prefix or event
 * type, e.g. AccountOpened for the history): then it has reached `position` when no event of its own
 * lies between its checkpoint and `position`, and `position` is visible to readers (so nothing
 * before it can still commit). A parked event at or before `position` means it has not, and will not
 * until a replay: 'degraded'. (The checkpoint is read before the parked events: an event is parked
 * before the checkpoint moves past it, so a checkpoint past it is never seen without it.)
 */
export async function projectionProgress(
  store: EventStore,
  pool: Pool,
  projection: Projection,
  position: GlobalPosition,
  scope?: (parked: RecordedEvent) => boolean,
): Promise<ProjectionProgress> {
  const sample = await sampleProgress(store, pool, projection, new ParkedCache());
  return (await progressAt(sample, position, scope)) ?? { state: 'behind' };
}

export interface WaitForProjectionOptions {
  /**
   * Which parked events concern the read (all of them when absent): only a parked event at or before the position
   * that it concerns makes the answer 'degraded'.
   */
  scope?: (parked: RecordedEvent) => boolean;
  /** Abandons the wait (the client went away): it answers 'behind' at once. */
  signal?: AbortSignal;
  /**
   * Called once when the projection has not reached the position at the first look, before the wait begins: it may
   * refuse the wait by throwing (e.g. the caller's cap of concurrent waits), else returns what to call when it ends.
   */
  beforeWaiting?: () => () => void;
}

/**
 * Waits (bounded) until the projection has applied everything up to `position`; answers at once when it is degraded.
 * The waiters of a projection share one watcher (per store and read-model pool, i.e. per API process): one sample of
 * its progress per tick answers all of them, so M waiters cost the reads of one (see progress-watcher.ts).
 */
export async function waitForProjection(
  store: EventStore,
  pool: Pool,
  projection: Projection,
  position: GlobalPosition,
  timeoutMs: number,
  options: WaitForProjectionOptions = {},
): Promise<ProjectionProgress> {
  return projectionWatcher(store, pool, projection).wait<ProjectionProgress>({
    timeoutMs,
    timedOut: { state: 'behind' },
    signal: options.signal,
    beforeWaiting: options.beforeWaiting,
    // A sample read before the wait proves only 'reached' (progress moves forward; an event at or before a reached
    // position was parked before the checkpoint passed it, so that sample saw it parked): anything else looks again.
    settledBy: (sample) => (parkedUpTo(sample, position) ? undefined : reachedIn(sample, position)),
    decide: (sample) => progressAt(sample, position, options.scope),
  });
}

/** One read of a projection's progress: the same for every position waited for. */
export interface ProgressSample {
  checkpoint?: GlobalPosition;
  /** Its first event after the checkpoint (not applied yet), if any. */
  next?: GlobalPosition;
  /** The log's visible head, read when there is no such event. */
  head?: GlobalPosition;
  /** The events its consumer group parked, if any: the first one's position, and all of them when a waiter needs them. */
  parked?: { first: GlobalPosition; events: () => Promise<RecordedEvent[]> };
}

const parkedUpTo = (sample: ProgressSample, position: GlobalPosition): boolean =>
  sample.parked !== undefined && comparePositions(sample.parked.first, position) <= 0;

/** projectionProgress's rule, from a sample: 'degraded', 'reached', or undefined for 'behind'. */
async function progressAt(
  sample: ProgressSample,
  position: GlobalPosition,
  scope: ((parked: RecordedEvent) => boolean) | undefined,
): Promise<ProjectionProgress | undefined> {
  if (parkedUpTo(sample, position)) {
    const concerned = (await sample.parked!.events()).filter((e) => comparePositions(e.position, position) <= 0 && (!scope || scope(e)));
    if (concerned.length > 0) {
      const first = concerned.reduce((a, e) => (comparePositions(e.position, a.position) < 0 ? e : a)).position;
      return { state: 'degraded', parkedEvents: concerned.length, firstParked: first };
    }
  }
  return reachedIn(sample, position);
}

/** The rule for 'reached', from a sample: the checkpoint passed it, or none of its events lies between. */
function reachedIn(sample: ProgressSample, position: GlobalPosition): { state: 'reached' } | undefined {
  if (sample.checkpoint && comparePositions(sample.checkpoint, position) >= 0) return { state: 'reached' };
  if (sample.next) return comparePositions(sample.next, position) > 0 ? { state: 'reached' } : undefined;
  return sample.head !== undefined && comparePositions(sample.head, position) >= 0 ? { state: 'reached' } : undefined;
}

/**
 * A consumer group's parked events, listed once while its summary (count, first, oldest) stays the same: parked
 * events stay until an operator replays them, and each sample that finds some would otherwise list them again.
 */
class ParkedCache {
  private key?: string;
  private events?: Promise<RecordedEvent[]>;

  get(store: EventStore, group: string, summary: ParkedSummary): () => Promise<RecordedEvent[]> {
    const key = `${summary.count} ${summary.first ? formatPosition(summary.first) : ''} ${summary.oldestRecordedAt ?? ''}`;
    return () => {
      if (this.key !== key || !this.events) {
        this.key = key;
        const listing = store.listParked(group).then((parked) => parked.map((p) => p.event));
        // A failed listing is not kept: the next sample lists again.
        listing.catch(() => {
          if (this.events === listing) this.events = undefined;
        });
        this.events = listing;
      }
      return this.events;
    };
  }
}

async function sampleProgress(store: EventStore, pool: Pool, projection: Projection, parkedCache: ParkedCache): Promise<ProgressSample> {
  // The checkpoint before the parked events, as in projectionProgress.
  const checkpoint = await readCheckpoint(pool, projection.name);
  const parked = await store.parkedSummary(groupName(projection));
  const [next] = await store.readAll({
    fromPosition: checkpoint,
    streamPrefix: projection.streamPrefix,
    eventTypes: projection.eventTypes,
    maxCount: 1,
  });
  return {
    checkpoint,
    next: next?.position,
    head: next ? undefined : await store.headPosition(),
    ...(parked.count > 0 && parked.first
      ? { parked: { first: parked.first, events: parkedCache.get(store, groupName(projection), parked) } }
      : {}),
  };
}

const watchers = new WeakMap<EventStore, WeakMap<Pool, Map<string, ProgressWatcher<ProgressSample>>>>();

/** The shared watcher of a projection's progress, for this store and read-model pool. */
export function projectionWatcher(store: EventStore, pool: Pool, projection: Projection): ProgressWatcher<ProgressSample> {
  let byPool = watchers.get(store);
  if (!byPool) watchers.set(store, (byPool = new WeakMap()));
  let byName = byPool.get(pool);
  if (!byName) byPool.set(pool, (byName = new Map()));
  let watcher = byName.get(projection.name);
  if (!watcher) {
    const parkedCache = new ParkedCache();
    byName.set(projection.name, (watcher = new ProgressWatcher(() => sampleProgress(store, pool, projection, parkedCache))));
  }
  return watcher;
}
