import { BACKWARDS, END, FORWARDS, START, StreamDeletedError, StreamNotFoundError } from '@eventstore/db-client';
import type { EventStoreDBClient, RecordedEvent as EsdbRecordedEvent, StreamingRead } from '@eventstore/db-client';
import type { JsonValue, NewEvent } from '../event-store';
import { comparePositions } from '../event-store';
import {
  BreakCollector,
  canonicalEncoding,
  canonicalPosition,
  chainHash,
  chainHashes,
  GENESIS_HASH,
  HASH_METADATA_KEY,
  hex,
  StreamChainChecker,
  withoutHash,
  type ChainAudit,
  type ChainLink,
  type ChainVerification,
  type HashForm,
  type StoredLink,
  type UnhashedField,
  type VerifyOptions,
} from '../hash-chain';
import { isSystemEvent } from './recorded-event';

/**
 * The hash chain on EventStoreDB (eventstore/hash-chain.ts for the definition). EventStoreDB has no head row to
 * compute the hash in, so the adapter computes it client-side and writes it in the event's metadata
 * (`auditHash`: `v2:` and the hash in hex; a bare hex hash is a link written in the v1 form, which the event keeps):
 * before an append it reads the stream's last event (its hash, revision, recorded time and position), hashes the new
 * events from there, and appends at exactly that revision, so a concurrent writer makes the append fail (and, for
 * 'any'/'stream_exists', the adapter reads again and retries) rather than fork the chain.
 *
 * What the hash covers: the event's id, type, stream, revision (its order in the stream), data and metadata as
 * written (without `auditHash`), and occurredAt only when the writer gave one (business time). Not covered by the
 * event's own link: its recorded time (`created`) and its position in `$all`, which the server assigns after the
 * client hashed the event, so the encoding has `null` there (and for occurredAt when the writer gave none).
 * What covers them instead, as far as EventStoreDB allows: the first event of each later append to the stream records
 * the recorded time and position of the event before it (`auditPrevious` in its metadata, read by chainTail, hashed
 * with the rest), and verify() checks them against the log. So an event's recorded time and place are covered once
 * its stream has a later append; the stream's last event, and events before the last of a multi-event append (their
 * stamps are not known until the append returns), are not.
 * Events written before the chain existed (no `auditHash`) cannot be rewritten: they are hashed on read (v1 form), and a
 * stream's first hashed event chains from them.
 *
 * Deletion: EventStoreDB writes deletions into the log itself (a tombstone `$streamDeleted`, or `$tb` / `$maxCount` /
 * `$maxAge` in the stream's `$$` metadata stream), and verify() over `$all` reports them; there is no head table, so
 * there are no anchors on this adapter.
 */

/** The metadata key of the previous event's stamp, recorded by the first event of an append. */
export const PREVIOUS_STAMP_KEY = 'auditPrevious';

/** The server's stamp of an event: its recorded time (`created`) and its position in $all, as the API writes them. */
export interface EsdbStamp {
  recordedAt: string;
  position: string | null;
}

const stampOf = (event: EsdbRecordedEvent): EsdbStamp => ({
  recordedAt: event.created.toISOString(),
  position: event.position ? canonicalPosition(event.position) : null,
});

function rawMetadataOf(event: EsdbRecordedEvent): { [key: string]: JsonValue } {
  return (
    typeof event.metadata === 'object' && event.metadata !== null && !(event.metadata instanceof Uint8Array) ? event.metadata : {}
  ) as { [key: string]: JsonValue };
}

/** The hash stored with the event and the form it was computed in (none: an event from before the chain, hashed as v1). */
export function storedHashOf(event: EsdbRecordedEvent): { hash: Buffer | null; form: HashForm } {
  const stored = rawMetadataOf(event)[HASH_METADATA_KEY];
  if (typeof stored === 'string') {
    const v2 = /^v2:([0-9a-f]{64})$/.exec(stored);
    if (v2) return { hash: Buffer.from(v2[1]!, 'hex'), form: 'v2' };
    if (/^[0-9a-f]{64}$/.test(stored)) return { hash: Buffer.from(stored, 'hex'), form: 'v1' };
  }
  return { hash: null, form: 'v1' };
}

