import { EventStoreValidationError } from '../errors';
import type { RecordedEvent } from '../event-store';

export interface EventCriteria {
  streamPrefix?: string;
  eventTypes?: readonly string[];
  /** Inclusive bounds on metadata.occurredAt, ISO-8601. */
  occurredFrom?: string;
  occurredTo?: string;
  /** Inclusive bounds on recordedAt (the server's `created`), ISO-8601. */
  recordedFrom?: string;
  recordedTo?: string;
}

/**
 * Client-side matching of converted (hence non-system) events, used by readAll (the 6.2.1 client's readAll takes no
 * filter: ReadAllOptions in dist/streams/readAll.d.ts has none, and readAll.js always sends NoFilter) and as an exact
 * check behind the server-side filter of persistent subscriptions.
 * An empty or absent eventTypes list, and an empty streamPrefix, do not constrain.
 */
export function eventMatcher(criteria: EventCriteria): (event: RecordedEvent) => boolean {
  const prefix = criteria.streamPrefix ?? '';
  const types = criteria.eventTypes && criteria.eventTypes.length > 0 ? new Set(criteria.eventTypes) : undefined;
  const from = criteria.occurredFrom !== undefined ? parseTime(criteria.occurredFrom, 'occurredFrom') : undefined;
  const to = criteria.occurredTo !== undefined ? parseTime(criteria.occurredTo, 'occurredTo') : undefined;
  const recordedFrom = criteria.recordedFrom !== undefined ? parseTime(criteria.recordedFrom, 'recordedFrom') : undefined;
  const recordedTo = criteria.recordedTo !== undefined ? parseTime(criteria.recordedTo, 'recordedTo') : undefined;
  return (event) => {
    if (prefix && !event.stream.startsWith(prefix)) return false;
    if (types && !types.has(event.type)) return false;
    if (from !== undefined || to !== undefined) {
      const occurred = Date.parse(event.metadata.occurredAt);
      if (Number.isNaN(occurred)) return false;
      if (from !== undefined && occurred < from) return false;
      if (to !== undefined && occurred > to) return false;
    }
    if (recordedFrom !== undefined || recordedTo !== undefined) {
      const recorded = Date.parse(event.recordedAt);
      if (recordedFrom !== undefined && recorded < recordedFrom) return false;
      if (recordedTo !== undefined && recorded > recordedTo) return false;
    }
    return true;
  };
}

function parseTime(text: string, field: string): number {
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw new EventStoreValidationError(field, 'must be an ISO-8601 timestamp');
  return ms;
}
