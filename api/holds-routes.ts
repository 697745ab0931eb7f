import { randomUUID } from 'node:crypto';
import { Router, type Request, type Response } from 'express';
import { loadTogether } from '../application/event-sourced-repository';
import { HoldLog, type LoadedHold } from '../application/hold-log';
import { TransferLog } from '../application/transfer-log';
import { currencyMismatch } from '../domain/account-decider';
import type { HoldRequest, HoldState } from '../domain/hold';
import type { AcceptedBy } from '../domain/transfer-events';
import { acceptHold, captureHold, HoldRejectedError, holdSagaSteps, voidHold, type HoldDeps } from '../temporal/hold-client';
import type { SagaStep } from '../workflows/transfer-saga-contract';
import type { HoldSagaStatus } from '../workflows/hold-saga-contract';
import { actorOf } from './access-control';
import type { ApiDeps } from './api-deps';
import { customerOwnerOf, shownTransferId, storedTransferIdFor } from './customer-ids';
import { HttpProblem, problemType } from './problem';
import { rejectionProblem } from './rejection-status';
import {
  CaptureHoldBody,
  CreateHoldBody,
  DEFAULT_HOLD_EXPIRES_IN,
  EmptyBody,
  HoldListQuery,
  HoldParams,
  IdempotencyKeyHeader,
} from './schemas';
import { preferredWait } from './transfers-routes';
import { parse } from './validate';
import { decodeCursor, encodeCursor } from './page-cursor';
import { listHolds, holdRowView } from '../projections/holds-queries';

/**
 * Holds, two-phase transfers (issue 25, docs/holds.md), modelled on POST /transfers:
 * - `POST /holds`: reserve money on the source until a capture, a void or the expiry. Idempotent by `holdId` (or
 *   `Idempotency-Key`), scoped to a customer's owner as transfer ids are (customer-ids.ts): the hold's id is also the id of
 *   the transfer its capture makes. What cannot be a hold is refused before anything is written.
 * - `POST /holds/{id}/capture`, `POST /holds/{id}/void`: recorded on the hold's stream (where each is decided once, so a
 *   capture and the expiry racing have one winner), then the saga is woken and the answer waits for the settlement.
 * - `GET /holds/{id}`: the hold's own stream (consistent at once) with its saga's steps; `GET /holds`: the read model.
 * Who may do what is decided before these handlers run (access-control.ts); a customer sees its own hold ids.
 */
