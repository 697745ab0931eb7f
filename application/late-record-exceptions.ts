import type { AccountCommand } from '../domain/account-decider';
import { accountStream } from '../domain/account-events';
import { deterministicUuid } from '../domain/deterministic-id';
import { isBeforeOpening } from '../domain/lateness';
import {
  exceptionDecider,
  type ExceptionCommand,
  type ExceptionEvent,
  type ExceptionState,
  type HeldLateRecord,
} from '../domain/late-record-exception';
import type { Rejection } from '../domain/rejection';
import { DuplicateEventIdError, WrongExpectedVersionError } from '../eventstore/errors';
import type { EventStore, RecordedEvent } from '../eventstore/event-store';
import { formatPosition } from '../eventstore/event-store';
import { handleAccountCommand } from './account-commands';
import type { AccountRepository } from './account-repository';
import { handleCommand } from './command-handler';
import type { CommandContext } from './event-envelope';
import { EventSourcedRepository } from './event-sourced-repository';

/**
 * Late records beyond MAX_LATENESS, held for manual handling (domain/late-record-exception.ts):
 * hold one, accept one (apply it to the account as a late record, an operator's override), reject one.
 */
export class ExceptionLog extends EventSourcedRepository<ExceptionState, ExceptionCommand, ExceptionEvent> {
  constructor(store: EventStore) {
    super(store, exceptionDecider);
  }
}

/** An attempt to accept that started longer ago than this (and never finished) may be taken over by another accept. */
export const ACCEPT_LEASE_MS = 30_000;

/** The id of the account event an accepted exception writes: the same for every attempt, so it lands at most once. */
export const appliedEventId = (exceptionId: string): string => deterministicUuid('late-record-exception', exceptionId, 'apply');

/** The id of an exception held for an Idempotency-Key (a retry holds the same one); random without a key. */
export function exceptionIdForKey(endpoint: string, accountId: string, key: string): string {
  return deterministicUuid('late-record-exception', endpoint, accountId, key);
}

/** A late record dated before its account was opened (both business times, as recorded): refused, never applied. */
export function beforeOpeningRejection(accountId: string, occurredAt: string, openedAt: string): Rejection {
  return {
    type: 'before_account_opened',
    message: `occurredAt ${occurredAt} is before account ${accountId} was opened (${openedAt}): a record cannot belong to an account before it existed`,
  };
}

/** When the account was opened, in business time (its first event's occurredAt); undefined when it does not exist. */
async function openedAt(store: EventStore, accountId: string): Promise<string | undefined> {
  const [opened] = await store.readStream(accountStream(accountId), { maxCount: 1 });
  return opened?.metadata.occurredAt;
}

export interface Written {
  state: ExceptionState;
  /** Position of the last event written or found (formatted), when any. */
  position?: string;
}

/** Records a too-late record as an exception (idempotent: holding the same id again writes nothing). */
export async function holdLateRecord(exceptions: ExceptionLog, record: HeldLateRecord, context: CommandContext): Promise<Written> {
  const result = await handleCommand(
    exceptions,
    record.exceptionId,
    { type: 'HoldLateRecord', record },
    {
      context: { ...context, occurredAt: undefined },
      eventId: () => deterministicUuid('late-record-exception', record.exceptionId, 'held'),
    },
  );
  if (!result.ok) throw new Error(`holding exception ${record.exceptionId} was refused: ${result.rejection.message}`);
  return { state: result.state, ...(result.position ? { position: formatPosition(result.position) } : {}) };
}

export interface AppliedRecord {
  accountId: string;
  revision: number;
  position: string;
  balanceAfter: number;
}

export type AcceptOutcome =
  | { ok: true; state: ExceptionState; applied: AppliedRecord; position?: string }
  | { ok: false; rejection: Rejection; state: ExceptionState };

