/**
 * The emulated EventStoreDB 24.10 transaction log: an in-memory, byte-addressed log of
 * self-committed prepares, with the server's commit (expected-version / idempotence) rules,
 * stream metadata ($tb, $maxCount, $maxAge), soft delete and tombstones.
 *
 * TEST-ONLY. It follows the server's C# source at tag v24.10.0 of EventStore/EventStore;
 * every rule cites the file it follows. Paths below are relative to `src/EventStore.Core/`.
 */

export interface LogRecord {
  stream: string; // e.g. 'account-1', '$$account-1', '$persistentsubscription-$all::g-parked'
  revision: bigint; // event number in its stream
  eventId: string; // uuid, lowercase
  type: string; // e.g. 'Deposited', '$metadata', '$>'
  contentType: string; // 'application/json' or 'application/octet-stream'
  data: Uint8Array;
  metadata: Uint8Array; // the custom metadata bytes
  created: Date; // the server's clock
  position: { commit: bigint; prepare: bigint }; // as the server assigns it
}

export type Expected = { kind: 'any' } | { kind: 'no_stream' } | { kind: 'stream_exists' } | { kind: 'revision'; revision: bigint };

export interface ProposedEvent {
  eventId: string;
  type: string;
  contentType: string;
  data: Uint8Array;
  metadata: Uint8Array;
}

export type AppendOutcome =
  // `currentRevision` is -1n only for an append of zero events to a stream without events (the
  // server answers `no_stream`). `position` is absent when the server answers `no_position`: an
  // idempotent re-send whose last event is no longer readable (see `append`).
  | {
      kind: 'success';
      records: LogRecord[];
      currentRevision: bigint;
      position?: { commit: bigint; prepare: bigint };
    }
  | { kind: 'wrong_expected_version'; currentRevision: bigint | 'no_stream'; expected: Expected }
  | { kind: 'stream_deleted' };

/** EventNumber.DeletedStream = long.MaxValue (Data/EventNumber.cs): the revision of a tombstone and the $tb of a soft delete. */
export const DELETED_STREAM = 0x7fffffffffffffffn;

/** ESConsts.CommitedEventsMemCacheLimit = 8 * 1024 * 1024 (Settings/ESConsts.cs). */
export const COMMITTED_EVENTS_CACHE_LIMIT_BYTES = 8 * 1024 * 1024;

/** ESConsts.MetaStreamMaxCount = 1 (Settings/ESConsts.cs): a `$$` stream reads as its last event only. */
export const META_STREAM_MAX_COUNT = 1n;

export interface StreamMetadataView {
  truncateBefore?: bigint; // $tb
  maxCount?: bigint; // $maxCount
  maxAgeSeconds?: number; // $maxAge
}

/** Why an append was refused or idempotent, for tests that want the server's internal decision. */
export type CommitDecision = 'ok' | 'idempotent' | 'corrupted_idempotency' | 'wrong_expected_version' | 'deleted';

export interface EmulatedLogOptions {
  /** Writer position of the first record (a real node's first user event is never at 0). Default 0. */
  startPosition?: bigint;
  /** Size limit of the recent-commits (idempotence) cache in bytes. Default: the server's 8 MiB. */
  committedEventsCacheLimitBytes?: number;
}

interface StreamState {
  /** records by revision (index = revision); holes never happen (revisions are contiguous). */
  events: LogRecord[];
  tombstone?: LogRecord;
}

interface CacheEntry {
  stream: string;
  revision: bigint;
}

const utf8 = new TextEncoder();
const EMPTY = new Uint8Array(0);
const RealDate = globalThis.Date;
const realDateNow = RealDate.now.bind(RealDate);

export class EmulatedLog {
  /**
   * The server clock (DateTime.UtcNow of the node): `created` of new records, $maxAge. Tests may
   * replace it. By default it is the real wall clock captured when this module loads, so faking the
   * test process's clock (jest fake timers replace the global Date) does not move the server's,
   * as it would not move a real server's.
   */
  now: () => Date = () => new RealDate(realDateNow());

  /** The decision of the last `append` / `deleteStream` (for assertions on the server's reasoning). */
  lastDecision: CommitDecision | undefined;

  readonly #records: LogRecord[] = [];
  /** post-position (end offset) of each record of #records, same index. */
  readonly #postPositions: bigint[] = [];
  readonly #streams = new Map<string, StreamState>();
  readonly #listeners = new Set<(records: readonly LogRecord[]) => void>();
  #writer: bigint;
  readonly #firstPosition: bigint;
  readonly #hiddenBoundaries = new Set<bigint>();

