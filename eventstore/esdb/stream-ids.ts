/**
 * Which event ids each stream holds, so that a re-sent event id is refused or answered idempotently on EventStoreDB in
 * the same cases as on PostgreSQL (whose unique index on the id does it).
 *
 * Why the adapter needs it: EventStoreDB compares event ids only when the expected revision is BELOW the stream's
 * current one (the server's IndexWriter, CheckCommitStartingAt: the ids of the events after the expected revision are
 * compared with those proposed). Events re-sent at the current revision, or with `any` once its bounded cache of recent
 * commits forgot them, are written again as new events. A keyed account write whose key record was purged re-sends
 * its deterministic ids at the current revision: without this check EventStoreDB would post the deposit twice.
 *
 * How: per stream, the ids of revisions 0..next-1 and their revisions, read once and then followed forward (each
 * lookup reads only the events appended since the last one: usually one empty read). Streams are append-only here
 * (the service never deletes or truncates its own streams); an id of an event hidden later by truncation stays known,
 * which only makes the check refuse more, never less.
 *
 * Cost: the first lookup of a stream in a process reads the whole stream; memory is about 100 bytes per id, bounded
 * by `maxIds` across streams (least recently used streams are dropped and read again when next written to). A stream
 * longer than `maxIds` is kept whole while it is written to.
 */
export interface IdRead {
  id: string;
  revision: bigint;
}

/** Reads a stream forwards from a revision: at most `maxCount` events, [] when the stream does not exist. */
export type ReadIds = (stream: string, fromRevision: bigint, maxCount: number) => Promise<IdRead[]>;

interface Known {
  /** Ids of revisions below this are all in `ids`. */
  next: bigint;
  ids: Map<string, bigint>;
}

const PAGE = 4096;

export class StreamIdIndex {
  /** In least-recently-used order (a stream is moved to the end when used). */
  private readonly streams = new Map<string, Known>();
  private size = 0;

  constructor(
    private readonly read: ReadIds,
    private readonly maxIds = 500_000,
  ) {}

  /** The revisions at which the stream holds any of `ids` (lowercase), after reading what it does not know yet. */
  async find(stream: string, ids: readonly string[]): Promise<Map<string, bigint>> {
    const known = await this.catchUp(stream);
    const found = new Map<string, bigint>();
    for (const id of ids) {
      const revision = known.ids.get(id.toLowerCase());
      if (revision !== undefined) found.set(id.toLowerCase(), revision);
    }
    return found;
  }

  /** Events this process just wrote or read, in revision order: learnt when they continue what is known. */
  observe(stream: string, events: readonly IdRead[]): void {
    const known = this.streams.get(stream);
    if (!known) return;
    this.add(stream, known, events);
  }

  /** Ids known, across streams (for tests and metrics). */
  get knownIds(): number {
    return this.size;
  }

  private async catchUp(stream: string): Promise<Known> {
    let known = this.streams.get(stream);
    if (known) this.streams.delete(stream);
    else known = { next: 0n, ids: new Map() };
    this.streams.set(stream, known); // most recently used
    for (;;) {
      const page = await this.read(stream, known.next, PAGE);
      this.add(stream, known, page);
      if (page.length < PAGE) break;
    }
    this.evict(stream);
    return known;
  }

  private add(stream: string, known: Known, events: readonly IdRead[]): void {
    const counted = this.streams.get(stream) === known; // a concurrent lookup may hold a stream evicted meanwhile
    for (const e of events) {
      // Only a contiguous continuation: a gap would make `next` claim ids it has not seen.
      if (e.revision !== known.next) {
        if (e.revision < known.next) continue;
        return;
      }
      known.ids.set(e.id.toLowerCase(), e.revision);
      known.next = e.revision + 1n;
      if (counted) this.size += 1;
    }
  }

  private evict(keep: string): void {
    for (const [stream, known] of this.streams) {
      if (this.size <= this.maxIds) return;
      if (stream === keep) continue;
      this.streams.delete(stream);
      this.size -= known.ids.size;
    }
  }
}
