import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { commandLine, isRunning, listProcesses, readProcessStat } from './process-table';

/**
 * No process of the local stack outlives its launcher (`npm start`), however the launcher ends:
 * - Ctrl-C / SIGTERM: the launcher stops everything in order itself.
 * - The launcher is killed (SIGKILL, a crash): a tiny watchdog process (the reaper, started with the
 *   first child) notices that the launcher's end of its pipe closed and stops every child it was
 *   told about: PostgreSQL with a fast shutdown, the Temporal dev server with SIGTERM, SIGKILL after a grace time.
 * - Everything was killed at once (kill -9 of the whole tree, the OOM killer): the next start reads
 *   DATA_DIR/local-stack.json and stops the leftovers of its data directory before starting.
 * A process is only ever signalled when its pid, its start time and its command line all match
 * what was recorded, so a pid reused by an unrelated process is never touched.
 */

/** A child the launcher started. */
export interface TrackedProcess {
  name: string;
  pid: number;
  /** Start time (clock ticks since boot) when it was tracked. */
  starttime?: number;
  /** Part of its command line that identifies it (a data directory, a database file). */
  commandIncludes?: string;
  /** How it is asked to stop (PostgreSQL: SIGINT, a fast shutdown; Temporal: SIGTERM). */
  stopSignal: NodeJS.Signals;
  /** Signal its whole process group (it leads one: started detached). */
  group: boolean;
  /** Time to stop before SIGKILL. */
  graceMs: number;
}

interface RegistryFile {
  launcher: { pid: number; starttime?: number; ppid: number };
  children: TrackedProcess[];
}

export class LocalStackAlreadyRunningError extends Error {
  override name = 'LocalStackAlreadyRunningError';
}

const REGISTRY = 'local-stack.json';

/** The recorded process is still the one we recorded (same pid, start time and command line). */
export function stillTheSame(p: Pick<TrackedProcess, 'pid' | 'starttime' | 'commandIncludes'>): boolean {
  if (!isRunning(p.pid)) return false;
  const stat = readProcessStat(p.pid);
  if (stat && p.starttime !== undefined && stat.starttime !== p.starttime) return false;
  if (p.commandIncludes !== undefined && !(commandLine(p.pid) ?? '').includes(p.commandIncludes)) return false;
  return true;
}

function signal(p: TrackedProcess, sig: NodeJS.Signals, group = p.group): void {
  try {
    process.kill(group ? -p.pid : p.pid, sig);
  } catch {
    /* gone */
  }
}

