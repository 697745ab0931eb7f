import type { LogRecord } from './log';

/**
 * Shared shapes of the persistent subscriptions emulator (EventStoreDB 24.10). Every rule cites the server file it
 * follows, a path at tag v24.10.0 of EventStore/EventStore.
 */

/** A position in $all (src/EventStore.Core/Services/PersistentSubscription/PersistentSubscriptionAllStreamPosition.cs). */
export interface AllPosition {
  commit: bigint;
  prepare: bigint;
}

/** Orders by commit, then prepare (PersistentSubscriptionAllStreamPosition.CompareTo). */
export function comparePositions(a: AllPosition, b: AllPosition): number {
  if (a.commit !== b.commit) return a.commit < b.commit ? -1 : 1;
  if (a.prepare !== b.prepare) return a.prepare < b.prepare ? -1 : 1;
  return 0;
}

/** "C:<commit>/P:<prepare>", the form of checkpoints and of GetInfo's positions (PersistentSubscriptionAllStreamPosition.ToString). */
export function formatPosition(position: AllPosition): string {
  return `C:${position.commit}/P:${position.prepare}`;
}

/** The inverse of formatPosition (PersistentSubscriptionAllStreamEventSource.GetStreamPositionFor(string)). */
export function parsePosition(text: string): AllPosition | undefined {
  const match = /^C:(-?\d+)\/P:(-?\d+)$/.exec(text);
  if (!match) return undefined;
  return { commit: BigInt(match[1] ?? '0'), prepare: BigInt(match[2] ?? '0') };
}

/** startFrom END: C:-1/P:-1 (PersistentSubscriptionAllStreamPosition.IsLivePosition). */
export const LIVE_POSITION: AllPosition = { commit: -1n, prepare: -1n };

export function isLivePosition(position: AllPosition): boolean {
  return position.commit === -1n && position.prepare === -1n;
}

/**
 * A ResolvedEvent (src/EventStore.Core/Data/ResolvedEvent.cs): the event, and the link it was reached through. The
 * original event is the link when there is one; `position` is the ORIGINAL event's position (OriginalPosition: the
 * link's when there is a link), or undefined when the read did not know it.
 */
export interface Resolved {
  event?: LogRecord;
  link?: LogRecord;
  position?: AllPosition;
}

export function originalRecord(resolved: Resolved): LogRecord {
  const original = resolved.link ?? resolved.event;
  if (!original) throw new Error('a resolved event without an event or a link');
  return original;
}

/** Event ids are GUIDs; the server compares them as Guid values, so case does not matter. */
export function normalizeId(id: string): string {
  return id.toLowerCase();
}

/**
 * An OutstandingMessage (src/EventStore.Core/Services/PersistentSubscription/OutstandingMessage.cs): the message id is
 * the original event's id; a replayed parked message has no sequence number and no event position.
 */
export interface Message {
  readonly eventId: string;
  readonly resolved: Resolved;
  readonly retryCount: number;
  readonly isReplayedEvent: boolean;
  readonly sequence?: number;
  readonly eventPosition?: AllPosition;
  readonly previousEventPosition?: AllPosition;
}

/** OutstandingMessage.ForNewEvent. */
export function newEventMessage(resolved: Resolved, position: AllPosition): Message {
  return {
    eventId: normalizeId(originalRecord(resolved).eventId),
    resolved,
    retryCount: 0,
    isReplayedEvent: false,
    eventPosition: position,
  };
}

/** OutstandingMessage.ForParkedEvent: retry count 0 again, no sequence number, no position. */
export function parkedEventMessage(resolved: Resolved): Message {
  return { eventId: normalizeId(originalRecord(resolved).eventId), resolved, retryCount: 0, isReplayedEvent: true };
}

/** OutstandingMessage.ForRetriedEvent: the same message, one more retry. */
export function retriedMessage(message: Message): Message {
  return { ...message, retryCount: message.retryCount + 1 };
}
