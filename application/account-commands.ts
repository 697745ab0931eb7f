import type { AccountCommand } from '../domain/account-decider';
import { decideAccount } from '../domain/account-decider';
import { foldAccount, type AccountState } from '../domain/account-state';
import type { Rejection } from '../domain/rejection';
import { WrongExpectedVersionError } from '../eventstore/errors';
import type { GlobalPosition } from '../eventstore/event-store';
import type { AccountRepository, LoadedAccount } from './account-repository';
import { retryOnConflict } from './conflict-retry';
import { toNewEvent, type CommandContext } from './event-envelope';

export type AccountCommandResult =
  | { ok: true; state: AccountState; revision: bigint | 'no_stream'; position?: GlobalPosition; eventsWritten: number }
  | { ok: false; rejection: Rejection; state: AccountState };

export interface AccountCommandOptions {
  context?: CommandContext;
  /** Event ids for the decided events (default random). Transfer legs derive them from the transfer id. */
  eventId?: (index: number, type: string) => string;
  /**
   * A client's If-Match: the account must be at exactly this revision. A mismatch is not retried:
   * the WrongExpectedVersionError goes back to the client (HTTP 412).
   */
  ifRevision?: bigint;
  onConflict?: () => void;
  /** The account as the caller just loaded it: used for the first attempt (a conflict re-reads). */
  preloaded?: LoadedAccount;
}

/** Load, decide, append with the revision read; re-decide on conflict (bounded). */
export async function handleAccountCommand(
  repository: AccountRepository,
  accountId: string,
  command: AccountCommand,
  options: AccountCommandOptions = {},
): Promise<AccountCommandResult> {
  let preloaded = options.preloaded;
  const run = async (): Promise<AccountCommandResult> => {
    const { state, revision } = preloaded ?? (await repository.load(accountId));
    preloaded = undefined;
    if (options.ifRevision !== undefined && revision !== options.ifRevision) {
      throw new WrongExpectedVersionError(`account-${accountId}`, options.ifRevision, revision);
    }
    const decision = decideAccount(state, command);
    if (!decision.ok) return { ok: false, rejection: decision.rejection, state };
    if (decision.events.length === 0) return { ok: true, state, revision, eventsWritten: 0 };
    const events = decision.events.map((e, i) => toNewEvent(e, options.context ?? {}, options.eventId?.(i, e.type)));
    const after = foldAccount(decision.events, state);
    const result = await repository.append(accountId, events, revision, after);
    return { ok: true, state: after, revision: result.nextExpectedRevision, position: result.position, eventsWritten: events.length };
  };
  if (options.ifRevision !== undefined) return run();
  return retryOnConflict(run, { onConflict: options.onConflict });
}