/** The fields hashed for an event as EventStoreDB stores it (raw metadata, not the port's RecordedEvent). */
export function linkOf(event: EsdbRecordedEvent): StoredLink & { form: HashForm } {
  const metadata = withoutHash(rawMetadataOf(event));
  const { hash, form } = storedHashOf(event);
  return {
    revision: event.revision,
    hash,
    form,
    encoding: canonicalEncoding(
      {
        id: event.id,
        type: event.type,
        stream: event.streamId,
        revision: event.revision,
        data: (event.isJson && typeof event.data === 'object' && event.data !== null && !(event.data instanceof Uint8Array)
          ? event.data
          : {}) as { [key: string]: JsonValue },
        metadata,
        occurredAt: typeof metadata.occurredAt === 'string' ? metadata.occurredAt : null,
        // Assigned by the server after the client hashed the event: covered by the next append instead (auditPrevious).
        recordedAt: null,
        position: null,
      },
      form,
    ),
  };
}

async function collect<T>(read: StreamingRead<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of read) out.push(item);
  return out;
}

async function readRaw(
  client: EventStoreDBClient,
  stream: string,
  options: Parameters<EventStoreDBClient['readStream']>[1],
): Promise<EsdbRecordedEvent[]> {
  try {
    return (await collect(client.readStream(stream, options))).flatMap((r) => (r.event ? [r.event as EsdbRecordedEvent] : []));
  } catch (err) {
    if (err instanceof StreamNotFoundError || err instanceof StreamDeletedError) return [];
    throw err;
  }
}

/** The hash of `event` in its chain: stored, or (an event from before the chain) computed over the stream up to it. */
async function hashOf(client: EventStoreDBClient, event: EsdbRecordedEvent): Promise<Buffer> {
  const link = linkOf(event);
  if (link.hash) return link.hash;
  const prefix = await readRaw(client, event.streamId, { direction: FORWARDS, fromRevision: START, maxCount: Number(event.revision) + 1 });
  return hashesOfPrefix(prefix).at(-1) ?? GENESIS_HASH;
}

/** The links of consecutive events from revision 0: stored, or computed for events from before the chain. */
function hashesOfPrefix(events: readonly EsdbRecordedEvent[]): Buffer[] {
  let previous = GENESIS_HASH;
  return events.map((e) => {
    const link = linkOf(e);
    previous = link.hash ?? chainHash(previous, link.encoding);
    return previous;
  });
}

/** Where the next append's chain starts: the stream's last event (at `expected` for a specific revision). */
export async function chainTail(
  client: EventStoreDBClient,
  stream: string,
  expected: bigint | 'no_stream' | 'any' | 'stream_exists',
): Promise<{ previous: Buffer; revision: bigint | 'no_stream'; lastId?: string; stamp?: EsdbStamp }> {
  if (expected === 'no_stream') return { previous: GENESIS_HASH, revision: 'no_stream' };
  const [last] =
    typeof expected === 'bigint'
      ? await readRaw(client, stream, { direction: FORWARDS, fromRevision: expected, maxCount: 1 })
      : await readRaw(client, stream, { direction: BACKWARDS, fromRevision: END, maxCount: 1 });
  // A specific revision the stream does not have: the append fails on it anyway.
  if (!last || (typeof expected === 'bigint' && last.revision !== expected))
    return { previous: GENESIS_HASH, revision: typeof expected === 'bigint' ? expected : 'no_stream' };
  return { previous: await hashOf(client, last), revision: last.revision, lastId: last.id, stamp: stampOf(last) };
}

/**
 * The events' metadata with their hashes (v2), chained from `previous`, the first at `firstRevision`; the first also
 * records `stamp`, the recorded time and position of the event before it (hashed with the rest).
 */
export function chainedMetadata(
  stream: string,
  events: readonly NewEvent[],
  previous: Buffer,
  firstRevision: bigint,
  stamp?: EsdbStamp,
): NewEvent['metadata'][] {
  const metadata = events.map((e, i) =>
    i === 0 && stamp ? { ...e.metadata, [PREVIOUS_STAMP_KEY]: { recordedAt: stamp.recordedAt, position: stamp.position } } : e.metadata,
  );
  const hashes = chainHashes(
    previous,
    events.map((e, i) => ({
      id: e.id,
      type: e.type,
      stream,
      revision: firstRevision + BigInt(i),
      data: e.data,
      metadata: JSON.parse(JSON.stringify(metadata[i])) as { [key: string]: JsonValue },
      occurredAt: e.metadata.occurredAt ?? null,
      recordedAt: null,
      position: null,
    })),
    'v2',
  );
  return metadata.map((m, i) => ({ ...m, [HASH_METADATA_KEY]: `v2:${hashes[i]!.toString('hex')}` }));
}

