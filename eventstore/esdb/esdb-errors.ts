import { CancelledError, DeadlineExceededError, NotLeaderError, TimeoutError, UnavailableError } from '@eventstore/db-client';
import { EventStoreUnavailableError } from '../errors';

// gRPC status codes (from @grpc/grpc-js `status`), for the rare raw ServiceError the client did not convert.
const GRPC_DEADLINE_EXCEEDED = 4;
const GRPC_UNAVAILABLE = 14;

/**
 * True for failures that mean "the store could not be reached or did not answer in time", where a retry may succeed.
 * The client converts gRPC failures into these classes in `convertToCommandError` (dist/utils/CommandError.d.ts);
 * discovery in cluster mode throws a plain Error "Failed to discover after N attempts." (dist/Client/discovery.js).
 */
export function isUnavailable(err: unknown): boolean {
  if (
    err instanceof UnavailableError ||
    err instanceof DeadlineExceededError ||
    err instanceof TimeoutError ||
    err instanceof CancelledError ||
    err instanceof NotLeaderError
  ) {
    return true;
  }
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    if (code === GRPC_UNAVAILABLE || code === GRPC_DEADLINE_EXCEEDED) return true;
    if (err.message.startsWith('Failed to discover')) return true;
  }
  return false;
}

/** Wraps connection failures in EventStoreUnavailableError; passes anything else through unchanged. */
export function toStoreError(err: unknown, operation: string): unknown {
  if (err instanceof EventStoreUnavailableError) return err;
  if (isUnavailable(err)) {
    const detail = err instanceof Error && err.message ? `: ${err.message}` : '';
    return new EventStoreUnavailableError(`EventStoreDB ${operation} failed${detail}`, { cause: err });
  }
  return err;
}

/** A short, single-line description of a handler failure, for nack reasons. */
export function describeError(err: unknown, maxLength = 500): string {
  const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  const oneLine = text.replace(/\s+/g, ' ').trim() || 'handler failed';
  return oneLine.length > maxLength ? `${oneLine.slice(0, maxLength - 1)}…` : oneLine;
}
