import type { LogRecord } from './log';
import type { ConsumerStrategy, PersistentClient } from './persistent-consumers';
import { ClientCollection } from './persistent-consumers';
import type { GroupFilter, PersistentIo } from './persistent-io';
import { filterAllows, newtonsoftDate } from './persistent-io';
import type { AllPosition, Message, Resolved } from './persistent-model';
import {
  comparePositions,
  formatPosition,
  isLivePosition,
  newEventMessage,
  normalizeId,
  originalRecord,
  parkedEventMessage,
  parsePosition,
  retriedMessage,
} from './persistent-model';

/**
 * One persistent subscription group to $all: a port of the server's state machine
 * (src/EventStore.Core/Services/PersistentSubscription/PersistentSubscription.cs, StreamBuffer.cs,
 * OutstandingMessageCache.cs, PersistentSubscriptionMessageParker.cs, PersistentSubscriptionCheckpointWriter.cs).
 * Reads and writes of the log complete synchronously; what the server does in a write's completion callback (the end
 * of parking a message) is deferred to after the current operation, as the server's queue would run it later.
 */

/** The group's settings as the server keeps them (PersistentSubscriptionParams + PersistentSubscriptionEntry). */
export interface GroupSettings {
  group: string;
  filter?: GroupFilter;
  startFrom: AllPosition;
  resolveLinkTos: boolean;
  extraStatistics: boolean;
  /** 0 means "time out at once" (PersistentSubscriptionService.ToMessageTimeout: TimeSpan.Zero). */
  messageTimeoutMs: number;
  maxRetryCount: number;
  liveBufferSize: number;
  /** The history buffer (PersistentSubscriptionParams.BufferSize). */
  historyBufferSize: number;
  readBatchSize: number;
  /** 0 means never by time (PersistentSubscriptionService.ToCheckPointAfterTimeout: TimeSpan.MaxValue). */
  checkPointAfterMs: number;
  minCheckPointCount: number;
  maxCheckPointCount: number;
  /** 0 = unbounded. */
  maxSubscriberCount: number;
  consumerStrategy: string;
}

/** A rule of the server that, followed to the letter, throws inside one of its handlers (the rest of that handler is not run). */
export class ServerFault extends Error {}

/** PersistentSubscriptionState.cs, a [Flags] enum. */
const NOT_READY = 0;
const BEHIND = 0x01;
const OUTSTANDING_PAGE_REQUEST = 0x02;
const REPLAYING_PARKED_MESSAGES = 0x04;
const LIVE = 0x08;

/** How .NET prints a [Flags] enum value: the names of its bits in ascending order, ", "-separated. */
function stateName(state: number): string {
  if (state === NOT_READY) return 'NotReady';
  const names: [number, string][] = [
    [BEHIND, 'Behind'],
    [OUTSTANDING_PAGE_REQUEST, 'OutstandingPageRequest'],
    [REPLAYING_PARKED_MESSAGES, 'ReplayingParkedMessages'],
    [LIVE, 'Live'],
  ];
  return names
    .filter(([bit]) => (state & bit) !== 0)
    .map(([, name]) => name)
    .join(', ');
}

function positionOf(message: Message): AllPosition {
  const position = message.resolved.position;
  // PersistentSubscriptionAllStreamEventSource.GetStreamPositionFor(ResolvedEvent) throws without a position.
  if (!position) throw new ServerFault('GetStreamPositionFor: the event has no position');
  return position;
}

/** StreamBuffer.cs: the retry queue (served first), the read buffer, and a bounded queue of recent live events. */
class StreamBuffer {
  readonly retry: Message[] = [];
  readonly buffer: Message[] = [];
  readonly liveBuffer: Message[] = [];
  live: boolean;

  constructor(
    private readonly maxBufferSize: number,
    private readonly maxLiveBufferSize: number,
    private readonly initialSequence: AllPosition | undefined,
    startInHistory: boolean,
  ) {
    this.live = !startInHistory;
  }

  get bufferCount(): number {
    return this.retry.length + this.buffer.length;
  }

  canAccept(count: number): boolean {
    return this.maxBufferSize - this.bufferCount > count;
  }

  private switchToLive(): void {
    this.buffer.push(...this.liveBuffer.splice(0));
    this.live = true;
  }

  private drainLiveTo(position: AllPosition): void {
    while (this.liveBuffer.length > 0 && comparePositions(positionOf(this.liveBuffer[0] as Message), position) < 0) this.liveBuffer.shift();
  }

