import type { Express, NextFunction, Request, RequestHandler, Response } from 'express';
import { rateLimit } from 'express-rate-limit';
import { WorkflowNotFoundError } from '@temporalio/client';
import { BatchLog } from '../application/batch-log';
import { HoldLog } from '../application/hold-log';
import { TransferLog } from '../application/transfer-log';
import type { CommandContext } from '../application/event-envelope';
import { accountStream } from '../domain/account-events';
import { MAX_BATCH_ITEMS, type BatchRequest } from '../domain/transfer-batch';
import { transferWorkflowId } from '../workflows/transfer-saga-contract';
import type { ApiDeps } from './api-deps';
import type { ApiKeyStore, Principal } from '../stores/api-keys';
import { HttpProblem, problemType } from './problem';
import { scopedTransferId, storedTransferIdFor } from './customer-ids';
import {
  AccountParams,
  CreateHoldBody,
  CreateTransferBody,
  HoldParams,
  ReversalBody,
  TransferBatchParams,
  TransferParams,
} from './schemas';
import { parseTransferBatchBody } from './transfer-batch-body';
import { parse } from './validate';

/**
 * Access control: bearer API keys with roles.
 * - Every endpoint but the public ones (GET /health, /ready, /openapi.json, /docs, the web console's
 *   static files under /console, and /metrics with METRICS_PUBLIC=true) needs `Authorization: Bearer <secret>`; missing, malformed or unknown -> 401
 *   with `WWW-Authenticate: Bearer`.
 * - `operator`: everything. `customer` (bound to one ownerId): reads its own accounts (not owned -> 404,
 *   as for an account that does not exist), starts transfers from its own accounts (not owned -> 403,
 *   before anything is written), reads transfers whose source or target it owns (else 404); places holds from its
 *   own accounts (else 403), captures and voids holds whose source it owns, reads holds whose source or target it
 *   owns (else 404 hold-not-found, as for a hold that does not exist; docs/holds.md); starts batches of transfers all
 *   from its own accounts (any other source -> 403 naming the item, before anything is written), reads batches whose
 *   every source it owns (else 404 batch-not-found); the list of batches is operator-only. Every
 *   other endpoint -> 403: customers are denied by default, so an endpoint added later is
 *   operator-only until it is listed here.
 * - A rate limit per key (express-rate-limit, in this process's memory: with N API instances a key
 *   gets up to N times the limit) -> 429 with Retry-After.
 */

export interface AccessOptions {
  /** OPERATOR_API_KEY: accepted as an operator key (`env-operator`). */
  operatorApiKey?: string;
  /** Requests per minute per key (RATE_LIMIT_PER_MINUTE). Default 600. */
  rateLimitPerMinute?: number;
  /** METRICS_PUBLIC: /metrics without a key. */
  metricsPublic?: boolean;
  /** Waits in progress per key (MAX_CONCURRENT_WAITS_PER_KEY, see wait-limits.ts). Default 16. */
  maxConcurrentWaitsPerKey?: number;
}

/** Who may call an operation: `public` (no key), `operator`, or `customer` (operators, and customers for what they own). */
export type OperationAccess = 'public' | 'operator' | 'customer';

