import { comparePositions, START_POSITION, type GlobalPosition, type RecordedEvent } from '../../eventstore/event-store';
import { PostgresEventStore } from '../../eventstore/postgres/postgres-event-store';
import { ALL_PROJECTIONS } from '../../projections/all-projections';
import type { Projection } from '../../projections/projection';
import { groupName } from '../../projections/projection-runner';
import { ApiLoad, ApiStack, storeFingerprint, type RunningProjections } from '../support/api-stack';
import { expectReadModelsToMatchStore, keptBy, readWholeLog, seededRandom } from '../support/read-model-checks';
import { waitUntil } from '../support/wait-until';

const ACCOUNTS = 12;

/** The durable consumer groups' checkpoints (es_consumer_groups), by projection name. */
async function groupCheckpoints(api: ApiStack): Promise<Record<string, GlobalPosition>> {
  const rows = await api.pool.query<{ group_name: string; c: string; p: string }>(
    'SELECT group_name, checkpoint_commit::text AS c, checkpoint_prepare::text AS p FROM es_consumer_groups',
  );
  const out: Record<string, GlobalPosition> = {};
  for (const p of ALL_PROJECTIONS) {
    const row = rows.rows.find((r) => r.group_name === groupName(p));
    out[p.name] = row ? { commit: BigInt(row.c), prepare: BigInt(row.p) } : START_POSITION;
  }
  return out;
}

async function readModelCheckpoints(api: ApiStack): Promise<unknown[]> {
  return (await api.readModels.query('SELECT projection, commit::text, prepare::text FROM rm_checkpoints ORDER BY projection')).rows;
}

const relevantTo = (projection: Projection) => (e: RecordedEvent) =>
  e.stream.startsWith(projection.streamPrefix) && (!projection.eventTypes || projection.eventTypes.includes(e.type));

/** Opens funded accounts (and a closed one, so some transfers are compensated) through the API. */
async function openAccounts(api: ApiStack): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < ACCOUNTS; i++) {
    const res = await api
      .http()
      .post('/accounts')
      .send({ ownerId: `load-${i}`, currency: 'EUR', initialDeposit: 20_000 });
    expect(res.status).toBe(201);
    ids.push(res.body.accountId as string);
  }
  const closed = await api.http().post('/accounts').send({ ownerId: 'closed', currency: 'EUR' });
  expect((await api.http().post(`/accounts/${closed.body.accountId as string}/close`)).status).toBe(200);
  return [...ids, closed.body.accountId as string];
}

async function eventCount(api: ApiStack): Promise<number> {
  return (await storeFingerprint(api.pool)).events;
}

/**
 * The exactly-once accounting of two runners, one after the other, on the same consumer groups:
 * the second was only given events after the checkpoint the first left; no event was applied by
 * both; together they applied (or, for the one in flight at a crash, found already applied) every event.
 */
function expectResumedExactlyOnce(
  log: RecordedEvent[],
  first: RunningProjections,
  second: RunningProjections,
  checkpoints: Record<string, GlobalPosition>,
  maxRedelivered: number,
): void {
  // The load makes no holds (issue 25) and no batches (issue 26): those projections have nothing to resume here
  // (test/projections/holds-projection.test.ts, transfer-batches-projection.test.ts); the batches one ignores the
  // outcomes of transfers that are no batch's items.
  for (const projection of ALL_PROJECTIONS.filter((p) => log.some((e) => keptBy(p, e)))) {
    const relevant = log.filter(relevantTo(projection));
    const kept = relevant.filter((e) => keptBy(projection, e));
    const of = (r: RunningProjections, outcome: 'applied' | 'duplicate') =>
      r.deliveries.entries.filter((e) => e.projection === projection.name && e.outcome === outcome).map((e) => e.event);
    const firstApplied = of(first, 'applied');
    const secondApplied = of(second, 'applied');
    const secondDuplicates = of(second, 'duplicate');
    const checkpoint = checkpoints[projection.name]!;

    // The first runner did part of the work, the second resumed after its checkpoint (never from the start).
    expect(firstApplied.length).toBeGreaterThan(0);
    expect(comparePositions(checkpoint, START_POSITION)).toBeGreaterThan(0);
    expect(of(first, 'duplicate')).toEqual([]);
    const secondAll = second.deliveries.entries.filter((e) => e.projection === projection.name);
    expect(secondAll.length).toBeGreaterThan(0);
    expect(secondAll.filter((e) => comparePositions(e.event.position, checkpoint) <= 0)).toEqual([]);
    expect(secondAll.map((e) => e.event.id).sort()).toEqual(
      relevant
        .filter((e) => comparePositions(e.position, checkpoint) > 0)
        .map((e) => e.id)
        .sort(),
    );

    // Nothing applied twice; nothing missed.
    const firstIds = new Set(firstApplied.map((e) => e.id));
    expect(firstIds.size).toBe(firstApplied.length);
    expect(new Set(secondApplied.map((e) => e.id)).size).toBe(secondApplied.length);
    expect(secondApplied.filter((e) => firstIds.has(e.id))).toEqual([]);
    expect(secondDuplicates.length).toBeLessThanOrEqual(maxRedelivered);
    const covered = new Set([...firstApplied, ...secondApplied, ...secondDuplicates].map((e) => e.id));
    expect(kept.filter((e) => !covered.has(e.id)).map((e) => `${e.stream}@${e.revision}`)).toEqual([]);
  }
}

