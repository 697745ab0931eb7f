import { randomUUID } from 'node:crypto';
import type { Decider, DomainEvent } from '../domain/decider';
import { fold } from '../domain/decider';
import type {
  AppendResult,
  EventStore,
  ExpectedRevision,
  NewEvent,
  RecordedEvent,
  StreamAppendOutcome,
  StreamRead,
} from '../eventstore/event-store';
import { toDomainEvent, toNewEvent } from './event-envelope';
import { inTurn, type Turn } from './stream-turns';

/** A stream's state as loaded, with the revision to expect when appending ('no_stream' for a stream never written). */
export interface Loaded<S> {
  state: S;
  revision: bigint | 'no_stream';
}

export interface SnapshotOptions<S = unknown> {
  /** Write a snapshot of the state after every `every` events (best effort). */
  every: number;
  /** The state's schema: a snapshot of another schema is ignored, so a new state shape needs no migration. */
  schema: number;
  /** Told when a snapshot could not be written (the append it follows stands; the next load folds further). */
  onError?: (error: unknown, id: string) => void;
  /**
   * A snapshot of an older schema this repository can still read exactly: its state in today's shape, or undefined to
   * ignore it (then the stream is folded from its start). Without it, every other schema is ignored.
   */
  upgrade?: (schema: number, state: unknown) => S | undefined;
}

const PAGE = 1000;
/** Characters of a snapshot's JSON per part: at most 6 bytes each once escaped, so a part stays far under 1 MiB. */
export const SNAPSHOT_PART_CHARS = 131_072;
/** How far back a load looks for a complete snapshot when the latest was cut short. */
const SNAPSHOT_LOOKBACK = 1_000;

interface RawSnapshot {
  schema: number;
  revision: bigint;
  state: unknown;
}

function wholeSnapshot(event: RecordedEvent): RawSnapshot | undefined {
  const data = event.data as { schema?: unknown; revision?: unknown; state?: unknown };
  if (!data.state || typeof data.revision !== 'string' || typeof data.schema !== 'number') return undefined;
  return { schema: data.schema, revision: BigInt(data.revision), state: data.state };
}

function partOf(
  event: RecordedEvent,
): { schema: number; revision: bigint; snapshotId: string; part: number; parts: number; chunk: string } | undefined {
  const d = event.data as { schema?: unknown; revision?: unknown; snapshotId?: unknown; part?: unknown; parts?: unknown; chunk?: unknown };
  if (typeof d.schema !== 'number' || typeof d.revision !== 'string' || !/^\d+$/.test(d.revision)) return undefined;
  if (typeof d.snapshotId !== 'string' || typeof d.chunk !== 'string') return undefined;
  if (!Number.isSafeInteger(d.part) || !Number.isSafeInteger(d.parts) || (d.parts as number) < 1) return undefined;
  return {
    schema: d.schema,
    revision: BigInt(d.revision),
    snapshotId: d.snapshotId,
    part: d.part as number,
    parts: d.parts as number,
    chunk: d.chunk,
  };
}

/** One load of loadTogether: a stream read (undefined when the load takes more than one), and the state from what it returned. */
export interface LoadPlan<S> {
  read?: StreamRead;
  finish(page: RecordedEvent[] | undefined): Promise<Loaded<S>>;
}

type StatesOf<T extends readonly LoadPlan<unknown>[]> = { [K in keyof T]: T[K] extends LoadPlan<infer S> ? Loaded<S> : never };

/**
 * Several loads (of one repository or several) with one readStreams call for those that take one read each, e.g. a
 * transfer and its two accounts: one round trip and one connection instead of one per stream. Each answer equals
 * its repository's load().
 */
export async function loadTogether<T extends readonly LoadPlan<unknown>[]>(store: EventStore, ...plans: T): Promise<StatesOf<T>> {
  const reads = plans.flatMap((p) => (p.read ? [p.read] : []));
  const pages = reads.length > 0 ? await store.readStreams(reads) : [];
  let next = 0;
  return (await Promise.all(plans.map((p) => p.finish(p.read ? pages[next++] : undefined)))) as StatesOf<T>;
}