  /**
   * Replayed parked messages go to the end; a retried message goes before the first one with a higher position. The
   * server compares positions with PersistentSubscriptionAllStreamPosition.CompareTo, which throws on a replayed
   * message's missing position: a retry while replayed messages wait in the queue fails there.
   */
  addRetry(message: Message): void {
    if (message.isReplayedEvent) {
      this.retry.push(message);
      return;
    }
    const position = positionOf(message);
    for (let i = 0; i < this.retry.length; i++) {
      const other = (this.retry[i] as Message).eventPosition;
      if (!other) {
        throw new ServerFault(
          `StreamBuffer.AddRetry: retrying ${message.eventId} compared its position with a replayed parked message's (null): the retry is lost`,
        );
      }
      if (comparePositions(position, other) < 0) {
        this.retry.splice(i, 0, message);
        return;
      }
    }
    this.retry.push(message);
  }

  addLiveMessage(message: Message): void {
    if (this.live) {
      if (this.buffer.length < this.maxBufferSize) this.buffer.push(message);
      else this.live = false;
    }
    // BoundedQueue.Enqueue: drops the oldest when full (and fails on a zero-size queue).
    if (this.liveBuffer.length >= this.maxLiveBufferSize) {
      if (this.liveBuffer.length === 0) throw new ServerFault('BoundedQueue.Enqueue: liveBufferSize is 0');
      this.liveBuffer.shift();
    }
    this.liveBuffer.push(message);
  }

  addReadMessage(message: Message): void {
    if (this.live) return;
    const position = positionOf(message);
    if (this.initialSequence && comparePositions(position, this.initialSequence) <= 0) return;
    const head = this.liveBuffer[0];
    const livePosition = head ? positionOf(head) : undefined;
    if (!livePosition || comparePositions(position, livePosition) < 0) {
      this.buffer.push(message);
    } else if (comparePositions(livePosition, position) < 0) {
      this.drainLiveTo(position);
      this.switchToLive();
    } else {
      this.switchToLive();
    }
  }

  tryMoveToLive(): boolean {
    if (this.liveBuffer.length === 0) {
      this.live = true;
      return true;
    }
    return false;
  }

  /** The retry queue, then the read buffer, as one scan; `sent` takes a message out of its list. */
  *scan(): Generator<{ message: Message; sent: () => void }> {
    for (const list of [this.retry, this.buffer]) {
      for (const message of [...list]) {
        yield {
          message,
          sent: () => {
            const index = list.indexOf(message);
            if (index < 0) throw new Error('The message can only be accepted once.');
            list.splice(index, 1);
          },
        };
      }
    }
  }

  lowestRetry(): { message?: Message; sequence: number } {
    let result: { message?: Message; sequence: number } = { sequence: Number.MAX_SAFE_INTEGER };
    for (const message of this.retry) {
      if (message.isReplayedEvent || message.sequence === undefined) continue;
      if (message.sequence < result.sequence) result = { message, sequence: message.sequence };
    }
    return result;
  }
}

/** OutstandingMessageCache.cs: messages in flight, with their time-out. */
class OutstandingCache {
  private readonly byId = new Map<string, { expires: number; message: Message }>();

  get count(): number {
    return this.byId.size;
  }

  get(id: string): Message | undefined {
    return this.byId.get(id)?.message;
  }

  remove(id: string): void {
    this.byId.delete(id);
  }

  start(message: Message, expires: number): 'success' | 'skipped-duplicate' {
    if (this.byId.has(message.eventId)) return 'skipped-duplicate';
    this.byId.set(message.eventId, { expires, message });
    return 'success';
  }

  /** Expired messages leave the cache; order: time-out first, then (equal times) by DESCENDING id (ByTypeComparer). */
  takeExpiringBefore(time: number): Message[] {
    const expired = [...this.byId.values()]
      .filter((entry) => entry.expires <= time)
      .sort(
        (a, b) => a.expires - b.expires || (a.message.eventId < b.message.eventId ? 1 : a.message.eventId > b.message.eventId ? -1 : 0),
      );
    for (const entry of expired) this.byId.delete(entry.message.eventId);
    return expired.map((entry) => entry.message);
  }

  /** The in-flight message with the lowest sequence number (replayed parked messages have none). */
  lowest(): { message?: Message; sequence: number } {
    let result: { message?: Message; sequence: number } = { sequence: Number.MAX_SAFE_INTEGER };
    for (const { message } of this.byId.values()) {
      if (message.isReplayedEvent || message.sequence === undefined) continue;
      if (message.sequence < result.sequence) result = { message, sequence: message.sequence };
    }
    return result;
  }

  entries(): { message: Message; expires: number }[] {
    return [...this.byId.values()];
  }
}

/** The stream names of a group to $all (the subscription id is "$all::<group>"). */
export function groupStreams(group: string): { subscriptionId: string; checkpoint: string; parked: string } {
  const subscriptionId = `$all::${group}`;
  return {
    subscriptionId,
    checkpoint: `$persistentsubscription-${subscriptionId}-checkpoint`,
    parked: `$persistentsubscription-${subscriptionId}-parked`,
  };
}

