import { createHash } from 'node:crypto';
import type { GlobalPosition, JsonValue, RecordedEvent } from './event-store';

/**
 * Tamper evidence: every event carries
 *
 *     hash = SHA-256(previous hash in its stream ‖ UTF-8(canonical encoding of the event))
 *
 * where the previous hash of a stream's first event is GENESIS_HASH (32 zero bytes), and the canonical encoding, in
 * its current form `v2`, is the JSON array
 *
 *     ["v2", id, type, stream, revision, data, metadata, occurredAt, recordedAt, position]
 *
 * written exactly as PostgreSQL's `jsonb::text` writes it (`jsonb_build_array(...)::text`): object keys sorted by their
 * UTF-8 length, then bytewise; `", "` and `": "` as separators; numbers in plain decimal notation (no exponent);
 * strings escaped only for `"`, `\` and control characters (`\b \f \n \r \t`, others as lowercase `\u00xx`).
 * `id` is the lowercase UUID, `revision` a decimal string, `metadata` the metadata as the store keeps it (for
 * PostgreSQL with the `occurredAt` the append stamped), `occurredAt` the occurrence time and `recordedAt` the store's
 * recording time, both as ISO-8601 UTC with microseconds (`YYYY-MM-DDTHH:MM:SS.ffffffZ`: PostgreSQL's precision; the
 * store stamps whole milliseconds, so it is the API's millisecond time with `000` before the `Z`), and `position` the
 * event's place in the log as the API writes it (`<commit>.<prepare>`; PostgreSQL: `<transaction_id>.<position>`,
 * the order the log is read in). Where the store does not know a value when it hashes, it is `null`: EventStoreDB
 * stamps `created` (recordedAt, and occurredAt for events written without one) and the log position itself, after
 * the adapter hashed the event (see eventstore/esdb/hash-chain.ts for what it covers instead).
 *
 * The first form, `v1`, was `[id, type, stream, revision, data, metadata, occurredAt]` (occurredAt to the millisecond):
 * it left the recorded time and the place in the log out, so editing `recorded_at` or the order went unseen.
 * PostgreSQL's migration 4 recomputed every link in `v2` and kept the `v1` hashes beside them, still verified, for the
 * anchors made before it (docs/audit.md); EventStoreDB events cannot be rewritten, so each keeps the form it was
 * written in (the stored hash says which).
 *
 * Why PostgreSQL's jsonb text: the PostgreSQL adapter computes the hash inside its append statement (see
 * postgres-event-store.ts), where the recorded time, the transaction and the position are known; the encoding is what
 * PostgreSQL can produce there. This module reproduces it byte for byte in TypeScript (test/audit/canonical-encoding.test.ts
 * compares the two), so the verifier, the EventStoreDB adapter (which hashes client-side and keeps the hash in event
 * metadata) and any other adapter share one definition.
 */

/** The canonical encodings: `v2` (current) covers the recorded time and the place in the log; `v1` did not. */
export type HashForm = 'v1' | 'v2';
export const CURRENT_HASH_FORM: HashForm = 'v2';

export const GENESIS_HASH: Buffer = Buffer.alloc(32);

/** The metadata key under which adapters without a hash column (EventStoreDB) keep the event's hash, hex. */
export const HASH_METADATA_KEY = 'auditHash';

/** The fields an event's hash covers. */
export interface ChainedEventFields {
  id: string;
  type: string;
  stream: string;
  revision: bigint;
  data: { [key: string]: JsonValue };
  metadata: { [key: string]: JsonValue | undefined };
  /** ISO-8601; normalised to UTC microseconds (v1: milliseconds). Null when unknown at append time (see above). */
  occurredAt: string | null;
  /** v2: the store's recording time, ISO-8601 (normalised like occurredAt). Null when the store stamps it after hashing (EventStoreDB). */
  recordedAt: string | null;
  /** v2: the place in the log, `<commit>.<prepare>` (formatPosition). Null when the store assigns it after hashing (EventStoreDB). */
  position: string | null;
}