/** Each operation's access, as enforced below: the OpenAPI document and the tests read it from here. */
export const OPERATION_ACCESS: Record<string, OperationAccess> = {
  'get /health': 'public',
  'get /ready': 'public',
  'get /openapi.json': 'public',
  'get /docs': 'public',
  'get /console': 'public',
  'get /console/config.json': 'public',
  'get /metrics': 'operator',
  'post /accounts': 'operator',
  'get /accounts': 'customer',
  'get /accounts/{id}': 'customer',
  'post /accounts/{id}/deposits': 'operator',
  'post /accounts/{id}/withdrawals': 'operator',
  'post /accounts/{id}/close': 'operator',
  'get /accounts/{id}/history': 'customer',
  'get /accounts/{id}/balance': 'customer',
  'get /accounts/{id}/statements/{date}': 'customer',
  'post /books/close': 'operator',
  'get /corrections': 'operator',
  'get /exceptions': 'operator',
  'post /exceptions/{id}/accept': 'operator',
  'post /exceptions/{id}/reject': 'operator',
  'post /transfers': 'customer',
  'get /transfers': 'customer',
  'get /transfers/{id}': 'customer',
  'post /transfers/{id}/reversal': 'operator',
  'post /holds': 'customer',
  'get /holds': 'customer',
  'get /holds/{id}': 'customer',
  'post /holds/{id}/capture': 'customer',
  'post /holds/{id}/void': 'customer',
  'post /transfer-batches': 'customer',
  'get /transfer-batches': 'operator',
  'get /transfer-batches/{id}': 'customer',
  'get /events': 'operator',
  'get /audit/verify': 'operator',
  'get /streams': 'operator',
  'get /streams/{name}': 'operator',
  'post /api-keys': 'operator',
  'get /api-keys': 'operator',
  'delete /api-keys/{keyId}': 'operator',
};

export const principalOf = (res: Response): Principal | undefined => res.locals.principal as Principal | undefined;

/** The acting key id of an authenticated request. A write route mounted without access control fails here, before it writes. */
export function actorOf(res: Response): string {
  const principal = principalOf(res);
  if (!principal) throw new Error('no authenticated API key on this request: mount the routes behind access control (createApp)');
  return principal.keyId;
}

/** Metadata of the events a request causes: its correlation id and its actor (the key id) beside it. */
export function requestContext(res: Response): CommandContext {
  const requestId = res.locals.requestId as string;
  return { correlationId: requestId, causationId: `http:${requestId}`, extra: { actor: actorOf(res) } };
}

const REALM = 'Bearer realm="transfer-service"';

function unauthorized(res: Response, next: NextFunction, error: 'missing' | 'invalid_request' | 'invalid_token'): void {
  const messages = {
    missing: 'is required: Authorization: Bearer <API key>',
    invalid_request: 'must be "Bearer <API key>"',
    invalid_token: 'is not a valid API key (unknown or revoked)',
  } as const;
  res.set('WWW-Authenticate', error === 'missing' ? REALM : `${REALM}, error="${error}", error_description="${messages[error]}"`);
  next(
    new HttpProblem(401, problemType('unauthorized'), 'Unauthorized', `Authorization ${messages[error]}`, [
      { field: 'Authorization', message: messages[error] },
    ]),
  );
}

function isPublic(req: Request, options: AccessOptions): boolean {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  if (req.path === '/health' || req.path === '/ready' || req.path === '/openapi.json') return true;
  if (req.path === '/docs' || req.path.startsWith('/docs/')) return true;
  // The web console's page and static files (api/console-routes.ts); the data calls it makes carry the key.
  if (req.path === '/console' || req.path.startsWith('/console/')) return true;
  return req.path === '/metrics' && options.metricsPublic === true;
}

const BEARER = /^Bearer +([\x21-\x7E]{1,512}) *$/i;

/**
 * Authentication and the rate limit: before the body is read. Installs on `app` in order.
 * Nothing from the Authorization header is logged or echoed.
 */
export function installAuthentication(app: Express, keys: ApiKeyStore, options: AccessOptions): void {
  app.use(async (req: Request, res: Response, next: NextFunction) => {
    if (isPublic(req, options)) return next();
    const header = req.get('Authorization');
    if (header === undefined || header.trim() === '') return unauthorized(res, next, 'missing');
    const match = BEARER.exec(header);
    if (!match) return unauthorized(res, next, 'invalid_request');
    const principal = await keys.authenticate(match[1]!);
    if (!principal) return unauthorized(res, next, 'invalid_token');
    res.locals.principal = principal;
    return next();
  });

  const limit = options.rateLimitPerMinute ?? 600;
  app.use(
    rateLimit({
      windowMs: 60_000,
      limit,
      standardHeaders: 'draft-7',
      legacyHeaders: false,
      skip: (_req, res) => principalOf(res) === undefined,
      keyGenerator: (_req, res) => principalOf(res)!.keyId,
      handler: (_req, res, next) => {
        const retryAfter = Number(res.getHeader('Retry-After') ?? 60);
        next(
          new HttpProblem(
            429,
            problemType('rate-limited'),
            'Too many requests',
            `This API key may make ${limit} requests per minute; retry after ${retryAfter} s`,
            [{ field: 'Authorization', message: `exceeded ${limit} requests per minute` }],
            { retryAfterSeconds: retryAfter },
          ),
        );
      },
    }),
  );
}