async function waitGone(processes: TrackedProcess[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (processes.some(stillTheSame)) {
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

/** Asks a process to stop, waits its grace time, then SIGKILLs it (and its group). */
export async function stopProcess(p: TrackedProcess, log: (line: string) => void): Promise<void> {
  if (!stillTheSame(p)) return;
  log(`stopping ${p.name} (pid ${p.pid}) left over from an earlier run`);
  signal(p, p.stopSignal);
  if (await waitGone([p], p.graceMs)) return;
  signal(p, 'SIGKILL', true);
  signal(p, 'SIGKILL', false);
  await waitGone([p], 5_000);
}

export function track(name: string, pid: number, options: Omit<TrackedProcess, 'name' | 'pid' | 'starttime'>): TrackedProcess {
  return { name, pid, starttime: readProcessStat(pid)?.starttime, ...options };
}

/**
 * Processes whose command line contains `fragment` (e.g. a Temporal dev server on this data
 * directory's database file), other than this process and its ancestors.
 */
export function processesMentioning(fragment: string): number[] {
  const out: number[] = [];
  for (const p of listProcesses()) {
    if (p.pid === process.pid || p.state === 'Z') continue;
    if ((commandLine(p.pid) ?? '').includes(fragment)) out.push(p.pid);
  }
  return out;
}

export interface GuardOptions {
  dataDir: string;
  log: (line: string) => void;
  /** Command-line fragments of servers of this data directory that may be left over without a record (e.g. `--db-filename <file>`). */
  leftoverMarkers?: { name: string; fragment: string; stopSignal: NodeJS.Signals; graceMs: number }[];
}

/** The launcher's side: the registry of its children, the reaper, and the clean-up of an earlier run. */
export class LocalStackGuard {
  private readonly file: string;
  private readonly children: TrackedProcess[] = [];
  private reaper?: ChildProcess;

  private constructor(
    private readonly options: GuardOptions,
    private readonly launcher: RegistryFile['launcher'],
  ) {
    this.file = path.join(options.dataDir, REGISTRY);
  }

  /**
   * Stops the leftovers of an earlier run of this data directory, then records this launcher.
   * A launcher still running with its parent (another `npm start` of the same data directory) is
   * not a leftover: that is a LocalStackAlreadyRunningError.
   */
  static async open(options: GuardOptions): Promise<LocalStackGuard> {
    fs.mkdirSync(options.dataDir, { recursive: true });
    const guard = new LocalStackGuard(options, {
      pid: process.pid,
      starttime: readProcessStat(process.pid)?.starttime,
      ppid: process.ppid,
    });
    await guard.stopLeftovers();
    guard.save();
    return guard;
  }

  private read(): RegistryFile | undefined {
    try {
      return JSON.parse(fs.readFileSync(this.file, 'utf8')) as RegistryFile;
    } catch {
      return undefined; // no registry, or a torn one: nothing is known to be left over
    }
  }

  private save(): void {
    const tmp = `${this.file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify({ launcher: this.launcher, children: this.children } satisfies RegistryFile, null, 2));
    fs.renameSync(tmp, this.file);
  }

  private async stopLeftovers(): Promise<void> {
    const { log } = this.options;
    const earlier = this.read();
    if (earlier && earlier.launcher.pid !== process.pid) {
      const launcher: TrackedProcess = {
        name: 'an earlier launcher',
        pid: earlier.launcher.pid,
        starttime: earlier.launcher.starttime,
        stopSignal: 'SIGTERM',
        group: false,
        graceMs: 40_000,
      };
      if (stillTheSame(launcher)) {
        const parent = readProcessStat(launcher.pid)?.ppid;
        if (parent === earlier.launcher.ppid && parent !== 1 && isRunning(parent)) {
          throw new LocalStackAlreadyRunningError(
            `The local stack is already running with this data directory (${this.options.dataDir}, launcher pid ${launcher.pid}). Stop it first (Ctrl-C in its terminal, or kill ${launcher.pid}), or use another DATA_DIR.`,
          );
        }
        // Orphaned (whoever started it is gone): it stops its own children in order.
        await stopProcess(launcher, log);
      }
      for (const child of earlier.children) await stopProcess(child, log);
    }
    for (const marker of this.options.leftoverMarkers ?? []) {
      for (const pid of processesMentioning(marker.fragment)) {
        await stopProcess(
          track(marker.name, pid, {
            commandIncludes: marker.fragment,
            stopSignal: marker.stopSignal,
            group: false,
            graceMs: marker.graceMs,
          }),
          log,
        );
      }
    }
  }

  /** Records a child: the reaper stops it if this process dies without stopping it, and so does the next start. */
  track(child: TrackedProcess): void {
    this.children.push(child);
    this.save();
    this.startReaper();
    this.send({ track: child });
  }

  /** The launcher stopped everything itself: the reaper exits, the registry is cleared. */
  release(): void {
    this.send({ release: true });
    this.reaper = undefined;
    fs.rmSync(this.file, { force: true });
  }

  private send(message: unknown): void {
    try {
      this.reaper?.stdin?.write(`${JSON.stringify(message)}\n`);
    } catch {
      /* the reaper is gone: the registry still covers the next start */
    }
  }

  private startReaper(): void {
    if (this.reaper) return;
    // Its own process group and session: a terminal's Ctrl-C does not reach it; only the end of the launcher does.
    const reaper = spawn(process.execPath, ['-e', REAPER_SOURCE], { detached: true, stdio: ['pipe', 'ignore', 'ignore'], env: {} });
    reaper.stdin!.on('error', () => undefined);
    (reaper.stdin as unknown as { unref?: () => void }).unref?.();
    reaper.on('error', () => undefined);
    reaper.unref();
    this.reaper = reaper;
  }
}

/**
 * The reaper (plain JavaScript, run with `node -e`, no TypeScript loader): reads one JSON message
 * per line from the launcher; when its stdin ends (the launcher is gone), it stops every tracked
 * process that is still the same process, waits their grace time, SIGKILLs what is left, and exits.
 */
const REAPER_SOURCE = `
const fs = require('fs');
const tracked = new Map();
const stat = (pid) => { try { const s = fs.readFileSync('/proc/' + pid + '/stat', 'utf8'); const f = s.slice(s.lastIndexOf(')') + 2).split(' '); return { state: f[0], starttime: Number(f[19]) }; } catch { return undefined; /* gone */ } };
const cmdline = (pid) => { try { return fs.readFileSync('/proc/' + pid + '/cmdline', 'utf8').split('\\0').join(' '); } catch { return ''; } };
const same = (t) => {
  try { process.kill(t.pid, 0); } catch (e) { if (e.code !== 'EPERM') return false; }
  if (!fs.existsSync('/proc')) return true;
  const s = stat(t.pid);
  if (!s || s.state === 'Z') return false;
  if (t.starttime !== undefined && s.starttime !== t.starttime) return false;
  if (t.commandIncludes !== undefined && !cmdline(t.pid).includes(t.commandIncludes)) return false;
  return true;
};
const signal = (t, sig, group) => { try { process.kill(group ? -t.pid : t.pid, sig); } catch { /* already gone */ } };
let reaping = false;
async function reap() {
  if (reaping) return;
  reaping = true;
  const targets = [...tracked.values()].filter(same);
  for (const t of targets) signal(t, t.stopSignal, t.group);
  const deadline = Date.now() + Math.max(0, ...targets.map((t) => t.graceMs));
  while (Date.now() < deadline && targets.some(same)) await new Promise((r) => setTimeout(r, 100));
  for (const t of targets) if (same(t)) { signal(t, 'SIGKILL', true); signal(t, 'SIGKILL', false); }
  process.exit(0);
}
for (const s of ['SIGINT', 'SIGHUP']) process.on(s, () => undefined);
let buffer = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  buffer += chunk;
  for (let i = buffer.indexOf('\\n'); i >= 0; i = buffer.indexOf('\\n')) {
    const line = buffer.slice(0, i);
    buffer = buffer.slice(i + 1);
    let message;
    try { message = JSON.parse(line); } catch { continue; /* not a message of ours */ }
    if (message.track) tracked.set(message.track.pid, message.track);
    if (message.release) process.exit(0);
  }
});
process.stdin.on('end', reap);
process.stdin.on('error', reap);
`;