/** Streams whose folded state a repository keeps in memory by default (least recently used first out). */
export const DEFAULT_STATE_CACHE = 10_000;

/**
 * Streams of one decider: load = fold of the stream (from the latest snapshot when snapshots are on),
 * append with the expected revision. Every recorded event must be of the decider's union: another
 * type fails loudly (UnknownEventTypeError) instead of being dropped from the fold.
 */
export class EventSourcedRepository<S, C, E extends DomainEvent> {
  /**
   * The last state this process folded for each stream, with its revision and the id of the event at that revision: a
   * load reads from that event on (one query; without it, a snapshot read and the tail). Streams only grow and every
   * append checks the expected revision, so a state that is behind costs nothing more than the read. A store that went
   * back (a restore, a failover that lost commits, a deleted stream) no longer holds that event at that revision: the
   * state is then dropped and the stream folded again, never trusted. Only states folded from recorded events are kept
   * (never a state a command decided), and states are immutable (the deciders build new ones).
   */
  private readonly states = new Map<string, { state: S; revision: bigint; eventId: string }>();

  constructor(
    protected readonly store: EventStore,
    readonly decider: Decider<S, C, E>,
    private readonly snapshots?: SnapshotOptions<S>,
    /** How many streams' states to keep in memory (0: none). */
    private readonly cacheSize: number = DEFAULT_STATE_CACHE,
  ) {}

  /** The store this repository reads and writes (for another repository over the same log). */
  get eventStore(): EventStore {
    return this.store;
  }

  /** Runs a command's `work` in its turn among this process's commands on the stream (application/stream-turns.ts). */
  exclusive<T>(id: string, work: (turn: Turn) => Promise<T>): Promise<T> {
    return inTurn(this.store, this.decider.streamName(id), work);
  }

  snapshotStream(id: string): string {
    return `snapshot-${this.decider.streamName(id)}`;
  }

  async load(id: string): Promise<Loaded<S>> {
    const known = this.states.get(id);
    if (known) return this.fromKept(id, known, await this.readFrom(id, known.revision));
    const snapshot = this.snapshots ? await this.latestSnapshot(id) : undefined;
    const from = snapshot ? snapshot.revision + 1n : 0n;
    return this.fromScratch(id, snapshot, await this.readFrom(id, from));
  }

  /**
   * The load of `id` as one stream read among others (loadTogether): its read, and what makes the state of what the
   * read returned. A load that needs a snapshot read first has no read of its own here: it runs as load() does.
   */
  planLoad(id: string): LoadPlan<S> {
    const stream = this.decider.streamName(id);
    const known = this.states.get(id);
    if (known)
      return {
        read: { stream, fromRevision: known.revision, maxCount: PAGE },
        finish: async (page) => this.fromKept(id, known, await this.restOf(id, page!)),
      };
    if (!this.snapshots)
      return {
        read: { stream, fromRevision: 0n, maxCount: PAGE },
        finish: async (page) => this.fromScratch(id, undefined, await this.restOf(id, page!)),
      };
    return { finish: () => this.load(id) };
  }

  /** Several streams of this repository in one read of the store (see loadTogether). */
  loadMany<const Ids extends readonly string[]>(ids: Ids): Promise<{ [K in keyof Ids]: Loaded<S> }> {
    return loadTogether(this.store, ...ids.map((id) => this.planLoad(id))) as Promise<{ [K in keyof Ids]: Loaded<S> }>;
  }

  /** A first page read elsewhere, and the pages after it when it was full. */
  private async restOf(id: string, page: RecordedEvent[]): Promise<RecordedEvent[]> {
    if (page.length < PAGE) return page;
    return [...page, ...(await this.readFrom(id, page.at(-1)!.revision + 1n))];
  }

