import { randomUUID } from 'node:crypto';
import { Router, type Response } from 'express';
import { batchItemTransferId, BatchLog } from '../application/batch-log';
import { loadTogether, type LoadPlan } from '../application/event-sourced-repository';
import { accountStream } from '../domain/account-events';
import {
  checkBatchRequest,
  MAX_BATCH_ITEMS,
  sameBatch,
  type BatchItem,
  type BatchRequest,
  type TransferBatchState,
} from '../domain/transfer-batch';
import { getBatch, listBatches, listBatchItems, type BatchItemRow, type BatchRow } from '../projections/transfer-batches-queries';
import { acceptBatch, BatchConflictError, BatchRejectedError, queryBatch } from '../temporal/batch-client';
import type { BatchSagaStatus } from '../workflows/batch-saga-contract';
import { actorOf } from './access-control';
import type { ApiDeps } from './api-deps';
import { awaitProjection } from './consistency';
import { customerOwnerOf, shownTransferId, storedTransferIdFor } from './customer-ids';
import { decodeCursor, encodeCursor } from './page-cursor';
import { HttpProblem, problemType } from './problem';
import { rejectionProblem } from './rejection-status';
import { IdempotencyKeyHeader, TransferBatchListQuery, TransferBatchParams, TransferBatchQuery } from './schemas';
import { parseTransferBatchBody } from './transfer-batch-body';
import { preferredWait, settledWithin } from './transfers-routes';
import { parse } from './validate';

/** The read model the batch reads come from (projections/all-projections.ts), for ?minPosition. */
const BATCHES_PROJECTION = 'transfer-batches';
/** How long a read asks the saga for its progress before answering without it. */
const PROGRESS_DEADLINE_MS = 2_000;

/**
 * Batches of transfers (issue 26, domain/transfer-batch.ts), modelled on POST /transfers:
 * - `POST /transfer-batches`: up to TRANSFER_BATCH_MAX_ITEMS transfers moved by one saga. Idempotent by `batchId` (or
 *   `Idempotency-Key`), scoped to a customer's owner as transfer ids are (customer-ids.ts), and so are the items' ids.
 *   Everything is checked before anything is written: the body (400 naming `items[i].field`), who may move money from
 *   every source (access-control.ts, 403 naming `items[i].fromAccountId`), and the accounts, all in one read of the store
 *   (422 naming the item's field, as POST /transfers refuses its one transfer).
 * - `GET /transfer-batches/{id}`: the batch and a page of its items' outcomes (the batches read model; the batch's own
 *   stream while the read model has not seen it yet), with the saga's progress when it answers.
 * - `GET /transfer-batches`: the batches, newest first (operators).
 */