/** Immutable facts, cached: an account's owner never changes. */
class Ownership {
  private readonly owners = new Map<string, string>();
  private readonly transfers: TransferLog;
  private readonly holds: HoldLog;
  private readonly batches: BatchLog;

  constructor(private readonly deps: ApiDeps) {
    this.transfers = new TransferLog(deps.store);
    this.holds = new HoldLog(deps.store);
    this.batches = new BatchLog(deps.store);
  }

  /** A batch as the API accepted it, from its stream (recorded there before its saga starts), or undefined. */
  async batchRequestOf(batchId: string): Promise<BatchRequest | undefined> {
    return (await this.batches.load(batchId)).state.request;
  }

  /**
   * The owners of several accounts (as ownerOf, undefined for an account that does not exist): those not known yet in
   * one read of the store, the first event of each.
   */
  async ownersOf(accountIds: Iterable<string>): Promise<Map<string, string | undefined>> {
    const owners = new Map<string, string | undefined>();
    const unknown: string[] = [];
    for (const id of new Set(accountIds)) {
      const cached = this.owners.get(id);
      if (cached !== undefined) owners.set(id, cached);
      else unknown.push(id);
    }
    if (unknown.length === 0) return owners;
    const firsts = await this.deps.store.readStreams(unknown.map((id) => ({ stream: accountStream(id), fromRevision: 0n, maxCount: 1 })));
    unknown.forEach((id, i) => {
      const first = firsts[i]?.[0];
      const owner = first?.type === 'AccountOpened' ? String((first.data as { ownerId: unknown }).ownerId) : undefined;
      if (owner !== undefined) {
        if (this.owners.size >= 100_000) this.owners.clear();
        this.owners.set(id, owner);
      }
      owners.set(id, owner);
    });
    return owners;
  }

  /** Source and target of a hold, from its stream (the API records every hold there before its saga starts). */
  async holdPartiesOf(holdId: string): Promise<{ fromAccountId: string; toAccountId: string } | undefined> {
    return (await this.holds.load(holdId)).state.request;
  }

  /** The owner recorded when the account was opened (its stream's first event), or undefined when it does not exist. */
  async ownerOf(accountId: string): Promise<string | undefined> {
    const cached = this.owners.get(accountId);
    if (cached !== undefined) return cached;
    const [first] = await this.deps.store.readStream(accountStream(accountId), { maxCount: 1 });
    if (!first || first.type !== 'AccountOpened') return undefined;
    const owner = String((first.data as { ownerId: unknown }).ownerId);
    if (this.owners.size >= 100_000) this.owners.clear();
    this.owners.set(accountId, owner);
    return owner;
  }

  /** Source and target of a transfer: from its stream, else (not recorded yet) from its saga's memo. */
  async partiesOf(transferId: string): Promise<{ fromAccountId?: string; toAccountId?: string } | undefined> {
    const { state } = await this.transfers.load(transferId);
    if (state.request) return state.request;
    try {
      const memo = (await this.deps.temporal.workflow.getHandle(transferWorkflowId(transferId)).describe()).memo ?? {};
      return { fromAccountId: memo.fromAccountId as string | undefined, toAccountId: memo.toAccountId as string | undefined };
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) return undefined;
      throw error;
    }
  }
}

