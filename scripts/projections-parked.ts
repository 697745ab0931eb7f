/**
 * `npm run projections:parked -- list [<projection>...] [--json]`
 * `npm run projections:parked -- replay <projection> [--wait <seconds>]`
 *
 * Parked events of the projections' consumer groups: an event its projection failed on after every retry, and the
 * later events of the same stream, parked behind it unattempted. The read model lacks them (the projection is
 * reported degraded in /ready, `projection_parked_events` and `?minPosition` reads) until they are replayed.
 * `replay` asks the running projections process to deliver them again, each stream's in revision order (so fix the
 * cause first, e.g. deploy the corrected projection), then waits until each was handled or parked again.
 * Exit status: 0 done (nothing parked again), 1 some events are parked again or were not delivered in time, 2 usage.
 * Against the local stack (npm start running) the embedded PostgreSQL is found on POSTGRES_PORT; elsewhere set
 * DATABASE_URL (and ESDB_URL with EVENT_STORE=esdb).
 */
import { loadConfigOrExit, type Config } from '../config/config';
import { localStackDatabaseUrl } from '../infra/embedded-postgres';
import { EsdbEventStore } from '../eventstore/esdb/esdb-event-store';
import type { EventStore, ParkedEvent } from '../eventstore/event-store';
import { formatPosition } from '../eventstore/event-store';
import { PostgresEventStore } from '../eventstore/postgres/postgres-event-store';
import { ALL_PROJECTIONS, projectionByName } from '../projections/all-projections';
import type { Projection } from '../projections/projection';
import { groupName } from '../projections/projection-runner';

const USAGE = `Usage:
  npm run projections:parked -- list [<projection>...] [--json]
  npm run projections:parked -- replay <projection> [--wait <seconds>]   (default wait 60 s; 0: do not wait)
Projections: ${ALL_PROJECTIONS.map((p) => p.name).join(', ')}
`;

function usage(problem?: string): never {
  process.stderr.write(`${problem ? `${problem}\n` : ''}${USAGE}`);
  process.exit(2);
}

interface Args {
  command: 'list' | 'replay';
  projections: Projection[];
  json: boolean;
  waitSeconds: number;
}

function parseArgs(argv: string[]): Args {
  const [command, ...rest] = argv;
  if (command !== 'list' && command !== 'replay') usage(command ? `Unknown command '${command}'` : undefined);
  let json = false;
  let waitSeconds = 60;
  const names: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    if (arg === '--json') json = true;
    else if (arg === '--wait') {
      const value = Number(rest[++i]);
      if (!Number.isFinite(value) || value < 0) usage('--wait takes a number of seconds (0 or more)');
      waitSeconds = value;
    } else if (arg.startsWith('--')) usage(`Unknown option '${arg}'`);
    else names.push(arg);
  }
  const projections = names.map((name) => projectionByName(name) ?? usage(`Unknown projection '${name}'`));
  if (command === 'replay' && projections.length !== 1) usage('replay takes exactly one projection');
  return { command, projections: projections.length > 0 ? projections : [...ALL_PROJECTIONS], json, waitSeconds };
}

function describe(p: ParkedEvent): string {
  const e = p.event;
  const what = p.blocked ? 'blocked' : `${p.attempts} attempts`;
  return `  ${formatPosition(e.position)}  ${e.stream}@${e.revision}  ${e.type}  id ${e.id}  ${what}  parked ${p.parkedAt}\n      ${p.error.replace(/\n/g, '\n      ')}`;
}

function asJson(p: ParkedEvent) {
  return {
    position: formatPosition(p.event.position),
    stream: p.event.stream,
    revision: Number(p.event.revision),
    type: p.event.type,
    eventId: p.event.id,
    recordedAt: p.event.recordedAt,
    attempts: p.attempts,
    blocked: p.blocked,
    parkedAt: p.parkedAt,
    error: p.error,
  };
}

async function list(store: EventStore, args: Args): Promise<number> {
  const out: Record<string, ReturnType<typeof asJson>[]> = {};
  for (const projection of args.projections) {
    const parked = await store.listParked(groupName(projection));
    out[projection.name] = parked.map(asJson);
    if (!args.json) {
      const blocked = parked.filter((p) => p.blocked).length;
      console.log(
        `${projection.name} (group ${groupName(projection)}): ${parked.length} parked${blocked > 0 ? ` (${blocked} blocked behind an earlier parked event of their stream)` : ''}`,
      );
      for (const p of parked) console.log(describe(p));
    }
  }
  if (args.json) console.log(JSON.stringify(out, null, 2));
  return 0;
}

async function replay(store: EventStore, args: Args): Promise<number> {
  const projection = args.projections[0]!;
  const group = groupName(projection);
  const before = await store.listParked(group);
  if (before.length === 0) {
    console.log(`${projection.name}: nothing parked`);
    return 0;
  }
  const queued = await store.replayParked(group);
  console.log(`${projection.name}: replay of ${before.length} parked event(s) requested (${queued} newly queued)`);
  if (args.waitSeconds === 0) return 0;

  // Done when every event parked before the request has been handled (gone) or parked again (a new parkedAt).
  const key = (p: ParkedEvent) => p.event.id;
  const parkedAtBefore = new Map(before.map((p) => [key(p), p.parkedAt]));
  const deadline = Date.now() + args.waitSeconds * 1000;
  for (;;) {
    const now = await store.listParked(group);
    const untouched = now.filter((p) => parkedAtBefore.get(key(p)) === p.parkedAt);
    if (untouched.length === 0 || Date.now() >= deadline) {
      const again = now.filter((p) => parkedAtBefore.has(key(p)) && parkedAtBefore.get(key(p)) !== p.parkedAt);
      const handled = before.filter((p) => !now.some((n) => key(n) === key(p))).length;
      console.log(
        `${projection.name}: ${handled} handled, ${again.length} parked again, ${untouched.length} not delivered yet; ${now.length} parked now`,
      );
      for (const p of again) console.log(describe(p));
      if (untouched.length > 0) {
        console.log(`Not all parked events were delivered within ${args.waitSeconds} s: is the projections process running?`);
        return 1;
      }
      return again.length > 0 ? 1 : 0;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Only the event store (a small pool): no need for the service's Temporal and HTTP parts here. */
async function connect(config: Config, databaseUrl: string): Promise<EventStore> {
  if (config.EVENT_STORE === 'esdb') return EsdbEventStore.connect(config.ESDB_URL!);
  return PostgresEventStore.connect({ connectionString: databaseUrl, poolSize: 2 });
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const config = loadConfigOrExit();
  const databaseUrl = config.DATABASE_URL ?? localStackDatabaseUrl(config.DATA_DIR, config.POSTGRES_PORT);
  const store = await connect(config, databaseUrl);
  let status: number;
  try {
    status = args.command === 'list' ? await list(store, args) : await replay(store, args);
  } finally {
    await store.close();
  }
  process.exit(status);
}

void main().catch((error: unknown) => {
  process.stderr.write(`projections:parked failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
