import { currencyMismatch } from '../domain/account-decider';
import type { TransferState } from '../domain/transfer-state';
import { findTransfer, listTransfers, transferRowView } from '../projections/transfers-queries';
import { randomUUID } from 'node:crypto';
import { Router, type Request, type Response } from 'express';
import { loadTogether } from '../application/event-sourced-repository';
import { TransferLog, type LoadedTransfer } from '../application/transfer-log';
import { sameRequest } from '../domain/transfer-decider';
import { isTerminalStatus, type TransferRequest } from '../domain/transfer-events';
import { acceptTransfer, TransferConflictError, TransferRejectedError } from '../temporal/transfer-client';
import { actorOf, principalOf } from './access-control';
import type { ApiDeps } from './api-deps';
import { awaitProjection } from './consistency';
import { HttpProblem, problemType } from './problem';
import { rejectionProblem } from './rejection-status';
import { CreateTransferBody, IdempotencyKeyHeader, TransferListQuery, TransferParams, TransferQuery } from './schemas';
import { customerOwnerOf, scopedTransferId, storedTransferIdFor, viewForCaller } from './customer-ids';
import { parse } from './validate';
import { decodeCursor, encodeCursor } from './page-cursor';
import { holdWait } from './wait-limits';

export function transfersRoutes(deps: ApiDeps): Router {
  const router = Router();
  const log = new TransferLog(deps.store);

  async function readView(transferId: string) {
    const row = await findTransfer(deps.readModels, transferId);
    if (row) return transferRowView(row);
    // Not projected yet: its stream knows it (the API records every accepted request there before its saga starts).
    const { state } = await log.load(transferId);
    return state.request ? viewFromLog(transferId, state) : undefined;
  }

  router.post('/transfers', async (req, res: Response) => {
    const body = parse(CreateTransferBody, req.body, 'body');
    const header = req.get('Idempotency-Key');
    if (header !== undefined) parse(IdempotencyKeyHeader, { 'Idempotency-Key': header }, 'header');
    if (header !== undefined && body.transferId !== undefined && header !== body.transferId) {
      throw new HttpProblem(400, problemType('validation-error'), 'Conflicting idempotency keys', 'Idempotency-Key and transferId differ', [
        { field: 'Idempotency-Key', message: 'must equal transferId when both are given' },
      ]);
    }
    const clientId = body.transferId ?? header ?? randomUUID();
    // A customer's id is scoped to its owner (customer-ids.ts): another owner's transfers are never found under it.
    const transferId = storedTransferIdFor(res, clientId, body.transferId !== undefined ? 'transferId' : 'Idempotency-Key');
    const request = { transferId, fromAccountId: body.fromAccountId, toAccountId: body.toAccountId, amount: body.amount };
    const ownerId = customerOwnerOf(res);

    // The transfer and both accounts in one read of the store (one round trip, one connection); for a customer, also
    // the id as it was stored before ids were scoped, so that a retry of a request accepted then finds it.
    const [found, from, to, legacy] = await loadTogether(
      deps.store,
      log.planLoad(transferId),
      deps.accounts.planLoad(body.fromAccountId),
      deps.accounts.planLoad(body.toAccountId),
      ...(ownerId !== undefined ? [log.planLoad(clientId)] : []),
    );
    // The unscoped id counts only for the very same request from the customer's own account (readable by it, so
    // nothing is learned): any other transfer under that id is not the customer's, and is neither shown nor in the way.
    const legacyRequest = { ...request, transferId: clientId };
    const sameLegacy =
      ownerId !== undefined && !found.state.request && legacy?.state.request && sameRequest(legacy.state.request, legacyRequest);
    const existing = sameLegacy && legacy ? legacy : found;
    if (sameLegacy) Object.assign(request, legacyRequest);
    // A known transfer id: same payload returns it, another payload is a conflict. Nothing new is written.
    if (existing.state.request) {
      if (!sameRequest(existing.state.request, request)) throw conflict(clientId);
      // Accepted, and not finished: its saga is started if a crash came between recording the request and starting it.
      if (existing.state.status === 'pending') {
        await startAndAnswer(deps, log, req, res, request, existing);
        return;
      }
      // From the stream just read (the truth, consistent at once), not the read model, which may lag behind it.
      res
        .status(200)
        .location(`/transfers/${clientId}`)
        .json(viewForCaller(res, viewFromLog(request.transferId, existing.state)));
      return;
    }
    // Refuse what cannot be a transfer before anything is written.
    if (from.state.status === 'none')
      throw rejectionProblemWith422(
        { type: 'account_not_found', message: `Account ${body.fromAccountId} does not exist` },
        'fromAccountId',
      );
    // A customer learns whether another owner's account can receive its transfer, not why: one that does not exist
    // and one in another currency answer alike (never that account's currency).
    const unreadableTarget = ownerId !== undefined && (to.state.status === 'none' || to.state.ownerId !== ownerId);
    if (unreadableTarget && (to.state.status === 'none' || currencyMismatch(from.state, to.state)))
      throw new HttpProblem(
        422,
        problemType('account_not_found'),
        'Account not found',
        `No account ${body.toAccountId} that this transfer can be paid into`,
        [{ field: 'toAccountId', message: 'is not an account this transfer can be paid into' }],
      );
    if (to.state.status === 'none')
      throw rejectionProblemWith422({ type: 'account_not_found', message: `Account ${body.toAccountId} does not exist` }, 'toAccountId');
    const mismatch = currencyMismatch(from.state, to.state);
    if (mismatch) throw rejectionProblem(mismatch, 'toAccountId');
    try {
      await startAndAnswer(deps, log, req, res, request, existing);
    } catch (error) {
      if (error instanceof TransferConflictError) throw conflict(clientId);
      if (error instanceof TransferRejectedError) throw rejectionProblem(error.rejection);
      throw error;
    }
  });

  /**
   * GET /transfers: from the transfers read model, filtered by account (source or target), status and
   * creation time, oldest first, paged by a keyset cursor (creation time, id) that stays stable while
   * new transfers arrive. A customer sees only transfers from or to accounts of its owner.
   */
  router.get('/transfers', async (req, res) => {
    const query = parse(TransferListQuery, req.query, 'query');
    const principal = principalOf(res);
    const ownerId = customerOwnerOf(res);
    // A customer's batch id is scoped to its owner (as transfer ids are); it may also name a batch as stored (an
    // operator's batch paying into its accounts).
    const scopedBatchId = query.batchId !== undefined && ownerId !== undefined ? scopedTransferId(ownerId, query.batchId) : undefined;
    const { rows, more } = await listTransfers(deps.readModels, {
      ...query,
      ...(query.batchId !== undefined ? { batchId: scopedBatchId !== undefined ? [scopedBatchId, query.batchId] : query.batchId } : {}),
      ...(principal?.role === 'customer' ? { ownerId: principal.ownerId } : {}),
      after: query.after ? decodeCursor(query.after) : undefined,
    });
    const last = rows.at(-1);
    res.json({
      transfers: rows.map((row) => viewForCaller(res, transferRowView(row))),
      ...(more && last ? { next: encodeCursor({ at: last.created_at.toISOString(), id: last.transfer_id }) } : {}),
    });
  });

  router.get('/transfers/:id', async (req, res) => {
    const { id: given } = parse(TransferParams, req.params, 'path');
    // A customer's id, as access control resolved it to a stored id it may read (customer-ids.ts); an operator's as given.
    const id = (res.locals.readableTransferId as string | undefined) ?? given;
    const query = parse(TransferQuery, req.query, 'query');
    await awaitProjection(deps, 'transfers', query.minPosition);
    const deadline = Date.now() + (query.wait ?? 0) * 1000;
    // A long poll counts under the key's cap of waits in progress (429 beyond it); it stops when the client goes away.
    const waiting = query.wait ? holdWait(res, deadline) : undefined;
    let view = await readView(id);
    while (view && !isTerminalStatus(view.status) && Date.now() < deadline && !waiting?.abandoned) {
      await new Promise((r) => setTimeout(r, 50));
      view = await readView(id);
    }
    if (!view) throw new HttpProblem(404, problemType('transfer-not-found'), 'Transfer not found', `No transfer ${given}`);
    res.json(viewForCaller(res, view));
  });

  return router;
}

