import { randomUUID } from 'node:crypto';
import type { EventMetadata, JsonObject, JsonValue, NewEvent, RecordedEvent } from '../eventstore/event-store';

/** Who asked, and why: flows into every event's metadata so one id finds a request, its saga and its events. */
export interface CommandContext {
  correlationId?: string;
  causationId?: string;
  /** When the fact happened; defaults to now. A branch reporting a day late sets it explicitly. */
  occurredAt?: string;
  /** Extra metadata fields, e.g. { transferId }. */
  extra?: Record<string, JsonValue>;
}

export function toNewEvent(domainEvent: { type: string; data: object }, context: CommandContext, id: string = randomUUID()): NewEvent {
  const metadata: EventMetadata = { ...(context.extra ?? {}), occurredAt: context.occurredAt ?? new Date().toISOString() };
  if (context.correlationId) metadata.correlationId = context.correlationId;
  if (context.causationId) metadata.causationId = context.causationId;
  return { id, type: domainEvent.type, data: domainEvent.data as JsonObject, metadata };
}

/** Recorded events are trusted to be of the stream's event union (the store validated them when written). */
export function toDomainEvent<E extends { type: string; data: object }>(recorded: RecordedEvent): E {
  return { type: recorded.type, data: recorded.data } as unknown as E;
}