export interface AcceptDeps {
  store: EventStore;
  accounts: AccountRepository;
  exceptions: ExceptionLog;
  /** This process's clock, only to tell an abandoned attempt (older than the lease) from one under way. */
  nowMs?: () => number;
  leaseMs?: number;
}

/**
 * Accepts an exception: the held record is applied to its account through the normal command path
 * with its business time (occurredAt) and, in its metadata, the operator (`actor`), `override: true`
 * and the exception id; the overdraft rule is checked now, in recorded order. Idempotent: accepting an
 * accepted exception answers the recorded acceptance; the account event has an id derived from the
 * exception, and each attempt looks for it before deciding, so it lands at most once.
 */
export async function acceptException(deps: AcceptDeps, exceptionId: string, context: CommandContext, by: string): Promise<AcceptOutcome> {
  const now = deps.nowMs ?? Date.now;
  const loaded = await deps.exceptions.load(exceptionId);
  if (loaded.state.status === 'accepted') return { ok: true, state: loaded.state, applied: await appliedRecord(deps.store, loaded.state) };
  if (loaded.state.status === 'none' || loaded.state.status === 'rejected') {
    const refused = exceptionDecider.decide(loaded.state, {
      type: 'StartAcceptance',
      accountRevision: '-1',
      by,
      nowMs: now(),
      leaseMs: deps.leaseMs ?? ACCEPT_LEASE_MS,
    });
    if (!refused.ok) return { ok: false, rejection: refused.rejection, state: loaded.state };
  }
  const held = loaded.state.held!;
  const head = await headRevision(deps.store, held.accountId);
  const started = await handleCommand(
    deps.exceptions,
    exceptionId,
    { type: 'StartAcceptance', accountRevision: head.toString(), by, nowMs: now(), leaseMs: deps.leaseMs ?? ACCEPT_LEASE_MS },
    { context: { ...context, occurredAt: undefined }, preloaded: loaded },
  );
  if (!started.ok) return { ok: false, rejection: started.rejection, state: started.state };
  if (started.state.status === 'accepted')
    return { ok: true, state: started.state, applied: await appliedRecord(deps.store, started.state) };
  const attempt = started.state.attempts;
  const firstBase = BigInt(started.state.firstBaseRevision ?? '-1');
  const eventId = appliedEventId(exceptionId);
  const command: AccountCommand =
    held.kind === 'deposit' ? { type: 'Deposit', amount: held.amount } : { type: 'Withdraw', amount: held.amount };

  let applied: AppliedRecord | undefined;
  let searchFrom = firstBase + 1n;
  for (let round = 0; !applied; round++) {
    const found = await findEvent(deps.store, held.accountId, eventId, searchFrom);
    if (found) {
      applied = fromEvent(held.accountId, found);
      break;
    }
    // Still this request's attempt? (Another accept may have taken over an attempt that ran past its lease.)
    const current = await deps.exceptions.load(exceptionId);
    if (current.state.status !== 'accepting' || current.state.attempts !== attempt) {
      if (current.state.status === 'accepted')
        return { ok: true, state: current.state, applied: await appliedRecord(deps.store, current.state) };
      return {
        ok: false,
        rejection: {
          type: 'exception_in_progress',
          message: `Exception ${exceptionId}: this attempt was taken over (now ${current.state.status})`,
        },
        state: current.state,
      };
    }
    const account = await deps.accounts.load(held.accountId);
    // A record dated before the account was opened is refused like any rule of the account (an exception held by an
    // earlier version, which did not check it): it stays open, for an operator to reject.
    const opened = await openedAt(deps.store, held.accountId);
    const early =
      opened !== undefined && isBeforeOpening(Date.parse(held.occurredAt), Date.parse(opened))
        ? beforeOpeningRejection(held.accountId, held.occurredAt, opened)
        : undefined;
    try {
      const result = early
        ? { ok: false as const, rejection: early }
        : await handleAccountCommand(deps.accounts, held.accountId, command, {
            context: { ...context, occurredAt: held.occurredAt, extra: { ...context.extra, override: true, exceptionId } },
            eventId: () => eventId,
            preloaded: account,
            // Exactly at the revision read: a conflict comes back here to look for the event again.
            ...(account.revision === 'no_stream' ? {} : { ifRevision: account.revision }),
          });
      if (!result.ok) {
        // The account refuses it now (e.g. insufficient funds, closed): the exception stays open.
        const refused = await handleCommand(
          deps.exceptions,
          exceptionId,
          { type: 'RefuseAcceptance', reason: result.rejection.type, message: result.rejection.message },
          {
            context: { ...context, occurredAt: undefined },
            preloaded: current,
            ifRevision: current.revision as bigint,
          },
        );
        return { ok: false, rejection: result.rejection, state: refused.state };
      }
      applied = {
        accountId: held.accountId,
        revision: Number(result.revision),
        position: formatPosition(result.position!),
        balanceAfter: result.state.balance,
      };
    } catch (error) {
      if (round >= 20 || !(error instanceof WrongExpectedVersionError || error instanceof DuplicateEventIdError)) throw error;
      if (error instanceof DuplicateEventIdError) searchFrom = 0n; // PostgreSQL: the id is in the log already
    }
  }
  const recorded = await handleCommand(
    deps.exceptions,
    exceptionId,
    { type: 'RecordAcceptance', accountRevision: String(applied.revision), position: applied.position },
    {
      context: { ...context, occurredAt: undefined },
    },
  );
  if (!recorded.ok) throw new Error(`recording the acceptance of exception ${exceptionId} was refused: ${recorded.rejection.message}`);
  return { ok: true, state: recorded.state, applied, ...(recorded.position ? { position: formatPosition(recorded.position) } : {}) };
}

