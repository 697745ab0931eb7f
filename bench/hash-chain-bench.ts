import { randomUUID } from 'node:crypto';
import type { NewEvent } from '../eventstore/event-store';
import { HASH_CHAIN_V2_BACKFILL } from '../eventstore/postgres/migrations';
import { PostgresEventStore } from '../eventstore/postgres/postgres-event-store';
import { createServicePool } from '../infra/pg-pool';
import { cpuSeconds, round, runConcurrently } from './stats';

/**
 * The cost of the hash chain (part of `npm run bench -- eventstore`):
 * 1. append throughput with the chain as a ratio to the same appends without it (`hashChain: false`: the append
 *    statement as it was before the chain), same server, same database, short rounds interleaved (alternating which
 *    goes first) so drift and the neighbours' load hit both alike; beside it the CPU (PostgreSQL and this process)
 *    per event, which a shared machine disturbs less than throughput;
 * 2. the time `audit:verify` takes, per million events: measured on a generated log (streams of 10 events, hashed by
 *    the v2 migration's own backfill statement, which is timed too) and extrapolated linearly (verify reads the log
 *    once in pages and hashes each event once).
 */

const event = (i: number): NewEvent => ({
  id: randomUUID(),
  type: 'BenchEvent',
  data: { i, amount: 100, note: 'benchmark payload' },
  metadata: { correlationId: randomUUID() },
});

export interface HashChainBenchResult {
  rows: Record<string, string | number>[];
  report: Record<string, unknown>;
  lines: string[];
}

type Kind = 'chained' | 'plain';

