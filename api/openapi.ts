import { OpenAPIRegistry, OpenApiGeneratorV3, type RouteConfig } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { OPERATION_ACCESS } from './access-control';
import * as k from './api-key-schemas';
import { registerBusinessTimePaths } from './business-time-openapi';
import * as s from './schemas';

const ROLE_TEXT = {
  public: 'Public: no API key.',
  operator: 'Role: `operator`.',
  customer:
    "Role: `operator`, or `customer` for what its owner holds (another owner's account or transfer reads as 404; a transfer from another owner's account is 403).",
} as const;

/** The OpenAPI document, generated from the same zod schemas that validate requests. */
export function buildOpenApiDocument(): ReturnType<OpenApiGeneratorV3['generateDocument']> {
  const registry = new OpenAPIRegistry();
  const problem = { description: 'Problem details', content: { 'application/problem+json': { schema: s.Problem } } };
  registry.registerComponent('securitySchemes', 'bearerAuth', {
    type: 'http',
    scheme: 'bearer',
    description: 'An API key secret (`tsk_…`) from POST /api-keys, or OPERATOR_API_KEY. Sent as `Authorization: Bearer <secret>`.',
  });
  /** Every operation with its role (from access-control.ts, which enforces it), its security and the refusals it may answer. */
  const r = {
    registerPath(route: RouteConfig) {
      const access = OPERATION_ACCESS[`${route.method} ${route.path}`];
      if (!access) throw new Error(`${route.method} ${route.path} has no entry in OPERATION_ACCESS`);
      const refusals =
        access === 'public'
          ? {}
          : {
              401: { description: 'No, a malformed, unknown or revoked API key (with WWW-Authenticate: Bearer)', content: problem.content },
              ...(access === 'operator'
                ? { 403: { description: 'A customer key: this operation needs the operator role', content: problem.content } }
                : {}),
              429: {
                description:
                  "Over this key's rate limit (RATE_LIMIT_PER_MINUTE), or a wait (?minPosition, ?wait) beyond its waits in progress (MAX_CONCURRENT_WAITS_PER_KEY); with Retry-After",
                content: problem.content,
              },
            };
      registry.registerPath({
        ...route,
        description: [route.description, ROLE_TEXT[access]].filter(Boolean).join('\n\n'),
        security: access === 'public' ? [] : [{ bearerAuth: [] }],
        'x-required-role': access === 'public' ? 'none' : access,
        responses: { ...refusals, ...route.responses },
      });
    },
  };
  const json = (schema: z.ZodType, description: string) => ({ description, content: { 'application/json': { schema } } });
  const body = (schema: z.ZodType) => ({ content: { 'application/json': { schema } } });
  const idempotencyKey = s.AccountIdempotencyKey.optional().openapi({
    description:
      "Makes the write safe to retry (Stripe's convention): the same key with the same request answers what the first answered (same status and body, header Idempotent-Replayed: true) and writes nothing; with another request it is 409. Scoped to this endpoint and account; kept at least 24 h. A duplicate sent while the first is running waits for its answer (409 with Retry-After if that takes too long).",
  });
  const keyOnly = z.object({ 'Idempotency-Key': idempotencyKey });
  const writeHeaders = z.object({
    'Idempotency-Key': idempotencyKey,
    'If-Match': z.string().optional().openapi({ description: 'The account revision you read (optimistic concurrency): 412 on mismatch' }),
  });
  const keyConflict = {
    description: 'Idempotency-Key used with another request, or a request with it still in progress',
    content: problem.content,
  };

  r.registerPath({
    method: 'post',
    path: '/accounts',
    summary: 'Open an account (with an Idempotency-Key, the account id is derived from the key: a retry finds the same account)',
    request: { headers: keyOnly, body: body(s.OpenAccountBody) },
    responses: { 201: json(s.WriteResult, 'Opened'), 400: problem, 409: keyConflict, 422: problem },
  });
  r.registerPath({
    method: 'get',
    path: '/accounts',
    summary: "Accounts by owner, ordered by account id, cursor-paginated (a customer sees its own; another owner's list is empty)",
    request: { query: s.AccountListQuery },
    responses: {
      200: json(
        z.object({ accounts: z.array(s.AccountView), next: z.string().optional() }),
        'A page of accounts; `next` is the cursor (`after`) of the next page',
      ),
      400: problem,
    },
  });
  r.registerPath({
    method: 'get',
    path: '/accounts/{id}',
    summary: 'An account from the balances read model',
    request: { params: s.AccountParams, query: s.ReadQuery },
    responses: { 200: json(s.AccountView, 'The account'), 404: problem },
  });
  for (const [path, summary] of [
    ['/accounts/{id}/deposits', 'Deposit money'],
    ['/accounts/{id}/withdrawals', 'Withdraw money'],
  ] as const) {
    r.registerPath({
      method: 'post',
      path,
      summary,
      description:
        'With `occurredAt`, a late record (business time): older than MAX_LATENESS is 422 `too-late` (nothing written; kept as an exception, see GET /exceptions).',
      request: { params: s.AccountParams, headers: writeHeaders, body: body(s.MovementBody) },
      responses: { 200: json(s.WriteResult, 'Done'), 400: problem, 404: problem, 409: keyConflict, 412: problem, 422: problem },
    });
  }
  r.registerPath({
    method: 'post',
    path: '/accounts/{id}/close',
    summary: 'Close an empty account',
    request: { params: s.AccountParams, headers: writeHeaders },
    responses: { 200: json(s.WriteResult, 'Closed'), 400: problem, 404: problem, 409: keyConflict, 412: problem, 422: problem },
  });
  r.registerPath({
    method: 'get',
    path: '/accounts/{id}/history',
    summary: 'Movements, newest first',
    request: { params: s.AccountParams, query: s.HistoryQuery },
    responses: {
      200: json(
        z.object({ accountId: s.AccountId, movements: z.array(s.Movement), nextCursor: z.string().nullable() }),
        'A page of movements',
      ),
    },
  });
  r.registerPath({
    method: 'get',
    path: '/accounts/{id}/balance',
    summary: 'The balance at a moment, folded from the event stream: by business time (default) or by recorded time (basis=recorded)',
    request: { params: s.AccountParams, query: s.BalanceQuery },
    responses: {
      200: json(z.object({ accountId: s.AccountId, asOf: z.string(), balance: z.number().int() }), 'Balance as of'),
      400: problem,
      404: problem,
    },
  });
  r.registerPath({
    method: 'post',
    path: '/transfers',
    summary: 'Start a transfer (idempotent by transferId or Idempotency-Key)',
    request: {
      headers: z.object({
        'Idempotency-Key': z.string().optional(),
        Prefer: z.string().optional().openapi({
          description: 'RFC 7240 `wait=N` (seconds, capped at 10): answer 201 with the finished transfer when the saga ends in time',
        }),
      }),
      body: body(s.CreateTransferBody),
    },
    responses: {
      201: json(s.TransferView, 'Finished within the preferred wait (Prefer: wait=N; Preference-Applied says so)'),
      202: json(s.TransferView, 'Accepted: the saga runs'),
      200: json(s.TransferView, 'Already known'),
      400: problem,
      409: problem,
      422: problem,
    },
  });
  r.registerPath({
    method: 'post',
    path: '/transfers/{id}/reversal',
    summary: 'Reverse (part of) a completed transfer by a new transfer back (idempotent by reversalId)',
    request: {
      params: s.TransferParams,
      headers: z.object({ Prefer: z.string().optional().openapi({ description: 'RFC 7240 `wait=N`, as for POST /transfers' }) }),
      body: body(s.ReversalBody),
    },
    responses: {
      201: json(s.TransferView, 'The reversal finished within the preferred wait'),
      202: json(s.TransferView, 'Accepted: the reversal saga runs'),
      200: json(s.TransferView, 'This reversal id is already known'),
      400: problem,
      404: problem,
      409: problem,
      422: problem,
    },
  });
  r.registerPath({
    method: 'get',
    path: '/transfers',
    summary: 'Transfers by account, status and creation time, oldest first, cursor-paginated (a customer sees its own)',
    request: { query: s.TransferListQuery },
    responses: {
      200: json(
        z.object({ transfers: z.array(s.TransferView), next: z.string().optional() }),
        'A page of transfers; `next` is the cursor of the next page',
      ),
      400: problem,
    },
  });
  r.registerPath({
    method: 'get',
    path: '/transfers/{id}',
    summary: 'A transfer and its steps',
    request: { params: s.TransferParams, query: s.TransferQuery },
    responses: { 200: json(s.TransferView, 'The transfer'), 404: problem },
  });
  r.registerPath({
    method: 'get',
    path: '/audit/verify',
    summary: 'Walk the hash chains (one stream, or all with the anchors) and report the first broken link (operators)',
    request: { query: z.object({ stream: z.string().optional() }) },
    responses: {
      200: json(z.object({}).passthrough(), 'The verification: ok, or the first broken link (stream, revision, expected, found)'),
      400: problem,
      404: problem,
    },
  });
  r.registerPath({
    method: 'get',
    path: '/events',
    summary: 'The global log (operators): by event type, stream prefix, recorded and business time; in log order, paged by position',
    request: { query: s.EventsQuery },
    responses: {
      200: json(
        z.object({ events: z.array(z.object({}).passthrough()), next: z.string().optional() }),
        'A page of events; `next` is the position to continue after',
      ),
      400: problem,
    },
  });
  r.registerPath({
    method: 'get',
    path: '/streams',
    summary: 'List event streams (local stream browser)',
    request: { query: s.StreamsQuery },
    responses: { 200: json(z.object({}).passthrough(), 'Streams') },
  });
  r.registerPath({
    method: 'get',
    path: '/streams/{name}',
    summary: 'Events of one stream',
    request: { params: s.StreamParams, query: s.StreamQuery },
    responses: { 200: json(z.object({}).passthrough(), 'Events'), 404: problem },
  });
  r.registerPath({
    method: 'get',
    path: '/console',
    summary: 'The web console (HTML; its scripts and styles are served under /console/)',
    description:
      'Static files with a strict Content-Security-Policy. The page itself needs no key: it asks for one and sends it as a bearer token with every data call.',
    responses: { 200: { description: 'The console page', content: { 'text/html': { schema: z.string() } } } },
  });
  r.registerPath({
    method: 'get',
    path: '/console/config.json',
    summary: "The console's settings: the Temporal Web UI's address (TEMPORAL_UI_URL) and namespace, for links to a transfer's saga",
    responses: { 200: json(z.object({ temporalUiUrl: z.string().nullable(), temporalNamespace: z.string() }), 'Settings') },
  });
  r.registerPath({
    method: 'get',
    path: '/health',
    summary: 'Liveness',
    responses: { 200: json(z.object({ status: z.string() }), 'Alive') },
  });
  r.registerPath({
    method: 'get',
    path: '/ready',
    summary: 'Readiness of Postgres, Temporal and the event store',
    responses: { 200: json(z.object({}).passthrough(), 'Ready'), 503: json(z.object({}).passthrough(), 'Not ready') },
  });
  r.registerPath({
    method: 'get',
    path: '/metrics',
    summary: 'Prometheus metrics',
    description: 'Prometheus scrapes with a bearer token (an operator key); METRICS_PUBLIC=true opens it without one.',
    responses: { 200: { description: 'Metrics in the Prometheus text format' } },
  });
  r.registerPath({
    method: 'post',
    path: '/api-keys',
    summary: 'Create an API key; its secret is in this answer only',
    request: { body: body(k.CreateApiKeyBody) },
    responses: { 201: json(k.CreatedApiKey, 'Created (Cache-Control: no-store)'), 400: problem },
  });
  r.registerPath({
    method: 'get',
    path: '/api-keys',
    summary: 'List API keys (never their secrets)',
    responses: { 200: json(z.object({ keys: z.array(k.ApiKeyView) }), 'The keys, revoked ones included') },
  });
  r.registerPath({
    method: 'delete',
    path: '/api-keys/{keyId}',
    summary: 'Revoke an API key: refused from then on (within a second on every instance)',
    request: { params: k.ApiKeyParams },
    responses: { 204: { description: 'Revoked (also when it already was)' }, 404: problem, 409: problem },
  });

  registerBusinessTimePaths({ registerPath: (route) => r.registerPath(route), json, body, problem });

  return new OpenApiGeneratorV3(registry.definitions).generateDocument({
    openapi: '3.0.3',
    info: {
      title: 'Transfer service',
      version: '0.1.0',
      description: 'Event-sourced accounts; transfers as Temporal sagas. Amounts are integer minor units.',
    },
  });
}
