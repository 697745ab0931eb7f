import type { AccountCommand } from '../domain/account-decider';
import { accountStream } from '../domain/account-events';
import type { Rejection } from '../domain/rejection';
import { DuplicateEventIdError, WrongExpectedVersionError } from '../eventstore/errors';
import type { EventStore, GlobalPosition, JsonObject, RecordedEvent } from '../eventstore/event-store';
import { handleAccountCommand } from './account-commands';
import type { AccountRepository, LoadedAccount } from './account-repository';
import { retryOnConflict } from './conflict-retry';
import type { CommandContext } from './event-envelope';

/**
 * One account write (open, deposit, withdraw, close), with or without an Idempotency-Key: one order of checks
 * (docs/account-writes.md), so that a keyed and an unkeyed request can never be judged differently.
 *
 *  1. With a key: its record. A recorded answer is replayed; the key used for another request is refused; a
 *     duplicate still running is waited for. Otherwise this attempt owns the key.
 *  2. The account is read (when 3 or 4 needs it; else the command path reads it in 6).
 *  3. With a key: its own events (ids derived from the key) after the revision the key first saw. Found: the
 *     write already landed (an earlier attempt crashed before answering), and its answer is rebuilt from them.
 *  4. If-Match: the account must be at that revision, else 412 (revision_mismatch). Nothing else is looked at.
 *  5. The request's own checks before a write (`beforeWrite`: a too-late record is held as an exception and
 *     answered 422). An answer there ends the write; nothing is written to the account.
 *  6. The domain decides and the events are appended (a rejection writes nothing).
 *  7. With a key: the answer is recorded for replays.
 *
 * What the key changes, and nothing more: whether the answer is recorded and replayed (1, 7), and what makes
 * that replay safe without the record (3, and in 6 the key's event ids, appended at exactly the revision read in
 * 2, so a duplicate racing it loses and looks again). Without a key, 6 is the command path's usual append (commands
 * on one stream take turns; a conflict with another process is re-read and re-decided, an If-Match is checked again
 * at the append).
 */

/** What a write came to, before it is rendered as an answer. */
export type AccountWriteOutcome =
  | { kind: 'written'; balance: number; status: 'open' | 'closed'; revision: number; position?: GlobalPosition }
  | { kind: 'rejected'; rejection: Rejection }
  | { kind: 'revision_mismatch'; expected: bigint; actual: bigint | 'no_stream' };

/** A key's record, as IdempotencyStore (stores/idempotency-store.ts) keeps it; `A` is the recorded answer. */
export type KeyClaim<A> =
  | { kind: 'owner'; owner: string; baseRevision: bigint; takenOver: boolean }
  | { kind: 'replay'; response: A }
  | { kind: 'mismatch' }
  | { kind: 'in_progress' };

/** The port of the keys' records (implemented by IdempotencyStore). */
export interface KeyedAnswers<A> {
  claim(scope: string, key: string, fingerprint: string, baseRevision: bigint): Promise<KeyClaim<A>>;
  /** Records the answer; the first recorded wins and is returned. */
  complete(scope: string, key: string, answer: A): Promise<A>;
  /** No answer recorded: a retry may take the key over at once. */
  release(scope: string, key: string, owner: string): Promise<void>;
  /** The claim was no use of the key (nothing written, nothing to keep): forget it. */
  abandon(scope: string, key: string, owner: string): Promise<void>;
}

export interface WriteKey<A> {
  answers: KeyedAnswers<A>;
  scope: string;
  key: string;
  /** The request as the key's record compares it (another request under the key is refused). */
  fingerprint: string;
  /** The ids of the events this key may write, in order (a command writes at most two). */
  eventIds: readonly string[];
  /** Told when a claim could not be given back (a retry then waits for its lease to run out). */
  onUnreleased?: (error: unknown) => void;
}

export interface AccountWrite<A> {
  accountId: string;
  command: AccountCommand;
  /** The client's If-Match: the account's revision the write expects. */
  ifMatch?: bigint;
  /** Correlation id, actor, and a late record's business time (occurredAt). */
  context: CommandContext;
  /** Step 5: an answer here is the write's answer, and nothing is written to the account. */
  beforeWrite?: () => Promise<A | undefined>;
  /** The answer to an outcome (the API renders HTTP answers). */
  answer: (outcome: AccountWriteOutcome) => A;
  /** With an Idempotency-Key: its record, and the ids of its events. */
  key?: WriteKey<A>;
}