const utf8 = new TextEncoder();

export type NakAction = 'unknown' | 'park' | 'retry' | 'skip' | 'stop';

export interface GroupStatistics {
  status: string;
  averagePerSecond: number;
  totalItems: number;
  countSinceLastMeasurement: number;
  lastCheckpointedEventPosition: string;
  lastKnownEventPosition: string;
  readBufferCount: number;
  liveBufferCount: number;
  retryBufferCount: number;
  totalInFlightMessages: number;
  outstandingMessagesCount: number;
  parkedMessageCount: number;
  connections: {
    from: string;
    username: string;
    averageItemsPerSecond: number;
    totalItems: number;
    countSinceLastMeasurement: number;
    availableSlots: number;
    inFlightMessages: number;
    connectionName: string;
  }[];
}

export class PersistentGroup {
  readonly subscriptionId: string;
  readonly checkpointStream: string;
  readonly parkedStream: string;
  clients: ClientCollection;
  /** Rules of the server that failed as the server's would (see ServerFault), for tests to see. */
  readonly anomalies: string[] = [];

  private state = NOT_READY;
  private buffer: StreamBuffer | undefined;
  private readonly outstanding = new OutstandingCache();
  private nextEventToPullFrom: AllPosition = { commit: 0n, prepare: 0n };
  private skipFirstEvent = false;
  private lastCheckPointTime = -8.64e15; // DateTime.MinValue
  private nextSequenceNumber = 0;
  private lastCheckpointedSequenceNumber = -1;
  private lastKnownSequenceNumber = -1;
  private lastKnownMessage: AllPosition | undefined;
  private reading = false;
  private readAgain = false;
  // PersistentSubscriptionStats.cs
  private totalItems = 0;
  private lastTotalItems = 0;
  private lastStatsAt: number;
  private readonly createdAt: number;
  private lastCheckpointedEventPosition: AllPosition | undefined;
  private lastKnownEventPosition: AllPosition | undefined;
  // PersistentSubscriptionMessageParker.cs
  private lastTruncateBefore = -1n;
  private lastParkedEventNumber = -1n;

  constructor(
    readonly settings: GroupSettings,
    private readonly strategy: ConsumerStrategy,
    private readonly io: PersistentIo,
    private readonly defer: (work: () => void) => void,
  ) {
    if (settings.readBatchSize >= settings.historyBufferSize) {
      // PersistentSubscription's constructor: new ArgumentOutOfRangeException(paramName) -> this message.
      throw new Error(
        "Specified argument was out of the range of valid values. (Parameter 'ReadBatchSize may not be greater than or equal to BufferSize')",
      );
    }
    const streams = groupStreams(settings.group);
    this.subscriptionId = streams.subscriptionId;
    this.checkpointStream = streams.checkpoint;
    this.parkedStream = streams.parked;
    this.clients = new ClientCollection(strategy);
    this.createdAt = this.lastStatsAt = Date.now();
    this.initAsNew();
  }

  get clientCount(): number {
    return this.clients.count;
  }

  get hasReachedMaxClientCount(): boolean {
    return this.settings.maxSubscriberCount !== 0 && this.clients.count >= this.settings.maxSubscriberCount;
  }

  get ready(): boolean {
    return this.state !== NOT_READY && this.buffer !== undefined;
  }

  private initAsNew(): void {
    this.state = NOT_READY;
    this.nextSequenceNumber = 0;
    this.lastCheckpointedSequenceNumber = -1;
    this.lastKnownSequenceNumber = -1;
    this.lastKnownMessage = undefined;
    this.clients = new ClientCollection(this.strategy);
    this.onCheckpointLoaded(this.io.readCheckpoint(this.checkpointStream));
  }

  /** PersistentSubscription.OnCheckpointLoaded. */
  private onCheckpointLoaded(checkpoint: string | null): void {
    this.state = BEHIND;
    const start = this.settings.startFrom;
    if (checkpoint === null) {
      // No checkpoint: from startFrom; END (C:-1/P:-1) starts live, so nothing already in the log is delivered.
      this.nextEventToPullFrom = isLivePosition(start) ? { commit: 0n, prepare: 0n } : start;
      this.buffer = new StreamBuffer(this.settings.historyBufferSize, this.settings.liveBufferSize, undefined, !isLivePosition(start));
      this.tryReadingNewBatch();
      return;
    }
    const position = parsePosition(checkpoint);
    if (!position) throw new ServerFault(`unparsable checkpoint '${checkpoint}'`);
    // Resume AFTER the checkpoint: the first event read (the checkpointed one) is skipped, and the buffer refuses
    // anything at or before the checkpoint.
    this.nextEventToPullFrom = position;
    this.skipFirstEvent = true;
    this.nextSequenceNumber = 1;
    this.lastCheckpointedSequenceNumber = 0;
    this.lastKnownSequenceNumber = 0;
    this.lastKnownMessage = position;
    this.lastCheckpointedEventPosition = position;
    this.buffer = new StreamBuffer(this.settings.historyBufferSize, this.settings.liveBufferSize, position, true);
    this.loadParkedStats();
    this.tryReadingNewBatch();
  }

