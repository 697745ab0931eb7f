import { ANY, NO_STREAM, STREAM_EXISTS } from '@eventstore/db-client';
import type { AppendExpectedRevision, CurrentRevision } from '@eventstore/db-client';
import type { ActualRevision } from '../errors';
import type { ExpectedRevision } from '../event-store';

/** Our expected revision to the client's (dist/types/index.d.ts: AppendExpectedRevision = STREAM_EXISTS | ANY | NO_STREAM | bigint). */
export function toEsdbExpectedRevision(expected: ExpectedRevision): AppendExpectedRevision {
  switch (expected) {
    case 'no_stream':
      return NO_STREAM;
    case 'stream_exists':
      return STREAM_EXISTS;
    case 'any':
      return ANY;
    default:
      return expected;
  }
}

/**
 * The client's WrongExpectedVersionError.actualVersion (CurrentRevision = NO_STREAM | bigint) to ours.
 * The legacy (non-batch) append path builds it from the "actual-version" header, which can hold -1 for a missing stream.
 */
export function toActualRevision(actual: CurrentRevision): ActualRevision {
  if (actual === NO_STREAM) return 'no_stream';
  return actual < 0n ? 'no_stream' : actual;
}