export function transferBatchesRoutes(deps: ApiDeps): Router {
  const router = Router();
  const batches = new BatchLog(deps.store);
  const maxItems = deps.transferBatchMaxItems ?? MAX_BATCH_ITEMS;

  router.post('/transfer-batches', async (req, res) => {
    const body = parseTransferBatchBody(req.body, maxItems);
    const header = req.get('Idempotency-Key');
    if (header !== undefined) parse(IdempotencyKeyHeader, { 'Idempotency-Key': header }, 'header');
    if (header !== undefined && body.batchId !== undefined && header !== body.batchId) {
      throw new HttpProblem(400, problemType('validation-error'), 'Conflicting idempotency keys', 'Idempotency-Key and batchId differ', [
        { field: 'Idempotency-Key', message: 'must equal batchId when both are given' },
      ]);
    }
    const clientId = body.batchId ?? header ?? randomUUID();
    // A customer's ids are scoped to its owner (customer-ids.ts): the batch's, and each item's.
    const batchId = storedTransferIdFor(res, clientId, body.batchId !== undefined ? 'batchId' : 'Idempotency-Key');
    // The batch as the client named it (an item without an id gets one derived from the batch and its place, so a retry
    // names the same transfers), checked as a whole: scoping an id keeps ids apart, so the check holds for the stored ids.
    const named: BatchRequest = {
      batchId: clientId,
      atomic: body.atomic,
      items: body.items.map((item, i) => ({
        transferId: item.transferId ?? batchItemTransferId(batchId, i),
        fromAccountId: item.fromAccountId,
        toAccountId: item.toAccountId,
        amount: item.amount,
      })),
    };
    const bad = checkBatchRequest(named, maxItems);
    if (bad)
      throw new HttpProblem(400, problemType('validation-error'), 'Invalid request body', `${bad.field}: ${bad.message}`, [
        { field: bad.field, message: bad.message },
      ]);
    const request: BatchRequest = {
      batchId,
      atomic: body.atomic,
      items: named.items.map((item, i) => ({ ...item, transferId: storedTransferIdFor(res, item.transferId, `items[${i}].transferId`) })),
    };

    // The batch's stream and the opening of every account it names, in one read of the store.
    const accountIds = [...new Set(request.items.flatMap((item) => [item.fromAccountId, item.toAccountId]))];
    const [found, ...openings] = await loadTogether(deps.store, batches.planLoad(batchId), ...accountIds.map((id) => openingPlan(id)));
    const shown = shownBatch(res, request);
    res.location(`/transfer-batches/${shown.batchId}`);
    // A known batch id: the same batch is a repeat (nothing new is written), another payload a conflict.
    if (found.state.request) {
      if (!sameBatch(found.state.request, request)) throw conflict(clientId);
      if (found.state.status !== 'pending') {
        // Settled: from the stream just read (the truth, consistent at once), as POST /transfers answers a known transfer.
        res.status(200).json(acceptedView(shown, found.state));
        return;
      }
    } else {
      const opened = new Map(accountIds.map((id, i) => [id, openings[i]!.state]));
      const refusal = refusedItem(request.items, opened, customerOwnerOf(res));
      if (refusal) throw refusal;
    }

    let accepted: Awaited<ReturnType<typeof acceptBatch>>;
    try {
      accepted = await acceptBatch({ client: deps.temporal, taskQueue: deps.taskQueue, batches }, request, {
        actor: actorOf(res),
        correlationId: res.locals.requestId as string,
      });
    } catch (error) {
      if (error instanceof BatchConflictError) throw conflict(clientId);
      if (error instanceof BatchRejectedError) throw rejectionProblem(error.rejection);
      throw error;
    }
    const waitSeconds = preferredWait(req.get('Prefer'));
    if (waitSeconds !== undefined) {
      res.set('Preference-Applied', `wait=${waitSeconds}`);
      if (await settledWithin(accepted.handle.result(), waitSeconds * 1000)) {
        const { state } = await batches.load(batchId);
        if (state.status !== 'pending') {
          res.status(accepted.created ? 201 : 200).json(acceptedView(shown, state));
          return;
        }
      }
    }
    res.status(accepted.created ? 202 : 200).json(acceptedView(shown, accepted.state));
  });

  /**
   * GET /transfer-batches/{id}: the batch from the batches read model with a page of its items in their order (`cursor`:
   * the items after that place; `status`: only items with that outcome), and the saga's progress while it runs.
   */
  router.get('/transfer-batches/:id', async (req, res) => {
    const { id: given } = parse(TransferBatchParams, req.params, 'path');
    // A customer's id, as access control resolved it to a stored id it may read; an operator's as given.
    const batchId = (res.locals.readableBatchId as string | undefined) ?? given;
    const query = parse(TransferBatchQuery, req.query, 'query');
    await awaitProjection(deps, BATCHES_PROJECTION, query.minPosition);
    const afterIndex = query.cursor !== undefined ? Number(query.cursor) : undefined;
    const page = {
      limit: query.limit,
      ...(afterIndex !== undefined ? { afterIndex } : {}),
      ...(query.status ? { status: query.status } : {}),
    };

    const row = await getBatch(deps.readModels, batchId);
    let view: BatchView;
    let items: BatchItemRow[];
    let more: boolean;
    if (row) {
      view = rowView(row);
      const rows = await listBatchItems(deps.readModels, batchId, { ...page, limit: page.limit + 1 });
      more = rows.length > page.limit;
      items = rows.slice(0, page.limit);
    } else {
      // Not projected yet: its stream knows it (the API records every accepted batch there before its saga starts).
      const { state } = await batches.load(batchId);
      if (!state.request) throw notFound(given);
      view = logView(state);
      ({ items, more } = itemsFromLog(state, page));
    }
    const progress = view.status === 'pending' ? await sagaProgress(deps, batchId) : undefined;
    const last = items.at(-1);
    const ownerId = customerOwnerOf(res);
    const show = (id: string) => (ownerId === undefined ? id : shownTransferId(ownerId, id));
    const { actor, ...batch } = view;
    res.json({
      ...batch,
      batchId: show(batch.batchId),
      // Who accepted it (a key id): for operators.
      ...(ownerId === undefined && actor !== undefined ? { actor } : {}),
      ...(progress ? { progress } : {}),
      items: items.map((item) => itemView(item, show)),
      ...(more && last ? { nextCursor: String(last.index) } : {}),
    });
  });

  /** GET /transfer-batches: the batches read model, newest first, by status, paged by a keyset cursor (operators). */
  router.get('/transfer-batches', async (req, res) => {
    const query = parse(TransferBatchListQuery, req.query, 'query');
    await awaitProjection(deps, BATCHES_PROJECTION, query.minPosition);
    const rows = await listBatches(deps.readModels, {
      limit: query.limit + 1,
      ...(query.status !== undefined ? { status: query.status } : {}),
      ...(query.after !== undefined ? { before: cursorBatch(decodeCursor(query.after)) } : {}),
    });
    const shown = rows.slice(0, query.limit);
    const last = shown.at(-1);
    res.json({
      batches: shown.map((row) => rowView(row)),
      ...(rows.length > query.limit && last ? { next: encodeCursor({ at: last.acceptedAt, id: last.batchId }) } : {}),
    });
  });

  return router;
}