/** A JSON string as PostgreSQL's jsonb output writes it (escape_json in src/backend/utils/adt/json.c). */
export function pgJsonString(text: string): string {
  let out = '"';
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    switch (c) {
      case 0x08:
        out += '\\b';
        break;
      case 0x0c:
        out += '\\f';
        break;
      case 0x0a:
        out += '\\n';
        break;
      case 0x0d:
        out += '\\r';
        break;
      case 0x09:
        out += '\\t';
        break;
      case 0x22:
        out += '\\"';
        break;
      case 0x5c:
        out += '\\\\';
        break;
      default:
        out += c < 0x20 ? `\\u${c.toString(16).padStart(4, '0')}` : text[i];
    }
  }
  return `${out}"`;
}

/**
 * A JavaScript number as jsonb writes it: PostgreSQL parses the JSON text (JSON.stringify's shortest round-trip form)
 * as `numeric` and prints it without an exponent, keeping the digits (1e+21 -> 1000000000000000000000,
 * 1.5e-7 -> 0.00000015, -0 -> 0).
 */
export function pgJsonNumber(value: number): string {
  if (!Number.isFinite(value)) throw new Error(`not a JSON number: ${value}`);
  const text = String(value);
  const exp = text.indexOf('e');
  if (exp < 0) return text === '-0' ? '0' : text;
  const negative = text.startsWith('-');
  const mantissa = text.slice(negative ? 1 : 0, exp);
  const exponent = Number(text.slice(exp + 1));
  const dot = mantissa.indexOf('.');
  const digits = mantissa.replace('.', '');
  const pointAt = (dot < 0 ? mantissa.length : dot) + exponent; // position of the decimal point in `digits`
  let plain: string;
  if (pointAt <= 0) plain = `0.${'0'.repeat(-pointAt)}${digits}`;
  else if (pointAt >= digits.length) plain = digits + '0'.repeat(pointAt - digits.length);
  else plain = `${digits.slice(0, pointAt)}.${digits.slice(pointAt)}`;
  return negative ? `-${plain}` : plain;
}

/** jsonb orders an object's keys by UTF-8 length, then bytewise (lengthCompareJsonbString). */
function compareKeys(a: Buffer, b: Buffer): number {
  return a.length !== b.length ? a.length - b.length : Buffer.compare(a, b);
}