  // The idempotence cache: Services/Storage/ReaderIndex/IndexWriter.cs `_committedEvents`, a
  // Services/Storage/ReaderIndex/BoundedCache.cs keyed by event id -> (stream, event number).
  readonly #cache = new Map<string, CacheEntry>();
  readonly #cacheQueue: string[] = [];
  #cacheQueueHead = 0;
  #cacheSize = 0;
  readonly #cacheLimit: number;

  constructor(options: EmulatedLogOptions = {}) {
    this.#writer = options.startPosition ?? 0n;
    this.#firstPosition = this.#writer;
    this.#cacheLimit = options.committedEventsCacheLimitBytes ?? COMMITTED_EVENTS_CACHE_LIMIT_BYTES;
  }

  // ---------------------------------------------------------------------------------------------
  // Reading

  /** Every record in log order, system ones too (what an unfiltered $all read sees). */
  all(): readonly LogRecord[] {
    return this.#records;
  }

  /** The writer checkpoint: the position just after the last record (where $all "end" is). */
  get writerPosition(): bigint {
    return this.#writer;
  }

  /**
   * Pre-position of the last event record (IndexCommitter.cs LastIndexedPosition: the log position
   * of the last committed prepare), -1 when there is none. Subscriptions from End start after it.
   */
  get lastIndexedPosition(): bigint {
    const last = this.#records[this.#records.length - 1];
    return last ? last.position.prepare : -1n;
  }

