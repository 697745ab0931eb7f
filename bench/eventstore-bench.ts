import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { Pool } from 'pg';
import type { NewEvent } from '../eventstore/event-store';
import { PostgresEventStore } from '../eventstore/postgres/postgres-event-store';
import { startBenchServers } from './bench-servers';
import { eventsQueryBench } from './events-query-bench';
import { hashChainBench } from './hash-chain-bench';
import { round, runConcurrently, summarize, table, writeReport } from './stats';

/**
 * `npm run bench -- eventstore`: the PostgreSQL event store beside raw INSERTs on the same server,
 * in the same run. Reports ratios (ours / raw), so the numbers survive a noisy machine.
 */
const event = (i: number): NewEvent => ({
  id: randomUUID(),
  type: 'BenchEvent',
  data: { i, amount: 100, note: 'benchmark payload' },
  metadata: { occurredAt: new Date().toISOString(), correlationId: randomUUID() },
});

export async function eventStoreBench(quick: boolean): Promise<void> {
  const servers = await startBenchServers({ temporal: false });
  const url = await servers.databaseUrl(`bench_es_${Date.now()}`);
  const store = await PostgresEventStore.connect({ connectionString: url, poolSize: 20, pollIntervalMs: 1000 });
  const raw = new Pool({ connectionString: url, max: 20 });
  await raw.query(`CREATE TABLE raw_events (position bigserial PRIMARY KEY, stream text NOT NULL, id uuid NOT NULL UNIQUE, type text NOT NULL,
    data jsonb NOT NULL, metadata jsonb NOT NULL, recorded_at timestamptz NOT NULL DEFAULT now())`);
  const rawInsert = (stream: string, e: NewEvent) =>
    raw.query('INSERT INTO raw_events (stream, id, type, data, metadata) VALUES ($1, $2, $3, $4, $5)', [
      stream,
      e.id,
      e.type,
      JSON.stringify(e.data),
      JSON.stringify(e.metadata),
    ]);

  const n = quick ? 1500 : 8000;
  const concurrency = 16;
  const rows: Record<string, string | number>[] = [];
  const report: Record<string, unknown> = { machine: machineInfo(), quick, n, concurrency };
  try {
    // Warm-up: connections, plans, caches.
    await runConcurrently(200, concurrency, async (i) => {
      await store.appendToStream(`warm-${i}`, [event(i)], { expectedRevision: 'no_stream' });
      await rawInsert(`warm-${i}`, event(i));
    });

    // 1. One stream: appends are serialised by the expected revision (each waits for the previous).
    const oneN = Math.floor(n / 4);
    const oursOne = await runConcurrently(oneN, 1, async (i) => {
      await store.appendToStream('one-stream', [event(i)], { expectedRevision: i === 0 ? 'no_stream' : BigInt(i - 1) });
    });
    const rawOne = await runConcurrently(oneN, 1, async (i) => void (await rawInsert('one-stream', event(i))));
    rows.push(row('append, one stream (sequential, expected revision)', oneN, oursOne, rawOne));

    // 2. Many streams, concurrent writers, each with its expected revision.
    const streams = 500;
    const revisions = new Array<number>(streams).fill(-1);
    const appendLatency: number[] = [];
    const oursMany = await runConcurrently(n, concurrency, async (i) => {
      const s = i % streams;
      const expected = revisions[s]! < 0 ? 'no_stream' : BigInt(revisions[s]!);
      revisions[s] = revisions[s]! + 1;
      const t = performance.now();
      await store.appendToStream(`many-${s}`, [event(i)], { expectedRevision: expected });
      appendLatency.push(performance.now() - t);
    });
    const rawLatency: number[] = [];
    const rawMany = await runConcurrently(n, concurrency, async (i) => {
      const t = performance.now();
      await rawInsert(`many-${i % streams}`, event(i));
      rawLatency.push(performance.now() - t);
    });
    rows.push(row(`append, ${streams} streams (${concurrency} writers)`, n, oursMany, rawMany));

    // 3. readAll from the start, in pages of 1000, against raw keyset paging.
    let readCount = 0;
    const oursRead = await timeIt(async () => {
      let from;
      for (;;) {
        const page = await store.readAll({ fromPosition: from, maxCount: 1000 });
        if (page.length === 0) break;
        readCount += page.length;
        from = page.at(-1)!.position;
      }
    });
    const rawRead = await timeIt(async () => {
      let after = 0;
      for (;;) {
        const page = await raw.query<{ position: string }>('SELECT * FROM raw_events WHERE position > $1 ORDER BY position LIMIT 1000', [
          after,
        ]);
        if (page.rows.length === 0) break;
        after = Number(page.rows.at(-1)!.position);
      }
    });
    rows.push(row(`readAll (${readCount} events, pages of 1000)`, readCount, oursRead, rawRead));

    // 4. Subscription lag: from an append's acknowledgement to the handler, under concurrent appends.
    const acked = new Map<string, number>();
    const lags: number[] = [];
    let delivered = 0;
    const lagN = quick ? 1000 : 4000;
    let allDelivered!: () => void;
    const done = new Promise<void>((resolve) => (allDelivered = resolve));
    const deliveredAt = new Map<string, number>();
    const subscription = await store.subscribe('bench-lag', { streamPrefix: 'lag-', from: 'end' }, async (e) => {
      deliveredAt.set(e.id, performance.now());
      if (++delivered === lagN) allDelivered();
    });
    await new Promise((r) => setTimeout(r, 300));
    await runConcurrently(lagN, 8, async (i) => {
      const e = event(i);
      await store.appendToStream(`lag-${i % 200}-${Math.floor(i / 200)}`, [e], { expectedRevision: 'no_stream' });
      acked.set(e.id, performance.now());
    });
    await done;
    await subscription.stop();
    // A delivery can beat the writer's acknowledgement (NOTIFY races the reply): count those as 0.
    for (const [id, at] of deliveredAt) lags.push(Math.max(0, at - acked.get(id)!));
    const lag = summarize(lags);
    const rawInsertLatency = summarize(rawLatency);
    report.subscriptionLagMs = lag;
    report.rawInsertLatencyMs = rawInsertLatency;
    report.appendLatencyMs = summarize(appendLatency);
    // 5. The hash chain's cost: append throughput with / without it, and audit:verify per million events.
    const chain = await hashChainBench((name) => servers.databaseUrl(name), quick, servers.postgresPid);
    rows.push(...chain.rows);
    report.hashChain = chain.report;
    // 6. GET /events on a big log: a filtered 100-event page on 1,000,000 events (filling takes about 30 s here).
    const queryUrl = await servers.databaseUrl(`bench_events_${Date.now()}`);
    const queryStore = await PostgresEventStore.connect({ connectionString: queryUrl, poolSize: 8, pollIntervalMs: 1000 });
    try {
      report.eventsQuery = await eventsQueryBench(queryStore, 1_000_000);
    } finally {
      await queryStore.close();
    }
    report.results = rows;

    console.log('\nEvent store benchmark (PostgreSQL adapter vs raw INSERT/SELECT, same server, same run)\n');
    console.log(table(rows));
    console.log(
      `\nsubscription lag (append ack -> handler, ${lagN} events, 8 writers): p50 ${lag.p50} ms, p99 ${lag.p99} ms` +
        `  | raw INSERT latency p50 ${rawInsertLatency.p50} ms -> lag p50 = ${round(lag.p50 / rawInsertLatency.p50)}x a raw insert`,
    );
    console.log(
      `append latency (${concurrency} writers): p50 ${report.appendLatencyMs && (report.appendLatencyMs as { p50: number }).p50} ms vs raw p50 ${rawInsertLatency.p50} ms`,
    );
    for (const line of chain.lines) console.log(line);
    console.log(`\nreport: ${writeReport('eventstore', report)}`);
  } finally {
    await raw.end();
    await store.close();
    await servers.stop();
  }
}

function row(name: string, count: number, oursMs: number, rawMs: number): Record<string, string | number> {
  const ours = count / (oursMs / 1000);
  const base = count / (rawMs / 1000);
  return { measure: name, 'ours/s': Math.round(ours), 'raw/s': Math.round(base), 'ours/raw': round(ours / base) };
}

async function timeIt(work: () => Promise<void>): Promise<number> {
  const t = performance.now();
  await work();
  return performance.now() - t;
}

export function machineInfo(): Record<string, unknown> {
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memoryGiB: round(os.totalmem() / 2 ** 30, 1),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
  };
}
