import { randomUUID } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import swaggerUi from 'swagger-ui-express';
import { ALL_PROJECTIONS } from '../projections/all-projections';
import { collectProjectionMetrics } from '../projections/projection-health';
import { installAuthentication, installAuthorization, principalOf } from './access-control';
import { accountsRoutes } from './accounts-routes';
import { businessTimeRoutes } from './business-time-routes';
import { auditRoutes } from './audit-routes';
import { ApiKeyStore } from '../stores/api-keys';
import { apiKeysRoutes } from './api-keys-routes';
import type { ApiDeps } from './api-deps';
import { consoleRoutes } from './console-routes';
import { buildOpenApiDocument } from './openapi';
import { opsRoutes } from './ops-routes';
import { HttpProblem, problemHandler, problemType } from './problem';
import { streamsRoutes } from './streams-routes';
import { eventsRoutes } from './events-routes';
import { holdsRoutes } from './holds-routes';
import { reversalRoutes } from './reversal-routes';
import { MAX_BATCH_ITEMS } from '../domain/transfer-batch';
import { transferBatchesRoutes } from './transfer-batches-routes';
import { transfersRoutes } from './transfers-routes';
import { installWaitLimits } from './wait-limits';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function createApp(deps: ApiDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');

  // Correlation id: honour a sane incoming X-Request-Id, else make one; it flows into sagas, events and logs.
  app.use((req: Request, res: Response, next: NextFunction) => {
    const incoming = req.get('X-Request-Id');
    const requestId = incoming && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    res.locals.requestId = requestId;
    res.set('X-Request-Id', requestId);
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route = (req.route?.path as string | undefined) ?? 'unmatched';
      deps.metrics.httpDuration.observe({ method: req.method, route, status: String(res.statusCode) }, seconds);
      deps.logger.log({
        level: res.statusCode >= 500 ? 'error' : 'info',
        msg: 'http',
        requestId,
        method: req.method,
        path: req.originalUrl,
        route,
        status: res.statusCode,
        ms: Math.round(seconds * 1000),
        actor: principalOf(res)?.keyId,
      });
    });
    next();
  });

  // Bearer API keys and the rate limit per key, before any body is read (see access-control.ts).
  const access = deps.access ?? {};
  const keys = new ApiKeyStore(deps.readModels, access.operatorApiKey);
  installAuthentication(app, keys, access);

  // Writes must be JSON; bodies are size-limited.
  app.use((req, _res, next) => {
    const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
    if (hasBody && !req.is('application/json')) {
      return next(
        new HttpProblem(415, problemType('unsupported-media-type'), 'Unsupported media type', 'Send the body as application/json', [
          { field: 'Content-Type', message: 'must be application/json' },
        ]),
      );
    }
    return next();
  });
  // A batch of transfers is larger: 512 bytes per item it may hold (an item of the longest ids is about 220), plus 16 kB.
  const batchLimit = (deps.transferBatchMaxItems ?? MAX_BATCH_ITEMS) * 512 + 16 * 1024;
  app.post('/transfer-batches', express.json({ limit: batchLimit, strict: true, type: 'application/json' }));
  app.use(express.json({ limit: deps.bodyLimit ?? '16kb', strict: true, type: 'application/json' }));
  // Roles and ownership: a refusal comes before any handler, so nothing is written.
  installAuthorization(app, deps, access);
  // Each key's waits in progress (?minPosition, ?wait) are capped; after the body parser (see wait-limits.ts).
  installWaitLimits(app, access);

  // Each collector on its own: one that fails (a slow query on a loaded database) does not leave the others' gauges stale.
  const collect = async () => {
    const results = await Promise.allSettled([
      collectProjectionMetrics(deps.store, deps.readModels, ALL_PROJECTIONS, deps.metrics),
      deps.collectStoreMetrics?.(),
    ]);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  };
  app.use(opsRoutes(deps, collect));
  const openapi = buildOpenApiDocument();
  app.get('/openapi.json', (_req, res) => {
    res.json(openapi);
  });
  app.use('/docs', swaggerUi.serve, swaggerUi.setup(openapi));
  app.use(consoleRoutes(deps));
  app.use(accountsRoutes(deps));
  app.use(businessTimeRoutes(deps));
  app.use(transfersRoutes(deps));
  app.use(reversalRoutes(deps));
  app.use(holdsRoutes(deps));
  app.use(transferBatchesRoutes(deps));
  app.use(streamsRoutes(deps));
  app.use(eventsRoutes(deps));
  app.use(apiKeysRoutes(deps, keys));
  app.use(auditRoutes(deps));
  app.use((req, _res, next) => next(new HttpProblem(404, problemType('not-found'), 'Not found', `No route ${req.method} ${req.path}`)));
  app.use(problemHandler((entry) => deps.logger.log({ msg: 'error', ...entry })));
  return app;
}
