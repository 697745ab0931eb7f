import { createHash } from 'node:crypto';
import type { Request, Response } from 'express';
import { handleAccountCommand } from '../application/account-commands';
import type { LoadedAccount } from '../application/account-repository';
import { retryOnConflict } from '../application/conflict-retry';
import type { AccountCommand } from '../domain/account-decider';
import { accountStream } from '../domain/account-events';
import { deterministicUuid } from '../domain/deterministic-id';
import { DuplicateEventIdError, WrongExpectedVersionError } from '../eventstore/errors';
import { formatPosition, type GlobalPosition, type RecordedEvent } from '../eventstore/event-store';
import { requestContext } from './access-control';
import type { ApiDeps } from './api-deps';
import type { IdempotencyStore, StoredResponse } from '../stores/idempotency-store';
import { HttpProblem, problemType } from './problem';
import { rejectionProblem } from './rejection-status';
import { AccountIdempotencyKeyHeader } from './schemas';
import { parse } from './validate';

/**
 * `Idempotency-Key` on the account writes (open, deposit, withdraw, close), Stripe's convention: the
 * same key with the same request answers what the first answered (status, headers, body) and writes
 * nothing; the same key with another request is 409. Keys are scoped per endpoint and account.
 *
 * Two layers, so that neither alone decides whether money moves twice:
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

export interface KeyedAccountWrite {
  endpoint: KeyedEndpoint;
  accountId: string;
  key: string;
  command: AccountCommand;
  /** The request as validated (body fields and If-Match): a key's later uses must match it. */
  request: Record<string, unknown>;
  ifMatch?: bigint;
  /** The body field a rejection names. */
  field?: string;
  /** Business time of a late record (a deposit or withdrawal reported after it happened): in its event's metadata. */
  occurredAt?: string;
  /** Runs just before the write decides (after a replay or the key's own events were looked for): an answer here is the key's answer and nothing is written (a too-late record). */
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

class KeyReusedError extends HttpProblem {}

