import { createHash } from 'node:crypto';
import type { Request, Response } from 'express';
import { runAccountWrite, type AccountWriteOutcome } from '../application/account-writes';
import type { AccountCommand } from '../domain/account-decider';
import { deterministicUuid } from '../domain/deterministic-id';
import type { Rejection } from '../domain/rejection';
import { WrongExpectedVersionError } from '../eventstore/errors';
import { formatPosition, type GlobalPosition } from '../eventstore/event-store';
import { requestContext } from './access-control';
import type { ApiDeps } from './api-deps';
import type { IdempotencyStore, StoredResponse } from '../stores/idempotency-store';
import { HttpProblem, problemType } from './problem';
import { rejectionProblem } from './rejection-status';
import { AccountIdempotencyKeyHeader } from './schemas';
import { parse } from './validate';

/**
 * The account writes (open, deposit, withdraw, close) over HTTP, with or without an `Idempotency-Key`: one use
 * case, application/account-writes.ts, with one order of checks (docs/account-writes.md). This module renders its
 * outcomes as answers and carries the key's HTTP side.
 *
 * `Idempotency-Key`, Stripe's convention: the same key with the same request answers what the first answered
 * (status, headers, body) and writes nothing; the same key with another request is 409. Keys are scoped per
 * endpoint and account. Two layers, so that neither alone decides whether money moves twice:
 * 1. The write is idempotent by itself. Its event ids are derived from (endpoint, account, key), and
 *    before deciding, the attempt looks for those ids in the account's stream after the revision the
 *    key first saw: found means the write already landed (an earlier attempt crashed before it could
 *    answer), and the answer is rebuilt from those events. The append carries the expected revision
 *    it read, so a duplicate racing it loses and looks again. On PostgreSQL the store also refuses a
 *    second append of the same event ids anywhere in the log.
 * 2. The idempotency record (IdempotencyStore) is claimed before the write and holds the answer:
 *    concurrent duplicates wait for the first's answer instead of racing, and a retry replays it.
 */

export type KeyedEndpoint = 'open-account' | 'deposits' | 'withdrawals' | 'close';

export interface AccountWriteRequest {
  endpoint: KeyedEndpoint;
  accountId: string;
  command: AccountCommand;
  /** The validated Idempotency-Key header, if any: it decides whether the answer is recorded and replayed. */
  key?: string;
  /** The request as validated (body fields and If-Match): a key's later uses must match it. */
  request: Record<string, unknown>;
  ifMatch?: bigint;
  /** The field a refusal names (the account's path parameter `id`, or a body field). */
  fieldOf?: (rejection: Rejection) => string | undefined;
  /** Business time of a late record (a deposit or withdrawal reported after it happened): in its event's metadata. */
  occurredAt?: string;
  /** The late-record checks (api/late-records.ts): an answer here is the write's answer and nothing is written to the account. */
  beforeWrite?: () => Promise<StoredResponse | undefined>;
}

/** The validated Idempotency-Key header, or undefined when absent. Invalid -> 400 naming the header. */
export function idempotencyKeyOf(req: Request): string | undefined {
  const header = req.get('Idempotency-Key');
  if (header === undefined) return undefined;
  return parse(AccountIdempotencyKeyHeader, { 'Idempotency-Key': header }, 'header')['Idempotency-Key'];
}

/** POST /accounts with a key opens this account: a retry (even after a crash before the answer) finds the same one. */
export function accountIdForKey(key: string): string {
  return deterministicUuid('idempotency-key', 'open-account', key);
}

/** The ids of the events a keyed write appends (a command writes at most two). */
export function keyedEventIds(endpoint: KeyedEndpoint, accountId: string, key: string): string[] {
  return [0, 1, 2].map((i) => deterministicUuid('idempotency-key', endpoint, accountId, key, String(i)));
}

export function keyScope(endpoint: KeyedEndpoint, accountId: string): string {
  return endpoint === 'open-account' ? 'POST /accounts' : `POST /accounts/${accountId}/${endpoint}`;
}

export function requestFingerprint(scope: string, request: Record<string, unknown>): string {
  const canonical = JSON.stringify(
    Object.keys(request)
      .sort()
      .map((k) => [k, request[k] === undefined ? null : String(request[k])]),
  );
  return createHash('sha256').update(scope).update('\u001f').update(canonical).digest('hex');
}

