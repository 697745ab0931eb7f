import { Router } from 'express';
import { formatPosition, parsePosition, type RecordedEvent } from '../eventstore/event-store';
import type { ApiDeps } from './api-deps';
import { EventsQuery } from './schemas';
import { parse } from './validate';

/**
 * `GET /events` (operators): the global log, in log order, filtered by event type (one or several),
 * stream prefix, recorded time (`from`, `to`: the store's clock) and business time (`occurredFrom`,
 * `occurredTo`), paged by position (`after` = the previous page's `next`). Reads are the store's
 * gap-free reads: a page never skips an event that commits later with a lower position, so paging
 * while others write misses nothing.
 */
export function eventsRoutes(deps: ApiDeps): Router {
  const router = Router();
  router.get('/events', async (req, res) => {
    const q = parse(EventsQuery, req.query, 'query');
    const events = await deps.store.readAll({
      fromPosition: q.after ? parsePosition(q.after) : undefined,
      maxCount: q.limit,
      streamPrefix: q.streamPrefix,
      eventTypes: q.type,
      recordedFrom: q.from,
      recordedTo: q.to,
      occurredFrom: q.occurredFrom,
      occurredTo: q.occurredTo,
    });
    const last = events.at(-1);
    res.json({ events: events.map(eventView), ...(events.length === q.limit && last ? { next: formatPosition(last.position) } : {}) });
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