  // ------------------------------------------------------------------------------------------------------------------
  // Reading $all

  /** PersistentSubscription.TryReadingNewBatch (the reads complete at once; a loop stands for the server's re-issued reads). */
  private tryReadingNewBatch(): void {
    if (this.reading) {
      this.readAgain = true;
      return;
    }
    this.reading = true;
    try {
      do {
        this.readAgain = false;
        this.readOnce();
      } while (this.readAgain);
    } finally {
      this.reading = false;
    }
  }

  private readOnce(): void {
    const buffer = this.buffer;
    if (!buffer || this.state === NOT_READY) return;
    if ((this.state & OUTSTANDING_PAGE_REQUEST) !== 0) return;
    if (buffer.live) {
      this.setLive();
      return;
    }
    if (!buffer.canAccept(this.settings.readBatchSize)) return;
    this.state |= OUTSTANDING_PAGE_REQUEST;
    // PersistentSubscriptionStreamReader.cs: count min(max(batch, 10), batch'), batch' = min(batch or 20, 500, 100);
    // a filtered read looks at max(batch', MaxCheckPointCount) records at most.
    const batch = Math.min(this.settings.readBatchSize === 0 ? 20 : this.settings.readBatchSize, 500, 100);
    const count = Math.min(Math.max(this.settings.readBatchSize, 10), batch);
    const filter = this.settings.filter;
    const result = this.io.readAllForward(
      this.nextEventToPullFrom,
      count,
      this.settings.resolveLinkTos,
      filter,
      Math.max(batch, this.settings.maxCheckPointCount),
    );
    const skipFirst = this.skipFirstEvent;
    this.skipFirstEvent = false;
    if (filter && result.events.length === 0 && result.considered > 0) {
      // A window with nothing that matches: checkpoint where the read started (ResponseHandler.FetchAllFilteredCompleted).
      this.handleSkippedEvents(result.current, result.considered);
    }
    this.handleReadCompleted(skipFirst ? result.events.slice(1) : result.events, result.next, result.isEndOfStream);
  }

  /** PersistentSubscription.HandleReadCompleted. */
  private handleReadCompleted(events: Resolved[], next: AllPosition, isEndOfStream: boolean): void {
    const buffer = this.buffer;
    if (!buffer) return;
    if ((this.state & OUTSTANDING_PAGE_REQUEST) === 0) return;
    this.state &= ~OUTSTANDING_PAGE_REQUEST;
    if (buffer.live) return;
    for (const event of events) buffer.addReadMessage(newEventMessage(event, event.position as AllPosition));
    const last = events[events.length - 1];
    if (last?.position) this.setLastKnownEventPosition(last.position);
    if (buffer.live) this.setLive();
    if (isEndOfStream && buffer.tryMoveToLive()) {
      // The server returns here without pushing: what this read added waits for the next push (an ack, a new
      // consumer, a live event or the clock tick).
      this.setLive();
      return;
    }
    this.nextEventToPullFrom = next;
    this.tryReadingNewBatch();
    this.tryPushingMessagesToClients();
  }

  private setLive(): void {
    this.state &= ~BEHIND;
    this.state |= LIVE;
  }

  private setBehind(): void {
    this.state |= BEHIND;
    this.state &= ~LIVE;
  }

  /** PersistentSubscription.NotifyLiveSubscriptionMessage: an event committed to $all (the default $all filter already passed). */
  notifyLiveSubscriptionMessage(resolved: Resolved): void {
    const buffer = this.buffer;
    if (!buffer || this.state === NOT_READY) return;
    const position = resolved.position as AllPosition;
    if (comparePositions(position, this.settings.startFrom) < 0) return;
    const filter = this.settings.filter;
    if (filter) {
      // The live feed filters the RESOLVED event (resolvedEvent.Event), where a read of $all filters the record itself.
      if (!resolved.event) throw new ServerFault('NotifyLiveSubscriptionMessage: filtering an unresolved link (Event is null)');
      if (!filterAllows(filter, resolved.event)) {
        this.handleSkippedEvents(position, 1);
        return;
      }
    }
    this.setLastKnownEventPosition(position);
    const wasLive = buffer.live;
    buffer.addLiveMessage(newEventMessage(resolved, position));
    if (!buffer.live) {
      this.setBehind();
      if (wasLive) this.nextEventToPullFrom = position;
    }
    this.tryPushingMessagesToClients();
  }

