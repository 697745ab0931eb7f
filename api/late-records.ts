import { randomUUID } from 'node:crypto';
import type { Request, Response } from 'express';
import { beforeOpeningRejection, ExceptionLog, exceptionIdForKey, holdLateRecord } from '../application/late-record-exceptions';
import { accountStream } from '../domain/account-events';
import { describeDuration, timeliness } from '../domain/lateness';
import type { LateRecordKind } from '../domain/late-record-exception';
import { actorOf, requestContext } from './access-control';
import type { ApiDeps } from './api-deps';
import { businessTimeOf } from './business-time-settings';
import type { StoredResponse } from '../stores/idempotency-store';
import { problemResponse } from './idempotent-account-writes';
import { HttpProblem, problemType } from './problem';
import { rejectionProblem } from './rejection-status';

/**
 * Deposits and withdrawals with an `occurredAt` (business time, a late record): the checks the
 * request goes through before it may be written.
 * - Outside the business times every store holds (1900-01-01 to 9999-12-31, UTC): 400 naming occurredAt, from the
 *   request schema (api/schemas.ts), before anything here.
 * - In the future beyond MAX_CLOCK_SKEW: 422 naming occurredAt, nothing written (checked at once).
 * - Before the account was opened (business time): 422 `before-account-opened` naming occurredAt, nothing written and
 *   nothing held, whether the record would be in time or too late (an exception held for it could never be applied).
 * - Older than MAX_LATENESS: 422 `too-late`, nothing written to the account, and the request kept as
 *   an exception for manual handling (stream `exception-<id>`; GET /exceptions). With an
 *   Idempotency-Key the exception id derives from the key, so a retry holds the same one (and the
 *   key's record replays the same 422); this check runs inside the keyed write, after a replay of an
 *   earlier answer, so a retry of a write that landed in time is never turned into an exception.
 * Within the limit the record is written through the normal command path with its occurredAt.
 */

export interface LateRecordRequest {
  endpoint: 'deposits' | 'withdrawals';
  accountId: string;
  amount: number;
  /** As the client sent it, normalised (ISO-8601 UTC, milliseconds). */
  occurredAt: string;
  idempotencyKey?: string;
}

/** `occurredAt` as one instant (ISO-8601 UTC, milliseconds): the same instant written two ways is the same request. */
export function normaliseOccurredAt(text: string): string {
  return new Date(Date.parse(text)).toISOString();
}

/** 422 when occurredAt lies in the future beyond the clock-skew allowance. */
export function refuseFutureRecord(deps: ApiDeps, occurredAt: string): void {
  const settings = businessTimeOf(deps);
  const t = timeliness(Date.parse(occurredAt), settings.now(), settings);
  if (t.kind !== 'future') return;
  throw new HttpProblem(
    422,
    problemType('occurred-at-in-future'),
    'occurredAt is in the future',
    `occurredAt ${occurredAt} is ${describeDuration(t.aheadByMs)} ahead; at most ${describeDuration(settings.maxClockSkewMs)} of clock skew is allowed`,
    [{ field: 'occurredAt', message: `must not be in the future (beyond ${describeDuration(settings.maxClockSkewMs)} of clock skew)` }],
  );
}

/**
 * The check to run just before the write of every late record: the answer for a record dated before its
 * account was opened (refused) or too late (after holding it as an exception), or undefined when the record
 * may be written. An account that does not exist is left to the command path (404): nothing is held for it.
 */
export function tooLateCheck(
  deps: ApiDeps,
  record: LateRecordRequest,
  req: Request,
  res: Response,
): () => Promise<StoredResponse | undefined> {
  return async () => {
    const settings = businessTimeOf(deps);
    const [opened] = await deps.store.readStream(accountStream(record.accountId), { maxCount: 1 });
    if (!opened) return undefined;
    const t = timeliness(Date.parse(record.occurredAt), settings.now(), settings, Date.parse(opened.metadata.occurredAt));
    if (t.kind === 'before_opening') {
      const rejection = beforeOpeningRejection(record.accountId, record.occurredAt, opened.metadata.occurredAt);
      return problemResponse(rejectionProblem(rejection, 'occurredAt'), req, res);
    }
    if (t.kind !== 'too_late') return undefined;
    const exceptionId =
      record.idempotencyKey === undefined ? randomUUID() : exceptionIdForKey(record.endpoint, record.accountId, record.idempotencyKey);
    const kind: LateRecordKind = record.endpoint === 'deposits' ? 'deposit' : 'withdrawal';
    const held = await holdLateRecord(
      new ExceptionLog(deps.store),
      {
        exceptionId,
        accountId: record.accountId,
        kind,
        amount: record.amount,
        occurredAt: record.occurredAt,
        lateByMs: t.lateByMs,
        maxLatenessMs: settings.maxLatenessMs,
        request: {
          method: 'POST',
          path: `/accounts/${record.accountId}/${record.endpoint}`,
          body: { amount: record.amount, occurredAt: record.occurredAt },
          idempotencyKey: record.idempotencyKey ?? null,
          requestId: (res.locals.requestId as string | undefined) ?? null,
        },
        by: actorOf(res),
      },
      requestContext(res),
    );
    const problem = new HttpProblem(
      422,
      problemType('too-late'),
      'Too late',
      `occurredAt ${record.occurredAt} is ${describeDuration(t.lateByMs)} ago, beyond MAX_LATENESS (${describeDuration(settings.maxLatenessMs)}): nothing was written to the account; the request is kept as exception ${exceptionId} for manual handling`,
      [{ field: 'occurredAt', message: `is older than the maximum lateness of ${describeDuration(settings.maxLatenessMs)}` }],
      {
        exceptionId,
        exception: `/exceptions?accountId=${record.accountId}`,
        maxLateness: describeDuration(settings.maxLatenessMs),
        ...(held.position ? { position: held.position } : {}),
      },
    );
    return problemResponse(problem, req, res);
  };
}
