import { randomUUID } from 'node:crypto';
import type { RecordedEvent as EsdbRecordedEvent } from '@eventstore/db-client';
import { chainedMetadata, EsdbStreamVerifier, linkOf, PREVIOUS_STAMP_KEY, storedHashOf } from '../../eventstore/esdb/hash-chain';
import type { JsonValue, NewEvent } from '../../eventstore/event-store';
import { BreakCollector, chainHashes, GENESIS_HASH, HASH_METADATA_KEY } from '../../eventstore/hash-chain';

/**
 * The EventStoreDB chain without a server (the contract suite runs it against one when ESDB_URL is set): a stream is
 * written here as the adapter writes it (chainedMetadata from the last event's hash and stamp), and the server's own
 * stamps (`created`, the position) are set the way the server sets them, after the hash.
 */

const ev = (type: string, data: { [key: string]: JsonValue } = {}): NewEvent => ({
  id: randomUUID(),
  type,
  data,
  metadata: { correlationId: randomUUID(), occurredAt: '2026-03-03T10:00:00.123Z' },
});

/** An event as the server keeps it (the client's RecordedEvent, JSON kind). */
interface Stored {
  streamId: string;
  id: string;
  isJson: true;
  revision: bigint;
  type: string;
  created: Date;
  data: { [key: string]: JsonValue };
  metadata: { [key: string]: JsonValue };
  position?: { commit: bigint; prepare: bigint };
}
const esdb = (e: Stored) => e as unknown as EsdbRecordedEvent;

/** A fake stream: appends as EsdbEventStore.appendToStream does, the server stamping `created` and the position. */
class FakeStream {
  readonly events: Stored[] = [];
  private clock = Date.parse('2026-03-03T10:00:00.000Z');
  private commit = 1000n;

  constructor(readonly name = `account-${randomUUID().slice(0, 8)}`) {}

  append(events: NewEvent[]): void {
    const last = this.events.at(-1);
    const previous = last ? storedHashOf(esdb(last)).hash! : GENESIS_HASH;
    const stamp = last
      ? { recordedAt: last.created.toISOString(), position: `${last.position!.commit}.${last.position!.prepare}` }
      : undefined;
    const metadata = chainedMetadata(this.name, events, previous, BigInt(this.events.length), stamp);
    this.commit += 10n;
    events.forEach((e, i) => this.store(e, metadata[i] as { [key: string]: JsonValue }));
  }

  /** An event as an older writer stored it: a v1 hash (bare hex), or none at all (before the chain). */
  appendV1(e: NewEvent, hashed: boolean): void {
    this.commit += 10n;
    const stored = this.fake(e, e.metadata as { [key: string]: JsonValue }, BigInt(this.events.length));
    if (hashed) {
      const links = chainHashes(GENESIS_HASH, [...this.events, stored].map(fieldsOf), 'v1');
      stored.metadata = { ...stored.metadata, [HASH_METADATA_KEY]: links.at(-1)!.toString('hex') };
    }
    this.events.push(stored);
  }

  private fake(e: NewEvent, metadata: { [key: string]: JsonValue }, revision: bigint): Stored {
    this.clock += 7;
    const stored: Stored = {
      streamId: this.name,
      id: e.id,
      isJson: true,
      revision,
      type: e.type,
      created: new Date(this.clock),
      data: e.data,
      metadata,
      position: { commit: this.commit, prepare: this.commit },
    };
    return stored;
  }

  private store(e: NewEvent, metadata: { [key: string]: JsonValue }): void {
    this.events.push(this.fake(e, metadata, BigInt(this.events.length)));
  }
}

/** What the v1 form hashed for events from before the stamps (linkOf's v1 encoding, written out). */
function fieldsOf(e: Stored) {
  const { [HASH_METADATA_KEY]: _h, ...metadata } = e.metadata;
  return {
    id: e.id,
    type: e.type,
    stream: e.streamId,
    revision: e.revision,
    data: e.data,
    metadata,
    occurredAt: typeof metadata.occurredAt === 'string' ? metadata.occurredAt : null,
    recordedAt: null,
    position: null,
  };
}

