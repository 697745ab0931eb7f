import { Router, type Response } from 'express';
import { Books, closeBusinessDay } from '../application/books';
import { acceptException, ExceptionLog, rejectException } from '../application/late-record-exceptions';
import { ACCOUNT_STREAM_PREFIX, accountStream } from '../domain/account-events';
import { BOOKS_STREAM_PREFIX } from '../domain/books-decider';
import { businessDayBounds } from '../domain/business-calendar';
import { EXCEPTION_STREAM_PREFIX, type ExceptionState } from '../domain/late-record-exception';
import type { Rejection } from '../domain/rejection';
import { parsePosition } from '../eventstore/event-store';
import { exceptionRowView, exceptionView, listExceptions } from '../projections/exceptions-queries';
import { accountScope, bothScopes, streamsScope } from '../projections/read-scope';
import { correctionNoticeView, correctionsAfter, findClosedDay, statementOf } from '../projections/statements-queries';
import { holdsOpenAt } from '../projections/holds-queries';
import { actorOf, requestContext } from './access-control';
import type { ApiDeps } from './api-deps';
import { businessTimeOf } from './business-time-settings';
import { awaitProjection } from './consistency';
import { HttpProblem, problemType } from './problem';
import { rejectionProblem } from './rejection-status';
import {
  CloseBooksBody,
  CorrectionsQuery,
  EmptyBody,
  ExceptionParams,
  ExceptionsQuery,
  ReadQuery,
  RejectExceptionBody,
  StatementParams,
} from './schemas';
import { parse } from './validate';

/**
 * Business time (issue 14): closing the books, statements, correction notices, and the late records
 * held for manual handling. Reads come from the business-time read model (projections/); writes go
 * through the one command path into the streams `books-<zone>` and `exception-<id>`.
 */

const PROJECTION = 'business-time';

/** A refused rule as a problem: a missing exception is 404, one in the other final state or being accepted 409, the rest 422. */
function problemOf(rejection: Rejection, field?: string): HttpProblem {
  if (rejection.type === 'exception_not_found')
    return new HttpProblem(404, problemType('exception-not-found'), 'Exception not found', rejection.message);
  if (rejection.type === 'exception_closed' || rejection.type === 'exception_in_progress') {
    return new HttpProblem(
      409,
      problemType(rejection.type),
      rejection.type === 'exception_closed' ? 'Exception closed' : 'Exception being accepted',
      rejection.message,
    );
  }
  return rejectionProblem(rejection, field);
}

/** An exception as the API shows it, from its own stream (exact at once, unlike the read model). */
function viewOfState(state: ExceptionState) {
  const held = state.held!;
  const final = state.status === 'accepted' || state.status === 'rejected';
  return exceptionView({
    exceptionId: state.exceptionId,
    status: state.status as Exclude<ExceptionState['status'], 'none'>,
    accountId: held.accountId,
    kind: held.kind,
    amount: held.amount,
    occurredAt: held.occurredAt,
    lateByMs: held.lateByMs,
    maxLatenessMs: held.maxLatenessMs,
    heldAt: state.heldAt ? new Date(state.heldAt).toISOString() : '',
    request: held.request,
    heldBy: held.by ?? null,
    decidedBy: final ? (state.by ?? null) : null,
    decidedAt: final && state.decidedAt ? new Date(state.decidedAt).toISOString() : null,
    rejectReason: state.rejectReason ?? null,
    lastRefusal: state.lastRefusal ?? null,
    applied: state.applied ? { revision: Number(state.applied.accountRevision), position: state.applied.position } : null,
  });
}