describe('projection runner restarts under load', () => {
  let api: ApiStack | undefined;
  const runners: RunningProjections[] = [];
  let load: ApiLoad | undefined;

  afterEach(async () => {
    await load?.stop().catch(() => undefined);
    load = undefined;
    for (const r of runners.splice(0)) await r.stop().catch(() => undefined);
    await api?.close();
    api = undefined;
  });

  /** Writes continue with no runner: the read models stay frozen meanwhile. */
  async function keepWritingWithoutRunner(stack: ApiStack, events: number): Promise<void> {
    const frozen = await readModelCheckpoints(stack);
    const from = await eventCount(stack);
    await waitUntil(`${events} more events while no runner runs`, async () => (await eventCount(stack)) >= from + events, 120_000, 50);
    expect(await readModelCheckpoints(stack)).toEqual(frozen);
  }

  async function finish(stack: ApiStack, traffic: ApiLoad): Promise<RecordedEvent[]> {
    await traffic.stop();
    expect(traffic.unexpected).toEqual([]);
    expect(traffic.transferIds.length).toBeGreaterThan(20);
    await stack.caughtUp(120_000);
    const counted = await expectReadModelsToMatchStore(stack.store, stack.readModels);
    expect(counted.accounts).toBe(ACCOUNTS + 1);
    return readWholeLog(stack.store);
  }

  test('graceful stop mid-way, writes continue, a new runner resumes from the checkpoint: read models equal the folds, every event applied exactly once', async () => {
    api = await ApiStack.create('proj_restart', { startProjections: false });
    const accounts = await openAccounts(api);
    const first = await api.startProjections({ ownStore: true });
    runners.push(first);
    load = new ApiLoad(api, accounts, seededRandom(11), 4).start();

    await waitUntil('the first runner to apply 150 events', () => first.deliveries.entries.length >= 150, 120_000, 20);
    await first.stop();
    const checkpoints = await groupCheckpoints(api);
    const deliveredByFirst = first.deliveries.entries.length;
    await keepWritingWithoutRunner(api, 150);
    expect(first.deliveries.entries.length).toBe(deliveredByFirst);

    const second = await api.startProjections({ ownStore: true });
    runners.push(second);
    await waitUntil('the second runner to apply 100 events', () => second.deliveries.entries.length >= 100, 120_000, 20);
    const log = await finish(api, load);

    // A graceful stop checkpoints the event in flight: the new runner redelivers nothing.
    expectResumedExactlyOnce(log, first, second, checkpoints, 0);
    for (const p of ALL_PROJECTIONS) expect(comparePositions(checkpoints[p.name]!, log.at(-1)!.position)).toBeLessThan(0);
  });

  test('crash: the runner connections are killed mid-way (pool ended, backends terminated), a fresh runner resumes: nothing lost, nothing applied twice', async () => {
    api = await ApiStack.create('proj_crash', { startProjections: false });
    const accounts = await openAccounts(api);
    const first = await api.startProjections({ ownStore: true });
    runners.push(first);
    load = new ApiLoad(api, accounts, seededRandom(23), 4).start();

    await waitUntil('the first runner to apply 150 events', () => first.deliveries.entries.length >= 150, 120_000, 20);

    // The crash: its pools refuse new connections (a dead process reconnects nothing) and every
    // backend of its read-model pool, its event-store pool (group lock, checkpoints) and its LISTEN connection is killed.
    const ownStore = first.store as PostgresEventStore;
    const ending = Promise.allSettled([first.pool.end(), first.storePool!.end()]);
    const killed = await api.pool.query<{ n: string }>(
      'SELECT count(pg_terminate_backend(pid))::text AS n FROM pg_stat_activity WHERE application_name = $1',
      [first.applicationName],
    );
    expect(Number(killed.rows[0]!.n)).toBeGreaterThan(0);
    // What is left of the dead runner is only in this process's memory; release it (it can no longer reach the database).
    await first.runner.stop();
    await ownStore.close().catch(() => undefined);
    await ending;
    runners.splice(runners.indexOf(first), 1);
    await waitUntil(
      'the dead runner to hold no connection',
      async () =>
        (await api!.pool.query('SELECT 1 FROM pg_stat_activity WHERE application_name = $1', [first.applicationName])).rows.length === 0,
      30_000,
    );
    const checkpoints = await groupCheckpoints(api);
    await keepWritingWithoutRunner(api, 150);

    const second = await api.startProjections({ ownStore: true });
    runners.push(second);
    await waitUntil('the fresh runner to apply 100 events', () => second.deliveries.entries.length >= 100, 120_000, 20);
    const log = await finish(api, load);

    // The group saves its checkpoint every CHECKPOINT_EVERY (100) events or 250 ms (eventstore/postgres/consumer-group.ts):
    // what the dead runner applied after its last save comes again, and is found already applied.
    expectResumedExactlyOnce(log, first, second, checkpoints, 100);
  });
});