/** The answer of a successful account write (also the un-keyed routes'). */
export function writeResultResponse(
  accountId: string,
  result: { balance: number; status: 'open' | 'closed'; revision: number; position?: GlobalPosition },
  created: boolean,
): StoredResponse {
  const headers: Record<string, string> = { 'Content-Type': 'application/json; charset=utf-8', ETag: `"${result.revision}"` };
  if (created) headers.Location = `/accounts/${accountId}`;
  const body = {
    accountId,
    balance: result.balance,
    status: result.status,
    revision: result.revision,
    ...(result.position ? { position: formatPosition(result.position) } : {}),
  };
  return { status: created ? 201 : 200, headers, body: JSON.stringify(body) };
}

/** A problem as sendProblem renders it, kept as an answer to replay. */
export function problemResponse(problem: HttpProblem, req: Request, res: Response): StoredResponse {
  const requestId = res.locals.requestId as string | undefined;
  const body = {
    type: problem.type,
    title: problem.title,
    status: problem.status,
    ...(problem.detail ? { detail: problem.detail } : {}),
    ...(problem.errors ? { errors: problem.errors } : {}),
    ...problem.extra,
    instance: req.originalUrl,
    ...(requestId ? { requestId } : {}),
  };
  return { status: problem.status, headers: { 'Content-Type': 'application/problem+json; charset=utf-8' }, body: JSON.stringify(body) };
}

export function sendStored(res: Response, response: StoredResponse, replayed = false): void {
  res.status(response.status).set(response.headers);
  if (replayed) res.set('Idempotent-Replayed', 'true');
  res.send(response.body);
}

export function revisionMismatch(expected: bigint | string, actual: bigint | string): HttpProblem {
  return new HttpProblem(
    412,
    problemType('precondition-failed'),
    'Account revision mismatch',
    `The account is at revision ${String(actual)}, not ${String(expected)}`,
    [{ field: 'If-Match', message: `account is at revision ${String(actual)}` }],
  );
}

function keyReused(detail: string): HttpProblem {
  return new HttpProblem(409, problemType('idempotency-key-reused'), 'Idempotency-Key reused', detail, [
    { field: 'Idempotency-Key', message: 'was already used with a different request' },
  ]);
}

function keyInProgress(): HttpProblem {
  return new HttpProblem(
    409,
    problemType('idempotency-key-in-progress'),
    'Request with this Idempotency-Key in progress',
    'A request with this key is still running; retry shortly with the same key',
    [{ field: 'Idempotency-Key', message: 'a request with this key is still in progress' }],
  );
}

/** Runs an account write (application/account-writes.ts) and sends its answer; with a key, recorded and replayed. */
export async function sendAccountWrite(
  deps: ApiDeps,
  keys: IdempotencyStore,
  write: AccountWriteRequest,
  req: Request,
  res: Response,
): Promise<void> {
  const scope = keyScope(write.endpoint, write.accountId);
  const answer = (outcome: AccountWriteOutcome): StoredResponse => {
    switch (outcome.kind) {
      case 'written':
        return writeResultResponse(write.accountId, outcome, write.endpoint === 'open-account');
      case 'rejected':
        return problemResponse(rejectionProblem(outcome.rejection, write.fieldOf?.(outcome.rejection)), req, res);
      case 'revision_mismatch':
        return problemResponse(revisionMismatch(outcome.expected, outcome.actual), req, res);
    }
  };
  let result;
  try {
    result = await runAccountWrite(deps, {
      accountId: write.accountId,
      command: write.command,
      ifMatch: write.ifMatch,
      context: { ...requestContext(res), ...(write.occurredAt !== undefined ? { occurredAt: write.occurredAt } : {}) },
      beforeWrite: write.beforeWrite,
      answer,
      ...(write.key === undefined
        ? {}
        : {
            key: {
              answers: keys,
              scope,
              key: write.key,
              fingerprint: requestFingerprint(scope, write.request),
              eventIds: keyedEventIds(write.endpoint, write.accountId, write.key),
              onUnreleased: (failure: unknown) =>
                deps.logger.log({
                  level: 'warn',
                  msg: 'Idempotency-Key claim not released: a retry waits for its lease to expire',
                  scope,
                  error: failure instanceof Error ? failure.message : String(failure),
                }),
            },
          }),
    });
  } catch (error) {
    // Still losing races after the bounded re-decides: answered, not recorded (a retry decides again).
    if (error instanceof WrongExpectedVersionError) throw revisionMismatch(write.ifMatch ?? error.expected, error.actual);
    throw error;
  }
  switch (result.kind) {
    case 'answered':
      return sendStored(res, result.answer, result.replayed);
    case 'key_reused':
      throw keyReused(
        result.by === 'record'
          ? `Idempotency-Key ${write.key} was already used for another request to ${scope}`
          : `Idempotency-Key ${write.key} already wrote other events to account ${write.accountId}`,
      );
    case 'key_in_progress':
      res.set('Retry-After', '1');
      throw keyInProgress();
  }
}
