import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Finds the Temporal CLI (which carries the dev server and its Web UI), or builds it.
 * One module for `npm start`, the tests and CI. Order:
 *   1. TEMPORAL_CLI_PATH
 *   2. `temporal` on PATH
 *   3. a cached build in the per-user cache (~/.cache/transfer-service/temporal-cli/<version>/temporal)
 *   4. `go install github.com/temporalio/cli/cmd/temporal@<version>` into that cache, when Go is present
 *   5. the Temporal SDK's own download (needs the internet), as the last resort
 */

export const TEMPORAL_CLI_VERSION = 'v1.5.1';
const MODULE = `github.com/temporalio/cli/cmd/temporal@${TEMPORAL_CLI_VERSION}`;

export type TemporalCli =
  | { kind: 'binary'; path: string; source: 'TEMPORAL_CLI_PATH' | 'PATH' | 'cache' | 'go install' }
  /** No binary here: let @temporalio/testing download one (internet required). */
  | { kind: 'sdk-download' };

export class TemporalCliNotFoundError extends Error {
  constructor(details: string[]) {
    super(
      [
        'The Temporal CLI (dev server + Web UI) was not found and could not be built.',
        ...details.map((d) => `  - ${d}`),
        'Ways to get it:',
        '  1. set TEMPORAL_CLI_PATH=/path/to/temporal',
        '  2. put `temporal` on your PATH (https://docs.temporal.io/cli#install)',
        `  3. install Go >= 1.25 and run \`npm run temporal:install\` (go install ${MODULE})`,
        '  4. allow internet access so the Temporal SDK can download the CLI',
        '  5. or point at an existing server with TEMPORAL_ADDRESS=host:7233',
      ].join('\n'),
    );
    this.name = 'TemporalCliNotFoundError';
  }
}

export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'transfer-service', 'temporal-cli', TEMPORAL_CLI_VERSION);
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false; // missing or unreadable: not installed
  }
}

function onPath(binary: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, binary);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function works(binary: string): boolean {
  const result = spawnSync(binary, ['--version'], { encoding: 'utf8', timeout: 30_000 });
  return result.status === 0;
}

export interface FindOptions {
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
  /** Build with Go when nothing is found (default true). */
  allowBuild?: boolean;
  /** Fall back to the SDK download (default true). */
  allowSdkDownload?: boolean;
}

export async function findOrInstallTemporalCli(options: FindOptions = {}): Promise<TemporalCli> {
  const env = options.env ?? process.env;
  const log = options.log ?? ((line: string) => console.log(line));
  const tried: string[] = [];

  if (env.TEMPORAL_CLI_PATH) {
    if (isExecutable(env.TEMPORAL_CLI_PATH)) return { kind: 'binary', path: env.TEMPORAL_CLI_PATH, source: 'TEMPORAL_CLI_PATH' };
    // An explicit choice that is wrong is an error, not something to silently work around.
    throw new TemporalCliNotFoundError([`TEMPORAL_CLI_PATH=${env.TEMPORAL_CLI_PATH} is not an executable file`]);
  }
  const fromPath = onPath('temporal', env);
  if (fromPath) return { kind: 'binary', path: fromPath, source: 'PATH' };
  tried.push('`temporal` is not on PATH');

  const cached = path.join(cacheDir(env), 'temporal');
  if (isExecutable(cached) && works(cached)) return { kind: 'binary', path: cached, source: 'cache' };
  tried.push(`no cached build at ${cached}`);

  if (options.allowBuild !== false) {
    const go = onPath('go', env) ?? (isExecutable('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : undefined);
    if (go) {
      try {
        await buildWithGo(go, cached, env, log);
        return { kind: 'binary', path: cached, source: 'go install' };
      } catch (error) {
        tried.push(`go install failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    } else {
      tried.push('Go is not installed, so it cannot be built');
    }
  }

  if (options.allowSdkDownload !== false) {
    log('[temporal-cli] falling back to the Temporal SDK download of the CLI (needs internet access)');
    return { kind: 'sdk-download' };
  }
  throw new TemporalCliNotFoundError(tried);
}

/**
 * `go install` into a private directory, then an atomic rename into the cache, under a lock so
 * two processes (CI and a developer's `npm start`) never build at once or see half a binary.
 */
async function buildWithGo(go: string, target: string, env: NodeJS.ProcessEnv, log: (line: string) => void): Promise<void> {
  const dir = path.dirname(target);
  fs.mkdirSync(dir, { recursive: true });
  const lock = `${target}.lock`;
  const release = await acquireLock(lock, log, () => isExecutable(target));
  if (!release) return; // another process finished the build while we waited
  const started = Date.now();
  const gobin = fs.mkdtempSync(path.join(dir, 'build-'));
  try {
    log(`[temporal-cli] building the Temporal CLI ${TEMPORAL_CLI_VERSION} with Go (first time only; a few minutes)...`);
    let packages = 0;
    let lastLine = '';
    const child = spawn(go, ['install', '-v', MODULE], {
      env: { ...env, GOBIN: gobin, GOFLAGS: env.GOFLAGS ?? '-mod=mod' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const onOutput = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line.trim()) continue;
        if (!line.startsWith('go: downloading')) packages += 1;
        lastLine = line.trim();
      }
    };
    child.stdout.on('data', onOutput);
    child.stderr.on('data', onOutput);
    const ticker = setInterval(() => {
      const seconds = Math.round((Date.now() - started) / 1000);
      log(`[temporal-cli] still building: ${seconds}s, ${packages} packages compiled (last: ${lastLine.slice(0, 80)})`);
    }, 15_000);
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', resolve);
    }).finally(() => clearInterval(ticker));
    const built = path.join(gobin, 'temporal');
    if (code !== 0 || !isExecutable(built)) throw new Error(`go install exited with ${code}: ${lastLine}`);
    fs.renameSync(built, target);
    log(`[temporal-cli] built ${target} in ${Math.round((Date.now() - started) / 1000)}s`);
  } finally {
    fs.rmSync(gobin, { recursive: true, force: true });
    release();
  }
}

/** A directory lock; stale after 30 minutes. Resolves undefined when `done()` became true while waiting. */
async function acquireLock(lock: string, log: (line: string) => void, done: () => boolean): Promise<(() => void) | undefined> {
  let announced = false;
  for (;;) {
    try {
      fs.mkdirSync(lock);
      return () => fs.rmSync(lock, { recursive: true, force: true });
    } catch {
      if (done()) return undefined; // the lock is held by another process: wait, unless we are done
      try {
        if (Date.now() - fs.statSync(lock).mtimeMs > 30 * 60_000) {
          fs.rmSync(lock, { recursive: true, force: true });
          continue;
        }
      } catch {
        continue; // the lock went away meanwhile: try to take it
      }
      if (!announced) log(`[temporal-cli] another process is building the CLI (${lock}); waiting...`);
      announced = true;
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
}
