import type { ExpectedRevision } from './event-store';

export type ActualRevision = bigint | 'no_stream';

/** The stream was not at the revision the writer expected. Nothing was written. */
export class WrongExpectedVersionError extends Error {
  readonly code = 'wrong_expected_version';
  constructor(
    readonly stream: string,
    readonly expected: ExpectedRevision,
    readonly actual: ActualRevision,
  ) {
    super(`Wrong expected revision on stream '${stream}': expected ${String(expected)}, actual ${String(actual)}`);
    this.name = 'WrongExpectedVersionError';
  }
}

/** The request itself is malformed (bad stream name, event type, id or payload). Nothing was written. */
export class EventStoreValidationError extends Error {
  readonly code = 'invalid_event_store_request';
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`Invalid ${field}: ${reason}`);
    this.name = 'EventStoreValidationError';
  }
}

/** An event id already exists elsewhere in the log (not an idempotent retry of the same append). */
export class DuplicateEventIdError extends Error {
  readonly code = 'duplicate_event_id';
  constructor(
    readonly stream: string,
    readonly eventId: string,
  ) {
    super(`Event id ${eventId} already exists and is not an idempotent retry of this append to '${stream}'`);
    this.name = 'DuplicateEventIdError';
  }
}

/** The store could not be reached or failed; the caller may retry. */
export class EventStoreUnavailableError extends Error {
  readonly code = 'event_store_unavailable';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EventStoreUnavailableError';
  }
}