/**
 * Starts the saga of a transfer (or a reversal) and answers: 201 with the finished transfer, read
 * from its own stream, when the client prefers to wait (`Prefer: wait=N`, RFC 7240) and the saga ends
 * in time (a long poll on the workflow's completion); 202 pending otherwise; 200 for a known transfer.
 */
export async function startAndAnswer(
  deps: ApiDeps,
  log: TransferLog,
  req: Request,
  res: Response,
  request: TransferRequest,
  /** The request's transfer stream as the caller just read it: acceptance decides on it instead of reading it again. */
  preloaded?: LoadedTransfer,
): Promise<void> {
  const started = await acceptTransfer(
    { client: deps.temporal, taskQueue: deps.taskQueue, transfers: log },
    { ...request, correlationId: res.locals.requestId as string, actor: actorOf(res) },
    { eager: deps.eagerStart, ...(preloaded ? { preloaded } : {}) },
  );
  if (started.created) deps.metrics.sagaStarts.inc({ eager: String(started.eagerlyStarted) });
  // A customer sees its own ids (customer-ids.ts); operators the stored ones.
  const shown = viewForCaller(res, { ...request, status: 'pending', steps: [] });
  res.location(`/transfers/${shown.transferId}`);
  const waitSeconds = preferredWait(req.get('Prefer'));
  if (waitSeconds !== undefined) {
    res.set('Preference-Applied', `wait=${waitSeconds}`);
    if (await settledWithin(started.handle.result(), waitSeconds * 1000)) {
      res
        .status(started.created ? 201 : 200)
        .json(viewForCaller(res, viewFromLog(request.transferId, (await log.load(request.transferId)).state)));
      return;
    }
  }
  res.status(started.created ? 202 : 200).json(shown);
}

