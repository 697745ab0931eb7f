import { BACKWARDS, END, FORWARDS, START, StreamDeletedError, StreamNotFoundError } from '@eventstore/db-client';
import type { EventStoreDBClient, RecordedEvent as EsdbRecordedEvent, StreamingRead } from '@eventstore/db-client';
import type { JsonValue, NewEvent } from '../event-store';
import { comparePositions } from '../event-store';
import {
  BreakCollector,
  canonicalEncoding,
  chainHash,
  chainHashes,
  GENESIS_HASH,
  HASH_METADATA_KEY,
  StreamChainChecker,
  withoutHash,
  type ChainAudit,
  type ChainVerification,
  type StoredLink,
  type VerifyOptions,
} from '../hash-chain';
import { isSystemEvent } from './recorded-event';

/**
 * The hash chain on EventStoreDB (eventstore/hash-chain.ts for the definition). EventStoreDB has no head row to
 * compute the hash in, so the adapter computes it client-side and writes it in the event's metadata
 * (`auditHash`, hex): before an append it reads the stream's last event (its hash and revision), hashes the new events
 * from there, and appends at exactly that revision, so a concurrent writer makes the append fail (and, for
 * 'any'/'stream_exists', the adapter reads again and retries) rather than fork the chain.
 *
 * What the hash covers: the event's data and its metadata as written (without `auditHash`), and occurredAt only when
 * the writer gave one (business time): otherwise the server stamps the event (`created`) and the client cannot know
 * that time beforehand, so the encoding has `null` there. Events written before the chain existed (no `auditHash`)
 * cannot be rewritten: they are hashed on read, and a stream's first hashed event chains from them.
 *
 * Deletion: EventStoreDB writes deletions into the log itself (a tombstone `$streamDeleted`, or `$tb` / `$maxCount` /
 * `$maxAge` in the stream's `$$` metadata stream), and verify() over `$all` reports them; there is no head table, so
 * there are no anchors on this adapter.
 */

/** The fields hashed for an event as EventStoreDB stores it (raw metadata, not the port's RecordedEvent). */
function linkOf(event: EsdbRecordedEvent): StoredLink {
  const raw = (
    typeof event.metadata === 'object' && event.metadata !== null && !(event.metadata instanceof Uint8Array) ? event.metadata : {}
  ) as { [key: string]: JsonValue };
  const stored = raw[HASH_METADATA_KEY];
  const metadata = withoutHash(raw);
  return {
    revision: event.revision,
    hash: typeof stored === 'string' && /^[0-9a-f]{64}$/.test(stored) ? Buffer.from(stored, 'hex') : null,
    encoding: canonicalEncoding({
      id: event.id,
      type: event.type,
      stream: event.streamId,
      revision: event.revision,
      data: (event.isJson && typeof event.data === 'object' && event.data !== null && !(event.data instanceof Uint8Array)
        ? event.data
        : {}) as { [key: string]: JsonValue },
      metadata,
      occurredAt: typeof metadata.occurredAt === 'string' ? metadata.occurredAt : null,
    }),
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
  let previous = GENESIS_HASH;
  for (const e of prefix) previous = linkOf(e).hash ?? chainHash(previous, linkOf(e).encoding);
  return previous;
}

/** Where the next append's chain starts: the stream's last event (at `expected` for a specific revision). */
export async function chainTail(
  client: EventStoreDBClient,
  stream: string,
  expected: bigint | 'no_stream' | 'any' | 'stream_exists',
): Promise<{ previous: Buffer; revision: bigint | 'no_stream'; lastId?: string }> {
  if (expected === 'no_stream') return { previous: GENESIS_HASH, revision: 'no_stream' };
  const [last] =
    typeof expected === 'bigint'
      ? await readRaw(client, stream, { direction: FORWARDS, fromRevision: expected, maxCount: 1 })
      : await readRaw(client, stream, { direction: BACKWARDS, fromRevision: END, maxCount: 1 });
  // A specific revision the stream does not have: the append fails on it anyway.
  if (!last || (typeof expected === 'bigint' && last.revision !== expected))
    return { previous: GENESIS_HASH, revision: typeof expected === 'bigint' ? expected : 'no_stream' };
  return { previous: await hashOf(client, last), revision: last.revision, lastId: last.id };
}

/** The events with their hashes in metadata, chained from `previous`, the first at `firstRevision`. */
export function chainedMetadata(
  stream: string,
  events: readonly NewEvent[],
  previous: Buffer,
  firstRevision: bigint,
): NewEvent['metadata'][] {
  const hashes = chainHashes(
    previous,
    events.map((e, i) => ({
      id: e.id,
      type: e.type,
      stream,
      revision: firstRevision + BigInt(i),
      data: e.data,
      metadata: JSON.parse(JSON.stringify(e.metadata)) as { [key: string]: JsonValue },
      occurredAt: e.metadata.occurredAt ?? null,
    })),
  );
  return events.map((e, i) => ({ ...e.metadata, [HASH_METADATA_KEY]: hashes[i]!.toString('hex') }));
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
  constructor(private readonly client: EventStoreDBClient) {}

  /**
   * One stream (read forwards), or every stream by walking $all from the start (keeping each stream's last link in
   * memory: about 150 bytes per stream).
   */
  async verify(options: VerifyOptions = {}): Promise<ChainVerification> {
    const started = performance.now();
    const breaks = new BreakCollector(options.maxProblems ?? 20);
    const checkers = new Map<string, StreamChainChecker>();
    const deletions: { stream: string; what: string }[] = [];
    const checkerOf = (stream: string) => {
      let c = checkers.get(stream);
      if (!c) checkers.set(stream, (c = new StreamChainChecker(stream, breaks, true)));
      return c;
    };
    if (options.stream !== undefined) {
      for (const e of await readRaw(this.client, options.stream, { direction: FORWARDS, fromRevision: START }))
        checkerOf(options.stream).feed(linkOf(e));
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
          else if (!isSystemEvent(raw)) checkerOf(raw.streamId).feed(linkOf(raw));
        }
        if (page.length < PAGE || !advanced) break;
      }
    }
    for (const d of deletions)
      breaks.add({ stream: d.stream, revision: null, problem: 'stream_deleted', expected: 'no deletion or truncation', found: d.what });
    let events = 0;
    let legacy = 0;
    for (const c of checkers.values()) {
      events += c.count;
      legacy += c.legacy;
    }
    const broken = [...breaks.broken];
    const lastHash = options.stream !== undefined ? checkers.get(options.stream)?.lastHash?.toString('hex') : undefined;
    return {
      ok: broken.length === 0,
      events,
      streams: checkers.size,
      ms: Math.round(performance.now() - started),
      firstBroken: broken[0],
      broken,
      unhashedLegacyEvents: legacy,
      ...(lastHash !== undefined ? { lastHash } : {}),
    };
  }
}
