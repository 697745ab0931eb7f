import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { descendantsOf, listProcesses } from '../../infra/process-table';

/** Running `npm start` (scripts/start-local-stack.ts) as a real child process, for the stack and resilience tests. */

export const ROOT = path.resolve(__dirname, '../..');

/**
 * The command `npm start` runs (package.json), without npm in front: `node --import tsx ...`, one
 * process. (Not the `tsx` command: it relays signals to its child and SIGKILLs a child that has not
 * acknowledged a Ctrl-C within 60 ms, which a launcher busy starting cannot promise.)
 */
export function startCommand(): { command: string; args: string[] } {
  const script = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start;
  const [command, ...args] = script.split(/\s+/);
  return { command: command === 'node' ? process.execPath : path.join(ROOT, 'node_modules/.bin', command!), args };
}

export interface Launched {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts the launcher. `detached` puts it in a process group of its own, so a test can send a
 * signal to the whole group as a terminal's Ctrl-C does (`interrupt`).
 */
export function launch(env: Record<string, string>, options: { detached?: boolean; viaShell?: boolean } = {}): Launched {
  const start = startCommand();
  // viaShell: a shell in front of the launcher (as npm is), which a test can kill on its own.
  const quoted = [start.command, ...start.args].map((a) => `'${a}'`).join(' ');
  const { command, args } = options.viaShell ? { command: '/bin/sh', args: ['-c', `${quoted}; exit $?`] } : start;
  const child = spawn(command, args, {
    cwd: ROOT,
    // A generous rate limit: the load and its retries through outages all come from one key.
    env: { ...process.env, LOG_LEVEL: 'warn', OPERATOR_API_KEY: HARNESS_OPERATOR_KEY, RATE_LIMIT_PER_MINUTE: '1000000', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.detached ?? false,
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, output: () => out, exited };
}

/** What a terminal's Ctrl-C does: SIGINT to every process of the foreground process group. */
export function interrupt(launched: Launched): void {
  process.kill(-launched.child.pid!, 'SIGINT');
}

export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number, launched?: Launched): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}\n${launched?.output().slice(-6000) ?? ''}`);
}

export const RUNNING = 'The transfer service is running';

export const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie (exited, not reaped yet) counts as gone.
  try {
    return !/^\S+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

/** Every live process whose command line mentions `fragment` (e.g. a data directory). */
export function processesMentioning(fragment: string): number[] {
  const out: number[] = [];
  for (const p of listProcesses()) {
    try {
      const cmdline = fs.readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmdline.includes(fragment) && p.pid !== process.pid && p.state !== 'Z') out.push(p.pid);
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}

/** The launcher and everything under it, right now. */
export const treeOf = (launched: Launched): number[] => [launched.child.pid!, ...descendantsOf(launched.child.pid!)];

export function killAll(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/** The launched stack's operator key (OPERATOR_API_KEY unless a test sets its own); http() sends it. */
export const HARNESS_OPERATOR_KEY = `harness-operator-${randomUUID()}`;

export interface HttpResult {
  status: number;
  body: unknown;
}

export async function http(
  port: number | string,
  method: string,
  urlPath: string,
  body?: unknown,
  timeoutMs = 15_000,
): Promise<HttpResult> {
  const response = await fetch(`http://127.0.0.1:${port}${urlPath}`, {
    method,
    headers: { authorization: `Bearer ${HARNESS_OPERATOR_KEY}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: response.status, body: parsed };
}

/** Retries a request through outages (network errors and 5xx) until it gets a definite answer. */
export async function httpThroughOutage(
  port: number | string,
  method: string,
  urlPath: string,
  body?: unknown,
  timeoutMs = 120_000,
): Promise<HttpResult> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const result = await http(port, method, urlPath, body);
      if (result.status < 500) return result;
      last = `${result.status} ${JSON.stringify(result.body).slice(0, 300)}`;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`${method} ${urlPath}: no answer within ${timeoutMs} ms (last: ${last})`);
}

export async function openAccount(port: number | string, balance: number): Promise<string> {
  const opened = await httpThroughOutage(port, 'POST', '/accounts', {
    ownerId: `owner-${randomUUID().slice(0, 8)}`,
    currency: 'EUR',
    initialDeposit: balance,
  });
  if (opened.status !== 201) throw new Error(`open account: ${opened.status} ${JSON.stringify(opened.body)}`);
  return (opened.body as { accountId: string }).accountId;
}

const TERMINAL = ['completed', 'failed', 'compensated'];

/**
 * Load: `count` transfers from `concurrency` loops, each POST retried through outages with the
 * same transfer id (idempotent). Resolves with the ids once every transfer was accepted.
 */
export async function submitTransfers(
  port: number | string,
  accounts: string[],
  count: number,
  concurrency: number,
  label: string,
  options: { stop?: () => boolean; attempted?: string[] } = {},
): Promise<string[]> {
  const ids: string[] = [];
  let next = 0;
  const loop = async () => {
    while (next < count && !options.stop?.()) {
      const i = next++;
      const from = accounts[i % accounts.length]!;
      const to =
        accounts[(i * 7 + 3) % accounts.length] === from ? accounts[(i + 1) % accounts.length]! : accounts[(i * 7 + 3) % accounts.length]!;
      const transferId = `${label}-${i}-${randomUUID().slice(0, 8)}`;
      options.attempted?.push(transferId);
      const body = { transferId, fromAccountId: from, toAccountId: to, amount: 1 + ((i * 37) % 400) };
      let result: HttpResult;
      if (options.stop) {
        // Interrupted load: one try; an unanswered POST may or may not have started its transfer.
        const answer = await http(port, 'POST', '/transfers', body).catch(() => undefined);
        if (!answer || answer.status >= 500) continue;
        result = answer;
      } else {
        result = await httpThroughOutage(port, 'POST', '/transfers', body);
      }
      if (result.status !== 202 && result.status !== 200)
        throw new Error(`transfer ${transferId}: ${result.status} ${JSON.stringify(result.body)}`);
      ids.push(transferId);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  return ids;
}

/** Waits until every transfer has reached its outcome (as the API reports it); returns the outcomes. */
export async function outcomes(
  port: number | string,
  ids: string[],
  timeoutMs: number,
  options: { mayBeUnknown?: boolean } = {},
): Promise<Record<string, string>> {
  const deadline = Date.now() + timeoutMs;
  const result: Record<string, string> = {};
  for (const id of ids) {
    for (;;) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`transfer ${id} did not reach an outcome in time (last: ${result[id] ?? 'unknown'})`);
      const view = await httpThroughOutage(port, 'GET', `/transfers/${id}?wait=5`, undefined, remaining).catch(() => undefined);
      if (view?.status === 404 && options.mayBeUnknown) {
        result[id] = 'never started';
        break;
      }
      const status = (view?.body as { status?: string } | undefined)?.status;
      if (status) result[id] = status;
      if (status && TERMINAL.includes(status)) break;
    }
  }
  return result;
}

/** Balances folded from the event store (GET /accounts/:id/balance?asOf=now): the truth, not a projection. */
export async function foldedBalances(port: number | string, accounts: string[]): Promise<number[]> {
  const asOf = encodeURIComponent(new Date().toISOString());
  const out: number[] = [];
  for (const id of accounts) {
    const view = await httpThroughOutage(port, 'GET', `/accounts/${id}/balance?asOf=${asOf}`);
    out.push((view.body as { balance: number }).balance);
  }
  return out;
}

/** Every balance the balances read model shows equals `expected` (the projections resumed and caught up). */
export async function readModelAgrees(port: number | string, accounts: string[], expected: number[]): Promise<boolean> {
  for (let i = 0; i < accounts.length; i++) {
    const r = await http(port, 'GET', `/accounts/${accounts[i]}`).catch(() => undefined);
    if ((r?.body as { balance?: number } | undefined)?.balance !== expected[i]) return false;
  }
  return true;
}