export function holdsRoutes(deps: ApiDeps): Router {
  const router = Router();
  const holds = new HoldLog(deps.store);
  const transfers = new TransferLog(deps.store);
  const holdDeps: HoldDeps = { client: deps.temporal, taskQueue: deps.taskQueue, holds, transfers };

  router.post('/holds', async (req, res) => {
    const body = parse(CreateHoldBody, req.body, 'body');
    const header = req.get('Idempotency-Key');
    if (header !== undefined) parse(IdempotencyKeyHeader, { 'Idempotency-Key': header }, 'header');
    if (header !== undefined && body.holdId !== undefined && header !== body.holdId) {
      throw new HttpProblem(400, problemType('validation-error'), 'Conflicting idempotency keys', 'Idempotency-Key and holdId differ', [
        { field: 'Idempotency-Key', message: 'must equal holdId when both are given' },
      ]);
    }
    const clientId = body.holdId ?? header ?? randomUUID();
    // A customer's id is scoped to its owner, exactly as a transfer id (the hold's id is its capture's transfer id).
    const holdId = storedTransferIdFor(res, clientId, body.holdId !== undefined ? 'holdId' : 'Idempotency-Key');
    const ownerId = customerOwnerOf(res);

    const [found, from, to] = await loadTogether(
      deps.store,
      holds.planLoad(holdId),
      deps.accounts.planLoad(body.fromAccountId),
      deps.accounts.planLoad(body.toAccountId),
    );
    // A known hold id: the same accounts and amount are a repeat (whatever expiresIn says: the expiry was fixed when it
    // was accepted), anything else is a conflict. Nothing new is written.
    if (found.state.request) {
      if (!sameHold(found.state.request, body)) throw conflict(clientId);
      await answerAccepted(req, res, found.state.request, found, false);
      return;
    }
    // Refuse what cannot be a hold before anything is written (as POST /transfers does).
    if (from.state.status === 'none')
      throw new HttpProblem(422, problemType('account_not_found'), 'Account not found', `Account ${body.fromAccountId} does not exist`, [
        { field: 'fromAccountId', message: 'does not exist' },
      ]);
    // A customer learns whether another owner's account can receive its hold's capture, not why (docs/access-control.md).
    const unreadableTarget = ownerId !== undefined && (to.state.status === 'none' || to.state.ownerId !== ownerId);
    if (unreadableTarget && (to.state.status === 'none' || currencyMismatch(from.state, to.state)))
      throw new HttpProblem(
        422,
        problemType('account_not_found'),
        'Account not found',
        `No account ${body.toAccountId} that this hold can be paid into`,
        [{ field: 'toAccountId', message: 'is not an account this hold can be paid into' }],
      );
    if (to.state.status === 'none')
      throw new HttpProblem(422, problemType('account_not_found'), 'Account not found', `Account ${body.toAccountId} does not exist`, [
        { field: 'toAccountId', message: 'does not exist' },
      ]);
    const mismatch = currencyMismatch(from.state, to.state);
    if (mismatch) throw rejectionProblem(mismatch, 'toAccountId');

    // The expiry is fixed here, at acceptance, and recorded with the request: the saga's timer runs to it.
    const expiresAt = new Date(Date.now() + (body.expiresIn ?? DEFAULT_HOLD_EXPIRES_IN) * 1000).toISOString();
    const request: HoldRequest = {
      holdId,
      fromAccountId: body.fromAccountId,
      toAccountId: body.toAccountId,
      amount: body.amount,
      expiresAt,
    };
    try {
      await answerAccepted(req, res, request, found, true);
    } catch (error) {
      if (!(error instanceof HoldRejectedError)) throw error;
      if (error.rejection.type === 'hold_conflict') {
        // The same request sent twice at once: the other one recorded it first (with its own expiresAt). A repeat.
        const now = await holds.load(holdId);
        if (now.state.request && sameHold(now.state.request, body)) {
          await answerAccepted(req, res, now.state.request, now, false);
          return;
        }
        throw conflict(clientId);
      }
      throw rejectionProblem(error.rejection);
    }
  });

  /**
   * Records the request (a repeat records nothing) and starts its saga (a repeat whose saga never started after a crash
   * starts it now), then answers: 202 with the pending hold, or 201 with the placed (or refused) hold when the client
   * prefers to wait (`Prefer: wait=N`) and the saga leaves `pending` in time; 200 for a repeat.
   */
  async function answerAccepted(req: Request, res: Response, request: HoldRequest, loaded: LoadedHold, fresh: boolean): Promise<void> {
    const shown = shownHoldId(res, request.holdId);
    res.location(`/holds/${shown}`);
    let state = loaded.state;
    let created = false;
    if (!state.request || state.status === 'pending') {
      const accepted = await acceptHold(holdDeps, request, acceptedBy(res), loaded);
      created = fresh && accepted.created;
      state = accepted.state;
    }
    const waitSeconds = preferredWait(req.get('Prefer'));
    if (waitSeconds !== undefined && state.status === 'pending') {
      res.set('Preference-Applied', `wait=${waitSeconds}`);
      const deadline = Date.now() + waitSeconds * 1000;
      // The hold's stream says when the saga has placed (or refused) the reservation.
      while (state.status === 'pending' && Date.now() < deadline && !res.req.socket.destroyed) {
        await new Promise((r) => setTimeout(r, 50));
        state = (await holds.load(request.holdId)).state;
      }
      if (state.status !== 'pending') {
        res.status(created ? 201 : 200).json(await viewFor(res, request.holdId, state));
        return;
      }
    }
    res.status(created ? 202 : 200).json(holdView(shown, state, []));
  }

  async function viewFor(res: Response, holdId: string, state: HoldState, steps?: SagaStep[]) {
    return holdView(shownHoldId(res, holdId), state, steps ?? (await holdSagaSteps(deps.temporal, holdId, state.settled)));
  }

  /** The stored id the request is about: a customer's as access control resolved it (its own first), an operator's as given. */
  function storedHoldId(req: Request, res: Response): string {
    const { id } = parse(HoldParams, req.params, 'path');
    return (res.locals.holdId as string | undefined) ?? id;
  }

  router.post('/holds/:id/capture', async (req, res) => {
    const holdId = storedHoldId(req, res);
    const body = parse(CaptureHoldBody, req.body ?? {}, 'body');
    let answer: HoldSagaStatus;
    try {
      answer = await captureHold(holdDeps, holdId, body.amount, acceptedBy(res));
    } catch (error) {
      throw holdProblem(error, req.params.id!);
    }
    res.json(await viewFor(res, holdId, (await holds.load(holdId)).state, answer.steps));
  });

  router.post('/holds/:id/void', async (req, res) => {
    const holdId = storedHoldId(req, res);
    parse(EmptyBody, req.body ?? {}, 'body');
    let answer: HoldSagaStatus;
    try {
      answer = await voidHold(holdDeps, holdId, acceptedBy(res));
    } catch (error) {
      throw holdProblem(error, req.params.id!);
    }
    res.json(await viewFor(res, holdId, (await holds.load(holdId)).state, answer.steps));
  });

  router.get('/holds/:id', async (req, res) => {
    const holdId = storedHoldId(req, res);
    const { state } = await holds.load(holdId);
    if (!state.request) throw notFound(req.params.id!);
    res.json(await viewFor(res, holdId, state));
  });

  /**
   * GET /holds: from the holds read model, by account (source or target) and status, oldest first, paged by a keyset
   * cursor. A customer sees only holds from or to accounts of its owner.
   */
  router.get('/holds', async (req, res) => {
    const query = parse(HoldListQuery, req.query, 'query');
    const ownerId = customerOwnerOf(res);
    const { rows, more } = await listHolds(deps.readModels, {
      limit: query.limit,
      ...(query.accountId !== undefined ? { accountId: query.accountId } : {}),
      ...(query.status !== undefined ? { status: query.status } : {}),
      ...(ownerId !== undefined ? { ownerId } : {}),
      ...(query.after !== undefined ? { after: decodeCursor(query.after) } : {}),
    });
    const last = rows.at(-1);
    res.json({
      holds: rows.map((row) => ({
        ...holdRowView(row),
        holdId: shownHoldId(res, row.hold_id),
        ...(row.currency !== null ? { currency: row.currency } : {}),
        ...(row.failure_reason !== null ? { failureReason: row.failure_reason } : {}),
      })),
      ...(more && last ? { next: encodeCursor({ at: last.created_at.toISOString(), id: last.hold_id }) } : {}),
    });
  });

  return router;
}

