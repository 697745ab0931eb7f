import type { JsonObject, JsonValue, RecordedEvent } from '../event-store';

/**
 * Copies of what the in-memory log holds, so callers never share objects with it. Hand-written rather than
 * structuredClone: a structured clone is made in the host's realm, and its objects fail the `Object.prototype`
 * check of the port's validation (eventstore/validation.ts) when code in another realm (a jest test's) writes them
 * back, e.g. a snapshot of a state that came from a read.
 */
export function copyJson<T extends JsonValue>(value: T): T {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => copyJson(v)) as T;
  const out: JsonObject = {};
  // defineProperty, not assignment: a key `__proto__` (a client-chosen id) stays an own property instead of setting the prototype.
  for (const [key, v] of Object.entries(value))
    if (v !== undefined) Object.defineProperty(out, key, { value: copyJson(v), enumerable: true, writable: true, configurable: true });
  return out as T;
}

export function copyEvent(e: RecordedEvent): RecordedEvent {
  return {
    id: e.id,
    type: e.type,
    data: copyJson(e.data),
    metadata: copyJson(e.metadata as JsonObject) as RecordedEvent['metadata'],
    stream: e.stream,
    revision: e.revision,
    position: { commit: e.position.commit, prepare: e.position.prepare },
    recordedAt: e.recordedAt,
  };
}
