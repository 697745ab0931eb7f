import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Config } from '../config/config';
import type { Logger } from '../infra/logger';
import type { ProjectionOutcome } from '../projections/projection-runner';
import type { Endpoints } from './store-services';

/**
 * The projections of the local stack on a thread of their own (main/projections-thread-entry.ts), with their own
 * event-store client, read-model pool and event loop. In one process with the API, the worker and (in the bench) the
 * load, a projection's steps (wake-up, log read, batch write) each waited behind everything else ready on the one event
 * loop: at 32 transfers in flight its delay p99 was 19-36 ms, and the projection lag p99 100-120 ms. On its own loop
 * the lag p99 measured 53-74 ms (README, Performance). docker-compose runs them as their own service instead.
 *
 * The thread reports each outcome back (`onApplied`, in one message per turn of its loop), so the metrics stay in this
 * process. If the thread fails, it is logged and started again with backoff, as the worker is; meanwhile /ready says
 * `degraded` (the local stack passes health() as a degrading check).
 */
export interface RunningProjectionsThread {
  /** Resolves while the thread runs; rejects saying it is being started again otherwise. */
  health(): Promise<void>;
  stop(): Promise<void>;
}

/** One outcome, as the thread reports it: `appliedAt` is the thread's clock when the outcome committed. */
export interface AppliedNote {
  projection: string;
  type: string;
  recordedAt: string;
  appliedAt: number;
  outcome: ProjectionOutcome;
}

export interface ProjectionsThreadData {
  config: Config;
  endpoints: Endpoints;
}

export type ToThread = { kind: 'stop' };
export type ToParent = { kind: 'started' } | { kind: 'stopped' } | { kind: 'applied'; notes: AppliedNote[] };

export interface ProjectionsThreadOptions extends SupervisionOptions {
  config: Config;
  endpoints: Endpoints;
}

export interface SupervisionOptions {
  logger: Logger;
  onApplied?(notes: readonly AppliedNote[]): void;
  /** First delay before a failed thread is started again, doubling to `maxRestartDelayMs` (defaults 1 s and 30 s). */
  restartDelayMs?: number;
  maxRestartDelayMs?: number;
  /** How long a stopping thread may take before it is terminated (default 15 s). */
  stopTimeoutMs?: number;
}

/** A thread that ran this long before it failed is started again after the first delay, not a longer one. */
const HEALTHY_RUN_MS = 60_000;

/** Starts the thread; resolves once its projections run, rejects if the first start fails (as startProjections would). */
export async function startProjectionsThread(options: ProjectionsThreadOptions): Promise<RunningProjectionsThread> {
  return superviseThread(() => spawnThread({ config: options.config, endpoints: options.endpoints }), options);
}

/**
 * Keeps a thread that speaks ToParent/ToThread running: resolves once the first one says it started (rejects if it
 * fails first), makes a new one whenever one ends while not stopping, and on stop() ends the one running or starting.
 * Backoff: the first delay after a thread that ran HEALTHY_RUN_MS or more, doubling (to the maximum) while threads keep
 * failing sooner or keep failing to start.
 */
