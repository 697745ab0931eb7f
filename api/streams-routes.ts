import { Router } from 'express';
import { formatPosition, type RecordedEvent } from '../eventstore/event-store';
import type { ApiDeps } from './api-deps';
import { chainLinksOf } from './events-routes';
import { HttpProblem, problemType } from './problem';
import { StreamParams, StreamQuery, StreamsQuery } from './schemas';
import { parse } from './validate';

/**
 * A small stream browser for the local stack, where the EventStoreDB UI is absent. Each event shows its link in the
 * hash chain (`hash`, and `previousHash`, the link it chains from), so an auditor can check a stream from here
 * (docs/audit.md).
 */
export function streamsRoutes(deps: ApiDeps): Router {
  const router = Router();
  const view = (e: RecordedEvent) => ({
    id: e.id,
    type: e.type,
    revision: Number(e.revision),
    position: formatPosition(e.position),
    recordedAt: e.recordedAt,
    data: e.data,
    metadata: e.metadata,
  });

  router.get('/streams', async (req, res) => {
    const q = parse(StreamsQuery, req.query, 'query');
    const streams = await deps.store.listStreams({ prefix: q.prefix, after: q.cursor, limit: q.limit });
    res.json({
      streams: streams.map((s) => ({
        stream: s.stream,
        revision: Number(s.revision),
        lastRecordedAt: s.lastRecordedAt,
        href: `/streams/${encodeURIComponent(s.stream)}`,
      })),
      nextCursor: streams.length === q.limit ? streams.at(-1)!.stream : null,
    });
  });

  router.get('/streams/:name', async (req, res) => {
    const { name } = parse(StreamParams, req.params, 'path');
    const q = parse(StreamQuery, req.query, 'query');
    const events = await deps.store.readStream(name, { fromRevision: BigInt(q.fromRevision), maxCount: q.limit });
    if (events.length === 0 && q.fromRevision === 0)
      throw new HttpProblem(404, problemType('stream-not-found'), 'Stream not found', `No stream ${name}`);
    const links = await chainLinksOf(deps.store, events);
    res.json({
      stream: name,
      events: events.map((e, i) => ({ ...view(e), ...links[i] })),
      nextRevision: events.length === q.limit ? Number(events.at(-1)!.revision) + 1 : null,
    });
  });
  return router;
}
