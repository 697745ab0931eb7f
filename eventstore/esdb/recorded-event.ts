import type { RecordedEvent as EsdbRecordedEvent } from '@eventstore/db-client';
import type { EventMetadata, GlobalPosition, JsonObject, RecordedEvent } from '../event-store';
import { withoutHash } from '../hash-chain';

/** System streams ($all housekeeping, $$metadata, $ce-…, persistent subscription checkpoints) and system event types ($>, $metadata…). */
export function isSystemEvent(event: { streamId: string; type: string }): boolean {
  return event.streamId.startsWith('$') || event.type.startsWith('$');
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

/**
 * Converts a client RecordedEvent (dist/types/events.d.ts) into ours, or undefined when it is not one of ours to hand
 * out: a system event, or an event whose content type is not JSON or whose data is not a JSON object (the client falls
 * back to the raw string when JSON.parse fails: dist/utils/convertGrpcEvent.js safeParseJSON).
 *
 * - `created` is a Date in 6.x (the client converts the server's .NET ticks; millisecond precision).
 * - `position` is optional in the typings (reads of a single stream carry it on servers 22.6+); `fallbackCommit`
 *   (the ResolvedEvent's commitPosition) is used when it is missing.
 * - `recordedAt` is the server's `created`: the time of every event comes from one clock (the leader's), not from
 *   the clock of the process that wrote it. The service writes no occurredAt for the events it causes, so their
 *   occurredAt is this recorded time; an explicit occurredAt (business time) is kept. Metadata that is not a JSON
 *   object (events not written by this service) also gets occurredAt = recordedAt.
 * - Unlike the PostgreSQL adapter, nothing here keeps a stream's times in order should the server's clock be set
 *   back: `created` is what the server stamped.
 */
export function toRecordedEvent(event: EsdbRecordedEvent, fallbackCommit?: bigint): RecordedEvent | undefined {
  if (isSystemEvent(event) || !event.isJson) return undefined;
  const data: unknown = event.data;
  if (!isPlainObject(data)) return undefined;
  const position: GlobalPosition | undefined =
    event.position ?? (fallbackCommit !== undefined ? { commit: fallbackCommit, prepare: fallbackCommit } : undefined);
  if (!position) {
    throw new Error(`EventStoreDB returned event ${event.id} of '${event.streamId}' without a log position (server 22.6+ is required)`);
  }
  const recordedAt = event.created.toISOString();
  const rawMetadata: unknown = event.metadata;
  // The hash chain's `auditHash` (./hash-chain.ts) is the store's, not the writer's: left out, as PostgreSQL keeps it in a column.
  const metadata: EventMetadata = isPlainObject(rawMetadata)
    ? ({
        ...withoutHash(rawMetadata as JsonObject),
        occurredAt: typeof rawMetadata.occurredAt === 'string' ? rawMetadata.occurredAt : recordedAt,
      } as EventMetadata)
    : { occurredAt: recordedAt };
  return {
    stream: event.streamId,
    revision: event.revision,
    position: { commit: position.commit, prepare: position.prepare },
    recordedAt,
    id: event.id,
    type: event.type,
    data: data as JsonObject,
    metadata,
  };
}