  /**
   * Whether a position is where a record starts (or the writer position): only there can the
   * TF reader read (TransactionLog/Chunks/TFChunk/TFChunkReadSide.cs checks the length prefix
   * and suffix; a read elsewhere fails with InvalidReadException -> InvalidPosition).
   * Positions at or beyond the writer position count as valid (reads there find nothing).
   */
  isRecordBoundary(position: bigint): boolean {
    if (position >= this.#writer || position === this.#firstPosition) return true;
    if (this.#hiddenBoundaries.has(position)) return true;
    let lo = 0;
    let hi = this.#records.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const q = this.#records[mid]!.position.prepare;
      if (q === position) return true;
      if (q < position) lo = mid + 1;
      else hi = mid - 1;
    }
    return false;
  }

  /**
   * Writes a record that takes log space but is no event (an epoch SystemLogRecord, a data-less
   * prepare): it never shows in reads, but moves the positions of what follows. Returns its position.
   */
  writeHiddenRecord(sizeOnDisk: number): bigint {
    const position = this.#writer;
    this.#hiddenBoundaries.add(position);
    this.#writer += BigInt(sizeOnDisk);
    return position;
  }

  /** Post-position of a record (pre-position + its size on disk). */
  postPosition(record: LogRecord): bigint {
    const i = this.indexOf(record);
    if (i < 0) throw new Error('record is not in this log');
    return this.#postPositions[i]!;
  }

  /** Index of a record in `all()` (binary search on its position). */
  indexOf(record: LogRecord): number {
    let lo = 0;
    let hi = this.#records.length - 1;
    const p = record.position.prepare;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const q = this.#records[mid]!.position.prepare;
      if (q === p) return this.#records[mid] === record ? mid : -1;
      if (q < p) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /**
   * The last event number as the index writer sees it: undefined = no stream (-1),
   * DELETED_STREAM after a tombstone. A `$$` stream of a tombstoned stream is deleted too
   * (Services/Storage/ReaderIndex/IndexReader.cs GetStreamLastEventNumberCached).
   * A soft-deleted stream keeps its last event number (its $tb hides the events).
   */
  lastRevision(stream: string): bigint | undefined {
    if (isMetaStream(stream) && this.#streams.get(originalStreamOf(stream))?.tombstone) {
      return DELETED_STREAM;
    }
    const state = this.#streams.get(stream);
    if (!state) return undefined;
    if (state.tombstone) return DELETED_STREAM;
    return state.events.length === 0 ? undefined : BigInt(state.events.length - 1);
  }

  /** The raw record at a revision (the index entry), whatever the metadata says. */
  recordAt(stream: string, revision: bigint): LogRecord | undefined {
    const state = this.#streams.get(stream);
    if (!state || revision < 0n || revision >= BigInt(state.events.length)) return undefined;
    return state.events[Number(revision)];
  }

  /** True when the stream was tombstoned (hard-deleted), directly or as the `$$` of one. */
  isTombstoned(stream: string): boolean {
    return this.lastRevision(stream) === DELETED_STREAM;
  }

  /** Soft-deleted: its metadata's $tb is EventNumber.DeletedStream (IndexWriter.cs IsSoftDeleted). */
  isSoftDeleted(stream: string): boolean {
    return this.streamMetadata(stream).truncateBefore === DELETED_STREAM;
  }

  /**
   * The stream's effective metadata: the last `$metadata` event of its `$$` stream; a `$$`
   * stream itself always has { $maxCount: 1 } (IndexReader.cs GetStreamMetadataCached,
   * ReadIndex.cs `metastreamMetadata`). Unparseable metadata counts as empty
   * (Data/StreamMetadata.cs TryFromJsonBytes / IndexWriter.cs GetStreamMetadata EatException).
   */
  streamMetadata(stream: string): StreamMetadataView {
    if (isMetaStream(stream)) return { maxCount: META_STREAM_MAX_COUNT };
    const meta = this.#streams.get(metaStreamOf(stream));
    const last = meta?.events[meta.events.length - 1];
    if (!last) return {};
    return parseStreamMetadata(last.data);
  }

  /**
   * Visible records of a stream, by revision: honours $tb, $maxCount and $maxAge
   * (IndexReader.cs ReadStreamEventsForward: minEventNumber = max($tb, last - $maxCount + 1);
   * $maxAge compared with the clock). Empty for a missing, soft-deleted or tombstoned stream:
   * use `readStreamResult` to tell these apart.
   */
  readStream(stream: string): readonly LogRecord[] {
    const r = this.readStreamResult(stream);
    return r.kind === 'ok' ? r.records : [];
  }

  /**
   * The read-side verdict on a stream (IndexReader.cs ReadStreamEventsForward):
   * tombstoned -> 'stream_deleted'; no events, or $tb = DeletedStream (soft delete) -> 'no_stream';
   * otherwise the visible records (possibly none, when truncated).
   */
  readStreamResult(
    stream: string,
  ): { kind: 'ok'; records: readonly LogRecord[]; lastRevision: bigint } | { kind: 'no_stream' } | { kind: 'stream_deleted' } {
    const last = this.lastRevision(stream);
    if (last === DELETED_STREAM) return { kind: 'stream_deleted' };
    const metadata = this.streamMetadata(stream);
    if (last === undefined || metadata.truncateBefore === DELETED_STREAM) return { kind: 'no_stream' };
    const min = this.#minVisible(last, metadata);
    const events = this.#streams.get(stream)?.events ?? [];
    const visible = events.slice(Number(min < 0n ? 0n : min)).filter((record) => !this.#expired(record, metadata));
    return { kind: 'ok', records: visible, lastRevision: last };
  }

  /**
   * A single event read as IndexReader.cs ReadEventInternal does it: honours $tb, $maxCount,
   * $maxAge, soft delete and tombstones. Used for the idempotent append's position.
   */
  readEvent(stream: string, revision: bigint): LogRecord | undefined {
    const r = this.readStreamResult(stream);
    if (r.kind !== 'ok') return undefined;
    const metadata = this.streamMetadata(stream);
    if (revision < this.#minVisible(r.lastRevision, metadata) || revision > r.lastRevision) return undefined;
    const record = this.recordAt(stream, revision);
    if (!record || this.#expired(record, metadata)) return undefined;
    return record;
  }

  /**
   * The target named by a '$>' record's data "<revision>@<stream>" (Core/Data/SystemEventTypes.cs
   * `LinkTo` "{0}@{1}"), or undefined when the record is not a link or its payload does not parse
   * (Services/Storage/StorageReaderWorker.cs ResolveLinkToEvent: `long.TryParse(parts[0])` on a
   * split at the first '@'; such a link is returned unresolved, as a plain event).
   */
  linkTarget(record: LogRecord): { stream: string; revision: bigint } | undefined {
    if (record.type !== '$>') return undefined;
    const text = new TextDecoder().decode(record.data);
    const at = text.indexOf('@');
    if (at < 0) return undefined;
    const revisionText = text.slice(0, at).trim();
    if (!/^[+-]?\d+$/.test(revisionText)) return undefined;
    return { stream: text.slice(at + 1), revision: BigInt(revisionText) };
  }

  /**
   * A '$>' record whose data is "<revision>@<stream>" -> the target as the server resolves it
   * (StorageReaderWorker.cs ResolveLinkToEvent -> IndexReader.cs ReadEventInternal: revision -1
   * means the last event; the target stream's $tb/$maxCount/$maxAge, soft delete and tombstone
   * apply, so a truncated or deleted target does not resolve), else undefined.
   */
  resolveLink(record: LogRecord): LogRecord | undefined {
    const target = this.linkTarget(record);
    if (!target || target.revision < -1n) return undefined;
    const revision = target.revision === -1n ? this.lastRevision(target.stream) : target.revision;
    if (revision === undefined || revision === DELETED_STREAM) return undefined;
    return this.readEvent(target.stream, revision);
  }

  #minVisible(last: bigint, metadata: StreamMetadataView): bigint {
    let min = 0n;
    if (metadata.maxCount !== undefined) min = max(min, last - metadata.maxCount + 1n);
    if (metadata.truncateBefore !== undefined) min = max(min, metadata.truncateBefore);
    return min;
  }

  #expired(record: LogRecord, metadata: StreamMetadataView): boolean {
    return metadata.maxAgeSeconds !== undefined && record.created.getTime() < this.now().getTime() - metadata.maxAgeSeconds * 1000;
  }

  // ---------------------------------------------------------------------------------------------
  // Writing

  /**
   * Appends events with the server's commit rules (Services/Storage/StorageWriterService.cs
   * Handle(WritePrepares) -> Services/Storage/ReaderIndex/IndexWriter.cs CheckCommit, with
   * streamMightExist always true: LogV2/LogV2StreamNameIndex.cs GetOrReserve returns true).
   *
   * - tombstoned stream -> stream_deleted.
   * - stream_exists: soft-deleted -> stream_deleted; no events and no metadata -> wrong expected
   *   version; otherwise treated like `any` (a stream with only metadata "exists").
   * - any / stream_exists: idempotence via the recent-commits cache only (no index look-up):
   *   first id not cached for this stream -> written; first cached but a later one not ->
   *   corrupted idempotency (= wrong expected version); all cached -> idempotent. The ids do not
   *   need to be contiguous, nor at the stream's end. Limits of that cache, as modelled: it holds
   *   only commits since the node started (`forgetRecentCommits()` = a restart); it is bounded by
   *   size, 8 MiB at 28 + MemSizer.SizeOf(stream) bytes an entry (~68 B for 'account-1', so
   *   ~120k events), oldest evicted first; an id written twice keeps its FIRST (stream, revision).
   *   Past it, an `any` re-send is simply written again.
   *   Not modelled: IdempotentNotReady (a re-send arriving before the original is indexed is
   *   dropped without an answer and the client times out); everything here is indexed at once.
   * - revision / no_stream (-1) BELOW the current revision: the event at revision expected+1+i
   *   must have id i (cache or index): all match -> idempotent; the first does not -> wrong
   *   expected version (except no_stream on a soft-deleted stream: written, undeleting it);
   *   a later one does not -> corrupted idempotency (= wrong expected version).
   * - revision ABOVE current -> wrong expected version.
   * - revision EQUAL to current (no_stream on a stream without events) -> written, ids NOT
   *   compared: a re-send at the current revision writes the events a second time.
   *
   * Success answers (Services/Storage/StorageChaser.cs ProcessPrepareRecord CommitAck and
   * Services/RequestManager/Managers/WriteEvents.cs ClientSuccessMsg): current revision = last
   * written event, position commit = prepare = log position of the LAST event.
   * Idempotent answers (StorageWriterService.cs ActOnCommitCheckFailure AlreadyCommitted ->
   * RequestManagerBase.cs ReturnCommitAt): current revision = the LAST RE-SENT event's revision
   * (not the stream's), position = that event's log position, or no position when
   * IndexReader.ReadEvent cannot read it (truncated, expired, soft-deleted).
   */
  append(stream: string, expected: Expected, events: readonly ProposedEvent[]): AppendOutcome {
    const check = this.#checkCommit(
      stream,
      expected,
      events.map((e) => e.eventId.toLowerCase()),
    );
    this.lastDecision = check.decision;
    switch (check.decision) {
      case 'deleted':
        return { kind: 'stream_deleted' };
      case 'wrong_expected_version':
      case 'corrupted_idempotency':
        return {
          kind: 'wrong_expected_version',
          currentRevision: check.current < 0n ? 'no_stream' : check.current,
          expected,
        };
      case 'idempotent': {
        const lastEvent = this.readEvent(stream, check.end);
        return {
          kind: 'success',
          records: [],
          currentRevision: check.end,
          ...(lastEvent ? { position: { ...lastEvent.position } } : {}),
        };
      }
      case 'ok':
        break;
    }

    // Soft-undelete bookkeeping (StorageWriterService.cs Handle(WritePrepares)): evaluated
    // before the write.
    const softUndeleteMetastream = isMetaStream(stream) && this.isSoftDeleted(originalStreamOf(stream));

    const current = check.current; // -1n when the stream has no events
    if (events.length === 0) {
      // An empty write still writes a (data-less) prepare: it takes log space but is not an event,
      // and the answer carries its position and the current revision (StorageChaser.cs: lastEventNumber =
      // ExpectedVersion for a prepare without Data).
      const position = this.writeHiddenRecord(prepareSizeOnDisk(stream, '', EMPTY, EMPTY));
      this.#undeleteAfterWrite(stream, current, check.isSoftDeleted, softUndeleteMetastream);
      return { kind: 'success', records: [], currentRevision: current, position: { commit: position, prepare: position } };
    }

    const records = this.#write(
      stream,
      current + 1n,
      events.map((e) => ({ ...e, eventId: e.eventId.toLowerCase() })),
    );
    this.#undeleteAfterWrite(stream, current, check.isSoftDeleted, softUndeleteMetastream);
    const last = records[records.length - 1];
    return {
      kind: 'success',
      records,
      currentRevision: last!.revision,
      position: { ...last!.position },
    };
  }

  /**
   * Writes a `$metadata` event to `'$$' + stream` (expected: any) and returns it. Bigint values
   * are written as JSON numbers (so `{ $tb: DELETED_STREAM }` is exact). Throws when refused.
   */
  setStreamMetadata(stream: string, metadata: object): LogRecord {
    const outcome = this.append(metaStreamOf(stream), { kind: 'any' }, [
      {
        eventId: crypto.randomUUID(),
        type: '$metadata',
        contentType: 'application/json',
        data: utf8.encode(stringifyWithBigints(metadata)),
        metadata: EMPTY,
      },
    ]);
    if (outcome.kind !== 'success' || outcome.records.length !== 1) {
      throw new Error(`setStreamMetadata(${stream}) refused: ${outcome.kind}`);
    }
    return outcome.records[0]!;
  }

  /**
   * Deletes a stream as Services/Storage/StorageWriterService.cs Handle(WriteDelete) does:
   * the commit check runs with one fresh event id (so an expected revision below the current one
   * is a wrong expected version).
   * - hard (tombstone): writes a `$streamDeleted` record (revision DELETED_STREAM, empty data) to
   *   the stream itself; it shows in $all; the stream and its `$$` stream are deleted for ever.
   * - soft: writes `{"$tb": DeletedStream}` (the whole metadata is replaced) to `$$stream`;
   *   a stream with neither events nor metadata -> wrong expected version.
   */
  deleteStream(
    stream: string,
    expected: Expected,
    hard: boolean,
  ):
    | { kind: 'success'; position: { commit: bigint; prepare: bigint } }
    | { kind: 'wrong_expected_version'; currentRevision: bigint | 'no_stream'; expected: Expected }
    | { kind: 'stream_deleted' } {
    const eventId = crypto.randomUUID();
    const check = this.#checkCommit(stream, expected, [eventId]);
    this.lastDecision = check.decision;
    if (check.decision === 'deleted') return { kind: 'stream_deleted' };
    if (check.decision !== 'ok') {
      return {
        kind: 'wrong_expected_version',
        currentRevision: check.current < 0n ? 'no_stream' : check.current,
        expected,
      };
    }
    if (hard) {
      const record = this.#appendRecord({
        stream,
        revision: DELETED_STREAM,
        eventId,
        type: '$streamDeleted',
        contentType: 'application/octet-stream',
        data: EMPTY,
        metadata: EMPTY,
      });
      const state = this.#state(stream);
      state.tombstone = record;
      this.#cachePut(eventId, { stream, revision: DELETED_STREAM });
      this.#emit([record]);
      return { kind: 'success', position: { ...record.position } };
    }
    const metaStream = metaStreamOf(stream);
    const metaLast = this.lastRevision(metaStream);
    if (this.lastRevision(stream) === undefined && metaLast === undefined) {
      this.lastDecision = 'wrong_expected_version';
      return { kind: 'wrong_expected_version', currentRevision: 'no_stream', expected };
    }
    const [record] = this.#write(metaStream, (metaLast ?? -1n) + 1n, [
      {
        eventId,
        type: '$metadata',
        contentType: 'application/json',
        data: utf8.encode(`{"$tb":${DELETED_STREAM}}`),
        metadata: EMPTY,
      },
    ]);
    return { kind: 'success', position: { ...record!.position } };
  }

  /** Listeners run synchronously after each commit, with that commit's records. */
  onAppend(listener: (records: readonly LogRecord[]) => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /**
   * Empties the idempotence cache, as a node restart (or 8 MiB of later commits) would: after
   * this an `any` re-send of already-written ids writes them again.
   */
  forgetRecentCommits(): void {
    this.#cache.clear();
    this.#cacheQueue.length = 0;
    this.#cacheQueueHead = 0;
    this.#cacheSize = 0;
  }

  /** Whether an event id is still in the idempotence cache (and for which stream/revision). */
  recentCommit(eventId: string): { stream: string; revision: bigint } | undefined {
    const entry = this.#cache.get(eventId.toLowerCase());
    return entry ? { ...entry } : undefined;
  }

  // ---------------------------------------------------------------------------------------------
  // Internals

  #checkCommit(
    stream: string,
    expected: Expected,
    eventIds: readonly string[],
  ): { decision: CommitDecision; current: bigint; end: bigint; isSoftDeleted: boolean } {
    const fail = (decision: CommitDecision, current: bigint, isSoftDeleted = false) => ({
      decision,
      current,
      end: -1n,
      isSoftDeleted,
    });
    const last = this.lastRevision(stream);
    if (last === DELETED_STREAM) return fail('deleted', last);
    const current = last ?? -1n; // ExpectedVersion.NoStream = -1

    if (expected.kind === 'stream_exists') {
      if (this.isSoftDeleted(stream)) return fail('deleted', current, true);
      if (current < 0n && this.lastRevision(metaStreamOf(stream)) === undefined) {
        return fail('wrong_expected_version', current);
      }
    }

    if (expected.kind === 'any' || expected.kind === 'stream_exists') {
      let first = true;
      let end = -1n;
      for (const id of eventIds) {
        const cached = this.#cache.get(id);
        if (!cached || cached.stream !== stream) {
          return first ? fail('ok', current, this.isSoftDeleted(stream)) : fail('corrupted_idempotency', current);
        }
        end = cached.revision;
        first = false;
      }
      if (first) return fail('ok', current, this.isSoftDeleted(stream));
      return { decision: 'idempotent', current, end, isSoftDeleted: false };
    }

    const expectedRevision = expected.kind === 'no_stream' ? -1n : expected.revision;
    if (expectedRevision < current) {
      let eventNumber = expectedRevision;
      for (const id of eventIds) {
        eventNumber += 1n;
        const cached = this.#cache.get(id);
        if (cached && cached.stream === stream && cached.revision === eventNumber) continue;
        if (this.recordAt(stream, eventNumber)?.eventId === id) continue;
        if (eventNumber !== expectedRevision + 1n) return fail('corrupted_idempotency', current);
        if (expected.kind === 'no_stream' && this.isSoftDeleted(stream)) return fail('ok', current, true);
        return fail('wrong_expected_version', current);
      }
      if (eventNumber === expectedRevision) return fail('wrong_expected_version', current);
      return { decision: 'idempotent', current, end: eventNumber, isSoftDeleted: false };
    }
    if (expectedRevision > current) return fail('wrong_expected_version', current);
    return fail('ok', current, this.isSoftDeleted(stream));
  }

  #undeleteAfterWrite(stream: string, current: bigint, isSoftDeleted: boolean, softUndeleteMetastream: boolean) {
    // StorageWriterService.cs SoftUndeleteStream / SoftUndeleteMetastream: rewrite the metadata
    // with $tb = the first revision of the recreated stream, keeping the other keys.
    if (isSoftDeleted) this.#softUndelete(stream, current + 1n);
    if (softUndeleteMetastream) {
      const original = originalStreamOf(stream);
      this.#softUndelete(original, (this.lastRevision(original) ?? -1n) + 1n);
    }
  }

  #softUndelete(stream: string, recreateFrom: bigint) {
    const metaStream = metaStreamOf(stream);
    const meta = this.#streams.get(metaStream);
    const last = meta?.events[meta.events.length - 1];
    if (!meta || !last) return;
    const text = new TextDecoder().decode(last.data);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return; // SoftUndeleteRawMeta: unparseable metadata -> nothing written
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return;
    const rewritten = replaceTruncateBefore(text, recreateFrom);
    this.#write(metaStream, BigInt(meta.events.length), [
      {
        eventId: crypto.randomUUID(),
        type: '$metadata',
        contentType: 'application/json',
        data: utf8.encode(rewritten),
        metadata: EMPTY,
      },
    ]);
  }

  /** Writes contiguous events of one stream from `firstRevision`, caches their ids, notifies. */
  #write(stream: string, firstRevision: bigint, events: readonly ProposedEvent[]): LogRecord[] {
    const state = this.#state(stream);
    const records: LogRecord[] = [];
    events.forEach((event, i) => {
      const revision = firstRevision + BigInt(i);
      const record = this.#appendRecord({
        stream,
        revision,
        eventId: event.eventId,
        type: event.type,
        // The server keeps only IsJson (Streams.Append.cs: `contentType == ApplicationJson`) and reads
        // it back as one of two content types (Streams.Read.cs ConvertToRecordedEvent).
        contentType: event.contentType === 'application/json' ? 'application/json' : 'application/octet-stream',
        data: event.data,
        metadata: event.metadata,
      });
      state.events.push(record);
      // IndexWriter.cs PreCommit: _committedEvents.PutRecord(eventId, (stream, number), throwOnDuplicate: false)
      this.#cachePut(record.eventId, { stream, revision });
      records.push(record);
    });
    this.#emit(records);
    return records;
  }

  /**
   * One self-committed prepare (StorageWriterService.cs: flags Data|IsCommitted, log v2 has no
   * stream/event-type records): its commit and prepare positions are both its own log position
   * (Services/Storage/ReaderIndex/AllReader.cs: `new CommitEventRecord(eventRecord, prepare.LogPosition)`
   * for commit-alike prepares), and the next record starts at its post-position.
   */
  #appendRecord(fields: Omit<LogRecord, 'created' | 'position'>): LogRecord {
    const position = this.#writer;
    const record: LogRecord = {
      ...fields,
      created: this.now(),
      position: { commit: position, prepare: position },
    };
    this.#writer += BigInt(prepareSizeOnDisk(fields.stream, fields.type, fields.data, fields.metadata));
    this.#records.push(record);
    this.#postPositions.push(this.#writer);
    return record;
  }

  #state(stream: string): StreamState {
    let state = this.#streams.get(stream);
    if (!state) {
      state = { events: [] };
      this.#streams.set(stream, state);
    }
    return state;
  }

  #emit(records: readonly LogRecord[]) {
    for (const listener of [...this.#listeners]) listener(records);
  }

  /**
   * Services/Storage/ReaderIndex/BoundedCache.cs PutRecord(throwOnDuplicate: false), faithfully:
   * evict the oldest queued keys while full; the size always grows and the key is always queued,
   * but an id already cached KEEPS ITS FIRST (stream, number). Entry size: IndexWriter.cs
   * `16 + 4 + IntPtr.Size + sizer(streamId)`, LogV2/LogV2Sizer.cs -> Caching/MemSizer.cs SizeOf(string).
   */
  #cachePut(eventId: string, entry: CacheEntry) {
    const sizeOf = (e: CacheEntry) => 16 + 4 + 8 + memSizeOfString(e.stream);
    while (this.#cacheSize >= this.#cacheLimit && this.#cacheQueueHead < this.#cacheQueue.length) {
      const oldKey = this.#cacheQueue[this.#cacheQueueHead++]!;
      const old = this.#cache.get(oldKey);
      if (old) {
        this.#cacheSize -= sizeOf(old);
        this.#cache.delete(oldKey);
      }
    }
    if (this.#cacheQueueHead > 4096 && this.#cacheQueueHead * 2 > this.#cacheQueue.length) {
      this.#cacheQueue.splice(0, this.#cacheQueueHead);
      this.#cacheQueueHead = 0;
    }
    this.#cacheSize += sizeOf(entry);
    this.#cacheQueue.push(eventId);
    if (this.#cache.has(eventId)) return;
    this.#cache.set(eventId, entry);
  }
}

