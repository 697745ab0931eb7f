import type { Pool, PoolClient } from 'pg';
import { withTransaction } from '../infra/pg-transaction';
import type { EventStore, GlobalPosition, RecordedEvent } from '../eventstore/event-store';
import { comparePositions } from '../eventstore/event-store';
import type { Projection } from './projection';
import { liveTables } from './projection';
import { saveCheckpoint } from './projection-runner';
import { ensureReadModelSchema } from './read-model-schema';

export interface RebuildReport {
  projection: string;
  events: number;
  position?: GlobalPosition;
  ms: number;
}

const PAGE = 1000;
/** Phase 1 runs rounds until one replays fewer events than this (what is left is caught up under the lock)... */
const LEFT_FOR_THE_LOCK = 100;
/** ...or this many rounds passed (writes outpacing the replay must not keep a rebuild running forever). */
const MAX_ROUNDS = 50;

/**
 * Recomputes a projection from the whole log into fresh tables, then swaps them in.
 * - Phase 1 (no locks): replay every event into `<table>__rebuild`; the API keeps reading the live tables.
 *   It replays in rounds, each up to the head of the log as of the round's start, until a round finds
 *   little left to do (so the locked phase is short), and never chases the tail of the log forever.
 * - Phase 2 (short): lock the live tables, apply what was appended meanwhile up to the head as of
 *   the lock (every event the live runner has applied is at or below it), rename the fresh tables
 *   into place and drop the old ones, in one transaction. Readers wait for that moment only.
 * The live runner, blocked meanwhile, retries its in-flight event against the new tables, where
 * the revision guard skips it if the rebuild already applied it; later events it applies as usual.
 */
export async function rebuildProjection(
  store: EventStore,
  pool: Pool,
  projection: Projection,
  log: (line: string) => void = () => undefined,
): Promise<RebuildReport> {
  const started = Date.now();
  const live = liveTables(projection);
  const shadow = Object.fromEntries(Object.keys(projection.tables).map((name) => [name, `${name}__rebuild`]));
  await ensureReadModelSchema(
    pool,
    Object.entries(projection.tables).map(([name, ddl]) => ddl(name)),
  );
  for (const table of Object.values(shadow)) await pool.query(`DROP TABLE IF EXISTS ${table}`);
  for (const [name, ddl] of Object.entries(projection.tables)) await pool.query(ddl(shadow[name]!));

  let position: GlobalPosition | undefined;
  let events = 0;
  const applyPage = async (client: PoolClient, page: RecordedEvent[]) => {
    for (const event of page) {
      if (!projection.eventTypes || projection.eventTypes.includes(event.type)) await projection.apply(client, event, shadow);
      position = event.position;
      events += 1;
    }
  };
  /** The next page of events after the last one replayed, up to `bound` (inclusive; none when the log was empty). */
  const readPage = async (bound: GlobalPosition | undefined) => {
    if (!bound) return [];
    const page = await store.readAll({
      fromPosition: position,
      streamPrefix: projection.streamPrefix,
      eventTypes: projection.eventTypes,
      maxCount: PAGE,
    });
    return page.filter((e) => comparePositions(e.position, bound) <= 0);
  };

  // Phase 1: replay without locks, in rounds up to the head as of each round's start.
  for (let round = 1; ; round++) {
    const bound = await store.headPosition();
    const before = events;
    for (;;) {
      const page = await readPage(bound);
      if (page.length === 0) break;
      await withTransaction(pool, (client) => applyPage(client, page));
      if (events % 10_000 < PAGE) log(`[rebuild ${projection.name}] ${events} events replayed`);
    }
    if (events - before < LEFT_FOR_THE_LOCK || round >= MAX_ROUNDS) break;
  }

  // Phase 2: catch up under lock (up to the head as of the lock) and swap.
  await withTransaction(pool, async (client) => {
    await client.query(`LOCK TABLE ${Object.values(live).join(', ')} IN ACCESS EXCLUSIVE MODE`);
    const bound = await store.headPosition();
    for (;;) {
      const page = await readPage(bound);
      if (page.length === 0) break;
      await applyPage(client, page);
    }
    for (const name of Object.keys(projection.tables)) {
      await client.query(`ALTER TABLE ${name} RENAME TO ${name}__old`);
      await client.query(`ALTER TABLE ${shadow[name]} RENAME TO ${name}`);
      await client.query(`DROP TABLE ${name}__old`);
      // Its indexes take the live names (the DDL's own, e.g. <table>_pkey, <table>_created): left under the shadow's
      // names, the next rebuild's CREATE INDEX IF NOT EXISTS would find them taken and build its shadow without them.
      const indexes = await client.query<{ indexname: string }>(
        'SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = $1',
        [name],
      );
      for (const { indexname } of indexes.rows) {
        if (indexname.startsWith(`${shadow[name]}_`))
          await client.query(`ALTER INDEX ${indexname} RENAME TO ${name}${indexname.slice(shadow[name]!.length)}`);
      }
    }
    if (position) await saveCheckpoint(client, projection.name, position);
  });
  const report = { projection: projection.name, events, position, ms: Date.now() - started };
  log(`[rebuild ${projection.name}] swapped in: ${events} events in ${report.ms} ms`);
  return report;
}