export type AccountWriteResult<A> =
  | { kind: 'answered'; answer: A; replayed: boolean }
  /** The key was used for another request (its record says so, or its events in the log do). */
  | { kind: 'key_reused'; by: 'record' | 'events' }
  /** Another request with the key is still running. */
  | { kind: 'key_in_progress' };

class KeyReused extends Error {}

/**
 * Runs one account write (the order above). A conflict that outlasts the bounded re-decides throws
 * WrongExpectedVersionError, answered by nobody here and recorded under no key (a retry decides again).
 */
export async function runAccountWrite<A>(
  deps: { store: EventStore; accounts: AccountRepository },
  write: AccountWrite<A>,
): Promise<AccountWriteResult<A>> {
  const key = write.key;
  if (!key) return { kind: 'answered', answer: await writeOnce(deps, write), replayed: false };

  // A new key records where the account stands before any attempt: its events can only come after.
  // (Opening: the account id derives from the key, so the whole stream is the key's.)
  const baseRevision = write.command.type === 'OpenAccount' ? -1n : await headRevision(deps.store, write.accountId);
  const claim = await key.answers.claim(key.scope, key.key, key.fingerprint, baseRevision);
  switch (claim.kind) {
    case 'replay':
      return { kind: 'answered', answer: claim.response, replayed: true };
    case 'mismatch':
      return { kind: 'key_reused', by: 'record' };
    case 'in_progress':
      return { kind: 'key_in_progress' };
    case 'owner': {
      const unreleased = (error: unknown) => key.onUnreleased?.(error);
      let answer: A;
      try {
        answer = await writeOnce(deps, write, { key, baseRevision: claim.baseRevision });
      } catch (error) {
        if (error instanceof KeyReused) {
          // The key's events in the log belong to another request (its record was purged): this claim is void.
          await key.answers.abandon(key.scope, key.key, claim.owner).catch(unreleased);
          return { kind: 'key_reused', by: 'events' };
        }
        // No answer recorded: a retry may take the key over at once (and will find the events if they landed).
        await key.answers.release(key.scope, key.key, claim.owner).catch(unreleased);
        throw error;
      }
      return { kind: 'answered', answer: await key.answers.complete(key.scope, key.key, answer), replayed: false };
    }
  }
}

