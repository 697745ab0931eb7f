import { randomUUID } from 'node:crypto';
import type { BatchItemSpec } from './load-generator';
import type { LoadGenerator } from './load-generator-client';
import { measureCpu, round, summarize, table, type CpuProbe, type Summary } from './stats';

/**
 * Batches (issue 26) in `npm run bench -- transfers`: batches of 1,000 transfers over 100 accounts (random pairs) and
 * over 10 hot accounts, one after the other, each awaited until it settled (the last item's outcome), beside the
 * plain-SQL baseline (one transaction per transfer) and our single transfers at 32 in flight, measured in the same run.
 * Sent over HTTP by the load generator's process (POST /transfer-batches, then GET /transfer-batches/{id} until settled).
 */

/** What the batch step needs from the transfers bench's harness. */
export interface BatchBenchHarness {
  readonly load: LoadGenerator;
  readonly accountIdList: readonly string[];
  readonly projectionLags: number[];
  resetTimings(): void;
  /** Waits until every projection caught up with the log. */
  projectionsRunning(on: true): Promise<void>;
  accountStates(): Promise<{ accountId: string; balance: number; held: number }[]>;
}

interface BatchOutcome {
  /** POST sent -> its answer (202: accepted). */
  acceptedMs: number;
  /** POST sent -> the batch seen settled: the last item's outcome. */
  settledMs: number;
  status: string;
  counts: Record<string, number>;
  pollErrors: string[];
}

export interface BatchVariantResult {
  variant: string;
  accounts: number;
  batches: number;
  /** Batches sent at once. */
  inFlight: number;
  itemsPerBatch: number;
  itemsPerSecond: number;
  /** Ratio to the plain-SQL baseline at its best in-flight count of the sweep (1,000 transactions each, just before the batches; goal >= 0.5x). */
  toPlainSql: number;
  /** Ratio to our single transfers at 32 in flight over HTTP, same run (goal >= 10x). */
  toSingleAt32: number;
  /** Request -> the last item's outcome, over the batches. */
  settledMs: Summary;
  acceptedMs: Summary;
  projectionLagMs: Summary;
  cpuSeconds: Record<string, number>;
  cpuMsPerItem: Record<string, number>;
  everyItemCompleted: boolean;
  moneyConserved: boolean;
  noneNegative: boolean;
  outcomes: { status: string; counts: Record<string, number> }[];
  /** GETs that failed on the network during the batches and were asked again. */
  pollErrors: string[];
}

export interface BatchReference {
  plainSqlPerSecond: number;
  plainSqlConcurrency: number;
  singleAt32PerSecond: number;
}

const ITEMS = 1_000;

export async function batchesStep(
  harness: BatchBenchHarness,
  probes: CpuProbe[],
  reference: BatchReference,
  options: {
    batches: number;
    /** Batches sent at once (as several clients would): a batch's phases run one after the other, so one batch alone leaves a core idle. */
    inFlight: number;
    /** `--cpu-profile`: a V8 CPU profile of the service's process while each variant runs; answers the file written. */
    profile?: () => Promise<{ stop(name: string): Promise<string> }>;
  },
): Promise<BatchVariantResult[]> {
  const ids = harness.accountIdList;
  if (ids.length < 110) throw new Error('the batch step needs 110 accounts');
  const spread = ids.slice(0, 100);
  const hot = ids.slice(100, 110);

  const run = async (items: BatchItemSpec[]): Promise<BatchOutcome> => {
    const done = await harness.load.batch(randomUUID(), items);
    return {
      acceptedMs: done.postMs,
      settledMs: done.settledMs,
      status: done.batch.status,
      counts: (done.batch.counts ?? {}) as Record<string, number>,
      pollErrors: done.pollErrors,
    };
  };
  console.log('[bench] batches: warm-up batch...');
  await run(itemsOver(spread, ITEMS));

  const results: BatchVariantResult[] = [];
  for (const [variant, accounts, name] of [
    [`${ITEMS} transfers over 100 accounts`, spread, 'batches-100-accounts'],
    [`${ITEMS} transfers over 10 hot accounts`, hot, 'batches-10-hot-accounts'],
  ] as const) {
    console.log(`[bench] batches: ${options.batches} x ${variant}, ${options.inFlight} at once...`);
    const before = await harness.accountStates();
    await harness.projectionsRunning(true);
    harness.resetTimings();
    const outcomes: BatchOutcome[] = [];
    const profile = await options.profile?.();
    const measured = await measureCpu(probes, async () => {
      const t0 = performance.now();
      let sent = 0;
      const lane = async () => {
        while (sent < options.batches) {
          sent += 1;
          outcomes.push(await run(itemsOver(accounts, ITEMS)));
        }
      };
      await Promise.all(Array.from({ length: Math.max(1, Math.min(options.inFlight, options.batches)) }, lane));
      return performance.now() - t0;
    });
    if (profile) console.log(`[bench] CPU profile of the service during ${variant}: ${await profile.stop(name)}`);
    // The lag of what the batches wrote, the last events included.
    await harness.projectionsRunning(true);
    const lags = [...harness.projectionLags];
    const after = await harness.accountStates();
    const items = options.batches * ITEMS;
    const perSecond = items / (measured.result / 1000);
    const sum = (xs: { balance: number; held: number }[], of: 'balance' | 'held') => xs.reduce((s, x) => s + x[of], 0);
    results.push({
      variant,
      accounts: accounts.length,
      batches: options.batches,
      inFlight: Math.min(options.inFlight, options.batches),
      itemsPerBatch: ITEMS,
      itemsPerSecond: round(perSecond, 1),
      toPlainSql: round(perSecond / reference.plainSqlPerSecond),
      toSingleAt32: round(perSecond / reference.singleAt32PerSecond, 1),
      settledMs: summarize(outcomes.map((o) => o.settledMs)),
      acceptedMs: summarize(outcomes.map((o) => o.acceptedMs)),
      projectionLagMs: summarize(lags),
      cpuSeconds: measured.cpu,
      cpuMsPerItem: Object.fromEntries(Object.entries(measured.cpu).map(([k, v]) => [k, round((1000 * v) / items, 2)])),
      // The accounts hold a billion each: funds always suffice, so every item must complete.
      everyItemCompleted: outcomes.every((o) => o.status === 'completed' && o.counts.completed === ITEMS),
      moneyConserved: sum(after, 'balance') === sum(before, 'balance') && sum(after, 'held') === sum(before, 'held'),
      noneNegative: after.every((a) => a.balance >= 0 && a.held >= 0),
      outcomes: outcomes.map((o) => ({ status: o.status, counts: o.counts })),
      pollErrors: outcomes.flatMap((o) => o.pollErrors),
    });
  }
  return results;
}

