/**
 * The audit commands' logic (scripts/audit-verify.ts, scripts/audit-anchor.ts), apart from process handling so tests
 * can run it against a store. See eventstore/hash-chain.ts for the hash chain and the anchors.
 */
import { loadConfigOrExit } from '../config/config';
import { localStackDatabaseUrl } from '../infra/embedded-postgres';
import { EsdbEventStore } from '../eventstore/esdb/esdb-event-store';
import type { EventStore } from '../eventstore/event-store';
import { describeBreak, isHashChained, type ChainVerification } from '../eventstore/hash-chain';
import { PostgresEventStore } from '../eventstore/postgres/postgres-event-store';

export const VERIFY_USAGE = `Usage: npm run audit:verify -- [--stream <name>] [--anchor-hash <hex>] [--max <n>] [--json]
  Walks every stream's hash chain (or one stream's), checks each head and the latest anchor.
  --anchor-hash  an anchor hash kept outside the database (printed by audit:anchor): fail unless the anchors chain through it
  --max          report at most n broken links (default 20)
Exit status: 0 verified, 1 a broken link (the first is printed), 2 usage or configuration.
`;

export const ANCHOR_USAGE = `Usage: npm run audit:anchor [-- --json]
  Records an anchor over every stream head (PostgreSQL): a later audit:verify names any stream that is gone or shorter.
  Refused (exit 1) when a head lost something the previous anchor recorded.
Exit status: 0 anchored (or nothing changed), 1 refused, 2 usage or configuration.
`;

export interface VerifyArgs {
  stream?: string;
  anchorHash?: string;
  max?: number;
  json: boolean;
}

export type Parsed<T> = { ok: true; args: T } | { ok: false; message: string };

export function parseVerifyArgs(argv: readonly string[]): Parsed<VerifyArgs> {
  const args: VerifyArgs = { json: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new Error(`${arg} needs a value`);
      return v;
    };
    try {
      if (arg === '--json') args.json = true;
      else if (arg === '--stream') args.stream = value();
      else if (arg === '--anchor-hash') {
        args.anchorHash = value();
        if (!/^[0-9a-fA-F]{64}$/.test(args.anchorHash)) return { ok: false, message: '--anchor-hash takes 64 hex digits' };
      } else if (arg === '--max') {
        args.max = Number(value());
        if (!Number.isInteger(args.max) || args.max < 1) return { ok: false, message: '--max takes a whole number >= 1' };
      } else return { ok: false, message: `Unknown argument '${arg}'` };
    } catch (error) {
      return { ok: false, message: (error as Error).message };
    }
  }
  return { ok: true, args };
}

/** Lines for a person: the first broken link first, or the one-line summary. */
export function formatVerification(report: ChainVerification, stream?: string): string[] {
  const where = stream !== undefined ? `stream ${stream}: ` : '';
  const lines: string[] = [];
  if (report.ok) {
    lines.push(`${where}verified ${report.events} events in ${report.streams} streams in ${report.ms} ms`);
  } else {
    const first = report.firstBroken!;
    lines.push(`${where}BROKEN: first broken link: stream ${first.stream}, revision ${first.revision ?? '-'} (${first.problem})`);
    lines.push(`  expected: ${first.expected}`);
    lines.push(`  found:    ${first.found}`);
    if (report.broken.length > 1) {
      lines.push(`${report.broken.length - 1} more${report.broken.length >= 20 ? ' (at least)' : ''}:`);
      for (const b of report.broken.slice(1)) lines.push(`  ${describeBreak(b)}`);
    }
    lines.push(`(checked ${report.events} events in ${report.streams} streams in ${report.ms} ms)`);
  }
  if (report.anchor) {
    const a = report.anchor;
    lines.push(`latest anchor #${a.anchorId} at ${a.anchoredAt}: ${a.streams} streams, ${a.events} events, anchor hash ${a.anchorHash}`);
  } else if (report.unhashedLegacyEvents === undefined) {
    lines.push('no anchor yet (npm run audit:anchor): a deleted stream is only caught once an anchor recorded it');
  }
  if (report.unhashedLegacyEvents) lines.push(`${report.unhashedLegacyEvents} events from before the hash chain were hashed on read`);
  return lines;
}

export async function auditVerify(store: EventStore, args: VerifyArgs, out: (line: string) => void): Promise<number> {
  if (!isHashChained(store)) {
    out('this event store keeps no hash chain');
    return 2;
  }
  const report = await store.chainAudit().verify({ stream: args.stream, anchorHash: args.anchorHash, maxProblems: args.max });
  if (args.json) out(JSON.stringify(report, null, 2));
  else for (const line of formatVerification(report, args.stream)) out(line);
  return report.ok ? 0 : 1;
}

export async function auditAnchor(store: EventStore, json: boolean, out: (line: string) => void): Promise<number> {
  const audit = isHashChained(store) ? store.chainAudit() : undefined;
  if (!audit?.anchor) {
    out('this event store keeps no stream heads to anchor (EventStoreDB records deletions in its log: audit:verify reports them)');
    return 2;
  }
  const result = await audit.anchor();
  if (json) out(JSON.stringify(result, null, 2));
  else if (result.refused) {
    out(`REFUSED: the heads lost what the previous anchor recorded (nothing written):`);
    for (const b of result.refused) out(`  ${describeBreak(b)}`);
  } else if (result.unchanged) out('no stream head changed since the latest anchor: nothing written');
  else {
    const a = result.anchor!;
    out(`anchor #${a.anchorId} at ${a.anchoredAt}: ${a.streams} streams, ${a.events} events`);
    out(`anchor hash ${a.anchorHash}`);
    out(
      `keep it outside the database (a log, a ticket); npm run audit:verify -- --anchor-hash ${a.anchorHash} checks the anchors still chain through it`,
    );
  }
  return result.refused ? 1 : 0;
}

/** The event store from the environment (as projections:parked does): DATABASE_URL, or the local stack's PostgreSQL. */
export async function connectFromEnv(): Promise<EventStore> {
  const config = loadConfigOrExit();
  if (config.EVENT_STORE === 'esdb') return EsdbEventStore.connect(config.ESDB_URL!);
  const databaseUrl = config.DATABASE_URL ?? localStackDatabaseUrl(config.DATA_DIR, config.POSTGRES_PORT);
  return PostgresEventStore.connect({ connectionString: databaseUrl, poolSize: 2 });
}

export async function runCommand(name: string, work: (store: EventStore) => Promise<number>): Promise<void> {
  let status: number;
  try {
    const store = await connectFromEnv();
    try {
      status = await work(store);
    } finally {
      await store.close();
    }
  } catch (error) {
    process.stderr.write(`${name} failed: ${error instanceof Error ? error.message : String(error)}\n`);
    status = 2;
  }
  process.exit(status);
}