function keyReused(detail: string): HttpProblem {
  return new KeyReusedError(409, problemType('idempotency-key-reused'), 'Idempotency-Key reused', detail, [
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

/** Runs a keyed account write: replays, refuses, waits, or writes (once) and records the answer. */
export async function runKeyedAccountWrite(
  deps: ApiDeps,
  keys: IdempotencyStore,
  write: KeyedAccountWrite,
  req: Request,
  res: Response,
): Promise<void> {
  const scope = keyScope(write.endpoint, write.accountId);
  const fingerprint = requestFingerprint(scope, write.request);
  // A new key records where the account stands before any attempt: its events can only come after.
  const baseRevision = write.endpoint === 'open-account' ? -1n : await headRevision(deps, write.accountId);
  const claim = await keys.claim(scope, write.key, fingerprint, baseRevision);
  switch (claim.kind) {
    case 'replay':
      return sendStored(res, claim.response, true);
    case 'mismatch':
      throw keyReused(`Idempotency-Key ${write.key} was already used for another request to ${scope}`);
    case 'in_progress':
      res.set('Retry-After', '1');
      throw keyInProgress();
    case 'owner': {
      let answer: StoredResponse;
      try {
        answer = await writeOnce(deps, write, claim.baseRevision, req, res);
        answer = await keys.complete(scope, write.key, answer);
      } catch (error) {
        // The request's own error is the answer; a claim that cannot be given back expires with its lease.
        const unreleased = (failure: unknown) =>
          deps.logger.log({
            level: 'warn',
            msg: 'Idempotency-Key claim not released: a retry waits for its lease to expire',
            scope,
            error: failure instanceof Error ? failure.message : String(failure),
          });
        if (error instanceof KeyReusedError) {
          // The key's events in the log belong to another request (its record was purged): this claim is void.
          await keys.abandon(scope, write.key, claim.owner).catch(unreleased);
        } else {
          // No answer recorded: a retry may take the key over at once (and will find the events if they landed).
          await keys.release(scope, write.key, claim.owner).catch(unreleased);
        }
        throw error;
      }
      return sendStored(res, answer);
    }
  }
}

async function headRevision(deps: ApiDeps, accountId: string): Promise<bigint> {
  const [last] = await deps.store.readStream(accountStream(accountId), { direction: 'backwards', maxCount: 1 });
  return last?.revision ?? -1n;
}

/**
 * The write, idempotent by itself: look for the key's own events after the base revision, else
 * decide and append them (ids derived from the key) at the revision read; a lost race re-reads.
 */
async function writeOnce(
  deps: ApiDeps,
  write: KeyedAccountWrite,
  baseRevision: bigint,
  req: Request,
  res: Response,
): Promise<StoredResponse> {
  const stream = accountStream(write.accountId);
  const ids = keyedEventIds(write.endpoint, write.accountId, write.key);
  const own = async (from: bigint): Promise<StoredResponse | undefined> => {
    const events = await ownEvents(deps, stream, new Set(ids), from);
    if (events.length === 0) return undefined;
    if (!matchesRequest(write, events))
      throw keyReused(`Idempotency-Key ${write.key} already wrote other events to account ${write.accountId}`);
    return responseFromEvents(write, events);
  };
  const context = { ...requestContext(res), ...(write.occurredAt !== undefined ? { occurredAt: write.occurredAt } : {}) };

  return retryOnConflict(async () => {
    const loaded: LoadedAccount = await deps.accounts.load(write.accountId);
    const current = loaded.revision === 'no_stream' ? -1n : loaded.revision;
    // Opening: the account id comes from the key, so its stream's first events are ours if it exists.
    if (write.endpoint === 'open-account' || current > baseRevision) {
      const found = await own(baseRevision + 1n);
      if (found) return found;
    }
    if (write.ifMatch !== undefined && loaded.revision !== write.ifMatch)
      return problemResponse(revisionMismatch(write.ifMatch, loaded.revision), req, res);
    const refused = await write.beforeWrite?.();
    if (refused) return refused;
    let result;
    try {
      result = await handleAccountCommand(deps.accounts, write.accountId, write.command, {
        context,
        eventId: (index) => ids[index]!,
        preloaded: loaded,
        // Append at exactly the revision read (no silent re-decide): a conflict comes back here to look again.
        ...(loaded.revision === 'no_stream' ? {} : { ifRevision: loaded.revision }),
      });
    } catch (error) {
      // PostgreSQL: these event ids are already in the log (e.g. the key's record expired and was purged).
      if (error instanceof DuplicateEventIdError) {
        const found = await own(0n);
        if (found) return found;
      }
      throw error;
    }
    if (!result.ok) {
      if (result.rejection.type === 'account_already_exists') {
        const found = await own(0n);
        if (found) return found;
      }
      return problemResponse(rejectionProblem(result.rejection, write.field), req, res);
    }
    return writeResultResponse(
      write.accountId,
      {
        balance: result.state.balance,
        status: result.state.status === 'closed' ? 'closed' : 'open',
        revision: result.revision === 'no_stream' ? -1 : Number(result.revision),
        position: result.position,
      },
      write.endpoint === 'open-account',
    );
  }).catch((error: unknown) => {
    // Still losing races after the bounded re-decides: answered (not recorded) as the un-keyed route does.
    if (error instanceof WrongExpectedVersionError) throw revisionMismatch(write.ifMatch ?? error.expected, error.actual);
    throw error;
  });
}

/** The events of the stream (from a revision on) whose ids are the key's. */
async function ownEvents(deps: ApiDeps, stream: string, ids: Set<string>, from: bigint): Promise<RecordedEvent[]> {
  const out: RecordedEvent[] = [];
  for (let next = from < 0n ? 0n : from; ;) {
    const page = await deps.store.readStream(stream, { fromRevision: next, maxCount: 1000 });
    out.push(...page.filter((e) => ids.has(e.id.toLowerCase())));
    if (page.length < 1000) return out;
    next = page.at(-1)!.revision + 1n;
  }
}

/** The key's events are what this request would have written (they are, unless the key's record was lost and the key reused). */
function matchesRequest(write: KeyedAccountWrite, events: RecordedEvent[]): boolean {
  const [first, second] = events;
  const data = (e: RecordedEvent | undefined) => (e?.data ?? {}) as Record<string, unknown>;
  const cmd = write.command;
  // A late record's business time is part of the request (no occurredAt: the store's time, not compared).
  if (write.occurredAt !== undefined && events.some((e) => Date.parse(e.metadata.occurredAt) !== Date.parse(write.occurredAt!)))
    return false;
  switch (cmd.type) {
    case 'OpenAccount':
      return (
        first?.type === 'AccountOpened' &&
        data(first).ownerId === cmd.ownerId &&
        data(first).currency === cmd.currency &&
        (cmd.initialDeposit === undefined
          ? events.length === 1
          : second?.type === 'MoneyDeposited' && data(second).amount === cmd.initialDeposit)
      );
    case 'Deposit':
      return events.length === 1 && first?.type === 'MoneyDeposited' && data(first).amount === cmd.amount;
    case 'Withdraw':
      return events.length === 1 && first?.type === 'MoneyWithdrawn' && data(first).amount === cmd.amount;
    case 'CloseAccount':
      return events.length === 1 && first?.type === 'AccountClosed';
    default:
      return false;
  }
}

/** The answer the write gave when it landed, rebuilt from its own events (balance after, revision, position). */
function responseFromEvents(write: KeyedAccountWrite, events: RecordedEvent[]): StoredResponse {
  const last = events.at(-1)!;
  const closed = events.some((e) => e.type === 'AccountClosed');
  const withBalance = [...events].reverse().find((e) => typeof (e.data as { balanceAfter?: unknown }).balanceAfter === 'number');
  const balance = closed || !withBalance ? 0 : (withBalance.data as { balanceAfter: number }).balanceAfter;
  return writeResultResponse(
    write.accountId,
    { balance, status: closed ? 'closed' : 'open', revision: Number(last.revision), position: last.position },
    write.endpoint === 'open-account',
  );
}
