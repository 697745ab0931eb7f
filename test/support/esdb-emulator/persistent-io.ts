import type { EmulatedLog, LogRecord } from './log';
import { allowedInAll } from './log';
import type { AllPosition, Resolved } from './persistent-model';
import { comparePositions } from './persistent-model';

/**
 * The reads and writes a persistent subscription makes, against the emulated log, done synchronously (the server's
 * IODispatcher calls, src/EventStore.Core/Helpers/IODispatcher.cs, complete later; here they complete at once).
 */

const utf8 = new TextEncoder();
const EMPTY = new Uint8Array(0);

/**
 * The filter every $all read and the live feed of $all groups apply (Services/Storage/ReaderIndex/EventFilter.cs
 * DefaultAllFilterStrategy, in log.ts): user streams pass; of the system streams, $epoch-information and the
 * checkpoint and parked streams of $all groups do not. Everything else passes, e.g. `$$stream` metadata events, the
 * `$$` streams of the parked streams (they start with "$$$persistentsubscription-") and $persistentSubscriptionConfig.
 */
export const defaultAllFilterAllows = allowedInAll;

/** The filter of a group to $all as the server stores it (EventFilter.EventFilterDto: context, type, data). */
export interface GroupFilter {
  context: 'streamid' | 'eventtype';
  type: 'prefix' | 'regex';
  /** The prefixes, or the one regex. */
  data: string[];
}

/**
 * EventFilter.cs StreamIdPrefixStrategy / StreamIdRegexStrategy / EventTypePrefixStrategy / EventTypeRegexStrategy,
 * with isAllStream = true: the default $all filter first, then any prefix, or a regex match anywhere (.NET
 * Regex.Match; JavaScript's RegExp stands in for it).
 */
export function filterAllows(filter: GroupFilter, record: LogRecord): boolean {
  if (!defaultAllFilterAllows(record)) return false;
  const subject = filter.context === 'streamid' ? record.stream : record.type;
  if (filter.type === 'prefix') return filter.data.some((prefix) => subject.startsWith(prefix));
  return new RegExp(filter.data[0] ?? '').test(subject);
}

export interface ReadAllResult {
  events: Resolved[];
  /** Where the next read starts: the next record's position, or the end of the log. */
  next: AllPosition;
  /** The position the read started from (FilteredReadAllEventsForwardCompleted.CurrentPos). */
  current: AllPosition;
  isEndOfStream: boolean;
  /** Records a filtered read looked at (FilteredReadAllEventsForwardCompleted.ConsideredEventsCount). */
  considered: number;
}

export class PersistentIo {
  constructor(readonly log: EmulatedLog) {}

  nowMs(): number {
    return this.log.now().getTime();
  }

  /**
   * A record as a read with resolveLinkTos sees it: a '$>' that resolves -> event + link; one that does not -> the link
   * alone (ResolvedEvent.ForFailedResolvedLink: no event); anything else -> the event.
   */
  resolve(record: LogRecord, resolveLinkTos: boolean, position: AllPosition | undefined): Resolved {
    if (resolveLinkTos && record.type === '$>') {
      const target = this.log.resolveLink(record);
      return target ? { event: target, link: record, position } : { link: record, position };
    }
    return { event: record, position };
  }

  /**
   * ReadIndex.LastIndexedPosition: the log position of the last event record. A real node's log is never empty (it
   * starts with system records), so an empty emulated log counts as 0 here: a group may start from C:0/P:0.
   */
  lastIndexedPosition(): bigint {
    const last = this.log.lastIndexedPosition;
    return last < 0n ? 0n : last;
  }

