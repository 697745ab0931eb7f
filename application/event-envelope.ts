import { randomUUID } from 'node:crypto';
import type { DomainEvent, Timed } from '../domain/decider';
import type { JsonObject, NewEvent, NewEventMetadata, RecordedEvent } from '../eventstore/event-store';

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
  extra?: JsonObject;
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

/**
 * A recorded event of a stream whose union does not name its type: the code reading it is older than
 * the code that wrote it, or the stream was written by hand. Folding past it would give a wrong state
 * (and a stale revision, so every append would conflict): it fails loudly instead.
 */
export class UnknownEventTypeError extends Error {
  constructor(
    readonly stream: string,
    readonly revision: bigint,
    readonly eventType: string,
  ) {
    super(`Stream ${stream} holds an event of unknown type ${eventType} at revision ${revision}: refusing to fold it`);
    this.name = 'UnknownEventTypeError';
  }
}

/**
 * The store boundary: a recorded event as its stream's domain event (with its occurrence time), once
 * its type is known to be of the union (the data was validated when written, by the decider).
 */
export function toDomainEvent<E extends DomainEvent>(recorded: RecordedEvent, types: readonly E['type'][]): Timed<E> {
  if (!(types as readonly string[]).includes(recorded.type))
    throw new UnknownEventTypeError(recorded.stream, recorded.revision, recorded.type);
  const event: DomainEvent & { occurredAt: string } = {
    type: recorded.type,
    data: recorded.data,
    occurredAt: recorded.metadata.occurredAt,
  };
  return event as Timed<E>;
}