// -----------------------------------------------------------------------------------------------
// Helpers

export function isMetaStream(stream: string): boolean {
  return stream.startsWith('$$');
}
export function metaStreamOf(stream: string): string {
  return `$$${stream}`;
}
export function originalStreamOf(metaStream: string): string {
  return metaStream.slice(2);
}
/**
 * The filter every $all read and subscription applies, filtered or not
 * (Services/Storage/ReaderIndex/EventFilter.cs DefaultAllFilterStrategy, used by AllReader.cs
 * ReadAllEventsForward/Backward and SubscriptionsService.cs for $all): non-system streams pass;
 * `$epoch-information`, and the checkpoint and parked streams of persistent subscriptions to $all
 * (`$persistentsubscription-$all::<group>-checkpoint` / `-parked`) are hidden; other system streams pass.
 */
export function allowedInAll(record: Pick<LogRecord, 'stream'>): boolean {
  const stream = record.stream;
  if (!stream.startsWith('$')) return true;
  if (stream === '$epoch-information') return false;
  const prefix = '$persistentsubscription-$all::';
  const hiddenBy = (suffix: string) =>
    stream.length >= prefix.length + suffix.length && stream.startsWith(prefix) && stream.endsWith(suffix);
  return !hiddenBy('-checkpoint') && !hiddenBy('-parked');
}