function verify(stream: FakeStream) {
  const breaks = new BreakCollector(20);
  const verifier = new EsdbStreamVerifier(stream.name, breaks);
  for (const e of stream.events) verifier.feed(esdb(e));
  return { breaks: breaks.broken, verifier };
}

describe('EventStoreDB hash chain (v2): what the links cover', () => {
  const written = () => {
    const s = new FakeStream();
    s.append([ev('AccountOpened'), ev('MoneyDeposited', { amount: 1000 })]);
    s.append([ev('MoneyWithdrawn', { amount: 700 })]);
    s.append([ev('MoneyDeposited', { amount: 5 })]);
    return s;
  };

  test('a stream written by the adapter verifies; hashes are v2, and each later append records the stamp of the event before it', () => {
    const s = written();
    const { breaks, verifier } = verify(s);
    expect(breaks).toEqual([]);
    expect(verifier.chain.count).toBe(4);
    expect(s.events.every((e) => /^v2:[0-9a-f]{64}$/.test(e.metadata[HASH_METADATA_KEY] as string))).toBe(true);
    expect(s.events.map((e) => PREVIOUS_STAMP_KEY in e.metadata)).toEqual([false, false, true, true]);
    expect(s.events[2]!.metadata[PREVIOUS_STAMP_KEY]).toEqual({
      recordedAt: s.events[1]!.created.toISOString(),
      position: `${s.events[1]!.position!.commit}.${s.events[1]!.position!.prepare}`,
    });
    expect(linkOf(esdb(s.events[0]!)).encoding.startsWith('["v2", ')).toBe(true);
    expect(linkOf(esdb(s.events[0]!)).encoding.endsWith(', "2026-03-03T10:00:00.123000Z", null, null]')).toBe(true);
  });

  test("an event's recorded time or position changed after a later append read it: stamp_mismatch at that event", () => {
    const time = written();
    time.events[1]!.created = new Date(time.events[1]!.created.getTime() - 86_400_000);
    expect(verify(time).breaks).toEqual([expect.objectContaining({ stream: time.name, revision: '1', problem: 'stamp_mismatch' })]);

    const place = written();
    place.events[2]!.position = { commit: 5n, prepare: 5n };
    expect(verify(place).breaks).toEqual([expect.objectContaining({ stream: place.name, revision: '2', problem: 'stamp_mismatch' })]);
  });

  test('the data, or the recorded stamp itself, edited: hash_mismatch', () => {
    const data = written();
    (data.events[1]!.data as { amount: number }).amount = 300;
    expect(verify(data).breaks).toEqual([expect.objectContaining({ revision: '1', problem: 'hash_mismatch' })]);

    const stamp = written();
    (stamp.events[3]!.metadata[PREVIOUS_STAMP_KEY] as { recordedAt: string }).recordedAt = '2020-01-01T00:00:00.000Z';
    stamp.events[2]!.created = new Date('2020-01-01T00:00:00.000Z');
    expect(verify(stamp).breaks).toEqual([expect.objectContaining({ revision: '3', problem: 'hash_mismatch' })]);
  });

  test("not covered, as documented: the stamps of a stream's last event, and of an event before the last of one append", () => {
    const s = written();
    s.events[3]!.created = new Date(0); // the last event: no later append has read it
    s.events[0]!.created = new Date(0); // the first of a two-event append: its stamp was not known when the second was hashed
    expect(verify(s).breaks).toEqual([]);
  });

  test('events written before the chain, and in the v1 form, keep verifying; v2 events chain from them', () => {
    const s = new FakeStream();
    s.appendV1(ev('AccountOpened'), false);
    s.appendV1(ev('MoneyDeposited', { amount: 10 }), true);
    s.append([ev('MoneyDeposited', { amount: 20 })]);
    const { breaks, verifier } = verify(s);
    expect(breaks).toEqual([]);
    expect([verifier.chain.legacy, verifier.v1Links]).toEqual([1, 1]);
    expect(s.events.map((e) => storedHashOf(esdb(e)).form)).toEqual(['v1', 'v1', 'v2']);
    (s.events[1]!.data as { amount: number }).amount = 11;
    expect(verify(s).breaks).toEqual([expect.objectContaining({ revision: '1', problem: 'hash_mismatch' })]);
  });
});