/**
 * Authorization, after the body is parsed: the ownership checks of the operations customers may call,
 * then operator-only for everything else. A refusal comes before the handler runs, so nothing is written.
 */
export function installAuthorization(app: Express, deps: ApiDeps, options: AccessOptions): void {
  const ownership = new Ownership(deps);
  const asCustomer =
    (check: (req: Request, principal: Principal & { ownerId: string }, res: Response) => Promise<void>): RequestHandler =>
    async (req, res, next) => {
      const principal = principalOf(res);
      if (principal?.role === 'customer') {
        await check(req, principal as Principal & { ownerId: string }, res);
        res.locals.customerAllowed = true;
      }
      next();
    };

  const ownAccount = asCustomer(async (req, principal) => {
    const { id } = parse(AccountParams, { id: req.params.id }, 'path'); // the account's own routes may have more path parameters
    // Not owned reads exactly as not existing: a customer learns nothing about others' accounts.
    if ((await ownership.ownerOf(id)) !== principal.ownerId)
      throw new HttpProblem(404, problemType('account-not-found'), 'Account not found', `No account ${id}`);
  });
  app.get(['/accounts/:id', '/accounts/:id/history', '/accounts/:id/balance', '/accounts/:id/statements/:date'], ownAccount);

  app.post(
    '/transfers',
    asCustomer(async (req, principal) => {
      const body = parse(CreateTransferBody, req.body, 'body');
      if ((await ownership.ownerOf(body.fromAccountId)) !== principal.ownerId) {
        throw new HttpProblem(
          403,
          problemType('forbidden'),
          'Forbidden',
          `This API key moves money only from accounts of owner ${principal.ownerId}`,
          [{ field: 'fromAccountId', message: "is not an account of this API key's owner" }],
        );
      }
    }),
  );

  // The lists are scoped to the customer's own accounts and transfers by the routes themselves.
  app.get(
    '/accounts',
    asCustomer(async () => undefined),
  );
  app.get(
    '/transfers',
    asCustomer(async () => undefined),
  );

  app.get(
    '/transfers/:id',
    asCustomer(async (req, principal, res) => {
      const { id } = parse(TransferParams, req.params, 'path');
      // Its own id first (scoped to its owner, customer-ids.ts), then the id as stored (a transfer to or from its
      // accounts that it did not start, as its account history names it); whatever it may not read is not found.
      const scoped = scopedTransferId(principal.ownerId, id);
      for (const candidate of scoped !== undefined ? [scoped, id] : [id]) {
        const parties = await ownership.partiesOf(candidate);
        const owners = parties
          ? await Promise.all([parties.fromAccountId, parties.toAccountId].map((a) => (a ? ownership.ownerOf(a) : undefined)))
          : [];
        if (owners.includes(principal.ownerId)) {
          res.locals.readableTransferId = candidate;
          return;
        }
      }
      throw new HttpProblem(404, problemType('transfer-not-found'), 'Transfer not found', `No transfer ${id}`);
    }),
  );

  // Holds (docs/holds.md): placed only from the customer's own accounts (403, as POST /transfers).
  app.post(
    '/holds',
    asCustomer(async (req, principal) => {
      const body = parse(CreateHoldBody, req.body, 'body');
      if ((await ownership.ownerOf(body.fromAccountId)) !== principal.ownerId) {
        throw new HttpProblem(
          403,
          problemType('forbidden'),
          'Forbidden',
          `This API key holds money only on accounts of owner ${principal.ownerId}`,
          [{ field: 'fromAccountId', message: "is not an account of this API key's owner" }],
        );
      }
    }),
  );
  app.get(
    '/holds',
    asCustomer(async () => undefined),
  );
  // A hold the customer may act on: its own id first (scoped to its owner), then the id as stored (a hold on its
  // accounts it did not place). Read: its owner owns the source or the target; capture and void: the source. Anything
  // else is not found, exactly as a hold that does not exist.
  const customerHold = (parties: 'source' | 'either') =>
    asCustomer(async (req, principal, res) => {
      const { id } = parse(HoldParams, { id: req.params.id }, 'path');
      const scoped = scopedTransferId(principal.ownerId, id);
      for (const candidate of scoped !== undefined ? [scoped, id] : [id]) {
        const hold = await ownership.holdPartiesOf(candidate);
        if (!hold) continue;
        const accounts = parties === 'source' ? [hold.fromAccountId] : [hold.fromAccountId, hold.toAccountId];
        const owners = await Promise.all(accounts.map((a) => ownership.ownerOf(a)));
        if (owners.includes(principal.ownerId)) {
          res.locals.holdId = candidate;
          return;
        }
      }
      throw new HttpProblem(404, problemType('hold-not-found'), 'Hold not found', `No hold ${id}`);
    });
  app.get('/holds/:id', customerHold('either'));
  app.post(['/holds/:id/capture', '/holds/:id/void'], customerHold('source'));

  // Batches of transfers (issue 26): every item from the customer's own accounts (403 naming the first that is not, as
  // POST /transfers refuses its one transfer, before anything is written); the owners in one read.
  const maxBatchItems = deps.transferBatchMaxItems ?? MAX_BATCH_ITEMS;
  app.post(
    '/transfer-batches',
    asCustomer(async (req, principal) => {
      const body = parseTransferBatchBody(req.body, maxBatchItems);
      const owners = await ownership.ownersOf(body.items.map((item) => item.fromAccountId));
      const index = body.items.findIndex((item) => owners.get(item.fromAccountId) !== principal.ownerId);
      if (index >= 0) {
        throw new HttpProblem(
          403,
          problemType('forbidden'),
          'Forbidden',
          `This API key moves money only from accounts of owner ${principal.ownerId}`,
          [{ field: `items[${index}].fromAccountId`, message: "is not an account of this API key's owner" }],
        );
      }
    }),
  );
  // A batch the customer may read: its own id first (scoped to its owner, as transfer ids are), then the id as stored;
  // readable when its owner owns the source of every item (a batch shows every item's accounts and amounts). Anything
  // else is not found, exactly as a batch that does not exist.
  app.get(
    '/transfer-batches/:id',
    asCustomer(async (req, principal, res) => {
      const { id } = parse(TransferBatchParams, { id: req.params.id }, 'path');
      const scoped = scopedTransferId(principal.ownerId, id);
      for (const candidate of scoped !== undefined ? [scoped, id] : [id]) {
        const batch = await ownership.batchRequestOf(candidate);
        if (!batch) continue;
        const owners = await ownership.ownersOf(batch.items.map((item) => item.fromAccountId));
        if ([...owners.values()].every((owner) => owner === principal.ownerId)) {
          res.locals.readableBatchId = candidate;
          return;
        }
      }
      throw new HttpProblem(404, problemType('batch-not-found'), 'Batch not found', `No batch ${id}`);
    }),
  );

  // Reversal ids are chosen by operators: never of the form of a customer's scoped ids (customer-ids.ts).
  app.post('/transfers/:id/reversal', (req: Request, res: Response, next: NextFunction) => {
    if (principalOf(res)?.role === 'operator') {
      const { reversalId } = parse(ReversalBody, req.body ?? {}, 'body');
      if (reversalId !== undefined) storedTransferIdFor(res, reversalId, 'reversalId');
    }
    next();
  });

  // Everything a customer was not let through above is operator-only.
  app.use((req: Request, res: Response, next: NextFunction) => {
    const principal = principalOf(res);
    if (!principal || principal.role === 'operator' || res.locals.customerAllowed === true || isPublic(req, options)) return next();
    return next(
      new HttpProblem(403, problemType('forbidden'), 'Forbidden', `${req.method} ${req.path} needs an operator key`, [
        { field: 'Authorization', message: "is a customer key; this operation needs the 'operator' role" },
      ]),
    );
  });
}