/**
 * One stream's verification, fed its raw events in revision order: the chain (StreamChainChecker, events from before
 * the chain hashed on read), and each recorded stamp (`auditPrevious`) against the event before it.
 */
export class EsdbStreamVerifier {
  readonly chain: StreamChainChecker;
  v1Links = 0;
  private previous: EsdbRecordedEvent | undefined;
  private stampReported = false;

  constructor(
    readonly stream: string,
    private readonly breaks: BreakCollector,
  ) {
    this.chain = new StreamChainChecker(stream, breaks, true);
  }

  feed(event: EsdbRecordedEvent): void {
    const link = linkOf(event);
    if (link.form === 'v1' && link.hash !== null) this.v1Links += 1;
    this.chain.feed(link);
    const recorded = rawMetadataOf(event)[PREVIOUS_STAMP_KEY];
    if (recorded !== undefined && !this.stampReported) {
      const r = (typeof recorded === 'object' && recorded !== null && !Array.isArray(recorded) ? recorded : {}) as {
        [key: string]: JsonValue;
      };
      const before = this.previous && this.previous.revision === event.revision - 1n ? this.previous : undefined;
      const actual = before ? stampOf(before) : undefined;
      const same =
        actual !== undefined && r.recordedAt === actual.recordedAt && (actual.position === null || r.position === actual.position);
      if (!same) {
        this.stampReported = true;
        this.breaks.add({
          stream: this.stream,
          revision: String(event.revision - 1n),
          problem: 'stamp_mismatch',
          expected: `recorded at ${String(r.recordedAt)}, position ${String(r.position)} (as the append of revision ${event.revision} read it)`,
          found: actual ? `recorded at ${actual.recordedAt}, position ${actual.position ?? 'unknown'}` : 'no such event',
        });
      }
    }
    this.previous = event;
  }
}

/** Deletions and truncations the log records, by stream (system events in $all). */
function deletionOf(event: EsdbRecordedEvent): { stream: string; what: string } | undefined {
  if (event.type === '$streamDeleted') return { stream: event.streamId, what: 'a tombstone ($streamDeleted: hard delete)' };
  if (event.type === '$metadata' && event.streamId.startsWith('$$') && !event.streamId.startsWith('$$$')) {
    const data = (typeof event.data === 'object' && event.data !== null ? event.data : {}) as Record<string, unknown>;
    const cut = ['$tb', '$maxCount', '$maxAge'].filter((k) => data[k] !== undefined && data[k] !== null);
    if (cut.length > 0)
      return {
        stream: event.streamId.slice(2),
        what: `stream metadata ${cut.map((k) => `${k}=${JSON.stringify(data[k])}`).join(', ')} (soft delete or truncation)`,
      };
  }
  return undefined;
}

const PAGE = 1000;

export class EsdbChainAudit implements ChainAudit {
  /** The server stamps `created` and the position after the client hashed the event (see the top of this file). */
  readonly coversStoreStamps = false;

  constructor(private readonly client: EventStoreDBClient) {}