export async function superviseThread(spawn: () => Worker, options: SupervisionOptions): Promise<RunningProjectionsThread> {
  const { logger } = options;
  const firstDelay = options.restartDelayMs ?? 1_000;
  const maxDelay = options.maxRestartDelayMs ?? 30_000;
  const stopTimeoutMs = options.stopTimeoutMs ?? 15_000;
  let nextDelay = firstDelay;
  /** The thread that said it started and has not ended. */
  let current: Worker | undefined;
  /** A thread made and not yet started (the first, or a restart). */
  let starting: Worker | undefined;
  let stopping = false;
  let restartTimer: NodeJS.Timeout | undefined;

  const report = (notes: AppliedNote[]) => {
    try {
      options.onApplied?.(notes);
    } catch (error) {
      logger.log({ level: 'error', msg: 'projections thread: an outcome could not be reported', error: describe(error) });
    }
  };

  const restartIn = (ms: number) => {
    restartTimer = setTimeout(() => {
      restartTimer = undefined;
      if (stopping) return;
      launch().then(
        () => logger.log({ msg: 'projections thread started again' }),
        (error: unknown) => {
          if (stopping) return;
          const wait = nextDelay;
          nextDelay = Math.min(wait * 2, maxDelay);
          logger.log({ level: 'error', msg: 'projections thread could not start; trying again', error: describe(error), inMs: wait });
          restartIn(wait);
        },
      );
    }, ms);
  };

  const launch = () =>
    new Promise<void>((resolve, reject) => {
      const thread = spawn();
      starting = thread;
      let startedAt: number | undefined;
      thread.on('message', (message: ToParent) => {
        if (message.kind === 'applied') report(message.notes);
        else if (message.kind === 'started' && startedAt === undefined) {
          startedAt = Date.now();
          if (starting === thread) starting = undefined;
          if (stopping) {
            // stop() came while it was starting: it ends it (see stop), nothing more to do here.
            reject(new Error('stopped while starting'));
            return;
          }
          current = thread;
          resolve();
        }
      });
      thread.on('error', (error) => {
        if (startedAt === undefined) reject(error);
        else logger.log({ level: 'error', msg: 'projections thread failed', error: describe(error) });
      });
      thread.on('exit', (code) => {
        if (starting === thread) starting = undefined;
        if (startedAt === undefined) {
          reject(new Error(`the projections thread ended (exit code ${code}) before its projections started`));
          return;
        }
        if (current !== thread) return;
        current = undefined;
        if (stopping) return;
        if (Date.now() - startedAt >= HEALTHY_RUN_MS) nextDelay = firstDelay;
        const wait = nextDelay;
        nextDelay = Math.min(wait * 2, maxDelay);
        logger.log({ level: 'error', msg: 'projections thread ended; starting it again', exitCode: code, inMs: wait });
        restartIn(wait);
      });
    });

  await launch();
  return {
    health: async () => {
      if (stopping) throw new Error('the projections thread is stopped');
      if (!current) throw new Error('the projections thread is being started again');
    },
    stop: async () => {
      stopping = true;
      if (restartTimer) clearTimeout(restartTimer);
      const running = current;
      const unstarted = starting;
      current = undefined;
      starting = undefined;
      await Promise.all([
        running ? stopThread(running, stopTimeoutMs) : undefined,
        // One still starting is ended at once, as a crash would end it: what it applied comes again and is found applied.
        unstarted?.terminate(),
      ]);
    },
  };
}

function describe(error: unknown): string {
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}

/** Asks the thread to stop its projections and close its connections, then ends it (at the latest after `timeoutMs`). */
async function stopThread(thread: Worker, timeoutMs: number): Promise<void> {
  const done = new Promise<void>((resolve) => {
    thread.on('message', (message: ToParent) => message.kind === 'stopped' && resolve());
    thread.once('exit', () => resolve());
  });
  let timer: NodeJS.Timeout | undefined;
  thread.postMessage({ kind: 'stop' } satisfies ToThread);
  await Promise.race([done, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
  clearTimeout(timer);
  await thread.terminate();
}

/**
 * The thread runs main/projections-thread-entry beside this file: compiled JavaScript as it is, TypeScript (npm start,
 * the bench, the tests) through tsx's require hook, which a worker thread does not inherit from its parent.
 */
function spawnThread(data: ProjectionsThreadData): Worker {
  const ext = path.extname(__filename);
  const entry = path.join(__dirname, `projections-thread-entry${ext}`);
  if (ext !== '.ts') return new Worker(entry, { workerData: data });
  const code = `require(${JSON.stringify(require.resolve('tsx/cjs'))}); require(${JSON.stringify(entry)});`;
  return new Worker(code, { eval: true, workerData: data });
}
