import { OpenAPIRegistry, OpenApiGeneratorV3, type RouteConfig } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { OPERATION_ACCESS } from './access-control';
import * as k from './api-key-schemas';
import { AuditVerifyQuery } from './audit-routes';
import { registerBusinessTimePaths } from './business-time-openapi';
import * as out from './response-schemas';
import * as s from './schemas';
import { registerTransferBatchPaths } from './transfer-batches-openapi';

const ROLE_TEXT = {
  public: 'Public: no API key.',
  operator: 'Role: `operator`.',
  customer:
    "Role: `operator`, or `customer` for what its owner holds (another owner's account or transfer reads as 404; a transfer from another owner's account is 403).",
} as const;

const TAGS = {
  accounts: 'Accounts: open, deposit, withdraw, close; balances, history',
  transfers: 'Transfers between accounts (Temporal sagas) and their reversals',
  holds: 'Holds (two-phase transfers): reserve, then capture (in full or in part), void, or let expire (docs/holds.md)',
  'transfer-batches': 'Batches of transfers moved by one saga, all or nothing or each on its own (issue 26)',
  'business-time': 'Late records, exceptions, closing the books, statements and corrections (docs/business-time.md)',
  audit: 'The event log, the stream browser and the hash-chain check (operators; docs/audit.md)',
  'api-keys': 'API keys (operators)',
  operations: 'Liveness, readiness, metrics',
  console: 'The web console',
} as const;