/** The text PostgreSQL's `jsonb::text` gives for this JSON value (undefined members are left out, as JSON.stringify does). */
export function canonicalJson(value: JsonValue | undefined): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return pgJsonString(value);
    case 'number':
      return pgJsonNumber(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(', ')}]`;
      const keys = Object.keys(value)
        .filter((k) => value[k] !== undefined)
        .map((k) => ({ k, bytes: Buffer.from(k, 'utf8') }))
        .sort((a, b) => compareKeys(a.bytes, b.bytes));
      return `{${keys.map(({ k }) => `${pgJsonString(k)}: ${canonicalJson(value[k])}`).join(', ')}}`;
    }
    default:
      throw new Error(`not a JSON value: ${typeof value}`);
  }
}

/** ISO-8601 UTC with milliseconds, as the PostgreSQL statement formats its timestamps (to_char ... MS): the v1 form. */
export function canonicalInstant(iso: string): string {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new Error(`not an ISO-8601 timestamp: ${iso}`);
  return new Date(ms).toISOString();
}

/**
 * ISO-8601 UTC with microseconds, as PostgreSQL keeps a timestamp and formats it (to_char ... US): the v2 form.
 * Digits beyond the microsecond are rounded, as PostgreSQL rounds them on input.
 */
export function canonicalMicros(iso: string): string {
  let ms = Date.parse(iso); // whole milliseconds (V8 drops further digits)
  if (Number.isNaN(ms)) throw new Error(`not an ISO-8601 timestamp: ${iso}`);
  const fraction = /T\d{2}:\d{2}(?::\d{2})?\.(\d+)/.exec(iso)?.[1] ?? '';
  let micros = Number(fraction.slice(3, 6).padEnd(3, '0'));
  if (fraction.length > 6 && Number(fraction[6]) >= 5) micros += 1;
  if (micros === 1000) {
    micros = 0;
    ms += 1;
  }
  return `${new Date(ms).toISOString().slice(0, -1)}${String(micros).padStart(3, '0')}Z`;
}

/** A log position as the API writes it (formatPosition in event-store.ts). */
export const canonicalPosition = (p: GlobalPosition): string => `${p.commit}.${p.prepare}`;

/**
 * The encoding from parts whose JSON is already written canonically and whose times are already in the form's
 * notation (the PostgreSQL verifier reads `data::text`, `metadata::text` and the formatted times as the database keeps
 * them, so it never re-encodes).
 */
export function encodingFromParts(
  parts: {
    id: string;
    type: string;
    stream: string;
    revision: bigint | string;
    dataJson: string;
    metadataJson: string;
    occurredAt: string | null;
    recordedAt?: string | null;
    position?: string | null;
  },
  form: HashForm = CURRENT_HASH_FORM,
): string {
  const text = (v: string | null | undefined) => (v === null || v === undefined ? 'null' : pgJsonString(v));
  const common = `${pgJsonString(parts.id.toLowerCase())}, ${pgJsonString(parts.type)}, ${pgJsonString(parts.stream)}, ${pgJsonString(String(parts.revision))}, ${parts.dataJson}, ${parts.metadataJson}, ${text(parts.occurredAt)}`;
  if (form === 'v1') return `[${common}]`;
  return `["v2", ${common}, ${text(parts.recordedAt)}, ${text(parts.position)}]`;
}

/** The canonical encoding of an event in the given form (see the top of this file). */
export function canonicalEncoding(fields: ChainedEventFields, form: HashForm = CURRENT_HASH_FORM): string {
  const instant = form === 'v1' ? canonicalInstant : canonicalMicros;
  return encodingFromParts(
    {
      id: fields.id,
      type: fields.type,
      stream: fields.stream,
      revision: fields.revision,
      dataJson: canonicalJson(fields.data),
      metadataJson: canonicalJson(fields.metadata as { [key: string]: JsonValue }),
      occurredAt: fields.occurredAt === null ? null : instant(fields.occurredAt),
      recordedAt: fields.recordedAt === null ? null : canonicalMicros(fields.recordedAt),
      position: fields.position,
    },
    form,
  );
}

/** Fields the store filled in only after the event was hashed: encoded as null in its hash (ChainLink.unhashed). */
export type UnhashedField = 'occurredAt' | 'recordedAt' | 'position';

/**
 * The fields an adapter hashed for an event read through the port (what an auditor rebuilds from the API), given the
 * event's link's `unhashed` fields: PostgreSQL hashes everything; EventStoreDB hashes before the server stamps the
 * recorded time and the position (null there), and, for an event written without occurredAt, null for it too and a
 * metadata without it (the port fills it in with the server's time).
 */
export function chainedFieldsOf(event: RecordedEvent, unhashed: readonly UnhashedField[] = []): ChainedEventFields {
  const stampedOccurredAt = unhashed.includes('occurredAt');
  const metadata: ChainedEventFields['metadata'] = { ...event.metadata };
  if (stampedOccurredAt) delete metadata.occurredAt;
  return {
    id: event.id,
    type: event.type,
    stream: event.stream,
    revision: event.revision,
    data: event.data,
    metadata,
    occurredAt: stampedOccurredAt ? null : event.metadata.occurredAt,
    recordedAt: unhashed.includes('recordedAt') ? null : event.recordedAt,
    position: unhashed.includes('position') ? null : canonicalPosition(event.position),
  };
}

/** SHA-256(previous ‖ UTF-8(encoding)). */
export function chainHash(previous: Buffer, encoding: string): Buffer {
  return createHash('sha256').update(previous).update(encoding, 'utf8').digest();
}

/** Hashes of consecutive events of one stream, chained from `previous` (GENESIS_HASH before revision 0). */
export function chainHashes(previous: Buffer, events: readonly ChainedEventFields[], form: HashForm = CURRENT_HASH_FORM): Buffer[] {
  const out: Buffer[] = [];
  let prev = previous;
  for (const e of events) {
    prev = chainHash(prev, canonicalEncoding(e, form));
    out.push(prev);
  }
  return out;
}

/** Metadata without the hash an adapter keeps in it (what the hash covers). */
export function withoutHash<M extends { [key: string]: JsonValue | undefined }>(metadata: M): M {
  if (!(HASH_METADATA_KEY in metadata)) return metadata;
  const { [HASH_METADATA_KEY]: _hash, ...rest } = metadata;
  return rest as M;
}

// ---- Verification results, shared by the adapters' verifiers, the CLI and the HTTP route ----

export type ChainProblem =
  /** The hash recomputed from the previous link and the event's content differs from the stored one (content edited, events swapped). */
  | 'hash_mismatch'
  /** A revision is missing from the stream (an event deleted), or the stream does not start at 0. */
  | 'missing_event'
  /** The event has no hash (written without the chain, e.g. by an old writer during an upgrade). */
  | 'missing_hash'
  /** The stream's head (its revision and last hash) disagrees with its last event. */
  | 'head_mismatch'
  /** A stream present at the latest anchor is gone, shorter, or its anchored event now has another hash. */
  | 'anchor_mismatch'
  /** The anchors themselves do not chain (an anchor edited or deleted) or do not match their recorded heads. */
  | 'anchor_chain'
  /** The log itself records a deletion or truncation of the stream (EventStoreDB). */
  | 'stream_deleted'
  /**
   * EventStoreDB: the recorded time or log position of an event differs from what the next append to its stream read
   * and hashed (`auditPrevious` in that event's metadata).
   */
  | 'stamp_mismatch';

export interface ChainBreak {
  stream: string;
  /** The revision where the chain breaks (null when the problem is about the whole stream or the anchors). */
  revision: string | null;
  problem: ChainProblem;
  expected: string;
  found: string;
  /** 'v1': a link checked against its v1 hash, kept from before migration 4 for the anchors made before it. */
  form?: 'v1';
}

export interface ChainVerification {
  ok: boolean;
  /** Events whose hash was recomputed and checked. */
  events: number;
  streams: number;
  ms: number;
  /** The first broken link in the order verified (streams by name, then revision), then the rest, up to a limit. */
  firstBroken?: ChainBreak;
  broken: ChainBreak[];
  /** The latest anchor checked against the heads, if any. */
  anchor?: AnchorSummary;
  /** With `stream`: the hash of its last event, hex (what the next event chains from). */
  lastHash?: string;
  /** Events written before the chain existed, hashed on read (EventStoreDB only: its events cannot be rewritten). */
  unhashedLegacyEvents?: number;
  /** The form the links were checked in (see the top of this file). */
  form: HashForm;
  /**
   * PostgreSQL: events also checked against the v1 hash they had before migration 4 (the anchors made before it point
   * at those). EventStoreDB: events written in the v1 form (they keep it).
   */
  v1Links?: number;
}

export interface AnchorSummary {
  anchorId: string;
  anchoredAt: string;
  streams: number;
  events: number;
  headsHash: string;
  anchorHash: string;
}

export interface AnchorResult {
  /** The anchor written, or undefined when it was refused (see `refused`) or nothing changed since the last one. */
  anchor?: AnchorSummary;
  /** Why no anchor was written: the heads lost something the previous anchor recorded. */
  refused?: ChainBreak[];
  unchanged?: boolean;
  /** Nothing written: the latest anchor is more recent than `skipIfWithinMs`. */
  recent?: boolean;
}

export interface VerifyOptions {
  /** Only this stream (its chain, head and anchored state). */
  stream?: string;
  /** Stop after this many problems (default 20). */
  maxProblems?: number;
  /** An anchor hash kept outside the database: verification fails unless the anchors chain through it. */
  anchorHash?: string;
}

/** An event's link, for showing beside the event (GET /streams/{name}, GET /events): hex. */
export interface ChainLink {
  /** The hash stored with the event (null: none). */
  hash: string | null;
  /** The hash it chains from: the stored hash of the event before it in its stream, or 64 zeros before revision 0. */
  previousHash: string | null;
  /** The canonical encoding its hash was computed over. */
  hashForm: HashForm;
  /**
   * Fields the store filled in after the hash was computed, so encoded as null in it (`occurredAt` also left out of
   * the hashed metadata): absent or empty on PostgreSQL; on EventStoreDB `recordedAt` and `position`, and `occurredAt`
   * when the writer gave none.
   */
  unhashed?: UnhashedField[];
}

/** What an adapter with a hash chain offers (PostgresEventStore.chainAudit(), EsdbEventStore.chainAudit()). */
export interface ChainAudit {
  /** Whether the links cover the store's own recorded time and log position (PostgreSQL), or hash null there (EventStoreDB). */
  readonly coversStoreStamps: boolean;
  verify(options?: VerifyOptions): Promise<ChainVerification>;
  /** The links of these events (undefined for an event the store no longer has), in the order asked. */
  linksOf(events: readonly { stream: string; revision: bigint }[]): Promise<(ChainLink | undefined)[]>;
  /**
   * Records an anchor over every stream head (adapters that keep heads: PostgreSQL). `skipIfWithinMs`: write nothing
   * when the latest anchor is younger than that (several processes anchoring on a timer).
   */
  anchor?(options?: { skipIfWithinMs?: number }): Promise<AnchorResult>;
}

export interface HashChainedStore {
  chainAudit(): ChainAudit;
}

export function isHashChained(store: unknown): store is HashChainedStore {
  return typeof (store as Partial<HashChainedStore> | null)?.chainAudit === 'function';
}

/** Collects problems up to a limit; the first one is the first broken link. */
export class BreakCollector {
  readonly broken: ChainBreak[] = [];
  constructor(private readonly max: number) {}
  add(b: ChainBreak): void {
    if (this.broken.length < this.max) this.broken.push(b);
  }
  get full(): boolean {
    return this.broken.length >= this.max;
  }
}

export function describeBreak(b: ChainBreak): string {
  return `${b.stream}${b.revision !== null ? `@${b.revision}` : ''}: ${b.problem}${b.form ? ` (${b.form} link)` : ''}: expected ${b.expected}, found ${b.found}`;
}

/** One event as a verifier reads it: its revision, canonical encoding, and the hash stored with it (null: none). */
export interface StoredLink {
  revision: bigint;
  encoding: string;
  hash: Buffer | null;
}

/**
 * Checks one stream's events, fed in revision order as read, against their stored hashes: revisions contiguous from
 * 0, each hash = chainHash(stored hash of the previous event, encoding). The previous link is the *stored* hash, so an
 * edit shows at the edited event; an edit that also rewrote every following hash shows at the head (or the anchor).
 * Only a stream's first broken link is reported.
 */
export class StreamChainChecker {
  count = 0;
  /** Events without a hash before the stream's first hashed event, hashed here (allowUnhashedPrefix). */
  legacy = 0;
  lastRevision: bigint | null = null;
  lastHash: Buffer | null = null;
  private previous: Buffer;
  private expectedRevision: bigint;
  private reported = false;
  private seenHashed = false;

  constructor(
    readonly stream: string,
    private readonly breaks: BreakCollector,
    /** EventStoreDB: events written before the chain existed (they cannot be rewritten) are hashed on read. */
    private readonly allowUnhashedPrefix = false,
    /** 'v1': the links checked are the v1 hashes kept from before migration 4; problems say so. */
    private readonly form?: 'v1',
  ) {
    this.previous = GENESIS_HASH;
    this.expectedRevision = 0n;
  }

  feed(e: StoredLink): void {
    this.count += 1;
    const report = (b: Omit<ChainBreak, 'stream'>) => {
      if (this.reported) return;
      this.reported = true;
      this.breaks.add({ stream: this.stream, ...b, ...(this.form ? { form: this.form } : {}) });
    };
    if (e.revision !== this.expectedRevision) {
      report({
        revision: String(this.expectedRevision),
        problem: 'missing_event',
        expected: `revision ${this.expectedRevision}`,
        found: `revision ${e.revision}`,
      });
    }
    let stored = e.hash;
    if (stored === null) {
      if (this.allowUnhashedPrefix && !this.seenHashed) {
        stored = chainHash(this.previous, e.encoding);
        this.legacy += 1;
      } else {
        report({ revision: String(e.revision), problem: 'missing_hash', expected: 'a hash', found: 'none' });
      }
    } else {
      this.seenHashed = true;
      const recomputed = chainHash(this.previous, e.encoding);
      if (!recomputed.equals(stored))
        report({
          revision: String(e.revision),
          problem: 'hash_mismatch',
          expected: recomputed.toString('hex'),
          found: stored.toString('hex'),
        });
    }
    // An event without a hash (reported) leaves the previous link as it was: the next one is checked against it.
    if (stored !== null) this.previous = stored;
    this.lastRevision = e.revision;
    this.lastHash = stored;
    this.expectedRevision = e.revision + 1n;
  }
}

/** StreamChainChecker over a whole stream at once. */
export function verifyStreamLinks(stream: string, events: Iterable<StoredLink>, breaks: BreakCollector): StreamChainChecker {
  const checker = new StreamChainChecker(stream, breaks);
  for (const e of events) checker.feed(e);
  return checker;
}

export const hex = (b: Buffer | null | undefined): string => (b ? b.toString('hex') : 'none');
