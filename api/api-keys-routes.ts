import { Router } from 'express';
import { actorOf } from './access-control';
import type { ApiDeps } from './api-deps';
import { ApiKeyParams, CreateApiKeyBody } from './api-key-schemas';
import { ENV_OPERATOR_KEY_ID, type ApiKeyStore } from '../stores/api-keys';
import { HttpProblem, problemType } from './problem';
import { parse } from './validate';

/** Key management (operator only; enforced by access control before these run). */
export function apiKeysRoutes(deps: ApiDeps, keys: ApiKeyStore): Router {
  const router = Router();

  router.post('/api-keys', async (req, res) => {
    const body = parse(CreateApiKeyBody, req.body, 'body');
    const created = await keys.create(body.role, body.ownerId, actorOf(res));
    deps.logger.log({
      msg: 'api key created',
      requestId: res.locals.requestId as string,
      keyId: created.keyId,
      role: created.role,
      ownerId: created.ownerId,
      actor: actorOf(res),
    });
    // The secret is in this answer only: no cache may keep it.
    res.status(201).set('Cache-Control', 'no-store').location(`/api-keys/${created.keyId}`).json(created);
  });

  router.get('/api-keys', async (_req, res) => {
    res.json({ keys: await keys.list() });
  });

  router.delete('/api-keys/:keyId', async (req, res) => {
    const { keyId } = parse(ApiKeyParams, req.params, 'path');
    if (keyId === ENV_OPERATOR_KEY_ID) {
      throw new HttpProblem(
        409,
        problemType('key-from-environment'),
        'Key from the environment',
        'env-operator is OPERATOR_API_KEY: change or unset that variable and restart to revoke it',
        [{ field: 'keyId', message: "is the environment's operator key" }],
      );
    }
    if (!(await keys.revoke(keyId, actorOf(res))))
      throw new HttpProblem(404, problemType('api-key-not-found'), 'API key not found', `No API key ${keyId}`);
    deps.logger.log({ msg: 'api key revoked', requestId: res.locals.requestId as string, keyId, actor: actorOf(res) });
    res.status(204).end();
  });

  return router;
}
