import { Router } from 'express';
import { formatPosition, parsePosition, type EventStore, type RecordedEvent } from '../eventstore/event-store';
import { isHashChained, type ChainLink } from '../eventstore/hash-chain';
import type { ApiDeps } from './api-deps';
import { EventsQuery } from './schemas';
import { parse } from './validate';
import { EventStoreValidationError } from '../eventstore/errors';
import { HttpProblem, problemType } from './problem';

/**
 * `GET /events` (operators): the global log, in log order, filtered by event type (one or several),
 * stream prefix, recorded time (`from`, `to`: the store's clock) and business time (`occurredFrom`,
 * `occurredTo`), paged by position (`after` = the previous page's `next`; a page may be short, even empty, and still
 * have a `next` when the store stopped at its scan budget: EventStoreDB, filtering by time). Reads are the store's
 * gap-free reads: a page never skips an event that commits later with a lower position, so paging
 * while others write misses nothing.
 *
 * Each event shows its link in the hash chain (`hash`, and `previousHash`, the link it chains from), so an auditor
 * can recompute and anchor the chain from these pages alone (docs/audit.md).
 */
export function eventsRoutes(deps: ApiDeps): Router {
  const router = Router();
  router.get('/events', async (req, res) => {
    const q = parse(EventsQuery, req.query, 'query');
    const page = await deps.store
      .readAllPage({
        fromPosition: q.after ? parsePosition(q.after) : undefined,
        maxCount: q.limit,
        streamPrefix: q.streamPrefix,
        eventTypes: q.type,
        recordedFrom: q.from,
        recordedTo: q.to,
        occurredFrom: q.occurredFrom,
        occurredTo: q.occurredTo,
      })
      .catch((error: unknown) => {
        // A position where no event starts (EventStoreDB refuses to read from it): the caller's `after`.
        if (error instanceof EventStoreValidationError && error.field === 'fromPosition')
          throw new HttpProblem(400, problemType('validation-error'), 'Invalid request', error.message, [
            { field: 'after', message: error.reason },
          ]);
        throw error;
      });
    const links = await chainLinksOf(deps.store, page.events);
    res.json({
      events: page.events.map((e, i) => ({ ...eventView(e), ...links[i] })),
      // Also after a short page, when the store stopped at its scan budget (EventStoreDB): go on from there.
      ...(page.next ? { next: formatPosition(page.next) } : {}),
    });
  });
  return router;
}

export function eventView(e: RecordedEvent) {
  return {
    position: formatPosition(e.position),
    stream: e.stream,
    revision: Number(e.revision),
    id: e.id,
    type: e.type,
    occurredAt: e.metadata.occurredAt,
    recordedAt: e.recordedAt,
    data: e.data,
    metadata: e.metadata,
  };
}

/**
 * The hash-chain link of each event (`hash`, `previousHash` and `hashForm`, hex; eventstore/hash-chain.ts), or
 * nothing for a store without a chain. Read after the events: a link is written with its event and never changes.
 */
export async function chainLinksOf(store: EventStore, events: readonly RecordedEvent[]): Promise<(ChainLink | Record<string, never>)[]> {
  if (!isHashChained(store) || events.length === 0) return events.map(() => ({}));
  const links = await store.chainAudit().linksOf(events);
  return links.map((l) => l ?? {});
}