  /** PersistentSubscription.HandleSkippedEvents: filtered-out events count as processed for checkpoints. */
  private handleSkippedEvents(position: AllPosition, skipped: number): void {
    this.lastKnownMessage = position;
    this.nextSequenceNumber += skipped;
    this.lastKnownSequenceNumber = this.nextSequenceNumber - 1;
    this.tryMarkCheckpoint(false);
  }

  // ------------------------------------------------------------------------------------------------------------------
  // Pushing to consumers

  /** PersistentSubscription.TryPushingMessagesToClients: retries first, then the buffer, while the strategy finds room. */
  private tryPushingMessagesToClients(): void {
    const buffer = this.buffer;
    if (!buffer || this.state === NOT_READY) return;
    for (const pointer of buffer.scan()) {
      const { message, isNew } = this.forPushedEvent(pointer.message);
      const result = this.clients.push(message);
      if (result === 'sent') {
        pointer.sent();
        if (isNew) this.nextSequenceNumber += 1;
        this.markBeginProcessing(message);
      } else if (result === 'no-more-capacity') {
        return;
      }
    }
  }

  /** OutstandingMessage.ForPushedEvent: a new event gets the next sequence number and the previous position. */
  private forPushedEvent(message: Message): { message: Message; isNew: boolean } {
    if (this.nextSequenceNumber > 0 && !this.lastKnownMessage) throw new ServerFault('ForPushedEvent: previousEventPosition is null');
    if (message.isReplayedEvent || message.sequence !== undefined) return { message, isNew: false };
    return { message: { ...message, sequence: this.nextSequenceNumber, previousEventPosition: this.lastKnownMessage }, isNew: true };
  }

  private markBeginProcessing(message: Message): void {
    this.totalItems += 1;
    if (message.sequence !== undefined && message.sequence > this.lastKnownSequenceNumber) {
      this.lastKnownSequenceNumber = message.sequence;
      this.lastKnownMessage = positionOf(message);
    }
    const expires = this.io.nowMs() + this.settings.messageTimeoutMs;
    if (this.outstanding.start(message, expires) === 'skipped-duplicate') {
      this.anomalies.push(
        `Skipping message ${originalRecord(message.resolved).stream}/${originalRecord(message.resolved).revision} with duplicate eventId ${message.eventId}`,
      );
    }
  }

  /** PersistentSubscription.AddClient. */
  addClient(client: PersistentClient): void {
    this.clients.add(client);
    this.tryPushingMessagesToClients();
  }

  /** PersistentSubscription.RemoveClientByCorrelationId: what the consumer had in flight is retried (retry count + 1), never parked here. */
  removeClientByCorrelationId(correlationId: string, sendDropNotification: boolean): void {
    const lost = this.clients
      .remove(correlationId, sendDropNotification)
      .map((message, index) => ({ message, index }))
      .sort((a, b) => {
        const ra = originalRecord(a.message.resolved).revision;
        const rb = originalRecord(b.message.resolved).revision;
        return ra < rb ? -1 : ra > rb ? 1 : a.index - b.index; // OrderBy(OriginalEventNumber), stable
      });
    for (const { message } of lost) this.retryMessage(message);
    this.tryPushingMessagesToClients();
  }

  /** PersistentSubscription.Shutdown: every consumer is dropped (SubscriptionDropped, reason Unsubscribed). */
  shutdown(): void {
    for (const client of this.clients.all()) this.clients.remove(client.correlationId, true);
  }

  // ------------------------------------------------------------------------------------------------------------------
  // Acks, nacks, time-outs

  acknowledgeMessagesProcessed(ids: readonly string[]): void {
    const normalized = ids.map(normalizeId);
    this.removeProcessingMessages(normalized);
    this.tryMarkCheckpoint(false);
    this.tryReadingNewBatch();
    this.tryPushingMessagesToClients();
  }

  notAcknowledgeMessagesProcessed(ids: readonly string[], action: NakAction, reason: string): void {
    const normalized = ids.map(normalizeId);
    for (const id of normalized) this.handleNackedMessage(action, id, reason);
    this.removeProcessingMessages(normalized);
    this.tryMarkCheckpoint(false);
    this.tryReadingNewBatch();
    this.tryPushingMessagesToClients();
  }

  /** PersistentSubscription.HandleNackedMessage. */
  private handleNackedMessage(action: NakAction, id: string, reason: string): void {
    switch (action) {
      case 'retry':
      case 'unknown': {
        const message = this.outstanding.get(id);
        if (message && !this.actionTakenForRetriedMessage(message)) this.retryMessage(message);
        return;
      }
      case 'park': {
        const message = this.outstanding.get(id);
        if (message) this.parkMessage(message.resolved, "Client explicitly NAK'ed message.\n" + reason, 0);
        return;
      }
      case 'stop':
        return; // "TODO CC Stop subscription?": nothing happens
      case 'skip':
      default:
        this.outstanding.remove(id);
    }
  }

