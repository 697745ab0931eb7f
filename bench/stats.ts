import fs from 'node:fs';
import { CLOCK_TICKS_PER_SECOND, descendantsOf, readProcessStat } from '../infra/process-table';

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

export interface Summary {
  count: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export function summarize(samples: number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  const mean = sorted.reduce((a, b) => a + b, 0) / (sorted.length || 1);
  return {
    count: sorted.length,
    mean: round(mean),
    p50: round(percentile(sorted, 50)),
    p95: round(percentile(sorted, 95)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted.at(-1) ?? Number.NaN),
  };
}

export const round = (n: number, digits = 2) => (Number.isFinite(n) ? Math.round(n * 10 ** digits) / 10 ** digits : n);

/** Runs `task(i)` for i in [0, total) with at most `concurrency` in flight. */
export async function runConcurrently(total: number, concurrency: number, task: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, total) }, async () => {
      for (;;) {
        const i = next++;
        if (i >= total) return;
        await task(i);
      }
    }),
  );
  return performance.now() - started;
}

/** CPU seconds (user + system) consumed so far by a process and, optionally, its descendants. */
export function cpuSeconds(pid: number, withChildren = false): number {
  let ticks = 0;
  for (const p of withChildren ? [pid, ...descendantsOf(pid)] : [pid]) {
    const stat = readProcessStat(p);
    if (!stat) continue; // exited
    ticks += stat.utime + stat.stime;
    // Children that exited (e.g. PostgreSQL backends of closed connections) leave their CPU in
    // the parent's cutime/cstime: count it, or short-lived children make the total go backwards.
    if (withChildren && p === pid) ticks += stat.cutime + stat.cstime;
  }
  return ticks / CLOCK_TICKS_PER_SECOND;
}

export interface CpuProbe {
  name: string;
  pid: number;
  withChildren: boolean;
}

/** CPU seconds each probed process used while `work` ran. */
export async function measureCpu<T>(probes: CpuProbe[], work: () => Promise<T>): Promise<{ result: T; cpu: Record<string, number> }> {
  const before = probes.map((p) => cpuSeconds(p.pid, p.withChildren));
  const result = await work();
  const cpu = Object.fromEntries(probes.map((p, i) => [p.name, round(cpuSeconds(p.pid, p.withChildren) - before[i]!)]));
  return { result, cpu };
}

/**
 * CPU seconds of each thread of a process, summed by thread name (comm), with the main thread as 'main': where a
 * process's CPU went (the JavaScript thread, worker threads, V8's GC helpers, libuv's pool, the Temporal core's runtime).
 */
export function threadCpuSeconds(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  if (!fs.existsSync(`/proc/${pid}/task`)) return out; // not Linux: no breakdown
  const tick = 100; // USER_HZ
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const comm = Number(tid) === pid ? 'main' : stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const seconds = (Number(fields[11]) + Number(fields[12])) / tick;
      out.set(comm, (out.get(comm) ?? 0) + seconds);
    } catch {
      // the thread ended between the listing and the read: its time is gone with it
    }
  }
  return out;
}

export function table(rows: Record<string, string | number>[]): string {
  if (rows.length === 0) return '';
  const headers = Object.keys(rows[0]!);
  const widths = headers.map((h) => Math.max(h.length, ...rows.map((r) => String(r[h] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i]!)).join('  ');
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map((r) => line(headers.map((h) => String(r[h] ?? ''))))].join(
    '\n',
  );
}

export function writeReport(name: string, report: unknown): string {
  const dir = `${__dirname}/results`;
  fs.mkdirSync(dir, { recursive: true });
  const file = `${dir}/${name}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
  fs.writeFileSync(
    file,
    JSON.stringify(report, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2),
  );
  return file;
}
