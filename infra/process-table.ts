import fs from 'node:fs';

/** A process as Linux's /proc/<pid>/stat describes it (the fields we use). */
export interface ProcessStat {
  pid: number;
  /** R, S, D, Z (zombie), ... */
  state: string;
  ppid: number;
  pgrp: number;
  /** CPU time in clock ticks (USER_HZ, 100 on Linux): own user/system, and of waited-for children. */
  utime: number;
  stime: number;
  cutime: number;
  cstime: number;
  /** Start time in clock ticks since boot: with the pid, it tells a process from a later one that reused its pid. */
  starttime: number;
}

export const CLOCK_TICKS_PER_SECOND = 100;

export function readProcessStat(pid: number): ProcessStat | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: the fields after it start after the last ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return {
      pid,
      state: f[0]!,
      ppid: Number(f[1]),
      pgrp: Number(f[2]),
      utime: Number(f[11]),
      stime: Number(f[12]),
      cutime: Number(f[13]),
      cstime: Number(f[14]),
      starttime: Number(f[19]),
    };
  } catch {
    return undefined; // exited, or no /proc
  }
}

/** Every process, read once. Empty where /proc is unavailable. */
export function listProcesses(): ProcessStat[] {
  if (!fs.existsSync('/proc')) return [];
  const out: ProcessStat[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readProcessStat(Number(entry));
    if (stat) out.push(stat);
  }
  return out;
}

/** Children, grandchildren, ... of `pid`, from one pass over /proc. */
export function descendantsOf(pid: number, processes: ProcessStat[] = listProcesses()): number[] {
  const children = new Map<number, number[]>();
  for (const p of processes) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p.pid]);
  const out: number[] = [];
  const walk = (parent: number) => {
    for (const child of children.get(parent) ?? []) {
      out.push(child);
      walk(child);
    }
  };
  walk(pid);
  return out;
}

export function processGroupMembers(pgid: number): number[] {
  return listProcesses()
    .filter((p) => p.pgrp === pgid)
    .map((p) => p.pid);
}

/** The process's command line (arguments joined by spaces), or undefined when it is gone. */
export function commandLine(pid: number): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return undefined; // exited
  }
}

/** Alive, and not a zombie waiting to be reaped. */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const stat = readProcessStat(pid);
  return stat === undefined ? !fs.existsSync('/proc') : stat.state !== 'Z';
}