/** Steps 2 to 6. With a key, a lost race (the append at exactly the revision read) goes back to 2 and looks again. */
async function writeOnce<A>(
  deps: { store: EventStore; accounts: AccountRepository },
  write: AccountWrite<A>,
  keyed?: { key: WriteKey<A>; baseRevision: bigint },
): Promise<A> {
  const stream = accountStream(write.accountId);
  const own = async (from: bigint): Promise<A | undefined> => {
    if (!keyed) return undefined;
    const events = await ownEvents(deps.store, stream, new Set(keyed.key.eventIds), from);
    if (events.length === 0) return undefined;
    if (!matchesRequest(write, events)) throw new KeyReused();
    return write.answer(outcomeFromEvents(events));
  };

  const attempt = async (): Promise<A> => {
    // 2. The account. (Read here only when 3 or 4 needs it: otherwise the command path reads it in 6, in its turn,
    // or starts from the state the command before it in line appended.)
    const loaded: LoadedAccount | undefined = keyed || write.ifMatch !== undefined ? await deps.accounts.load(write.accountId) : undefined;
    // 3. The key's own events, if the stream moved since the key first saw it (opening: the stream is the key's).
    if (keyed && loaded) {
      const current = loaded.revision === 'no_stream' ? -1n : loaded.revision;
      if (write.command.type === 'OpenAccount' || current > keyed.baseRevision) {
        const found = await own(keyed.baseRevision + 1n);
        if (found !== undefined) return found;
      }
    }
    // 4. If-Match.
    if (write.ifMatch !== undefined && loaded && loaded.revision !== write.ifMatch)
      return write.answer({ kind: 'revision_mismatch', expected: write.ifMatch, actual: loaded.revision });
    // 5. The request's own checks (a too-late record is held as an exception).
    const refused = await write.beforeWrite?.();
    if (refused !== undefined) return refused;
    // 6. Decide and append.
    let result;
    try {
      result = await handleAccountCommand(deps.accounts, write.accountId, write.command, {
        context: write.context,
        ...(loaded ? { preloaded: loaded } : {}),
        ...(keyed
          ? {
              eventId: (index: number) => keyed.key.eventIds[index]!,
              // Exactly at the revision read (no silent re-decide): a conflict comes back here to look again.
              ...(loaded && loaded.revision !== 'no_stream' ? { ifRevision: loaded.revision } : {}),
            }
          : write.ifMatch !== undefined
            ? { ifRevision: write.ifMatch }
            : {}),
      });
    } catch (error) {
      // PostgreSQL: these event ids are already in the log (e.g. the key's record expired and was purged).
      if (keyed && error instanceof DuplicateEventIdError) {
        const found = await own(0n);
        if (found !== undefined) return found;
      }
      // Without a key, If-Match failed at the append (another writer moved the account since step 4): as step 4 answers.
      if (!keyed && write.ifMatch !== undefined && error instanceof WrongExpectedVersionError)
        return write.answer({ kind: 'revision_mismatch', expected: write.ifMatch, actual: error.actual as bigint | 'no_stream' });
      throw error;
    }
    if (!result.ok) {
      if (keyed && result.rejection.type === 'account_already_exists') {
        const found = await own(0n);
        if (found !== undefined) return found;
      }
      return write.answer({ kind: 'rejected', rejection: result.rejection });
    }
    return write.answer({
      kind: 'written',
      balance: result.state.balance,
      status: result.state.status === 'closed' ? 'closed' : 'open',
      revision: result.revision === 'no_stream' ? -1 : Number(result.revision),
      position: result.position,
    });
  };
  // Without a key the command path re-decides conflicts itself (application/command-handler.ts).
  return keyed ? retryOnConflict(attempt) : attempt();
}

async function headRevision(store: EventStore, accountId: string): Promise<bigint> {
  const [last] = await store.readStream(accountStream(accountId), { direction: 'backwards', maxCount: 1 });
  return last?.revision ?? -1n;
}

/** The events of the stream (from a revision on) whose ids are the key's. */
async function ownEvents(store: EventStore, stream: string, ids: Set<string>, from: bigint): Promise<RecordedEvent[]> {
  const out: RecordedEvent[] = [];
  for (let next = from < 0n ? 0n : from; ;) {
    const page = await store.readStream(stream, { fromRevision: next, maxCount: 1000 });
    out.push(...page.filter((e) => ids.has(e.id.toLowerCase())));
    if (page.length < 1000) return out;
    next = page.at(-1)!.revision + 1n;
  }
}

/** The key's events are what this request would have written (they are, unless the key's record was lost and the key reused). */
function matchesRequest(write: AccountWrite<unknown>, events: RecordedEvent[]): boolean {
  const [first, second] = events;
  const data = (e: RecordedEvent | undefined): JsonObject => e?.data ?? {};
  const cmd = write.command;
  // A late record's business time is part of the request (no occurredAt: the store's time, not compared).
  const occurredAt = write.context.occurredAt;
  if (occurredAt !== undefined && events.some((e) => Date.parse(e.metadata.occurredAt) !== Date.parse(occurredAt))) return false;
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

/** What the write came to when it landed, rebuilt from its own events (balance after, revision, position). */
function outcomeFromEvents(events: RecordedEvent[]): AccountWriteOutcome {
  const last = events.at(-1)!;
  const closed = events.some((e) => e.type === 'AccountClosed');
  const withBalance = [...events].reverse().find((e) => typeof (e.data as { balanceAfter?: unknown }).balanceAfter === 'number');
  const balance = closed || !withBalance ? 0 : (withBalance.data as { balanceAfter: number }).balanceAfter;
  return { kind: 'written', balance, status: closed ? 'closed' : 'open', revision: Number(last.revision), position: last.position };
}
