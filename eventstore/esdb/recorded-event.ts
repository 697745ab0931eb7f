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

/** Above every real position: the server sends -1 (no position) as a uint64, i.e. 2^64 - 1. */
const NO_POSITION_FLOOR = 2n ** 63n;

/**
 * A position the server really gave. The protocol's positions are uint64 fields, so an absent one reads as 0 (the
 * protobuf default; the client's extractPosition then gives { commit: 0, prepare: 0 }) and the server's "none" (-1) as
 * 2^64 - 1. Neither may become an event's place in the log: 0 is where the log's first record (the server's epoch
 * record, never one of ours) sits.
 */
function knownPosition(position: { commit: bigint; prepare: bigint } | bigint | undefined): GlobalPosition | undefined {
  if (position === undefined) return undefined;
  const p = typeof position === 'bigint' ? { commit: position, prepare: position } : position;
  if (p.commit <= 0n || p.prepare < 0n || p.commit >= NO_POSITION_FLOOR || p.prepare >= NO_POSITION_FLOOR) return undefined;
  return { commit: p.commit, prepare: p.prepare };
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
  const position: GlobalPosition | undefined = knownPosition(event.position) ?? knownPosition(fallbackCommit);
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
    position,
    recordedAt,
    id: event.id,
    type: event.type,
    data: data as JsonObject,
    metadata,
  };
}