const cursorBatch = (cursor: { at: string; id: string }) => ({ acceptedAt: cursor.at, batchId: cursor.id });

/** What an account's first event says: it exists, whose it is, its currency. */
interface Opening {
  ownerId: string;
  currency: string;
}

/** The opening of an account as one read among others (loadTogether): its stream's first event only. */
function openingPlan(accountId: string): LoadPlan<Opening | undefined> {
  return {
    read: { stream: accountStream(accountId), fromRevision: 0n, maxCount: 1 },
    finish: (page) => {
      const first = page?.[0];
      const data = first?.type === 'AccountOpened' ? (first.data as { ownerId: unknown; currency: unknown }) : undefined;
      return Promise.resolve({
        state: data ? { ownerId: String(data.ownerId), currency: String(data.currency) } : undefined,
        revision: first ? 0n : 'no_stream',
      });
    },
  };
}

/**
 * The refusal of the first item that cannot be a transfer, as POST /transfers refuses one (422, naming the item's
 * field): a source or a target that does not exist, or a currency that differs. A customer learns whether another
 * owner's account can receive its transfer, not why (never that account's currency).
 */
function refusedItem(
  items: readonly BatchItem[],
  opened: Map<string, Opening | undefined>,
  ownerId: string | undefined,
): HttpProblem | undefined {
  for (const [i, item] of items.entries()) {
    const from = opened.get(item.fromAccountId);
    const to = opened.get(item.toAccountId);
    if (!from) return accountNotFound(`items[${i}].fromAccountId`, `Account ${item.fromAccountId} does not exist`);
    const unreadableTarget = ownerId !== undefined && to?.ownerId !== ownerId;
    if (unreadableTarget && (!to || to.currency !== from.currency))
      return new HttpProblem(
        422,
        problemType('account_not_found'),
        'Account not found',
        `No account ${item.toAccountId} that item ${i} can be paid into`,
        [{ field: `items[${i}].toAccountId`, message: 'is not an account this transfer can be paid into' }],
      );
    if (!to) return accountNotFound(`items[${i}].toAccountId`, `Account ${item.toAccountId} does not exist`);
    if (to.currency !== from.currency)
      return rejectionProblem(
        {
          type: 'currency_mismatch',
          message: `Account ${item.fromAccountId} holds ${from.currency}, ${item.toAccountId} holds ${to.currency}`,
        },
        `items[${i}].toAccountId`,
      );
  }
  return undefined;
}

/** An unknown account named in the body is a semantic error of the request (422), not a missing resource. */
function accountNotFound(field: string, message: string): HttpProblem {
  return new HttpProblem(422, problemType('account_not_found'), 'Account not found', message, [{ field, message: 'does not exist' }]);
}

/** The batch with the ids its caller sees: a customer its own (customer-ids.ts), an operator the stored ones. */
function shownBatch(res: Response, request: BatchRequest): BatchRequest {
  const ownerId = customerOwnerOf(res);
  if (ownerId === undefined) return request;
  return {
    ...request,
    batchId: shownTransferId(ownerId, request.batchId),
    items: request.items.map((item) => ({ ...item, transferId: shownTransferId(ownerId, item.transferId) })),
  };
}

