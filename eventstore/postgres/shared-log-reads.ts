import type { Pool } from 'pg';
import type { Queryable } from './log-queries';
import type { GlobalPosition } from '../event-store';
import { readEventsAfter, type LogRead } from './log-queries';

/**
 * Reads of the log after a position, shared by the consumer groups of one store. Every group reads the whole log
 * (unfiltered, so its checkpoint passes events of no interest too), so groups that have caught up stand at the same
 * position, and one append wakes them all at once: without sharing, each would send the same query. A read is
 * shared only with a group that asks for the same position after it started and whose wake-up it cannot have missed:
 * the read must have started after the latest append notification the group knows of (`since`, the notifier's
 * generation), so everything that notification announced is in it (as far as readers may see it yet).
 * The events handed out are shared between groups: nobody changes a RecordedEvent.
 */
export class SharedLogReads {
  private readonly inFlight = new Map<string, { generation: number; events: Promise<LogRead> }>();
  constructor(private readonly pool: Pool) {}

  /**
   * The next `limit` events readers may see after `from`, read after append notification `since`; a new read runs on
   * `on` (the asking group's own connection) when given, else on the store's pool. `shared`: the answer came from a
   * read another group started (on its connection). If that read fails (its connection lost, say), the asking group
   * reads for itself instead of taking another group's failure for its own.
   */
  async after(from: GlobalPosition, limit: number, since: number, on?: Queryable): Promise<LogRead & { shared: boolean }> {
    const key = `${from.commit}:${from.prepare}:${limit}`;
    const running = this.inFlight.get(key);
    if (running && running.generation >= since) {
      try {
        return { ...(await running.events), shared: true };
      } catch {
        // another group's read failed: this group's own read below decides
      }
    }
    const read = { generation: since, events: readEventsAfter(on ?? this.pool, from, limit) };
    this.inFlight.set(key, read);
    const forget = () => {
      if (this.inFlight.get(key) === read) this.inFlight.delete(key);
    };
    read.events.then(forget, forget);
    return { ...(await read.events), shared: false };
  }
}