  /** Reads each stream's events from the one before the first asked for (its hash is the first previousHash). */
  async linksOf(events: readonly { stream: string; revision: bigint }[]): Promise<(ChainLink | undefined)[]> {
    const ranges = new Map<string, { from: bigint; to: bigint }>();
    for (const e of events) {
      const r = ranges.get(e.stream);
      ranges.set(
        e.stream,
        r
          ? { from: e.revision < r.from ? e.revision : r.from, to: e.revision > r.to ? e.revision : r.to }
          : { from: e.revision, to: e.revision },
      );
    }
    const byStream = new Map<string, Map<bigint, { hash: Buffer; form: HashForm; writerOccurredAt: boolean }>>();
    await Promise.all(
      [...ranges].map(async ([stream, { from, to }]) => {
        const first = from > 0n ? from - 1n : 0n;
        let raw = await readRaw(this.client, stream, { direction: FORWARDS, fromRevision: first, maxCount: Number(to - first) + 1 });
        // An event from before the chain has no stored hash: its link is computed over the stream from revision 0.
        if (raw.some((e) => linkOf(e).hash === null))
          raw = await readRaw(this.client, stream, { direction: FORWARDS, fromRevision: START, maxCount: Number(to) + 1 });
        const hashes = raw.some((e) => linkOf(e).hash === null) ? hashesOfPrefix(raw) : raw.map((e) => linkOf(e).hash!);
        byStream.set(
          stream,
          new Map(
            raw.map((e, i) => [
              e.revision,
              { hash: hashes[i]!, form: linkOf(e).form, writerOccurredAt: typeof rawMetadataOf(e).occurredAt === 'string' },
            ]),
          ),
        );
      }),
    );
    return events.map((e) => {
      const links = byStream.get(e.stream);
      const own = links?.get(e.revision);
      if (!own) return undefined;
      const previous = e.revision === 0n ? GENESIS_HASH : links!.get(e.revision - 1n)?.hash;
      // The server stamps these after the client hashed the event (see the top of this file): null in the hash.
      const unhashed: UnhashedField[] = own.writerOccurredAt ? ['recordedAt', 'position'] : ['occurredAt', 'recordedAt', 'position'];
      return { hash: hex(own.hash), previousHash: previous ? hex(previous) : null, hashForm: own.form, unhashed };
    });
  }

  /**
   * One stream (read forwards), or every stream by walking $all from the start (keeping each stream's last link and
   * last event in memory).
   */
  async verify(options: VerifyOptions = {}): Promise<ChainVerification> {
    const started = performance.now();
    const breaks = new BreakCollector(options.maxProblems ?? 20);
    const verifiers = new Map<string, EsdbStreamVerifier>();
    const deletions: { stream: string; what: string }[] = [];
    const verifierOf = (stream: string) => {
      let v = verifiers.get(stream);
      if (!v) verifiers.set(stream, (v = new EsdbStreamVerifier(stream, breaks)));
      return v;
    };
    if (options.stream !== undefined) {
      for (const e of await readRaw(this.client, options.stream, { direction: FORWARDS, fromRevision: START }))
        verifierOf(options.stream).feed(e);
      for (const e of await readRaw(this.client, `$$${options.stream}`, { direction: FORWARDS, fromRevision: START })) {
        const d = deletionOf(e);
        if (d) deletions.push(d);
      }
    } else {
      let from: { commit: bigint; prepare: bigint } | undefined;
      for (;;) {
        const page = await collect(this.client.readAll({ direction: FORWARDS, fromPosition: from ?? START, maxCount: PAGE }));
        let advanced = false;
        for (const resolved of page) {
          const raw = resolved.event as EsdbRecordedEvent | undefined;
          if (!raw?.position) continue;
          if (from && comparePositions(raw.position, from) <= 0) continue; // fromPosition is inclusive
          from = { commit: raw.position.commit, prepare: raw.position.prepare };
          advanced = true;
          const d = deletionOf(raw);
          if (d) deletions.push(d);
          else if (!isSystemEvent(raw)) verifierOf(raw.streamId).feed(raw);
        }
        if (page.length < PAGE || !advanced) break;
      }
    }
    for (const d of deletions)
      breaks.add({ stream: d.stream, revision: null, problem: 'stream_deleted', expected: 'no deletion or truncation', found: d.what });
    let events = 0;
    let legacy = 0;
    let v1Links = 0;
    for (const v of verifiers.values()) {
      events += v.chain.count;
      legacy += v.chain.legacy;
      v1Links += v.v1Links;
    }
    const broken = [...breaks.broken];
    const lastHash = options.stream !== undefined ? verifiers.get(options.stream)?.chain.lastHash?.toString('hex') : undefined;
    return {
      ok: broken.length === 0,
      events,
      streams: verifiers.size,
      ms: Math.round(performance.now() - started),
      firstBroken: broken[0],
      broken,
      unhashedLegacyEvents: legacy,
      ...(lastHash !== undefined ? { lastHash } : {}),
      form: 'v2',
      ...(v1Links > 0 ? { v1Links } : {}),
    };
  }
}