/** System streams start with '$' (Services/SystemStreams.cs IsSystemStream). */
export function isSystemStream(stream: string): boolean {
  return stream.startsWith('$');
}

function max(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}

function utf8Length(s: string): number {
  return utf8.encode(s).length;
}

/** BinaryWriter string: 7-bit encoded length prefix + UTF-8 bytes (PrepareLogRecord.cs StringSizeWithLengthPrefix). */
function stringSizeWithLengthPrefix(byteCount: number): number {
  if (byteCount === 0) return 1;
  const msb = 31 - Math.clz32(byteCount);
  return byteCount + Math.floor(msb / 7) + 1;
}

/**
 * TransactionLog/LogRecords/PrepareLogRecord.cs SizeOnDisk (record version 1, including the
 * 4-byte length prefix and suffix): the log is byte-addressed and the next record starts here.
 */
export function prepareSizeOnDisk(stream: string, type: string, data: Uint8Array, metadata: Uint8Array): number {
  return (
    2 * 4 + // length prefix & suffix
    1 + // record type
    1 + // version
    8 + // log position
    2 + // flags
    8 + // transaction position
    4 + // transaction offset
    8 + // expected version
    stringSizeWithLengthPrefix(utf8Length(stream)) +
    16 + // event id
    16 + // correlation id
    8 + // timestamp
    stringSizeWithLengthPrefix(utf8Length(type)) +
    4 +
    data.length +
    4 +
    metadata.length
  );
}