/** The answer of POST /transfer-batches: the batch, its status (and counts once settled), each item's transfer id. */
function acceptedView(shown: BatchRequest, state: TransferBatchState) {
  return {
    batchId: shown.batchId,
    atomic: shown.atomic,
    status: state.status,
    itemCount: shown.items.length,
    ...(state.counts ? { counts: { ...state.counts, pending: 0 } } : {}),
    ...(state.message ? { message: state.message } : {}),
    items: shown.items.map((item, index) => ({ index, transferId: item.transferId })),
  };
}

interface BatchView {
  batchId: string;
  atomic: boolean;
  status: BatchRow['status'];
  itemCount: number;
  counts: BatchRow['counts'];
  actor?: string;
  acceptedAt?: string;
  settledAt?: string;
  message?: string;
}

function rowView(row: BatchRow): BatchView {
  return {
    batchId: row.batchId,
    atomic: row.atomic,
    status: row.status,
    itemCount: row.itemCount,
    counts: row.counts,
    actor: row.actor,
    acceptedAt: row.acceptedAt,
    ...(row.settledAt !== undefined ? { settledAt: row.settledAt } : {}),
    ...(row.message !== undefined ? { message: row.message } : {}),
  };
}

/** A batch the read model has not seen yet, from its own stream: items refused at registration are failed, the rest pending. */
function logView(state: TransferBatchState): BatchView {
  const request = state.request!;
  const failed = state.counts?.failed ?? state.rejected.size;
  const counts = state.counts
    ? { ...state.counts, pending: 0 }
    : { completed: 0, failed, compensated: 0, pending: request.items.length - failed };
  return {
    batchId: request.batchId,
    atomic: request.atomic,
    status: state.status,
    itemCount: request.items.length,
    counts,
    ...(state.accepted?.actor !== undefined ? { actor: state.accepted.actor } : {}),
    ...(state.message ? { message: state.message } : {}),
  };
}

function itemsFromLog(
  state: TransferBatchState,
  page: { limit: number; afterIndex?: number; status?: BatchItemRow['status'] },
): { items: BatchItemRow[]; more: boolean } {
  const all = state.request!.items.map((item, index): BatchItemRow => {
    const rejected = state.rejected.get(item.transferId);
    return {
      index,
      ...item,
      status: rejected ? 'failed' : 'pending',
      ...(rejected ? { failureReason: rejected.reason, failureMessage: rejected.message } : {}),
    };
  });
  const wanted = all.filter(
    (item) => (page.afterIndex === undefined || item.index > page.afterIndex) && (!page.status || item.status === page.status),
  );
  return { items: wanted.slice(0, page.limit), more: wanted.length > page.limit };
}

function itemView(item: BatchItemRow, show: (id: string) => string) {
  return {
    index: item.index,
    transferId: show(item.transferId),
    fromAccountId: item.fromAccountId,
    toAccountId: item.toAccountId,
    amount: item.amount,
    status: item.status,
    ...(item.failureReason !== undefined ? { failureReason: item.failureReason } : {}),
    ...(item.failureMessage !== undefined ? { failureMessage: item.failureMessage } : {}),
  };
}

/** The saga's progress: best effort (no saga, no worker to answer, or not in time: none; the read model is the record). */
async function sagaProgress(deps: ApiDeps, batchId: string) {
  let status: BatchSagaStatus;
  try {
    status = await deps.temporal.withDeadline(Date.now() + PROGRESS_DEADLINE_MS, () => queryBatch(deps.temporal, batchId));
  } catch {
    return undefined; // the saga cannot be asked now: the answer goes without its progress
  }
  return {
    status: status.status,
    phase: status.phase,
    refused: status.refused,
    counts: status.counts,
    ...(status.failureReason !== undefined ? { failureReason: status.failureReason } : {}),
    ...(status.failureMessage !== undefined ? { failureMessage: status.failureMessage } : {}),
  };
}

function notFound(id: string): HttpProblem {
  return new HttpProblem(404, problemType('batch-not-found'), 'Batch not found', `No batch ${id}`);
}

function conflict(batchId: string): HttpProblem {
  return new HttpProblem(
    409,
    problemType('transfer-conflict'),
    'Batch conflict',
    `Batch ${batchId} already exists with a different payload`,
    [{ field: 'batchId', message: 'was already used with a different payload' }],
  );
}