/** Rejects (closes) an open exception: nothing reaches the account. Idempotent. */
export async function rejectException(exceptions: ExceptionLog, exceptionId: string, context: CommandContext, by: string, reason?: string) {
  const result = await handleCommand(
    exceptions,
    exceptionId,
    { type: 'RejectException', by, reason },
    { context: { ...context, occurredAt: undefined } },
  );
  if (!result.ok) return { ok: false as const, rejection: result.rejection, state: result.state };
  return { ok: true as const, state: result.state, ...(result.position ? { position: formatPosition(result.position) } : {}) };
}

async function headRevision(store: EventStore, accountId: string): Promise<bigint> {
  const [last] = await store.readStream(accountStream(accountId), { direction: 'backwards', maxCount: 1 });
  return last?.revision ?? -1n;
}

async function findEvent(store: EventStore, accountId: string, eventId: string, from: bigint): Promise<RecordedEvent | undefined> {
  for (let next = from < 0n ? 0n : from; ;) {
    const page = await store.readStream(accountStream(accountId), { fromRevision: next, maxCount: 1000 });
    const hit = page.find((e) => e.id.toLowerCase() === eventId);
    if (hit) return hit;
    if (page.length < 1000) return undefined;
    next = page.at(-1)!.revision + 1n;
  }
}

function fromEvent(accountId: string, event: RecordedEvent): AppliedRecord {
  return {
    accountId,
    revision: Number(event.revision),
    position: formatPosition(event.position),
    balanceAfter: Number((event.data as { balanceAfter?: number }).balanceAfter ?? 0),
  };
}

/** The account event an accepted exception wrote. */
async function appliedRecord(store: EventStore, state: ExceptionState): Promise<AppliedRecord> {
  const accountId = state.held!.accountId;
  const revision = BigInt(state.applied!.accountRevision);
  const [event] = await store.readStream(accountStream(accountId), { fromRevision: revision, maxCount: 1 });
  return event
    ? fromEvent(accountId, event)
    : { accountId, revision: Number(revision), position: state.applied!.position, balanceAfter: 0 };
}
