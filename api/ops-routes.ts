import { Router } from 'express';
import { ALL_PROJECTIONS } from '../projections/all-projections';
import { projectionHealth, type ProjectionHealth } from '../projections/projection-health';
import type { ApiDeps } from './api-deps';

const CHECK_TIMEOUT_MS = 3000;

function withTimeout<T>(work: Promise<T>): Promise<T> {
  return Promise.race([
    work,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`timed out after ${CHECK_TIMEOUT_MS / 1000} s`)), CHECK_TIMEOUT_MS),
    ),
  ]);
}

/**
 * Liveness, readiness and Prometheus metrics.
 * /ready: 503 `not_ready` when a dependency is unreachable; otherwise 200, `ready`, or `degraded` when a projection has
 * parked events (its read model lacks them until they are replayed; `?minPosition` reads past them answer 503) or a
 * degrading check fails (the local stack's projections thread while it is started again). A
 * degraded read model does not take the instance out of service: writes and other reads still work, and every
 * instance shares the same read models, so failing readiness would only turn one bad event into a full outage.
 */
export function opsRoutes(deps: ApiDeps, collect: () => Promise<void>): Router {
  const router = Router();
  router.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/ready', async (_req, res) => {
    type Projections = Record<string, Omit<ProjectionHealth, 'projection'> | { status: 'unknown'; error: string }>;
    // The projections' parked events are read alongside the dependency checks (both bounded by the same timeout).
    const projectionsRead: Promise<Projections> = withTimeout(projectionHealth(deps.store, ALL_PROJECTIONS)).then(
      (health) => Object.fromEntries(health.map(({ projection, ...rest }) => [projection, rest])),
      (error: unknown) => {
        const message = error instanceof Error ? error.message : String(error);
        return Object.fromEntries(ALL_PROJECTIONS.map((p) => [p.name, { status: 'unknown' as const, error: message }]));
      },
    );
    const run = (checks: Record<string, () => Promise<void>>) =>
      Promise.all(
        Object.entries(checks).map(async ([name, check]) => {
          const started = Date.now();
          try {
            await withTimeout(check());
            return [name, { ok: true, ms: Date.now() - started }] as const;
          } catch (error) {
            return [name, { ok: false, error: error instanceof Error ? error.message : String(error) }] as const;
          }
        }),
      );
    const [results, degrading] = await Promise.all([run(deps.checks), run(deps.degradingChecks ?? {})]);
    const projections = await projectionsRead;
    const ready = results.every(([, r]) => r.ok);
    const degraded = Object.values(projections).some((p) => p.status === 'degraded') || degrading.some(([, r]) => !r.ok);
    const status = !ready ? 'not_ready' : degraded ? 'degraded' : 'ready';
    res.status(ready ? 200 : 503).json({ status, checks: Object.fromEntries([...results, ...degrading]), projections });
  });
  router.get('/metrics', async (_req, res) => {
    // A gauge that cannot be read now keeps its last value; the rest of the metrics are still served.
    await collect().catch((error: unknown) =>
      deps.logger.log({
        level: 'warn',
        msg: 'metrics: could not read a gauge',
        error: error instanceof Error ? error.message : String(error),
      }),
    );
    res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });
  return router;
}