export async function hashChainBench(
  databaseUrl: (name: string) => Promise<string>,
  quick: boolean,
  postgresPid?: number,
): Promise<HashChainBenchResult> {
  const url = await databaseUrl(`bench_chain_${Date.now()}`);
  const chained = await PostgresEventStore.connect({ connectionString: url, poolSize: 20 });
  const plain = await PostgresEventStore.connect({ connectionString: url, poolSize: 20, hashChain: false, migrate: false });
  const rows: Record<string, string | number>[] = [];
  const report: Record<string, unknown> = {};
  const lines: string[] = [];
  try {
    const concurrency = 16;
    const rounds = quick ? 4 : 10;
    const perRound = quick ? 400 : 1000;
    const streams = 500;
    // Each store writes its own streams (their chains must stay whole for the chained one).
    const revisions: Record<Kind, number[]> = { chained: new Array<number>(streams).fill(-1), plain: new Array<number>(streams).fill(-1) };
    const storeOf = (kind: Kind) => (kind === 'chained' ? chained : plain);
    const workloads = {
      /** One event per append, many streams, each append with its expected revision (what the activities do). */
      many: {
        label: `append, ${streams} streams (${concurrency} writers)`,
        events: perRound,
        run: (kind: Kind, offset: number) =>
          runConcurrently(perRound, concurrency, async (i) => {
            const s = (offset + i) % streams;
            const revs = revisions[kind];
            const expected = revs[s]! < 0 ? 'no_stream' : BigInt(revs[s]!);
            revs[s] = revs[s]! + 1;
            await storeOf(kind).appendToStream(`${kind}-${s}`, [event(i)], { expectedRevision: expected });
          }),
      },
      one: {
        label: 'append, one stream (sequential)',
        events: perRound / 4,
        run: (kind: Kind) => {
          const stream = `${kind}-one-${randomUUID().slice(0, 8)}`;
          return runConcurrently(perRound / 4, 1, async (i) => {
            await storeOf(kind).appendToStream(stream, [event(i)], { expectedRevision: i === 0 ? 'no_stream' : BigInt(i - 1) });
          });
        },
      },
      ten: {
        label: `append of 10 events (${concurrency} writers), events`,
        events: (perRound / 20) * 10,
        run: (kind: Kind) =>
          runConcurrently(perRound / 20, concurrency, async () => {
            await storeOf(kind).appendToStream(
              `${kind}-ten-${randomUUID()}`,
              Array.from({ length: 10 }, (_, k) => event(k)),
              { expectedRevision: 'no_stream' },
            );
          }),
      },
    };
    // CPU of PostgreSQL (server and backends) and of this process: steadier than throughput on a shared machine.
    const cpuNow = () => (postgresPid ? cpuSeconds(postgresPid, true) : 0) + (process.cpuUsage().user + process.cpuUsage().system) / 1e6;
    for (const kind of ['chained', 'plain'] as const) for (const w of Object.values(workloads)) await w.run(kind, 0); // warm-up
    const totals = Object.fromEntries(
      Object.keys(workloads).map((k) => [k, { chained: 0, plain: 0, cpuChained: 0, cpuPlain: 0, ratios: [] as number[] }]),
    );
    for (let r = 0; r < rounds; r++) {
      for (const [name, w] of Object.entries(workloads)) {
        const t = totals[name]!;
        const ms: Record<Kind, number> = { chained: 0, plain: 0 };
        for (const kind of r % 2 === 0 ? (['chained', 'plain'] as const) : (['plain', 'chained'] as const)) {
          const cpu = cpuNow();
          ms[kind] = await w.run(kind, r * 7);
          const used = cpuNow() - cpu;
          if (kind === 'chained') t.cpuChained += used;
          else t.cpuPlain += used;
        }
        t.chained += ms.chained;
        t.plain += ms.plain;
        t.ratios.push(ms.plain / ms.chained);
      }
    }
    const chainReport: Record<string, unknown> = { goal: 0.9, rounds, interleaved: true };
    for (const [name, w] of Object.entries(workloads)) {
      const t = totals[name]!;
      const n = w.events * rounds;
      const ours = n / (t.chained / 1000);
      const base = n / (t.plain / 1000);
      const ratio = round(ours / base);
      const cpuRatio = postgresPid ? round(t.cpuPlain / t.cpuChained) : undefined;
      rows.push({
        measure: `hash chain: ${w.label}/s, chained vs unchained`,
        'ours/s': Math.round(ours),
        'raw/s': Math.round(base),
        'ours/raw': ratio,
      });
      chainReport[name] = {
        chainedPerSecond: Math.round(ours),
        unchainedPerSecond: Math.round(base),
        throughputRatio: ratio,
        roundRatios: { min: round(Math.min(...t.ratios)), max: round(Math.max(...t.ratios)) },
        ...(cpuRatio !== undefined
          ? {
              cpuRatio,
              cpuMicrosPerEvent: { chained: Math.round((t.cpuChained / n) * 1e6), unchained: Math.round((t.cpuPlain / n) * 1e6) },
            }
          : {}),
      };
      lines.push(
        `hash chain, ${w.label}: ${ratio}x the throughput without it (rounds ${round(Math.min(...t.ratios))}-${round(Math.max(...t.ratios))}x)` +
          (cpuRatio !== undefined
            ? `; CPU (PostgreSQL + client) per event ${Math.round((t.cpuChained / n) * 1e6)} vs ${Math.round((t.cpuPlain / n) * 1e6)} us -> ${cpuRatio}x`
            : ''),
      );
    }
    report.chainAppend = chainReport;
  } finally {
    await plain.close();
    await chained.close();
  }

  // 2. audit:verify per million events, on a generated log.
  const n = quick ? 50_000 : 200_000;
  const perStream = 10;
  const vurl = await databaseUrl(`bench_verify_${Date.now()}`);
  const store = await PostgresEventStore.connect({ connectionString: vurl, poolSize: 4, statementTimeoutMs: 0 });
  // The bench's own SQL (generating the log, the backfill, VACUUM): a pool of its own, without a statement timeout either.
  const sql = createServicePool({ connectionString: vurl, max: 1, applicationName: 'bench-hash-chain', statementTimeoutMs: 0 });
  try {
    const generate = performance.now();
    await sql.query(
      `INSERT INTO es_events (stream, revision, id, type, data, metadata, occurred_at, recorded_at)
       SELECT 'acct-' || (g / $2), g % $2, gen_random_uuid(), 'BenchEvent',
              jsonb_build_object('i', g, 'amount', 100, 'note', 'benchmark payload'),
              jsonb_build_object('correlationId', gen_random_uuid()::text, 'occurredAt', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
              date_trunc('milliseconds', now()), date_trunc('milliseconds', now())
       FROM generate_series(0, $1 - 1) AS g`,
      [n, perStream],
    );
    await sql.query(
      `INSERT INTO es_streams (stream, revision, updated_at) SELECT stream, max(revision), now() FROM es_events GROUP BY stream`,
    );
    const generatedMs = performance.now() - generate;
    // The migration's backfill, as migrations.ts (version 4: the v2 links) runs it on an existing database.
    const backfill = performance.now();
    await sql.query(HASH_CHAIN_V2_BACKFILL);
    const backfillMs = performance.now() - backfill;
    await sql.query('VACUUM ANALYZE es_events');
    await sql.query('VACUUM ANALYZE es_streams');
    const audit = store.chainAudit();
    const anchorStarted = performance.now();
    const anchored = await audit.anchor();
    const anchorMs = performance.now() - anchorStarted;
    const verified = await audit.verify();
    if (!verified.ok || verified.events !== n)
      throw new Error(`bench log did not verify: ${JSON.stringify(verified.firstBroken)} (${verified.events} events)`);
    const perMillion = (t: number) => round(((t / n) * 1_000_000) / 1000, 1);
    report.auditVerify = {
      events: n,
      streams: n / perStream,
      verifyMs: verified.ms,
      verifySecondsPerMillionEvents: perMillion(verified.ms),
      anchorMs: Math.round(anchorMs),
      anchorSecondsPerMillionStreams: round(((anchorMs / (n / perStream)) * 1_000_000) / 1000, 1),
      migrationBackfillSecondsPerMillionEvents: perMillion(backfillMs),
      generatedMs: Math.round(generatedMs),
      extrapolated: 'linear from the measured run',
      anchor: anchored.anchor?.anchorId,
    };
    lines.push(
      `audit:verify: ${n} events in ${n / perStream} streams verified in ${verified.ms} ms -> ${perMillion(verified.ms)} s per million events ` +
        `(extrapolated linearly from ${n}); anchor over ${n / perStream} heads ${Math.round(anchorMs)} ms; the migration's backfill ${perMillion(backfillMs)} s per million events`,
    );
  } finally {
    await sql.end();
    await store.close();
  }
  return { rows, report, lines };
}