  private removeProcessingMessages(ids: readonly string[]): void {
    this.clients.removeProcessing(ids);
    for (const id of ids) this.outstanding.remove(id);
  }

  /** PersistentSubscription.ActionTakenForRetriedMessage: at MaxRetryCount retries the message is parked instead. */
  private actionTakenForRetriedMessage(message: Message): boolean {
    if (message.retryCount < this.settings.maxRetryCount) return false;
    this.parkMessage(message.resolved, `Reached retry count of ${this.settings.maxRetryCount}`, 0);
    return true;
  }

  /** PersistentSubscription.RetryMessage: out of flight, into the retry queue with one more retry. */
  private retryMessage(message: Message): void {
    const buffer = this.buffer;
    if (!buffer) return;
    this.outstanding.remove(message.eventId);
    this.clients.removeProcessing([message.eventId]);
    buffer.addRetry(retriedMessage(message));
  }

  /**
   * PersistentSubscription.NotifyClockTick: messages past their time-out are retried (or parked past MaxRetryCount),
   * then a checkpoint may be written by time. `expireAll` makes every in-flight message count as timed out.
   */
  notifyClockTick(now: number, expireAll: boolean): void {
    if (this.state === NOT_READY) return;
    for (const message of this.outstanding.takeExpiringBefore(expireAll ? Number.POSITIVE_INFINITY : now)) {
      if (!this.actionTakenForRetriedMessage(message)) this.retryMessage(message);
    }
    this.tryPushingMessagesToClients();
    this.tryMarkCheckpoint(true);
    // The server's test is `(_state & Behind | OutstandingPageRequest) == Behind`; `&` binds tighter than `|`, so it
    // is never true and a tick never starts a read.
    if (((this.state & BEHIND) | OUTSTANDING_PAGE_REQUEST) === BEHIND) this.tryReadingNewBatch();
  }

  // ------------------------------------------------------------------------------------------------------------------
  // Checkpoints

  /** PersistentSubscription.TryMarkCheckpoint. */
  private tryMarkCheckpoint(isTimeCheck: boolean): void {
    const buffer = this.buffer;
    if (!buffer) return;
    let lowest = this.outstanding.lowest();
    const lowestRetry = buffer.lowestRetry();
    if (lowestRetry.sequence < lowest.sequence) lowest = lowestRetry;
    let sequence: number;
    let position: AllPosition | undefined;
    if (lowest.sequence !== Number.MAX_SAFE_INTEGER) {
      // The message before the lowest one not yet acknowledged.
      sequence = lowest.sequence - 1;
      position = lowest.message?.previousEventPosition;
      if (!position) return; // the very first message is not acknowledged yet
    } else {
      sequence = this.lastKnownSequenceNumber;
      position = this.lastKnownMessage;
    }
    if (sequence === -1 || !position) return;
    const difference = sequence - this.lastCheckpointedSequenceNumber;
    const now = this.io.nowMs();
    const checkPointAfter = this.settings.checkPointAfterMs === 0 ? Number.POSITIVE_INFINITY : this.settings.checkPointAfterMs;
    if (now - this.lastCheckPointTime < checkPointAfter && difference < this.settings.maxCheckPointCount) return;
    if ((difference >= this.settings.minCheckPointCount && isTimeCheck) || difference >= this.settings.maxCheckPointCount) {
      this.lastCheckPointTime = now;
      this.lastCheckpointedSequenceNumber = sequence;
      this.io.writeCheckpoint(this.checkpointStream, formatPosition(position));
      this.lastCheckpointedEventPosition = position;
    }
  }

  // ------------------------------------------------------------------------------------------------------------------
  // Parking

  /**
   * PersistentSubscriptionMessageParker.BeginParkMessage: a '$>' to "<revision>@<stream>" of the event (an unresolved
   * link: the link's own data), written as NOT JSON (application/octet-stream), whose metadata is ParkedMessageMetadata
   * serialized with the server's Json settings: camelCase, indented, default values left out (so
   * subscriptionEventNumber is absent when it is 0). The message leaves flight when the write completes.
   */
  private parkMessage(resolved: Resolved, reason: string, attempt: number): void {
    const added = newtonsoftDate(this.io.log.now());
    const metadata: Record<string, unknown> = { added, reason };
    const subscriptionEventNumber = originalRecord(resolved).revision;
    if (subscriptionEventNumber !== 0n) metadata.subscriptionEventNumber = Number(subscriptionEventNumber);
    const data = resolved.event
      ? `${resolved.event.revision}@${resolved.event.stream}`
      : Buffer.from(originalRecord(resolved).data).toString('utf8');
    const revision = this.io.appendOne(
      this.parkedStream,
      '$>',
      'application/octet-stream',
      utf8.encode(data),
      utf8.encode(JSON.stringify(metadata, null, 2)),
    );
    const eventId = normalizeId(originalRecord(resolved).eventId);
    if (revision === undefined) {
      if (attempt < 5) {
        this.parkMessage(resolved, reason, attempt + 1);
        return;
      }
      this.anomalies.push(`Unable to park message ${eventId} after retries. Possible message loss`);
    } else {
      this.lastParkedEventNumber = revision;
    }
    this.defer(() => {
      this.outstanding.remove(eventId);
      this.clients.removeProcessing([eventId]);
      this.tryPushingMessagesToClients();
    });
  }