/**
 * Data/Event.cs SizeOnDisk, summed against MaxAppendSize by Services/Transport/Grpc/Streams.Append.cs
 * and Streams.BatchAppend.cs. Its C# is `data?.Length ?? 0 + metadata?.Length ?? 0 + eventType.Length * 2`;
 * `??` binds looser than `+`, so with data present (always, over gRPC) it is just data.Length:
 * the server counts ONLY the data bytes against the limit (custom metadata and type are free).
 */
export function eventSizeOnDisk(_type: string, data: Uint8Array, _metadata: Uint8Array): number {
  return data.length;
}

function memSizeOfString(s: string): number {
  if (s.length === 0) return 0;
  const raw = 20 + s.length * 2 + 1;
  return Math.ceil(raw / 8) * 8;
}

/**
 * Data/StreamMetadata.cs FromJsonReader: `$maxCount` (positive), `$maxAge` (seconds),
 * `$tb` (non-negative). Numbers are read exactly (a soft delete writes $tb = long.MaxValue,
 * beyond JS's safe integers). Invalid JSON -> empty metadata.
 */
export function parseStreamMetadata(bytes: Uint8Array): StreamMetadataView {
  const text = new TextDecoder().decode(bytes);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return {};
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return {};
  const view: StreamMetadataView = {};
  const exact = (key: string): bigint | undefined => {
    const match = new RegExp(`"${key.replace('$', '\\$')}"\\s*:\\s*(\\d+)(?![\\d.eE])`).exec(text);
    return match ? BigInt(match[1]!) : undefined;
  };
  const record = parsed as Record<string, unknown>;
  if (typeof record.$tb === 'number') view.truncateBefore = exact('$tb') ?? BigInt(Math.trunc(record.$tb));
  if (typeof record.$maxCount === 'number') view.maxCount = exact('$maxCount') ?? BigInt(Math.trunc(record.$maxCount));
  if (typeof record.$maxAge === 'number') view.maxAgeSeconds = record.$maxAge;
  return view;
}

function stringifyWithBigints(value: object): string {
  const marker = '__bigint__';
  const json = JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? `${marker}${v}` : v));
  return json.replace(new RegExp(`"${marker}(-?\\d+)"`, 'g'), '$1');
}

function replaceTruncateBefore(text: string, tb: bigint): string {
  const parsed = JSON.parse(text) as Record<string, unknown>;
  parsed.$tb = '__tb__';
  return JSON.stringify(parsed).replace('"__tb__"', tb.toString());
}
