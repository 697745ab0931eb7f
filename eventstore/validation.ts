import { EventStoreValidationError } from './errors';
import type { AppendOptions, NewEvent } from './event-store';

export const MAX_STREAM_NAME_LENGTH = 200;
export const MAX_EVENT_TYPE_LENGTH = 100;
export const MAX_EVENTS_PER_APPEND = 1000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const STREAM_NAME = /^[A-Za-z0-9][A-Za-z0-9_.:@-]*$/;
const EVENT_TYPE = /^[A-Za-z][A-Za-z0-9_.-]*$/;

export function validateStreamName(stream: unknown): asserts stream is string {
  if (typeof stream !== 'string' || stream.length === 0) throw new EventStoreValidationError('stream', 'must be a non-empty string');
  if (stream.length > MAX_STREAM_NAME_LENGTH)
    throw new EventStoreValidationError('stream', `longer than ${MAX_STREAM_NAME_LENGTH} characters`);
  if (!STREAM_NAME.test(stream)) {
    throw new EventStoreValidationError('stream', 'must start with a letter or digit and hold only letters, digits and _ . : @ -');
  }
}

function isPlainJson(value: unknown, depth = 0): boolean {
  if (depth > 64) return false;
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true;
  if (typeof value === 'number') return Number.isFinite(value);
  if (Array.isArray(value)) return value.every((v) => isPlainJson(v, depth + 1));
  if (typeof value === 'object') {
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) return false;
    return Object.values(value as object).every((v) => v === undefined || isPlainJson(v, depth + 1));
  }
  return false;
}

export function validateAppend(stream: unknown, events: unknown, options: AppendOptions | undefined): asserts events is NewEvent[] {
  validateStreamName(stream);
  const expected = options?.expectedRevision;
  const expectedOk =
    expected === 'no_stream' || expected === 'stream_exists' || expected === 'any' || (typeof expected === 'bigint' && expected >= 0n);
  if (!expectedOk) throw new EventStoreValidationError('expectedRevision', "must be 'no_stream', 'stream_exists', 'any' or a bigint >= 0");
  if (!Array.isArray(events) || events.length === 0) throw new EventStoreValidationError('events', 'must be a non-empty array');
  if (events.length > MAX_EVENTS_PER_APPEND) throw new EventStoreValidationError('events', `at most ${MAX_EVENTS_PER_APPEND} per append`);
  const ids = new Set<string>();
  events.forEach((event: unknown, i) => {
    const e = event as Partial<NewEvent> | null;
    if (!e || typeof e !== 'object') throw new EventStoreValidationError(`events[${i}]`, 'must be an object');
    if (typeof e.id !== 'string' || !UUID.test(e.id)) throw new EventStoreValidationError(`events[${i}].id`, 'must be a UUID');
    if (ids.has(e.id.toLowerCase())) throw new EventStoreValidationError(`events[${i}].id`, 'repeats an id of the same append');
    ids.add(e.id.toLowerCase());
    if (typeof e.type !== 'string' || e.type.length === 0 || e.type.length > MAX_EVENT_TYPE_LENGTH || !EVENT_TYPE.test(e.type)) {
      throw new EventStoreValidationError(
        `events[${i}].type`,
        `must be 1-${MAX_EVENT_TYPE_LENGTH} characters: a letter, then letters, digits, _ . -`,
      );
    }
    if (!e.data || typeof e.data !== 'object' || Array.isArray(e.data) || !isPlainJson(e.data)) {
      throw new EventStoreValidationError(`events[${i}].data`, 'must be a plain JSON object');
    }
    const m = e.metadata;
    if (!m || typeof m !== 'object' || Array.isArray(m) || !isPlainJson(m)) {
      throw new EventStoreValidationError(`events[${i}].metadata`, 'must be a plain JSON object');
    }
    // Optional: absent, the store stamps the event with its own recording time.
    if (m.occurredAt !== undefined && (typeof m.occurredAt !== 'string' || Number.isNaN(Date.parse(m.occurredAt)))) {
      throw new EventStoreValidationError(`events[${i}].metadata.occurredAt`, 'must be an ISO-8601 timestamp when given');
    }
  });
}

/** appendToStreams: each stream at most once (two appends to one stream would race each other inside one call). */
export function assertDistinctStreams(appends: readonly { stream: string }[]): void {
  const seen = new Set<string>();
  for (const [i, { stream }] of appends.entries()) {
    if (seen.has(stream))
      throw new EventStoreValidationError(`appends[${i}].stream`, `stream ${stream} appears twice in one appendToStreams call`);
    seen.add(stream);
  }
}