  /** PersistentSubscriptionMessageParker.BeginLoadStats (only when the group starts from a checkpoint). */
  private loadParkedStats(): void {
    const records = this.io.log.readStream(this.parkedStream);
    this.lastTruncateBefore = records[0]?.revision ?? -1n;
    this.lastParkedEventNumber = records[records.length - 1]?.revision ?? -1n;
  }

  /** PersistentSubscriptionMessageParker.ParkedMessageCount. */
  get parkedMessageCount(): bigint {
    if (this.lastParkedEventNumber === -1n) return 0n;
    if (this.lastTruncateBefore === -1n) return this.lastParkedEventNumber + 1n;
    return this.lastParkedEventNumber - this.lastTruncateBefore + 1n;
  }

  /**
   * PersistentSubscription.RetryParkedMessages: the parked stream is read (links resolved) up to `stopAt` (exclusive)
   * or its end; each parked event whose target still resolves goes to the END of the retry queue as a replayed message
   * (retry count 0, no sequence number); then the parked stream is truncated ($tb) up to where it was read, at once,
   * before the replayed messages are acknowledged.
   */
  retryParkedMessages(stopAt: bigint | undefined): void {
    if (this.state === NOT_READY) return;
    if ((this.state & REPLAYING_PARKED_MESSAGES) !== 0) return;
    this.state |= REPLAYING_PARKED_MESSAGES;
    const read = this.io.log.readStreamResult(this.parkedStream);
    if (read.kind !== 'ok') {
      this.state ^= REPLAYING_PARKED_MESSAGES;
      return;
    }
    const end = read.lastRevision;
    const stopRead = stopAt !== undefined ? (stopAt < end + 1n ? stopAt : end + 1n) : end + 1n;
    let position = 0n;
    for (;;) {
      if (stopRead - position <= 0n) {
        // Ensure.Positive(stopAt - position, "count") throws: the replaying flag stays set, later replays do nothing.
        throw new ServerFault(
          `RetryParkedMessages: count ${stopRead - position} is not positive; parked messages will not be replayed until the group is reloaded`,
        );
      }
      const count =
        BigInt(this.settings.readBatchSize) < stopRead + 1n - position ? BigInt(this.settings.readBatchSize) : stopRead + 1n - position;
      const batch = this.readParkedForward(position, count);
      for (const resolved of batch.events) {
        if (originalRecord(resolved).revision === stopRead) break;
        if (!resolved.event) continue; // the parked event is gone (deleted or truncated)
        this.buffer?.addRetry(parkedEventMessage(resolved));
      }
      this.tryPushingMessagesToClients();
      if (batch.isEndOfStream || stopRead <= batch.next) {
        const replayedEnd = stopRead < batch.next ? stopRead : batch.next;
        this.markParkedMessagesReprocessed(replayedEnd);
        this.state ^= REPLAYING_PARKED_MESSAGES;
        return;
      }
      position = batch.next;
    }
  }

  /**
   * A forward read of the parked stream, links resolved (IndexReader.ReadStreamEventsForwardInternal: the window is
   * [from, from + count - 1]; $tb / $maxCount raise its start, not its end; a window wholly below them is empty and
   * not the end of the stream).
   */
  private readParkedForward(from: bigint, count: bigint): { events: Resolved[]; next: bigint; isEndOfStream: boolean } {
    const log = this.io.log;
    const read = log.readStreamResult(this.parkedStream);
    if (read.kind !== 'ok') return { events: [], next: 0n, isEndOfStream: true };
    const last = read.lastRevision;
    const metadata = log.streamMetadata(this.parkedStream);
    let min = 0n;
    if (metadata.maxCount !== undefined && last - metadata.maxCount + 1n > min) min = last - metadata.maxCount + 1n;
    if (metadata.truncateBefore !== undefined && metadata.truncateBefore > min) min = metadata.truncateBefore;
    const end = from + count - 1n;
    if (end < min) return { events: [], next: min, isEndOfStream: false };
    const start = from > min ? from : min;
    if (start > last) return { events: [], next: last + 1n, isEndOfStream: true };
    const records = read.records.filter((record: LogRecord) => record.revision >= start && record.revision <= end);
    const lastRead = records[records.length - 1];
    const next = lastRead ? lastRead.revision + 1n : end + 1n < last + 1n ? end + 1n : last + 1n;
    // ResolvedEvent.CalculatePosition: a self-committed record read from a stream is at its own log position.
    const events = records.map((record) =>
      this.io.resolve(record, true, { commit: record.position.prepare, prepare: record.position.prepare }),
    );
    return { events, next, isEndOfStream: end >= last };
  }