/** Each operation's operationId and tag (an operation missing here fails the document's build). */
const OPERATIONS: Record<string, { operationId: string; tag: keyof typeof TAGS }> = {
  'post /accounts': { operationId: 'openAccount', tag: 'accounts' },
  'get /accounts': { operationId: 'listAccounts', tag: 'accounts' },
  'get /accounts/{id}': { operationId: 'getAccount', tag: 'accounts' },
  'post /accounts/{id}/deposits': { operationId: 'deposit', tag: 'accounts' },
  'post /accounts/{id}/withdrawals': { operationId: 'withdraw', tag: 'accounts' },
  'post /accounts/{id}/close': { operationId: 'closeAccount', tag: 'accounts' },
  'get /accounts/{id}/history': { operationId: 'getAccountHistory', tag: 'accounts' },
  'get /accounts/{id}/balance': { operationId: 'getBalanceAsOf', tag: 'accounts' },
  'post /transfers': { operationId: 'createTransfer', tag: 'transfers' },
  'post /transfers/{id}/reversal': { operationId: 'reverseTransfer', tag: 'transfers' },
  'get /transfers': { operationId: 'listTransfers', tag: 'transfers' },
  'get /transfers/{id}': { operationId: 'getTransfer', tag: 'transfers' },
  'post /holds': { operationId: 'createHold', tag: 'holds' },
  'get /holds': { operationId: 'listHolds', tag: 'holds' },
  'get /holds/{id}': { operationId: 'getHold', tag: 'holds' },
  'post /holds/{id}/capture': { operationId: 'captureHold', tag: 'holds' },
  'post /holds/{id}/void': { operationId: 'voidHold', tag: 'holds' },
  'post /transfer-batches': { operationId: 'createTransferBatch', tag: 'transfer-batches' },
  'get /transfer-batches': { operationId: 'listTransferBatches', tag: 'transfer-batches' },
  'get /transfer-batches/{id}': { operationId: 'getTransferBatch', tag: 'transfer-batches' },
  'get /audit/verify': { operationId: 'verifyAuditChain', tag: 'audit' },
  'get /events': { operationId: 'listEvents', tag: 'audit' },
  'get /streams': { operationId: 'listStreams', tag: 'audit' },
  'get /streams/{name}': { operationId: 'getStream', tag: 'audit' },
  'get /console': { operationId: 'getConsole', tag: 'console' },
  'get /console/config.json': { operationId: 'getConsoleConfig', tag: 'console' },
  'get /health': { operationId: 'getHealth', tag: 'operations' },
  'get /ready': { operationId: 'getReadiness', tag: 'operations' },
  'get /metrics': { operationId: 'getMetrics', tag: 'operations' },
  'post /api-keys': { operationId: 'createApiKey', tag: 'api-keys' },
  'get /api-keys': { operationId: 'listApiKeys', tag: 'api-keys' },
  'delete /api-keys/{keyId}': { operationId: 'revokeApiKey', tag: 'api-keys' },
  'post /books/close': { operationId: 'closeBooks', tag: 'business-time' },
  'get /accounts/{id}/statements/{date}': { operationId: 'getStatement', tag: 'business-time' },
  'get /corrections': { operationId: 'listCorrections', tag: 'business-time' },
  'get /exceptions': { operationId: 'listExceptions', tag: 'business-time' },
  'post /exceptions/{id}/accept': { operationId: 'acceptException', tag: 'business-time' },
  'post /exceptions/{id}/reject': { operationId: 'rejectException', tag: 'business-time' },
};

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
      const operation = OPERATIONS[`${route.method} ${route.path}`];
      if (!operation) throw new Error(`${route.method} ${route.path} has no operationId in OPERATIONS (api/openapi.ts)`);
      const request = route.request;
      // What any operation may answer before its handler runs (api/app.ts, api/problem.ts): input it cannot parse
      // (a path that is not percent-encoded UTF-8, malformed JSON), a body too large, or one that is not JSON.
      const takesInput = Boolean(request?.params || request?.query || request?.headers || request?.body);
      const generic = {
        ...(takesInput ? { 400: { description: 'Invalid input: `errors` names each offending field', content: problem.content } } : {}),
        ...(request?.body
          ? {
              413: { description: 'The body is larger than the limit (16 kB)', content: problem.content },
              415: { description: 'The body is not application/json, or in an unsupported charset or encoding', content: problem.content },
            }
          : {}),
        ...(access === 'public'
          ? {}
          : {
              503: {
                description: 'The event store is unavailable, or a read model is behind or degraded: retry shortly',
                content: problem.content,
              },
            }),
      };
      const refusals =
        access === 'public'
          ? {}
          : {
              401: {
                description: 'No, a malformed, unknown or revoked API key (with WWW-Authenticate: Bearer)',
                headers: { 'WWW-Authenticate': { description: '`Bearer`', required: true, schema: { type: 'string' } } },
                content: problem.content,
              },
              ...(access === 'operator'
                ? { 403: { description: 'A customer key: this operation needs the operator role', content: problem.content } }
                : {}),
              429: {
                description:
                  "Over this key's rate limit (RATE_LIMIT_PER_MINUTE, `/problems/rate-limited`), or a wait (?minPosition, GET /transfers/{id}?wait) beyond its waits in progress (MAX_CONCURRENT_WAITS_PER_KEY, `/problems/too-many-waits`, docs/consistency.md)",
                headers: {
                  'Retry-After': {
                    description: 'Seconds until a retry can succeed',
                    required: true,
                    schema: { type: 'integer', minimum: 0 },
                  },
                },
                content: problem.content,
              },
            };
      registry.registerPath({
        ...route,
        operationId: operation.operationId,
        tags: [operation.tag],
        description: [route.description, ROLE_TEXT[access]].filter(Boolean).join('\n\n'),
        security: access === 'public' ? [] : [{ bearerAuth: [] }],
        'x-required-role': access === 'public' ? 'none' : access,
        responses: { ...generic, ...refusals, ...route.responses },
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
      200: json(out.AccountsPage, 'A page of accounts; `next` is the cursor (`after`) of the next page'),
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
      200: json(out.HistoryPage, 'A page of movements'),
      404: { description: "No such account (for a customer, also another owner's)", content: problem.content },
    },
  });
  r.registerPath({
    method: 'get',
    path: '/accounts/{id}/balance',
    summary: 'The balance at a moment, folded from the event stream: by business time (default) or by recorded time (basis=recorded)',
    request: { params: s.AccountParams, query: s.BalanceQuery },
    responses: {
      200: json(out.BalanceAsOf, 'Balance as of, with the basis asked for, the account status then and the last revision folded'),
      400: problem,
      404: problem,
    },
  });
  r.registerPath({
    method: 'post',
    path: '/transfers',
    summary: 'Start a transfer (idempotent by transferId or Idempotency-Key)',
    description:
      "A customer's transfer ids (`transferId`, `Idempotency-Key`) are scoped to its owner (docs/access-control.md): another owner's id answers as a fresh one; a customer's id is at most 49 characters (400 beyond). Operators may not choose an id of the reserved form `o_<12 id characters>_…` (400).",
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
      403: { description: "A customer key, and fromAccountId is another owner's account (nothing written)", content: problem.content },
      409: problem,
      422: problem,
    },
  });
  r.registerPath({
    method: 'post',
    path: '/transfers/{id}/reversal',
    summary: 'Reverse (part of) a completed transfer by a new transfer back (idempotent by reversalId)',
    description:
      "A customer's `reversalId` is scoped to its owner like a transfer id (at most 49 characters); operators may not choose the reserved form `o_<12 id characters>_…` (400).",
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
      200: json(out.TransfersPage, 'A page of transfers; `next` is the cursor of the next page'),
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
  // Holds (issue 25, docs/holds.md).
  const holdNotFound = {
    description:
      "`/problems/hold-not-found`: no such hold (for a customer, also one it may not see or act on: another owner's, or, for a capture or a void, one whose source it does not own)",
    content: problem.content,
  };
  const holdRefused = {
    description:
      'The hold refuses it, nothing written: `/problems/hold-expired` (it expired first: the money went back to the source), `/problems/hold-finished` (voided, or captured already with another amount), `/problems/hold-not-placed` (nothing reserved yet, or the reservation was refused)',
    content: problem.content,
  };
  r.registerPath({
    method: 'post',
    path: '/holds',
    summary: 'Reserve money on the source until a capture, a void or the expiry (idempotent by holdId or Idempotency-Key)',
    description:
      "The hold's id is also the id of the transfer its capture makes. A customer's hold ids are scoped to its owner as transfer ids are (docs/access-control.md). `expiresAt` is fixed at acceptance (now + `expiresIn`): a repeat (same id, accounts and amount) answers the existing hold, whatever its `expiresIn`.",
    request: {
      headers: z.object({
        'Idempotency-Key': z.string().optional().openapi({ description: 'The hold id (must equal `holdId` when both are given)' }),
        Prefer: z.string().optional().openapi({
          description: 'RFC 7240 `wait=N` (seconds, capped at 10): answer 201 once the reservation is placed (or refused) in time',
        }),
      }),
      body: body(s.CreateHoldBody),
    },
    responses: {
      201: json(out.HoldView, 'Placed (or refused: `failed`) within the preferred wait (Prefer: wait=N; Preference-Applied says so)'),
      202: json(out.HoldView, 'Accepted: the saga places the reservation'),
      200: json(out.HoldView, 'Already known (a repeat): the hold as it stands'),
      400: problem,
      403: { description: "A customer key, and fromAccountId is another owner's account (nothing written)", content: problem.content },
      409: { description: '`/problems/hold-conflict`: this hold id is taken by another hold or a transfer', content: problem.content },
      422: {
        description:
          "The source or the target does not exist, or their currencies differ (for a customer, another owner's target answers `/problems/account-not-found` either way); nothing written",
        content: problem.content,
      },
    },
  });
  r.registerPath({
    method: 'get',
    path: '/holds',
    summary: 'Holds by account (source or target) and status, oldest first, cursor-paginated (a customer sees its own)',
    request: { query: s.HoldListQuery },
    responses: {
      200: json(out.HoldsPage, 'A page of holds; `next` is the cursor of the next page'),
      400: problem,
    },
  });
  r.registerPath({
    method: 'get',
    path: '/holds/{id}',
    summary: "A hold, from its own stream, with its saga's steps",
    request: { params: s.HoldParams },
    responses: { 200: json(out.HoldView, 'The hold'), 404: holdNotFound },
  });
  r.registerPath({
    method: 'post',
    path: '/holds/{id}/capture',
    summary: "Capture all or part of a hold: the captured part moves to the target as the transfer of the hold's id, the rest is released",
    description:
      "Decided on the hold's stream: exactly one of a capture and the expiry wins. Answers once the capture has settled (`captured`, or `compensated` when the target could not be credited). A repeat answers what the first answered; another amount after a capture is 409 `/problems/hold-finished`.",
    request: { params: s.HoldParams, body: body(s.CaptureHoldBody) },
    responses: {
      200: json(out.HoldView, 'Settled: captured (or compensated)'),
      400: problem,
      404: holdNotFound,
      409: holdRefused,
      422: {
        description: '`/problems/capture-exceeds-hold`: more than is held (names `amount`); nothing written',
        content: problem.content,
      },
    },
  });
  r.registerPath({
    method: 'post',
    path: '/holds/{id}/void',
    summary: 'Void a hold: the reservation is released, nothing moves',
    description: 'Answers once the reservation is released. A repeat answers the same.',
    request: { params: s.HoldParams, body: body(s.EmptyBody) },
    responses: {
      200: json(out.HoldView, 'Voided and released'),
      400: problem,
      404: holdNotFound,
      409: {
        description:
          'The hold refuses it, nothing written: `/problems/hold-expired`, `/problems/hold-finished` (captured), `/problems/hold-not-placed` (its reservation was refused)',
        content: problem.content,
      },
    },
  });
  r.registerPath({
    method: 'get',
    path: '/audit/verify',
    summary: 'Walk the hash chains (one stream, or all with the anchors) and report the first broken link (operators)',
    description:
      'Without `stream` it reads the whole log. `anchorHash`: an anchor hash kept outside the database; the verification fails unless the anchors chain through it. 501 when the event store keeps no hash chain.',
    request: {
      query: AuditVerifyQuery.extend({
        stream: AuditVerifyQuery.shape.stream.openapi({ description: 'Only this stream (404 when it has no events)' }),
        anchorHash: AuditVerifyQuery.shape.anchorHash.openapi({ description: 'An anchor hash kept outside the database (64 hex digits)' }),
      }),
    },
    responses: {
      200: json(out.ChainVerification, 'The verification: ok, or the first broken link (stream, revision, problem, expected, found)'),
      400: problem,
      404: problem,
      501: { description: 'This event store keeps no hash chain', content: problem.content },
    },
  });
  r.registerPath({
    method: 'get',
    path: '/events',
    summary: 'The global log (operators): by event type, stream prefix, recorded and business time; in log order, paged by position',
    request: { query: s.EventsQuery },
    responses: {
      200: json(
        out.EventsPage,
        'A page of events, each with its hash-chain link (`hash`, `previousHash`, `hashForm`); `next` is the position to continue after (also after a short page: keep going until it is absent)',
      ),
      400: problem,
    },
  });
  r.registerPath({
    method: 'get',
    path: '/streams',
    summary: 'List event streams (local stream browser)',
    request: { query: s.StreamsQuery },
    responses: { 200: json(out.StreamsPage, 'A page of streams, by name') },
  });
  r.registerPath({
    method: 'get',
    path: '/streams/{name}',
    summary: 'Events of one stream',
    request: { params: s.StreamParams, query: s.StreamQuery },
    responses: {
      200: json(out.StreamPage, 'Events of the stream, each with its hash-chain link (`hash`, `previousHash`, `hashForm`)'),
      404: problem,
    },
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
    responses: { 200: json(out.ConsoleConfig, 'Settings') },
  });
  r.registerPath({
    method: 'get',
    path: '/health',
    summary: 'Liveness',
    responses: { 200: json(out.Health, 'Alive') },
  });
  r.registerPath({
    method: 'get',
    path: '/ready',
    summary: 'Readiness of Postgres, Temporal and the event store',
    responses: { 200: json(out.Readiness, 'Ready, or degraded'), 503: json(out.Readiness, 'Not ready: a dependency is unreachable') },
  });
  r.registerPath({
    method: 'get',
    path: '/metrics',
    summary: 'Prometheus metrics',
    description: 'Prometheus scrapes with a bearer token (an operator key); METRICS_PUBLIC=true opens it without one.',
    responses: {
      200: { description: 'Metrics in the Prometheus text format (version 0.0.4)', content: { 'text/plain': { schema: z.string() } } },
    },
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
    responses: { 200: json(out.ApiKeyList, 'The keys, revoked ones included') },
  });
  r.registerPath({
    method: 'delete',
    path: '/api-keys/{keyId}',
    summary: 'Revoke an API key: refused from then on (within a second on every instance)',
    request: { params: k.ApiKeyParams },
    responses: { 204: { description: 'Revoked (also when it already was)' }, 404: problem, 409: problem },
  });

  registerBusinessTimePaths({ registerPath: (route) => r.registerPath(route), json, body, problem });
  registerTransferBatchPaths({ registerPath: (route) => r.registerPath(route), json, body, problem });

  return new OpenApiGeneratorV3(registry.definitions).generateDocument({
    openapi: '3.0.3',
    info: {
      title: 'Transfer service',
      version: '0.1.0',
      description:
        'Event-sourced accounts; transfers as Temporal sagas. Amounts are integer minor units. Every error is `application/problem+json` (RFC 9457). This document is the contract: the API test suites check every response they receive against it (docs/openapi.md).',
      contact: { name: 'Transfer service maintainers' },
    },
    servers: [{ url: '/', description: 'This instance' }],
    tags: Object.entries(TAGS).map(([name, description]) => ({ name, description })),
  });
}