/** `count` transfers between random pairs of `accounts`, 1..1000 minor units each. */
function itemsOver(accounts: readonly string[], count: number): BatchItemSpec[] {
  return Array.from({ length: count }, () => {
    const a = Math.floor(Math.random() * accounts.length);
    const b = (a + 1 + Math.floor(Math.random() * (accounts.length - 1))) % accounts.length;
    return { fromAccountId: accounts[a]!, toAccountId: accounts[b]!, amount: 1 + Math.floor(Math.random() * 1000) };
  });
}

export function printBatches(results: BatchVariantResult[], reference: BatchReference): void {
  if (results.length === 0) return;
  const goal = (ok: boolean) => (ok ? 'met' : 'NOT MET');
  console.log(
    `\nBatches of ${ITEMS} transfers over HTTP, one after the other, each polled until settled; ` +
      `plain SQL ${reference.plainSqlPerSecond}/s (its best, ${reference.plainSqlConcurrency} in flight, 1,000 transactions just before), ` +
      `our single transfers ${reference.singleAt32PerSecond}/s at 32 in flight, same run\n`,
  );
  console.log(
    table(
      results.map((r) => ({
        variant: r.variant,
        batches: r.batches,
        'items/s': r.itemsPerSecond,
        '/ plain SQL (goal 0.5x)': `${r.toPlainSql}x: ${goal(r.toPlainSql >= 0.5)}`,
        '/ single at 32 (goal 10x)': `${r.toSingleAt32}x: ${goal(r.toSingleAt32 >= 10)}`,
        'to last outcome p50/max ms': `${Math.round(r.settledMs.p50)} / ${Math.round(r.settledMs.max)}`,
        'accepted (202) p50 ms': Math.round(r.acceptedMs.p50),
        'projection lag p50/p99 ms': `${r.projectionLagMs.p50} / ${r.projectionLagMs.p99}`,
        'polls failed (asked again)': r.pollErrors.length,
      })),
    ),
  );
  console.log('\nBatches: CPU per item by process (ms), and the money\n');
  console.log(
    table(
      results.map((r) => {
        const service = ['service', 'postgres', 'temporal'].reduce((s, k) => s + (r.cpuMsPerItem[k] ?? 0), 0);
        return {
          variant: r.variant,
          ...r.cpuMsPerItem,
          'service+postgres+temporal': round(service, 2),
          'every item completed': r.everyItemCompleted
            ? 'yes'
            : `NO (${r.outcomes.map((o) => `${o.status} ${JSON.stringify(o.counts)}`).join('; ')})`,
          'money conserved': r.moneyConserved ? 'yes' : 'NO',
          'none below zero': r.noneNegative ? 'yes' : 'NO',
        };
      }),
    ),
  );
}