/** The longest `Prefer: wait=N` honoured, in seconds. */
export const MAX_PREFER_WAIT_SECONDS = 10;

/** `Prefer: wait=N` (RFC 7240, seconds), capped at MAX_PREFER_WAIT_SECONDS; undefined when absent or unparseable (a preference is never an error). */
export function preferredWait(header: string | undefined): number | undefined {
  if (!header) return undefined;
  for (const preference of header.split(',')) {
    const match = /^\s*wait\s*=\s*"?(\d{1,6})"?\s*(?:;.*)?$/i.exec(preference);
    if (match) return Math.min(Number(match[1]), MAX_PREFER_WAIT_SECONDS);
  }
  return undefined;
}

/** True when `promise` settles within `ms` (whatever its outcome); false on timeout. */
export async function settledWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([
      promise.then(
        () => true,
        () => true,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** A transfer's view from its own stream (the event store: consistent at once, unlike the read model). */
export function viewFromLog(transferId: string, state: TransferState) {
  const reversedBy = [...state.reversals].map(([reversalId, r]) => ({
    reversalId,
    amount: r.amount,
    ...(r.released ? { released: true } : {}),
  }));
  return {
    transferId,
    fromAccountId: state.request!.fromAccountId,
    toAccountId: state.request!.toAccountId,
    amount: state.request!.amount,
    status: state.status === 'none' ? 'pending' : state.status,
    ...(state.failureReason ? { failureReason: state.failureReason } : {}),
    steps: state.steps,
    ...(state.steps[0] ? { createdAt: state.steps[0].at } : {}),
    ...(state.steps.at(-1) ? { updatedAt: state.steps.at(-1)!.at } : {}),
    ...(state.request!.reversalOf ? { reversalOf: state.request!.reversalOf } : {}),
    ...(reversedBy.length ? { reversedBy } : {}),
    ...(state.accepted?.batchId !== undefined ? { batchId: state.accepted.batchId } : {}),
  };
}

function conflict(transferId: string): HttpProblem {
  return new HttpProblem(
    409,
    problemType('transfer-conflict'),
    'Transfer conflict',
    `Transfer ${transferId} already exists with a different payload`,
    [{ field: 'transferId', message: 'was already used with a different payload' }],
  );
}

/** An unknown account named in the body is a semantic error of the request (422), not a missing resource. */
function rejectionProblemWith422(rejection: { type: 'account_not_found'; message: string }, field: string): HttpProblem {
  return new HttpProblem(422, problemType(rejection.type), 'Account not found', rejection.message, [{ field, message: 'does not exist' }]);
}
