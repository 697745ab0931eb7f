import { decideAll, fold, type DomainEvent } from '../domain/decider';
import type { NewEvent } from '../eventstore/event-store';
import { handleCommand, type CommandResult } from './command-handler';
import { toNewEvent, type CommandContext } from './event-envelope';
import type { EventSourcedRepository, Loaded } from './event-sourced-repository';

/** One stream's commands in a bulk: decided on the state its caller just loaded. */
export interface BulkEntry<S, C> {
  id: string;
  commands: readonly C[];
  eventId: (index: number, type: string) => string;
  context: CommandContext;
  loaded: Loaded<S>;
}

/**
 * The same commands on many streams (a batch's thousand transfer streams, say) as one appendToStreams call: each
 * stream's commands decided on its loaded state (all or nothing per stream, as handleCommand decides them), every
 * append sent together (PostgreSQL commits them in one transaction), and a stream whose append did not land as asked
 * (another writer got there first) goes through the one command path on its own (read again, decide again). Results in
 * the entries' order, as handleCommand's.
 */
export async function handleCommandsInBulk<S, C, E extends DomainEvent>(
  repository: EventSourcedRepository<S, C, E>,
  entries: readonly BulkEntry<S, C>[],
): Promise<CommandResult<S>[]> {
  const results = new Array<CommandResult<S>>(entries.length);
  const appends: { index: number; events: NewEvent[]; after: E[]; stateAfter: S; expectedRevision: Loaded<S>['revision'] }[] = [];
  for (const [index, entry] of entries.entries()) {
    const { state, revision } = entry.loaded;
    const decision = decideAll(repository.decider, state, entry.commands);
    if (!decision.ok) {
      results[index] = { ok: false, rejection: decision.rejection, state };
      continue;
    }
    if (decision.events.length === 0) {
      results[index] = { ok: true, state, revision, eventsWritten: 0 };
      continue;
    }
    const events = decision.events.map((e, i) => toNewEvent(e, entry.context, entry.eventId(i, e.type)));
    appends.push({ index, events, after: decision.events, stateAfter: decision.state, expectedRevision: revision });
  }
  const outcomes =
    appends.length > 0
      ? await repository.appendMany(
          appends.map((a) => ({
            id: entries[a.index]!.id,
            events: a.events,
            expectedRevision: a.expectedRevision,
            stateAfter: a.stateAfter,
          })),
        )
      : [];
  const again: number[] = [];
  outcomes.forEach((outcome, i) => {
    const { index, events, after } = appends[i]!;
    if (!outcome.ok) {
      again.push(index);
      return;
    }
    const entry = entries[index]!;
    const occurredAt = entry.context.occurredAt ?? outcome.result.recordedAt;
    results[index] = {
      ok: true,
      state: fold(
        repository.decider,
        after.map((e) => ({ ...e, occurredAt })),
        entry.loaded.state,
      ),
      revision: outcome.result.nextExpectedRevision,
      position: outcome.result.position,
      ...(outcome.result.recordedAt ? { recordedAt: outcome.result.recordedAt } : {}),
      eventsWritten: events.length,
    };
  });
  for (const index of again) {
    const entry = entries[index]!;
    results[index] = await handleCommand(repository, entry.id, entry.commands, { context: entry.context, eventId: entry.eventId });
  }
  return results;
}