  private firstIndexAtOrAfter(from: AllPosition): number {
    const all = this.log.all();
    let lo = 0;
    let hi = all.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const record = all[mid];
      if (record && comparePositions(record.position, from) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * ReadAllEventsForward / FilteredReadAllEventsForward from `from` (inclusive), as the group's stream reader calls
   * them (src/EventStore.Core/Services/PersistentSubscription/PersistentSubscriptionStreamReader.cs): up to `count`
   * events; a filtered read looks at no more than `maxSearchWindow` records. Both apply the default $all filter.
   */
  readAllForward(
    from: AllPosition,
    count: number,
    resolveLinkTos: boolean,
    filter: GroupFilter | undefined,
    maxSearchWindow: number,
  ): ReadAllResult {
    const all = this.log.all();
    let index = this.firstIndexAtOrAfter(from);
    const events: Resolved[] = [];
    let considered = 0;
    while (index < all.length && events.length < count && (!filter || considered < maxSearchWindow)) {
      const record = all[index] as LogRecord;
      index += 1;
      if (filter) {
        considered += 1;
        if (!filterAllows(filter, record)) continue;
      } else if (!defaultAllFilterAllows(record)) {
        continue;
      }
      events.push(this.resolve(record, resolveLinkTos, { ...record.position }));
    }
    const nextRecord = all[index];
    const next = nextRecord ? { ...nextRecord.position } : { commit: this.log.writerPosition, prepare: this.log.writerPosition };
    return { events, next, current: from, isEndOfStream: index >= all.length, considered };
  }

  /**
   * PersistentSubscriptionCheckpointReader.cs: the last event of the checkpoint stream, if it is a
   * $SubscriptionCheckpoint (or SubscriptionCheckpoint), holds the checkpoint as a JSON string.
   */
  readCheckpoint(stream: string): string | null {
    const events = this.log.readStream(stream);
    const last = events[events.length - 1];
    if (!last || (last.type !== '$SubscriptionCheckpoint' && last.type !== 'SubscriptionCheckpoint')) return null;
    try {
      const value: unknown = JSON.parse(Buffer.from(last.data).toString('utf8'));
      return typeof value === 'string' ? value : null;
    } catch {
      return null;
    }
  }

  /** PersistentSubscriptionCheckpointWriter.PublishCheckpoint: a JSON string, type $SubscriptionCheckpoint, no metadata. */
  writeCheckpoint(stream: string, checkpoint: string): void {
    this.log.append(stream, { kind: 'any' }, [
      {
        eventId: crypto.randomUUID(),
        type: '$SubscriptionCheckpoint',
        contentType: 'application/json',
        data: utf8.encode(JSON.stringify(checkpoint)),
        metadata: EMPTY,
      },
    ]);
  }

  /** Appends one event (expected version: any); returns its revision. */
  appendOne(stream: string, type: string, contentType: string, data: Uint8Array, metadata: Uint8Array): bigint | undefined {
    const outcome = this.log.append(stream, { kind: 'any' }, [{ eventId: crypto.randomUUID(), type, contentType, data, metadata }]);
    return outcome.kind === 'success' ? outcome.currentRevision : undefined;
  }

  /** IODispatcher.DeleteStream(expected any, soft): the group's checkpoint and parked streams when it is deleted. */
  softDelete(stream: string): void {
    if (this.log.lastRevision(stream) === undefined && this.log.lastRevision(`$$${stream}`) === undefined) return;
    this.log.deleteStream(stream, { kind: 'any' }, false);
  }
}

/**
 * DateTime serialized by Newtonsoft.Json with the server's settings (IsoDateFormat, round-trip kind): a local time
 * with its offset and up to seven fractional digits, trailing zeros dropped. The server runs in UTC here: "+00:00".
 */
export function newtonsoftDate(date: Date): string {
  const iso = date.toISOString(); // 2024-05-01T10:20:30.123Z
  const [seconds, fraction = '000'] = iso.slice(0, -1).split('.');
  const digits = `${fraction}0000`.replace(/0+$/, '');
  return `${seconds}${digits ? `.${digits}` : ''}+00:00`;
}

/** Ticks (100 ns) since the Unix epoch, as the server's "created" metadata (EpochExtensions.ToTicksSinceEpoch). */
export function ticksSinceEpoch(date: Date): string {
  return (BigInt(date.getTime()) * 10_000n).toString();
}
