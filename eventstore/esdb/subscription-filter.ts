import { eventTypeFilter, excludeSystemEvents, streamNameFilter } from '@eventstore/db-client';
import type { Filter } from '@eventstore/db-client';
import type { SubscriptionFilter } from '../event-store';

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * The server-side filter of a filtered read of $all (a filtered subscribeToAll, which the adapter reads until caught
 * up; persistent subscription groups are created without one: see EsdbEventStore.ensureGroup). The server filters on
 * one field only:
 * - streamPrefix: streamNameFilter({ prefixes }); our stream names cannot start with '$', so system streams are out;
 *   eventTypes, if also given, are then checked on the client (non-matching events are acked and skipped).
 * - eventTypes: eventTypeFilter({ regex }) matching the names exactly (a prefix filter would also let through
 *   "TransferCreatedV2" for "TransferCreated"); our type names cannot start with '$'.
 * - neither: excludeSystemEvents() (event type regex ^[^$].*).
 * The client re-checks every event it receives (see eventMatcher), so this filter only saves traffic.
 */
export function serverSideFilter(filter: SubscriptionFilter): Filter {
  if (filter.streamPrefix) return streamNameFilter({ prefixes: [filter.streamPrefix] });
  if (filter.eventTypes && filter.eventTypes.length > 0) {
    return eventTypeFilter({ regex: `^(?:${filter.eventTypes.map(escapeRegex).join('|')})$` });
  }
  return excludeSystemEvents();
}
