import type { Decider, DomainEvent } from '../domain/decider';
import { decideAll, fold } from '../domain/decider';
import type { Rejection } from '../domain/rejection';
import { WrongExpectedVersionError } from '../eventstore/errors';
import type { GlobalPosition } from '../eventstore/event-store';
import { retryOnConflict } from './conflict-retry';
import { toNewEvent, type CommandContext } from './event-envelope';
import type { EventSourcedRepository, Loaded } from './event-sourced-repository';
import type { Turn } from './stream-turns';

export type CommandResult<S> =
  | { ok: true; state: S; revision: bigint | 'no_stream'; position?: GlobalPosition; recordedAt?: string; eventsWritten: number }
  | { ok: false; rejection: Rejection; state: S };

export interface CommandOptions<S> {
  context?: CommandContext;
  /** Event ids for the decided events (default random). Transfer legs derive them from the transfer id: a retry re-sends the same ids. */
  eventId?: (index: number, type: string) => string;
  /**
   * A client's If-Match: the stream must be at exactly this revision. A mismatch is not retried:
   * the WrongExpectedVersionError goes back to the client (HTTP 412).
   */
  ifRevision?: bigint;
  onConflict?: () => void;
  /** The stream as the caller just loaded it: used for the first attempt (a conflict re-reads). */
  preloaded?: Loaded<S>;
}

/**
 * The one command path: load (with snapshots where the repository keeps them) → decide (one command,
 * or several in order, all or nothing) → append with the revision read → on a conflict, re-read and
 * re-decide (bounded in count and time: application/conflict-retry.ts). Commands of this process on one stream take
 * turns (application/stream-turns.ts), so they conflict only with other processes. A rejection writes nothing;
 * deciding nothing new (a retried step) writes nothing and succeeds.
 */
export async function handleCommand<S, C, E extends DomainEvent>(
  repository: EventSourcedRepository<S, C, E>,
  id: string,
  commands: C | readonly C[],
  options: CommandOptions<S> = {},
): Promise<CommandResult<S>> {
  const decider: Decider<S, C, E> = repository.decider;
  const list = (Array.isArray(commands) ? commands : [commands]) as readonly C[];
  let preloaded = options.preloaded;
  /** The state the command before this one in line appended (stream-turns.ts), used once instead of a read. */
  let handoff: Loaded<S> | undefined;
  let turn: Turn | undefined;
  const run = async (): Promise<CommandResult<S>> => {
    const handed = handoff;
    handoff = undefined;
    const { state, revision } = handed ?? preloaded ?? (await repository.load(id));
    preloaded = undefined;
    // Decided on a handed-over state, anything but an append (which the expected revision checks) is decided again on
    // a fresh read: another process may have written meanwhile, and a refusal or a no-op must not rest on a stale state.
    if (options.ifRevision !== undefined && revision !== options.ifRevision) {
      if (handed) return run();
      throw new WrongExpectedVersionError(decider.streamName(id), options.ifRevision, revision);
    }
    const decision = decideAll(decider, state, list);
    if (!decision.ok) return handed ? run() : { ok: false, rejection: decision.rejection, state };
    if (decision.events.length === 0) return handed ? run() : { ok: true, state, revision, eventsWritten: 0 };
    const events = decision.events.map((e, i) => toNewEvent(e, options.context ?? {}, options.eventId?.(i, e.type)));
    const result = await repository.append(id, events, revision, decision.state);
    // The state after, with the times the store recorded (EventStoreDB does not return them: '' there).
    const occurredAt = options.context?.occurredAt ?? result.recordedAt;
    const after = fold(
      decider,
      decision.events.map((e) => ({ ...e, occurredAt })),
      state,
    );
    // The next command in line starts from it (only with the store's own times: the state must equal the fold).
    if (occurredAt)
      turn?.handOver({ state: after, revision: result.nextExpectedRevision } satisfies Loaded<S>, result.nextExpectedRevision);
    return {
      ok: true,
      state: after,
      revision: result.nextExpectedRevision,
      position: result.position,
      recordedAt: result.recordedAt,
      eventsWritten: events.length,
    };
  };
  return repository.exclusive(id, (current) => {
    turn = current;
    if (current.waited) preloaded = undefined; // another command of this process changed the stream meanwhile
    handoff = current.handoff as Loaded<S> | undefined;
    if (options.ifRevision !== undefined) return run();
    return retryOnConflict(run, { onConflict: options.onConflict });
  });
}