  /** The kept state, folded forwards with what was read from its revision on (`kept` first), or a full load when the store went back. */
  private async fromKept(id: string, known: { state: S; revision: bigint; eventId: string }, read: RecordedEvent[]): Promise<Loaded<S>> {
    const [kept, ...tail] = read;
    if (kept?.id === known.eventId && kept.revision === known.revision) {
      const state = fold(
        this.decider,
        tail.map((e) => toDomainEvent(e, this.decider.eventTypes)),
        known.state,
      );
      return this.remember(id, { state, revision: tail.at(-1)?.revision ?? known.revision }, tail.at(-1) ?? kept);
    }
    this.states.delete(id); // not the stream we folded any more: fold it again from what the store holds
    return this.load(id);
  }

  private fromScratch(id: string, snapshot: { state: S; revision: bigint } | undefined, tail: RecordedEvent[]): Loaded<S> {
    const state = fold(
      this.decider,
      tail.map((e) => toDomainEvent(e, this.decider.eventTypes)),
      snapshot?.state ?? this.decider.initialState(id),
    );
    return this.remember(id, { state, revision: tail.at(-1)?.revision ?? snapshot?.revision ?? 'no_stream' }, tail.at(-1));
  }

  /** Keeps the state when the event it was folded up to is known (a load that read nothing past a snapshot is not kept). */
  private remember(id: string, loaded: Loaded<S>, last: RecordedEvent | undefined): Loaded<S> {
    if (this.cacheSize <= 0 || last === undefined || loaded.revision !== last.revision) return loaded;
    this.states.delete(id); // re-inserted last: the Map's order is the recency order
    this.states.set(id, { state: loaded.state, revision: loaded.revision, eventId: last.id });
    if (this.states.size > this.cacheSize) this.states.delete(this.states.keys().next().value!);
    return loaded;
  }

  /** The full fold, ignoring snapshots (audits, point-in-time reads: `until` keeps a prefix of the stream). */
  async loadWithoutSnapshot(id: string, until?: (e: RecordedEvent) => boolean): Promise<Loaded<S>> {
    let events = await this.readFrom(id, 0n);
    if (until) events = events.filter(until);
    return {
      state: fold(
        this.decider,
        events.map((e) => toDomainEvent(e, this.decider.eventTypes)),
        this.decider.initialState(id),
      ),
      revision: events.at(-1)?.revision ?? 'no_stream',
    };
  }

  async append(id: string, events: NewEvent[], expectedRevision: ExpectedRevision, stateAfter: S): Promise<AppendResult> {
    const result = await this.store.appendToStream(this.decider.streamName(id), events, { expectedRevision });
    await this.afterAppend(id, expectedRevision, result, stateAfter);
    return result;
  }

  /**
   * Appends to many streams of this kind in one appendToStreams call (each checked and answered on its own), with the
   * snapshots each append earns, as append() writes them.
   */
  async appendMany(
    entries: readonly { id: string; events: NewEvent[]; expectedRevision: ExpectedRevision; stateAfter: S }[],
  ): Promise<StreamAppendOutcome[]> {
    const outcomes = await this.store.appendToStreams(
      entries.map((e) => ({ stream: this.decider.streamName(e.id), events: e.events, options: { expectedRevision: e.expectedRevision } })),
    );
    await Promise.all(
      outcomes.map((outcome, i) =>
        outcome.ok ? this.afterAppend(entries[i]!.id, entries[i]!.expectedRevision, outcome.result, entries[i]!.stateAfter) : undefined,
      ),
    );
    return outcomes;
  }

  /** A snapshot when the append crossed a multiple of `every` (best effort). */
  private async afterAppend(id: string, expectedRevision: ExpectedRevision, result: AppendResult, stateAfter: S): Promise<void> {
    if (this.snapshots) {
      const before = typeof expectedRevision === 'bigint' ? expectedRevision : -1n;
      const every = BigInt(this.snapshots.every);
      if ((result.nextExpectedRevision + 1n) / every > (before + 1n) / every) {
        // Best effort: a lost snapshot costs a longer fold, never the append it follows.
        await this.writeSnapshot(id, stateAfter, result.nextExpectedRevision).catch((error: unknown) =>
          this.snapshots?.onError?.(error, id),
        );
      }
    }
  }

