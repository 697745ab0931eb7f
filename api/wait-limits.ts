import { AsyncLocalStorage } from 'node:async_hooks';
import type { Express, NextFunction, Request, Response } from 'express';
import { principalOf } from './access-control';
import { HttpProblem, problemType } from './problem';

/**
 * A cap on each API key's waits in progress: reads with `?minPosition=` that wait for a projection (consistency.ts)
 * and `GET /transfers/{id}?wait=` long polls. A wait holds a connection and costs a share of the reads that answer it,
 * for up to 10 s (30 s for ?wait); without a cap, one key's hundreds of waits slowed every other key's requests. Beyond
 * the cap a wait is refused at once: 429 problem+json with Retry-After, nothing read, nothing written. Only a wait
 * counts: a ?minPosition the projection has already reached answers without taking a slot. The cap is per key and per
 * API process (MAX_CONCURRENT_WAITS_PER_KEY, default 16): with N API instances a key may wait up to N times as often.
 * A slot is given back when its wait ends, and a wait ends when its client goes away.
 */

export const DEFAULT_MAX_CONCURRENT_WAITS_PER_KEY = 16;

/** Each key's waits in progress, in this process. */
export class WaitLimiter {
  /** Per key id, the deadline of each wait in progress (ms since the epoch). */
  private readonly waits = new Map<string, Set<{ deadline: number }>>();

  constructor(readonly maxPerKey: number = DEFAULT_MAX_CONCURRENT_WAITS_PER_KEY) {}

  inProgress(keyId: string): number {
    return this.waits.get(keyId)?.size ?? 0;
  }

  /**
   * Takes a slot for a wait of `keyId` that ends by `deadline`; returns what gives it back (once). Beyond the cap it
   * throws WaitRefused with the seconds until the key's soonest wait ends (when a slot is free at the latest).
   */
  take(keyId: string, deadline: number): () => void {
    let mine = this.waits.get(keyId);
    if (mine && mine.size >= this.maxPerKey) {
      let soonest = Infinity;
      for (const w of mine) soonest = Math.min(soonest, w.deadline);
      throw new WaitRefused(Math.max(1, Math.ceil((soonest - Date.now()) / 1000)));
    }
    if (!mine) this.waits.set(keyId, (mine = new Set()));
    const wait = { deadline };
    mine.add(wait);
    return () => {
      if (!mine.delete(wait) || mine.size > 0) return;
      if (this.waits.get(keyId) === mine) this.waits.delete(keyId);
    };
  }
}

export class WaitRefused extends Error {
  constructor(readonly retryAfterSeconds: number) {
    super(`too many waits in progress; retry after ${retryAfterSeconds} s`);
    this.name = 'WaitRefused';
  }
}

/** An authenticated request's part in the cap: its key, its limiter, and whether its client is still there. */
interface WaitContext {
  keyId: string;
  limiter: WaitLimiter;
  res: Response;
  /** Aborted when the client goes away before its answer. */
  gone: AbortSignal;
}

/**
 * The request a wait belongs to, for code that is not handed the response (awaitProjection): set for the rest of
 * each authenticated request by installWaitLimits, after the body is read (the body parser's stream callbacks would
 * not carry it).
 */
const current = new AsyncLocalStorage<WaitContext>();

/** Installs the cap on `app` (after authentication and the body parser). `app.locals.waitLimiter` is the limiter. */
export function installWaitLimits(app: Express, options: { maxConcurrentWaitsPerKey?: number }): WaitLimiter {
  const limiter = new WaitLimiter(options.maxConcurrentWaitsPerKey);
  app.locals.waitLimiter = limiter;
  app.use((_req: Request, res: Response, next: NextFunction) => {
    const principal = principalOf(res);
    if (!principal) return next(); // public routes: they never wait
    const gone = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) gone.abort();
    });
    const context: WaitContext = { keyId: principal.keyId, limiter, res, gone: gone.signal };
    res.locals.waits = context;
    current.run(context, next);
  });
  return limiter;
}

/** Takes a slot of the request's key for a wait asked by `field` that ends by `deadline`, or throws the 429. */
function take(context: WaitContext, field: 'minPosition' | 'wait', deadline: number): () => void {
  try {
    return context.limiter.take(context.keyId, deadline);
  } catch (error) {
    if (!(error instanceof WaitRefused)) throw error;
    const max = context.limiter.maxPerKey;
    context.res.set('Retry-After', String(error.retryAfterSeconds));
    throw new HttpProblem(
      429,
      problemType('too-many-waits'),
      'Too many waits in progress',
      `This API key may have ${max} waits (?minPosition, ?wait) in progress at once; retry after ${error.retryAfterSeconds} s`,
      [{ field, message: `would exceed this key's ${max} waits in progress (MAX_CONCURRENT_WAITS_PER_KEY)` }],
      { retryAfterSeconds: error.retryAfterSeconds, maxConcurrentWaits: max },
    );
  }
}

/**
 * For a ?minPosition wait of the current request (waitForProjection's options): the slot is taken only when the
 * projection has not reached the position at the first look, and the wait is abandoned when the client goes away.
 * Outside a request (no key), no cap.
 */
export function minPositionWait(timeoutMs: number): { signal?: AbortSignal; beforeWaiting?: () => () => void } {
  const context = current.getStore();
  if (!context) return {};
  const deadline = Date.now() + timeoutMs;
  return { signal: context.gone, beforeWaiting: () => take(context, 'minPosition', deadline) };
}

/**
 * A `?wait=` long poll of this response's request, counted under its key's cap (throws the 429 beyond it) until the
 * response is done. `abandoned` turns true when the client went away: the poll should stop.
 */
export function holdWait(res: Response, deadline: number): { readonly abandoned: boolean } {
  const context = res.locals.waits as WaitContext | undefined;
  if (!context) return { abandoned: false };
  if (context.gone.aborted) return { abandoned: true }; // its client went away already: no slot, nothing to wait for
  const release = take(context, 'wait', deadline);
  let ended = false;
  res.once('close', () => {
    ended = true;
    release();
  });
  return {
    get abandoned() {
      return ended;
    },
  };
}
