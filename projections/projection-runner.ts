import type { Pool } from 'pg';
import { withTransaction } from '../infra/pg-transaction';
import type { EventStore, GlobalPosition, RecordedEvent, Subscription } from '../eventstore/event-store';
import { comparePositions } from '../eventstore/event-store';
import type { Projection } from './projection';
import { liveTables } from './projection';
import { ensureReadModelSchema } from './read-model-schema';

export interface ProjectionObserver {
  applied?(projection: string, event: RecordedEvent, outcome: 'applied' | 'duplicate' | 'ignored'): void;
}

export const groupName = (projection: Projection): string => `projection-${projection.name}`;

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
  ) {}

  async start(): Promise<void> {
    await ensureReadModelSchema(this.readModels, this.projections.flatMap((p) => Object.entries(p.tables).map(([name, ddl]) => ddl(name))));
    for (const projection of this.projections) {
      const tables = liveTables(projection);
      const subscription = await this.store.subscribeInBatches(
        groupName(projection),
        { streamPrefix: projection.streamPrefix, from: 'start' },
        (events) => this.applyMany(projection, tables, events),
        { maxAttempts: 10, retryBackoffMs: 50, maxBatchSize: 100 },
      );
      this.subscriptions.push(subscription);
    }
  }

  async applyOne(projection: Projection, tables: Record<string, string>, event: RecordedEvent, checkpointName = projection.name): Promise<void> {
    await this.applyMany(projection, tables, [event], checkpointName);
  }

  /**
   * Applies events in one transaction, with the checkpoint of the last one: one commit for the
   * batch instead of one per event. If any event fails, nothing of the batch is kept (the
   * subscription then delivers the events one at a time).
   */
  async applyMany(projection: Projection, tables: Record<string, string>, events: RecordedEvent[], checkpointName = projection.name): Promise<void> {
    const wanted = events.filter((e) => !projection.eventTypes || projection.eventTypes.includes(e.type));
    if (wanted.length === 0) return;
    const outcomes = await withTransaction(this.readModels, async (client) => {
      const applied: ['applied' | 'duplicate' | 'ignored', RecordedEvent][] = [];
      for (const event of wanted) applied.push([await projection.apply(client, event, tables), event]);
      // The furthest position of the batch (EventStoreDB may deliver out of order; the checkpoint only moves forward).
      const furthest = wanted.reduce((a, e) => (comparePositions(e.position, a) > 0 ? e.position : a), wanted[0]!.position);
      await saveCheckpoint(client, checkpointName, furthest);
      return applied;
    });
    for (const [outcome, event] of outcomes) this.observer.applied?.(projection.name, event, outcome);
  }

  async stop(): Promise<void> {
    await Promise.all(this.subscriptions.splice(0).map((s) => s.stop()));
  }
}

export async function saveCheckpoint(client: { query: Pool['query'] }, projection: string, position: GlobalPosition): Promise<void> {
  await client.query(
    `INSERT INTO rm_checkpoints (projection, commit, prepare) VALUES ($1, $2, $3)
     ON CONFLICT (projection) DO UPDATE SET commit = EXCLUDED.commit, prepare = EXCLUDED.prepare, updated_at = now()
     WHERE (rm_checkpoints.commit, rm_checkpoints.prepare) < (EXCLUDED.commit, EXCLUDED.prepare)`,
    [projection, position.commit.toString(), position.prepare.toString()],
  );
}

export async function readCheckpoint(pool: Pool, projection: string): Promise<GlobalPosition | undefined> {
  const result = await pool.query<{ commit: string; prepare: string }>(
    'SELECT commit::text AS commit, prepare::text AS prepare FROM rm_checkpoints WHERE projection = $1',
    [projection],
  );
  const row = result.rows[0];
  return row ? { commit: BigInt(row.commit), prepare: BigInt(row.prepare) } : undefined;
}

/** Beyond this many pending events the count saturates (a scrape should stay cheap). */
export const LAG_COUNT_LIMIT = 10_000;

export interface ProjectionLag {
  projection: string;
  checkpoint?: GlobalPosition;
  /** Seconds since the oldest event this projection has not applied yet was recorded (0 when caught up). */
  lagSeconds: number;
  /** Events of this projection not applied yet (counted up to LAG_COUNT_LIMIT). */
  eventsBehind: number;
  caughtUp: boolean;
}

/** How far a projection is behind the log: the age of its oldest unapplied event. */
export async function projectionLag(store: EventStore, pool: Pool, projection: Projection): Promise<ProjectionLag> {
  const checkpoint = await readCheckpoint(pool, projection.name);
  const pending = await store.readAll({ fromPosition: checkpoint, streamPrefix: projection.streamPrefix, eventTypes: projection.eventTypes, maxCount: LAG_COUNT_LIMIT });
  const next = pending[0];
  const lagSeconds = next ? Math.max(0, (Date.now() - Date.parse(next.recordedAt)) / 1000) : 0;
  return { projection: projection.name, checkpoint, lagSeconds, eventsBehind: pending.length, caughtUp: !next };
}

/**
 * Whether the projection has applied everything up to `position`. Its checkpoint only moves on
 * events it applies, so `position` may be an event it never sees (another stream prefix or event
 * type, e.g. AccountOpened for the history): then it has reached `position` when no event of its own
 * lies between its checkpoint and `position`, and `position` is visible to readers (so nothing
 * before it can still commit).
 */
export async function projectionReached(store: EventStore, pool: Pool, projection: Projection, position: GlobalPosition): Promise<boolean> {
  const checkpoint = await readCheckpoint(pool, projection.name);
  if (checkpoint && comparePositions(checkpoint, position) >= 0) return true;
  const [next] = await store.readAll({ fromPosition: checkpoint, streamPrefix: projection.streamPrefix, eventTypes: projection.eventTypes, maxCount: 1 });
  if (next) return comparePositions(next.position, position) > 0;
  const head = await store.headPosition();
  return head !== undefined && comparePositions(head, position) >= 0;
}

/** Waits (bounded) until the projection has applied everything up to `position`. */
export async function waitForProjection(store: EventStore, pool: Pool, projection: Projection, position: GlobalPosition, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await projectionReached(store, pool, projection, position)) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
}