  /**
   * One event, or, for a state whose JSON is over SNAPSHOT_PART_CHARS (a hot account's legs), parts written one append
   * each (EventStoreDB refuses appends over 1 MiB): `{ snapshotId, part, parts, chunk }`, the chunks being slices of
   * the state's JSON text. A reader uses only a snapshot whose parts are all there, so a write cut short is ignored.
   */
  private async writeSnapshot(id: string, state: S, revision: bigint): Promise<void> {
    const type = `${this.decider.name}Snapshot`;
    const head = { schema: this.snapshots!.schema, revision: revision.toString() };
    const text = JSON.stringify(state);
    const stream = this.snapshotStream(id);
    // Random ids, never re-sent (a lost snapshot is simply not retried).
    if (text.length <= SNAPSHOT_PART_CHARS) {
      await this.store.appendToStream(stream, [toNewEvent({ type, data: { ...head, state: state as object } }, {})], {
        expectedRevision: 'any',
        freshIds: true,
      });
      return;
    }
    const parts = Math.ceil(text.length / SNAPSHOT_PART_CHARS);
    const snapshotId = randomUUID();
    for (let part = 0; part < parts; part++) {
      const chunk = text.slice(part * SNAPSHOT_PART_CHARS, (part + 1) * SNAPSHOT_PART_CHARS);
      await this.store.appendToStream(stream, [toNewEvent({ type, data: { ...head, snapshotId, part, parts, chunk } }, {})], {
        expectedRevision: 'any',
        freshIds: true,
      });
    }
  }

  /** The latest complete snapshot: whole, or all the parts of one (looking back over at most SNAPSHOT_LOOKBACK events). */
  private async latestSnapshot(id: string): Promise<{ state: S; revision: bigint } | undefined> {
    const stream = this.snapshotStream(id);
    const [latest] = await this.store.readStream(stream, { direction: 'backwards', maxCount: 1 });
    if (!latest) return undefined;
    let found = wholeSnapshot(latest) ?? (await this.partedSnapshot(stream, [latest]));
    for (let from = latest.revision - 1n; !found && from >= 0n && latest.revision - from < BigInt(SNAPSHOT_LOOKBACK);) {
      const page = await this.store.readStream(stream, { direction: 'backwards', fromRevision: from, maxCount: 100 });
      if (page.length === 0) break;
      for (const event of page) {
        found = wholeSnapshot(event) ?? (await this.partedSnapshot(stream, [event]));
        if (found) break;
      }
      from = page.at(-1)!.revision - 1n;
    }
    if (!found) return undefined;
    const state = found.schema === this.snapshots!.schema ? (found.state as S) : this.snapshots!.upgrade?.(found.schema, found.state);
    return state === undefined ? undefined : { state, revision: found.revision };
  }

  /** The snapshot whose last part is `last[0]`, when all its parts precede it in order; else undefined. */
  private async partedSnapshot(stream: string, [last]: RecordedEvent[]): Promise<RawSnapshot | undefined> {
    const tail = partOf(last!);
    if (!tail || tail.part !== tail.parts - 1) return undefined;
    const first = last!.revision - BigInt(tail.parts - 1);
    if (first < 0n) return undefined;
    const events = tail.parts === 1 ? [last!] : await this.store.readStream(stream, { fromRevision: first, maxCount: tail.parts });
    const parts = events.map(partOf);
    const complete =
      parts.length === tail.parts &&
      parts.every(
        (p, i) => p && p.snapshotId === tail.snapshotId && p.part === i && p.parts === tail.parts && p.revision === tail.revision,
      );
    if (!complete) return undefined;
    try {
      return { schema: tail.schema, revision: tail.revision, state: JSON.parse(parts.map((p) => p!.chunk).join('')) as unknown };
    } catch {
      return undefined; // parts that do not join into JSON: not a snapshot to use (the load folds from further back)
    }
  }

  private async readFrom(id: string, from: bigint): Promise<RecordedEvent[]> {
    const out: RecordedEvent[] = [];
    for (let next = from; ;) {
      const page = await this.store.readStream(this.decider.streamName(id), { fromRevision: next, maxCount: PAGE });
      out.push(...page);
      if (page.length < PAGE) return out;
      next = page.at(-1)!.revision + 1n;
    }
  }
}