  /** PersistentSubscriptionMessageParker.BeginMarkParkedMessagesReprocessed: $tb on the parked stream, admins-only ACL. */
  private markParkedMessagesReprocessed(truncateBefore: bigint): void {
    this.io.log.setStreamMetadata(this.parkedStream, {
      $tb: truncateBefore,
      $acl: { $r: '$admins', $w: '$admins', $d: '$admins', $mr: '$admins', $mw: '$admins' },
    });
    this.lastTruncateBefore = truncateBefore;
  }

  /** PersistentSubscription.Delete: the checkpoint and parked streams are (soft) deleted. */
  delete(): void {
    this.io.softDelete(this.checkpointStream);
    this.io.softDelete(this.parkedStream);
  }

  // ------------------------------------------------------------------------------------------------------------------
  // Statistics

  private setLastKnownEventPosition(position: AllPosition): void {
    if (!this.lastKnownEventPosition || comparePositions(this.lastKnownEventPosition, position) < 0) this.lastKnownEventPosition = position;
  }

  /** PersistentSubscriptionStats.GetStatistics (the rates use the real clock). */
  statistics(): GroupStatistics {
    const now = Date.now();
    const elapsedMs = now - this.lastStatsAt;
    const lastItems = this.totalItems - this.lastTotalItems;
    this.lastStatsAt = now;
    this.lastTotalItems = this.totalItems;
    const rate = (items: number) => (elapsedMs > 0 ? Math.trunc((items * 1000) / elapsedMs) : 0);
    let totalInFlight = 0;
    const connections = this.clients.all().map((client) => {
      const items = client.totalItems - client.lastTotalItems;
      client.lastTotalItems = client.totalItems;
      totalInFlight += client.inFlight;
      return {
        from: client.from,
        username: client.username,
        averageItemsPerSecond: rate(items),
        totalItems: client.totalItems,
        countSinceLastMeasurement: items,
        availableSlots: client.availableSlots,
        inFlightMessages: client.inFlight,
        connectionName: client.connectionName,
      };
    });
    return {
      status: stateName(this.state),
      averagePerSecond: rate(lastItems),
      totalItems: this.totalItems,
      countSinceLastMeasurement: lastItems,
      lastCheckpointedEventPosition: this.lastCheckpointedEventPosition ? formatPosition(this.lastCheckpointedEventPosition) : '',
      lastKnownEventPosition: this.lastKnownEventPosition ? formatPosition(this.lastKnownEventPosition) : '',
      readBufferCount: this.buffer?.buffer.length ?? 0,
      liveBufferCount: this.buffer?.liveBuffer.length ?? 0,
      retryBufferCount: this.buffer?.retry.length ?? 0,
      totalInFlightMessages: totalInFlight,
      outstandingMessagesCount: this.outstanding.count,
      parkedMessageCount: Number(this.parkedMessageCount),
      connections,
    };
  }

  /** For the emulator's control: what is in flight, waiting for a retry, and the state. */
  snapshot(): {
    status: string;
    inFlight: { eventId: string; stream: string; revision: bigint; retryCount: number; replayed: boolean; consumers: string[] }[];
    retryQueue: { eventId: string; retryCount: number; replayed: boolean }[];
    lastCheckpoint: string | undefined;
    ageMs: number;
  } {
    const holders = (id: string) =>
      this.clients
        .all()
        .filter((c) => c.unconfirmed.has(id))
        .map((c) => c.consumerId);
    return {
      status: stateName(this.state),
      inFlight: this.outstanding.entries().map(({ message }) => {
        const record = message.resolved.event ?? originalRecord(message.resolved);
        return {
          eventId: message.eventId,
          stream: record.stream,
          revision: record.revision,
          retryCount: message.retryCount,
          replayed: message.isReplayedEvent,
          consumers: holders(message.eventId),
        };
      }),
      retryQueue: (this.buffer?.retry ?? []).map((m) => ({ eventId: m.eventId, retryCount: m.retryCount, replayed: m.isReplayedEvent })),
      lastCheckpoint: this.lastCheckpointedEventPosition ? formatPosition(this.lastCheckpointedEventPosition) : undefined,
      ageMs: Date.now() - this.createdAt,
    };
  }
}
