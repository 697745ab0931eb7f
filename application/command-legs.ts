import { fold } from '../domain/decider';
import type { DomainEvent } from '../domain/decider';
import type { Rejection } from '../domain/rejection';
import type { NewEvent } from '../eventstore/event-store';
import { retryOnConflict } from './conflict-retry';
import { toNewEvent, type CommandContext } from './event-envelope';
import type { EventSourcedRepository, Loaded } from './event-sourced-repository';

/** One leg among many on one stream: its command, where its events' ids come from, and its metadata. */
export interface Leg<C> {
  key: string;
  command: C;
  eventId: (index: number, type: string) => string;
  context: CommandContext;
}

export interface LegsResult<S> {
  /** Legs refused by the rules (by key), each with its rejection. */
  refused: Map<string, Rejection>;
  /**
   * The stream's state after the legs, as decided (folded without the store's recording times, which the deciders that
   * take legs do not read): for reading legs and balances, never to cache as a recorded state.
   */
  state: S;
  eventsWritten: number;
}

/**
 * Decides legs one after the other on one state, each against the state the ones before it produced. Not atomic: a
 * refused leg is left out and the rest go on. Pure.
 */
export function planLegs<S, C, E extends DomainEvent>(
  repository: EventSourcedRepository<S, C, E>,
  state: S,
  legs: readonly Leg<C>[],
): { refused: Map<string, Rejection>; events: NewEvent[]; decided: E[]; state: S } {
  const refused = new Map<string, Rejection>();
  const events: NewEvent[] = [];
  const decided: E[] = [];
  const { draft, seal } = repository.decider;
  // The states between the legs are never kept: the plan folds on a draft of its own (see Decider.draft), sealed below.
  let after = legs.length > 1 && draft && seal ? draft(state) : state;
  for (const leg of legs) {
    const decision = repository.decider.decide(after, leg.command);
    if (!decision.ok) {
      refused.set(leg.key, decision.rejection);
      continue;
    }
    decision.events.forEach((e, i) => events.push(toNewEvent(e, leg.context, leg.eventId(i, e.type))));
    decided.push(...decision.events);
    after = fold(repository.decider, decision.events, after);
  }
  return { refused, events, decided, state: seal ? seal(after) : after };
}

/**
 * Many legs on one stream in one append (a batch's debits of one account, say): load (or the caller's state for the
 * first attempt), decide every leg in order (planLegs), append all their events with the revision read, and on a
 * conflict read and decide again. `atomic`: any refused leg and nothing is appended (the refusals are returned). Legs
 * already applied decide to nothing (their ids and the decider make them idempotent). Takes the stream's turn in this
 * process, as every command does (application/stream-turns.ts).
 */
export function handleLegs<S, C, E extends DomainEvent>(
  repository: EventSourcedRepository<S, C, E>,
  id: string,
  legs: readonly Leg<C>[],
  options: { atomic?: boolean; preloaded?: Loaded<S>; onConflict?: () => void } = {},
): Promise<LegsResult<S>> {
  let preloaded = options.preloaded;
  const run = async (): Promise<LegsResult<S>> => {
    const { state, revision } = preloaded ?? (await repository.load(id));
    preloaded = undefined;
    const plan = planLegs(repository, state, legs);
    if ((options.atomic && plan.refused.size > 0) || plan.events.length === 0) return { refused: plan.refused, state, eventsWritten: 0 };
    await repository.append(id, plan.events, revision, plan.state);
    // The decided state (a fold without the recorded times): what callers read of it are the legs and balances.
    return { refused: plan.refused, state: plan.state, eventsWritten: plan.events.length };
  };
  return repository.exclusive(id, (turn) => {
    if (turn.waited) preloaded = undefined; // another command of this process changed the stream meanwhile
    return retryOnConflict(run, { onConflict: options.onConflict });
  });
}

/**
 * handleLegs on many streams at once: each stream's legs decided on the state its caller loaded (planLegs), every
 * stream's events sent in one appendToStreams call (PostgreSQL: one transaction), and a stream whose append did not
 * land as asked (another writer got there first) handled again on its own by handleLegs (read, decide, append).
 */
export async function handleLegsInBulk<S, C, E extends DomainEvent>(
  repository: EventSourcedRepository<S, C, E>,
  streams: readonly { id: string; legs: readonly Leg<C>[]; loaded: Loaded<S> }[],
  options: { atomic?: boolean; onConflict?: () => void } = {},
): Promise<LegsResult<S>[]> {
  const results = new Array<LegsResult<S>>(streams.length);
  const writes: { index: number; plan: ReturnType<typeof planLegs<S, C, E>> }[] = [];
  streams.forEach(({ legs, loaded }, index) => {
    const plan = planLegs(repository, loaded.state, legs);
    if ((options.atomic && plan.refused.size > 0) || plan.events.length === 0) {
      results[index] = { refused: plan.refused, state: loaded.state, eventsWritten: 0 };
      return;
    }
    writes.push({ index, plan });
  });
  const outcomes = await repository.appendMany(
    writes.map(({ index, plan }) => ({
      id: streams[index]!.id,
      events: plan.events,
      expectedRevision: streams[index]!.loaded.revision,
      stateAfter: plan.state,
    })),
  );
  const again: number[] = [];
  outcomes.forEach((outcome, i) => {
    const { index, plan } = writes[i]!;
    if (!outcome.ok) {
      again.push(index);
      return;
    }
    results[index] = { refused: plan.refused, state: plan.state, eventsWritten: plan.events.length };
  });
  for (const index of again) {
    options.onConflict?.();
    const { id, legs } = streams[index]!;
    results[index] = await handleLegs(repository, id, legs, { atomic: options.atomic, onConflict: options.onConflict });
  }
  return results;
}
