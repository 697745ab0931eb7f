import * as grpc from '@grpc/grpc-js';
import { ReadResp } from '@eventstore/db-client/generated/persistent_pb';
import { Empty, StreamIdentifier, UUID } from '@eventstore/db-client/generated/shared_pb';
import type { LogRecord } from './log';
import { ticksSinceEpoch } from './persistent-io';
import type { AllPosition, Message } from './persistent-model';

/**
 * The gRPC shapes of the persistent subscriptions service: events sent to a consumer
 * (src/EventStore.Core/Services/Transport/Grpc/PersistentSubscriptions.Read.cs ConvertToReadEvent) and the errors
 * (src/EventStore.Core/Services/Transport/Grpc/RpcExceptions.cs, with the trailer keys of Grpc/Constants.cs that
 * the client maps in dist/utils/CommandError.js).
 */

/** Position.FromInt64(-1, -1) = Position.End: a record sent without a known position carries ulong.MaxValue. */
const NO_POSITION = '18446744073709551615';

function uuid(id: string, structured: boolean): UUID {
  const value = new UUID();
  if (!structured) {
    value.setString(id);
    return value;
  }
  const hex = id.replace(/-/g, '');
  const s = new UUID.Structured();
  s.setMostSignificantBits(BigInt.asIntN(64, BigInt(`0x${hex.slice(0, 16)}`)).toString());
  s.setLeastSignificantBits(BigInt.asIntN(64, BigInt(`0x${hex.slice(16, 32)}`)).toString());
  value.setStructured(s);
  return value;
}

/** Uuid.FromDto: the string form, or the two signed 64-bit halves, as a lowercase GUID string. */
export function uuidToString(value: UUID): string {
  if (value.hasStructured()) {
    const s = value.getStructured() as UUID.Structured;
    const hex =
      BigInt.asUintN(64, BigInt(s.getMostSignificantBits())).toString(16).padStart(16, '0') +
      BigInt.asUintN(64, BigInt(s.getLeastSignificantBits())).toString(16).padStart(16, '0');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }
  return value.getString().toLowerCase();
}

/** ConvertToRecordedEvent: both the event and the link carry the ORIGINAL event's position (the link's, for a link). */
function recordedEvent(record: LogRecord, position: AllPosition | undefined, structuredIds: boolean): ReadResp.ReadEvent.RecordedEvent {
  const recorded = new ReadResp.ReadEvent.RecordedEvent();
  recorded.setId(uuid(record.eventId, structuredIds));
  const stream = new StreamIdentifier();
  stream.setStreamName(Buffer.from(record.stream, 'utf8'));
  recorded.setStreamIdentifier(stream);
  recorded.setStreamRevision(record.revision.toString());
  recorded.setCommitPosition(position ? position.commit.toString() : NO_POSITION);
  recorded.setPreparePosition(position ? position.prepare.toString() : NO_POSITION);
  const metadata = recorded.getMetadataMap();
  metadata.set('type', record.type);
  metadata.set('created', ticksSinceEpoch(record.created));
  metadata.set('content-type', record.contentType === 'application/json' ? 'application/json' : 'application/octet-stream');
  recorded.setCustomMetadata(record.metadata);
  recorded.setData(record.data);
  return recorded;
}

/** ReadResp.ReadEvent: event, link, commit_position of the original event (or no_position), retry_count. */
export function readEventResponse(message: Message, structuredIds: boolean): ReadResp {
  const { event, link, position } = message.resolved;
  const readEvent = new ReadResp.ReadEvent();
  if (event) readEvent.setEvent(recordedEvent(event, position, structuredIds));
  if (link) readEvent.setLink(recordedEvent(link, position, structuredIds));
  if (position) readEvent.setCommitPosition(position.commit.toString());
  else readEvent.setNoPosition(new Empty());
  readEvent.setRetryCount(message.retryCount);
  const response = new ReadResp();
  response.setEvent(readEvent);
  return response;
}