export function businessTimeRoutes(deps: ApiDeps): Router {
  const router = Router();
  const books = new Books(deps.store);
  const exceptions = new ExceptionLog(deps.store);
  const context = (res: Response) => requestContext(res);

  /** Closes a business day of BOOKS_TIMEZONE, and every open day before it (idempotent, ordered; not before the day has ended). */
  router.post('/books/close', async (req, res) => {
    const { date } = parse(CloseBooksBody, req.body, 'body');
    const settings = businessTimeOf(deps);
    const result = await closeBusinessDay(books, settings.timezone, date, settings.now(), context(res));
    if (!result.ok) throw problemOf(result.rejection, 'date');
    const { ok: _ok, ...body } = result;
    res.status(200).json(body);
  });

  router.get('/accounts/:id/statements/:date', async (req, res) => {
    const { id, date } = parse(StatementParams, req.params, 'path');
    const query = parse(ReadQuery, req.query, 'query');
    // Its rows: the account's movements and the closed days (an exception or another account's event is not part of it).
    await awaitProjection(
      deps,
      PROJECTION,
      query.minPosition,
      (e) => e.stream === accountStream(id) || e.stream.startsWith(BOOKS_STREAM_PREFIX),
    );
    const exists = (await deps.store.readStream(accountStream(id), { maxCount: 1 })).length > 0;
    if (!exists) throw new HttpProblem(404, problemType('account-not-found'), 'Account not found', `No account ${id}`);
    const { timezone } = businessTimeOf(deps);
    const closed = await findClosedDay(deps.readModels, timezone, date);
    const bounds = closed
      ? { startsAt: closed.starts_at, endsAt: closed.ends_at }
      : (({ startsAt, endsAt }) => ({ startsAt: new Date(startsAt), endsAt: new Date(endsAt) }))(businessDayBounds(date, timezone));
    const statement = await statementOf(deps.readModels, { accountId: id, date, timezone, ...bounds, closed });
    // The holds that reserved money on the account at the end of the day (they change `available`, not the balance).
    const openHolds = (await holdsOpenAt(deps.readModels, id, bounds.endsAt)).map((row) => ({
      holdId: row.hold_id,
      toAccountId: row.to_account_id,
      amount: Number(row.reserved),
      expiresAt: row.expires_at.toISOString(),
    }));
    res.json({ ...statement, openHolds, heldAtClose: openHolds.reduce((sum, h) => sum + h.amount, 0) });
  });

  /** Correction notices of BOOKS_TIMEZONE's books, in the order they arose; `next` always comes back so a follower polls with it. */
  router.get('/corrections', async (req, res) => {
    const query = parse(CorrectionsQuery, req.query, 'query');
    // Notices come from movements and closes of the books, of every account: exceptions are not part of them.
    await awaitProjection(deps, PROJECTION, query.minPosition, streamsScope(ACCOUNT_STREAM_PREFIX, BOOKS_STREAM_PREFIX));
    const { timezone } = businessTimeOf(deps);
    const rows = await correctionsAfter(deps.readModels, timezone, query.after ? parsePosition(query.after) : undefined, query.limit);
    const corrections = rows.map(correctionNoticeView);
    res.json({ corrections, next: corrections.at(-1)?.cursor ?? query.after ?? null });
  });

  router.get('/exceptions', async (req, res) => {
    const query = parse(ExceptionsQuery, req.query, 'query');
    const exceptionStreams = streamsScope(EXCEPTION_STREAM_PREFIX);
    await awaitProjection(
      deps,
      PROJECTION,
      query.minPosition,
      query.accountId === undefined ? exceptionStreams : bothScopes(exceptionStreams, accountScope(query.accountId)),
    );
    const page = await listExceptions(deps.readModels, {
      status: query.status,
      accountId: query.accountId,
      after: query.after ? parsePosition(query.after) : undefined,
      limit: query.limit,
    });
    const last = page.rows.at(-1);
    res.json({ exceptions: page.rows.map(exceptionRowView), next: page.more && last ? `${last.held_commit}.${last.held_prepare}` : null });
  });

  /** Applies a held late record to its account (an operator's override); idempotent. */
  router.post('/exceptions/:id/accept', async (req, res) => {
    const { id } = parse(ExceptionParams, req.params, 'path');
    parse(EmptyBody, req.body ?? {}, 'body');
    const settings = businessTimeOf(deps);
    const outcome = await acceptException(
      { store: deps.store, accounts: deps.accounts, exceptions, nowMs: settings.now },
      id,
      context(res),
      actorOf(res),
    );
    if (!outcome.ok) {
      if (outcome.rejection.type === 'exception_in_progress') res.set('Retry-After', '1');
      throw problemOf(outcome.rejection);
    }
    const applied = outcome.applied;
    res.status(200).json({
      exception: viewOfState(outcome.state),
      account: { accountId: applied.accountId, balance: applied.balanceAfter, revision: applied.revision, position: applied.position },
      ...(outcome.position ? { position: outcome.position } : {}),
    });
  });

  /** Closes a held late record without applying it; idempotent. */
  router.post('/exceptions/:id/reject', async (req, res) => {
    const { id } = parse(ExceptionParams, req.params, 'path');
    const body = parse(RejectExceptionBody, req.body ?? {}, 'body');
    const outcome = await rejectException(exceptions, id, context(res), actorOf(res), body.reason);
    if (!outcome.ok) throw problemOf(outcome.rejection);
    res.status(200).json({ exception: viewOfState(outcome.state), ...(outcome.position ? { position: outcome.position } : {}) });
  });

  return router;
}