/** How long a read waits for the saga's steps before answering without them. */

function acceptedBy(res: Response): AcceptedBy {
  return { actor: actorOf(res), correlationId: res.locals.requestId as string };
}

/** A customer sees its own ids (customer-ids.ts); operators the stored ones. */
function shownHoldId(res: Response, holdId: string): string {
  const ownerId = customerOwnerOf(res);
  return ownerId === undefined ? holdId : shownTransferId(ownerId, holdId);
}

/** The same hold asked for again: its accounts and amount (its expiresAt was fixed when the first was accepted). */
function sameHold(recorded: HoldRequest, body: { fromAccountId: string; toAccountId: string; amount: number }): boolean {
  return recorded.fromAccountId === body.fromAccountId && recorded.toAccountId === body.toAccountId && recorded.amount === body.amount;
}

/** A hold's view from its own stream (the event store: consistent at once), with its saga's steps. */
export function holdView(holdId: string, state: HoldState, steps: SagaStep[]) {
  const request = state.request!;
  return {
    holdId,
    fromAccountId: request.fromAccountId,
    toAccountId: request.toAccountId,
    amount: request.amount,
    ...(state.currency !== undefined ? { currency: state.currency } : {}),
    status: state.status,
    expiresAt: request.expiresAt,
    ...(state.captured !== undefined ? { captured: state.captured } : {}),
    ...(state.released !== undefined ? { released: state.released } : {}),
    ...(state.failureReason ? { failureReason: state.failureReason } : {}),
    steps: steps.map((s) => ({ name: s.name, at: s.at, status: s.status, ...(s.detail ? { detail: s.detail } : {}) })),
  };
}

function notFound(id: string): HttpProblem {
  return new HttpProblem(404, problemType('hold-not-found'), 'Hold not found', `No hold ${id}`);
}

/** A capture or a void the hold's stream refused (nothing written): 404, 409 for its state, 422 for the amount. */
function holdProblem(error: unknown, shownId: string): unknown {
  if (!(error instanceof HoldRejectedError)) return error;
  const { rejection } = error;
  if (rejection.type === 'hold_not_found') return notFound(shownId);
  return rejectionProblem(
    rejection,
    rejection.type === 'capture_exceeds_hold' || rejection.type === 'invalid_amount' ? 'amount' : undefined,
  );
}

function conflict(holdId: string): HttpProblem {
  return new HttpProblem(409, problemType('hold-conflict'), 'Hold conflict', `Hold ${holdId} already exists with a different payload`, [
    { field: 'holdId', message: 'was already used with a different payload' },
  ]);
}
