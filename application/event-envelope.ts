import { randomUUID } from 'node:crypto';
import type { JsonObject, JsonValue, NewEvent, NewEventMetadata, RecordedEvent } from '../eventstore/event-store';

/** Who asked, and why: flows into every event's metadata so one id finds a request, its saga and its events. */
export interface CommandContext {
  correlationId?: string;
  causationId?: string;
  /**
   * Business time: when the fact happened, for a fact reported after it happened (a branch reporting a
   * deposit a day late). Leave it unset for everything the service itself causes: the event store then
   * stamps the event with its own clock as it records it. Never set it from this process's clock.
   */
  occurredAt?: string;
  /** Extra metadata fields, e.g. { transferId }. */
  extra?: Record<string, JsonValue>;
}

/** The event with its metadata. It carries no time of this process's clock: the store stamps it (see CommandContext.occurredAt). */
export function toNewEvent(domainEvent: { type: string; data: object }, context: CommandContext, id: string = randomUUID()): NewEvent {
  const metadata: NewEventMetadata = { ...(context.extra ?? {}) };
  delete metadata.occurredAt; // only an explicit business time, never one that came in through `extra`
  if (context.occurredAt !== undefined) metadata.occurredAt = context.occurredAt;
  if (context.correlationId) metadata.correlationId = context.correlationId;
  if (context.causationId) metadata.causationId = context.causationId;
  return { id, type: domainEvent.type, data: domainEvent.data as JsonObject, metadata };
}

/** Recorded events are trusted to be of the stream's event union (the store validated them when written). */
export function toDomainEvent<E extends { type: string; data: object }>(recorded: RecordedEvent): E {
  return { type: recorded.type, data: recorded.data } as unknown as E;
}