export function confirmationResponse(subscriptionId: string): ReadResp {
  const confirmation = new ReadResp.SubscriptionConfirmation();
  confirmation.setSubscriptionId(subscriptionId);
  const response = new ReadResp();
  response.setSubscriptionConfirmation(confirmation);
  return response;
}

export interface RpcStatus {
  code: grpc.status;
  details: string;
  metadata: grpc.Metadata;
}

function status(code: grpc.status, details: string, trailers: [string, string][] = []): RpcStatus {
  const metadata = new grpc.Metadata();
  for (const [key, value] of trailers) metadata.set(key, value);
  return { code, details, metadata };
}

/** RpcExceptions.PersistentSubscriptionFailed: INTERNAL, exception persistent-subscription-failed. */
export function persistentSubscriptionFailed(stream: string, group: string, reason: string): RpcStatus {
  return status(grpc.status.INTERNAL, `Subscription group ${group} on stream ${stream} failed: '${reason}'`, [
    ['exception', 'persistent-subscription-failed'],
    ['stream-name', stream],
    ['group-name', group],
    ['reason', reason],
  ]);
}

/** RpcExceptions.PersistentSubscriptionDoesNotExist: NOT_FOUND, exception persistent-subscription-does-not-exist. */
export function persistentSubscriptionDoesNotExist(stream: string, group: string): RpcStatus {
  return status(grpc.status.NOT_FOUND, `Subscription group ${group} on stream ${stream} does not exist.`, [
    ['exception', 'persistent-subscription-does-not-exist'],
    ['stream-name', stream],
    ['group-name', group],
  ]);
}

/** RpcExceptions.PersistentSubscriptionExists: ALREADY_EXISTS, exception persistent-subscription-exists. */
export function persistentSubscriptionExists(stream: string, group: string): RpcStatus {
  return status(grpc.status.ALREADY_EXISTS, `Subscription group ${group} on stream ${stream} exists.`, [
    ['exception', 'persistent-subscription-exists'],
    ['stream-name', stream],
    ['group-name', group],
  ]);
}

/** RpcExceptions.PersistentSubscriptionMaximumSubscribersReached: FAILED_PRECONDITION, exception maximum-subscribers-reached. */
export function maximumSubscribersReached(stream: string, group: string): RpcStatus {
  return status(grpc.status.FAILED_PRECONDITION, `Maximum subscriptions reached for subscription group ${group} on stream ${stream}.`, [
    ['exception', 'maximum-subscribers-reached'],
    ['stream-name', stream],
    ['group-name', group],
  ]);
}

/** RpcExceptions.PersistentSubscriptionDropped: CANCELLED, exception persistent-subscription-dropped. */
export function persistentSubscriptionDropped(stream: string, group: string): RpcStatus {
  return status(grpc.status.CANCELLED, `Subscription group ${group} on stream ${stream} was dropped.`, [
    ['exception', 'persistent-subscription-dropped'],
    ['stream-name', stream],
    ['group-name', group],
  ]);
}

/** RpcExceptions.AccessDenied: PERMISSION_DENIED, exception access-denied. */
export function accessDenied(): RpcStatus {
  return status(grpc.status.PERMISSION_DENIED, 'Access Denied', [['exception', 'access-denied']]);
}

/** RpcExceptions.InvalidArgument: INVALID_ARGUMENT, no trailers. */
export function invalidArgument(details: string): RpcStatus {
  return status(grpc.status.INVALID_ARGUMENT, details);
}

/** An exception a gRPC service method does not catch: ASP.NET Core's gRPC answers UNKNOWN with this text. */
export function unhandledException(): RpcStatus {
  return status(grpc.status.UNKNOWN, 'Exception was thrown by handler.');
}

/** What the emulator does not emulate (persistent subscriptions to a single stream). */
export function notEmulated(what: string): RpcStatus {
  return status(grpc.status.UNIMPLEMENTED, `esdb emulator: ${what} is not emulated`);
}

/** A connection that broke, as the client sees it (grpc-js reports a lost connection as UNAVAILABLE). */
export function connectionDropped(): RpcStatus {
  return status(grpc.status.UNAVAILABLE, 'Connection dropped');
}
