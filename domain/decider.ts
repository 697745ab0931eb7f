import type { Decision } from './rejection';

/** A domain event: a type from its stream's union, and its data. */
export interface DomainEvent {
  type: string;
  data: object;
}

/**
 * An event as a fold sees it: the domain event and, once recorded, when it happened (its
 * metadata's `occurredAt`, the store's clock unless a business time was given). Absent while deciding.
 */
export type Timed<E extends DomainEvent> = E & { occurredAt?: string };

/**
 * A decider (Jérémie Chassaing's pattern, as in Emmett): everything one kind of stream knows, pure.
 * - `decide`: from the current state and a command, the new events or a typed rejection (nothing written);
 * - `evolve`: the state after one more event (never mutates its input);
 * - `initialState`: the state of a stream with no events.
 * Plus what the store boundary needs: the stream's name and the event types of its union (derived
 * from the union, never kept by hand), so a recorded event of any other type fails loudly.
 */
export interface Decider<State, Command, Event extends DomainEvent> {
  readonly name: string;
  readonly streamName: (id: string) => string;
  readonly eventTypes: readonly Event['type'][];
  initialState(id: string): State;
  evolve(state: State, event: Timed<Event>): State;
  decide(state: State, command: Command): Decision<Event>;
  /**
   * Optional, for folds of many events whose intermediate states nobody keeps: a copy that the evolves after it may
   * change in place (draft), and the end of that (seal). Without them every evolve copies what it changes.
   */
  draft?(state: State): State;
  seal?(state: State): State;
}

/** Folds events over a state (default: the initial state of `id`). */
export function fold<S, C, E extends DomainEvent>(decider: Decider<S, C, E>, events: readonly Timed<E>[], from: S): S {
  if (events.length > 1 && decider.draft && decider.seal) {
    // The states between the events are never seen: the fold works on a draft of its own, sealed at the end.
    return decider.seal(events.reduce((state, event) => decider.evolve(state, event), decider.draft(from)));
  }
  return events.reduce((state, event) => decider.evolve(state, event), from);
}

/**
 * Decides several commands in order, each against the state the previous ones produced, all or
 * nothing: the first rejection rejects the lot. The events of all of them, in order.
 */
export function decideAll<S, C, E extends DomainEvent>(
  decider: Decider<S, C, E>,
  state: S,
  commands: readonly C[],
): { ok: true; events: E[]; state: S } | Extract<Decision<E>, { ok: false }> {
  let after = state;
  const events: E[] = [];
  for (const command of commands) {
    const decision = decider.decide(after, command);
    if (!decision.ok) return decision;
    events.push(...decision.events);
    after = fold(decider, decision.events, after);
  }
  return { ok: true, events, state: after };
}
