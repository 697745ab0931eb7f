/**
 * The rules of the EventStoreDB 24.10 emulator (test/support/esdb-emulator/), driven through the
 * REAL @eventstore/db-client over gRPC, not through our adapter. Each expectation is the server's
 * behaviour as read in its C# source (tag v24.10.0); the emulator files cite where.
 * Needs no external server.
 */
import {
  BACKWARDS,
  END,
  EventStoreDBClient,
  FORWARDS,
  MaxAppendSizeExceededError,
  START,
  StreamDeletedError,
  StreamNotFoundError,
  UnavailableError,
  WrongExpectedVersionError,
  binaryEvent,
  eventTypeFilter,
  jsonEvent,
  type AllStreamResolvedEvent,
  type ResolvedEvent,
  type Position,
} from '@eventstore/db-client';
import * as grpc from '@grpc/grpc-js';
import { ServerFeaturesClient } from '@eventstore/db-client/generated/serverfeatures_grpc_pb';
import { Empty } from '@eventstore/db-client/generated/shared_pb';
import type { SupportedMethods } from '@eventstore/db-client/generated/serverfeatures_pb';
import { startEsdbEmulator, type EsdbEmulator, type EsdbEmulatorOptions } from '../support/esdb-emulator/server';
import { DELETED_STREAM } from '../support/esdb-emulator/log';
import { withClockOffset } from '../support/clock-offset';

jest.setTimeout(20_000);

let emulator: EsdbEmulator;
let client: EventStoreDBClient;

async function start(options: EsdbEmulatorOptions = {}) {
  emulator = await startEsdbEmulator(options);
  client = EventStoreDBClient.connectionString(emulator.url);
}

afterEach(async () => {
  await client?.dispose();
  await emulator?.stop();
});

const id = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
const event = (n: number, type = 'Deposited') => jsonEvent({ id: id(n), type, data: { n } });

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

async function readStream(stream: string, options: Parameters<EventStoreDBClient['readStream']>[1] = {}) {
  return collect<ResolvedEvent>(client.readStream(stream, options));
}

async function readAll(options: Parameters<EventStoreDBClient['readAll']>[0] = {}) {
  return collect<AllStreamResolvedEvent>(client.readAll(options));
}

/** The error a promise rejects with (fails the test when it resolves). */
async function rejectionOf<E = unknown>(promise: Promise<unknown>): Promise<E> {
  try {
    await promise;
  } catch (error) {
    return error as E;
  }
  throw new Error('expected a rejection');
}

async function waitFor(condition: () => boolean, what: string) {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe.each([
  ['BatchAppend', true],
  ['Append', false],
])('commit rules through %s (IndexWriter.CheckCommit)', (_rpc, batchAppend) => {
  beforeEach(() => start({ batchAppend }));

  test('a re-send BELOW the current revision whose ids all match is idempotent: nothing written, the answer is the last re-sent event', async () => {
    await client.appendToStream('acc-1', [event(1), event(2)], { expectedRevision: 'no_stream' });
    await client.appendToStream('acc-1', [event(3)], { expectedRevision: 1n });
    const before = emulator.log.all().length;

    const again = await client.appendToStream('acc-1', [event(1), event(2)], { expectedRevision: 'no_stream' });

    expect(emulator.log.all()).toHaveLength(before);
    expect(again.nextExpectedRevision).toBe(1n); // not the stream's current revision (2)
    const original = emulator.log.recordAt('acc-1', 1n)!;
    expect(again.position).toEqual(original.position); // AlreadyCommitted carries the event's log position
    expect(emulator.log.lastDecision).toBe('idempotent');
  });

  test('a re-send AT the current revision is written again: the ids are not compared', async () => {
    await client.appendToStream('acc-1', [event(1)], { expectedRevision: 'no_stream' });

    const again = await client.appendToStream('acc-1', [event(1)], { expectedRevision: 0n });

    expect(again.nextExpectedRevision).toBe(1n);
    const read = await readStream('acc-1');
    expect(read.map((e) => [e.event?.revision, e.event?.id])).toEqual([
      [0n, id(1)],
      [1n, id(1)],
    ]);
  });

  test('a re-send whose first id matches but a later one does not is a wrong expected version (corrupted idempotency)', async () => {
    await client.appendToStream('acc-1', [event(1), event(2)], { expectedRevision: 'no_stream' });

    const error = await rejectionOf(client.appendToStream('acc-1', [event(1), event(9)], { expectedRevision: 'no_stream' }));

    expect(error).toBeInstanceOf(WrongExpectedVersionError);
    expect((error as WrongExpectedVersionError).actualVersion).toBe(1n);
    expect((error as WrongExpectedVersionError).expectedVersion).toBe('no_stream');
    expect(emulator.log.lastDecision).toBe('corrupted_idempotency');
  });

  test('a no_stream re-send of the same first events is idempotent', async () => {
    await client.appendToStream('acc-1', [event(1)], { expectedRevision: 'no_stream' });
    const again = await client.appendToStream('acc-1', [event(1)], { expectedRevision: 'no_stream' });
    expect(again.nextExpectedRevision).toBe(0n);
    expect(emulator.log.readStream('acc-1')).toHaveLength(1);
  });

  test('a wrong expected version carries the actual revision (or no_stream)', async () => {
    const missing = await rejectionOf<WrongExpectedVersionError>(client.appendToStream('acc-1', [event(1)], { expectedRevision: 3n }));
    expect(missing).toBeInstanceOf(WrongExpectedVersionError);
    expect(missing.actualVersion).toBe('no_stream');
    expect(missing.expectedVersion).toBe(3n);

    await client.appendToStream('acc-1', [event(1), event(2), event(3)], { expectedRevision: 'no_stream' });
    const behind = await rejectionOf<WrongExpectedVersionError>(client.appendToStream('acc-1', [event(4)], { expectedRevision: 0n }));
    expect(behind).toBeInstanceOf(WrongExpectedVersionError);
    expect(behind.actualVersion).toBe(2n);
    expect(behind.expectedVersion).toBe(0n);

    const exists = await rejectionOf<WrongExpectedVersionError>(
      client.appendToStream('acc-2', [event(5)], { expectedRevision: 'stream_exists' }),
    );
    expect(exists.actualVersion).toBe('no_stream');
    expect(exists.expectedVersion).toBe('stream_exists');
  });

  test('`any`: ids still in the recent-commits cache are idempotent, wherever they are; once evicted they are written again', async () => {
    await client.appendToStream('acc-1', [event(1), event(2), event(3)], { expectedRevision: 'any' });

    const again = await client.appendToStream('acc-1', [event(1), event(2)], { expectedRevision: 'any' });
    expect(again.nextExpectedRevision).toBe(1n); // the cached revision of the last re-sent id
    expect(emulator.log.readStream('acc-1')).toHaveLength(3);

    // the first id cached, a later one not: corrupted idempotency
    await expect(client.appendToStream('acc-1', [event(1), event(7)], { expectedRevision: 'any' })).rejects.toBeInstanceOf(
      WrongExpectedVersionError,
    );

    // the cache is in memory and bounded (8 MiB): after a restart or eviction the same ids are new
    emulator.log.forgetRecentCommits();
    const written = await client.appendToStream('acc-1', [event(1)], { expectedRevision: 'any' });
    expect(written.nextExpectedRevision).toBe(3n);
    expect(emulator.log.readStream('acc-1')).toHaveLength(4);
  });

  test('an append over MaxAppendSize (1 MiB of event DATA) is refused with MaxAppendSizeExceededError', async () => {
    const oneMiB = 1_048_576;
    // exactly the limit passes; custom metadata does not count (Event.SizeOnDisk's `??` precedence)
    await client.appendToStream(
      'big',
      binaryEvent({ id: id(1), type: 'Blob', data: new Uint8Array(oneMiB), metadata: new Uint8Array(500) }),
    );
    const error = await rejectionOf(
      client.appendToStream('big', [
        binaryEvent({ type: 'Blob', data: new Uint8Array(oneMiB) }),
        binaryEvent({ type: 'Blob', data: new Uint8Array(1) }),
      ]),
    );
    expect(error).toBeInstanceOf(MaxAppendSizeExceededError);
    expect((error as MaxAppendSizeExceededError).maxAppendSize).toBe(oneMiB);
    expect(emulator.log.readStream('big')).toHaveLength(1);
  });
});

describe('reads', () => {
  beforeEach(() => start());

  test('reading a missing stream raises StreamNotFoundError while iterating', async () => {
    await expect(readStream('nowhere')).rejects.toBeInstanceOf(StreamNotFoundError);
  });

  test('stream reads carry positions: commit = prepare = the record own log position, growing by its size', async () => {
    await client.appendToStream('acc-1', [event(1), event(2)]);
    const [first, second] = await readStream('acc-1');
    const p1 = first!.event!.position!;
    const p2 = second!.event!.position!;
    expect(p1.commit).toBe(p1.prepare);
    expect(p2.commit).toBe(p2.prepare);
    expect(p1.commit).toBeGreaterThan(0n); // a fresh node's epoch records come first
    expect(p2.commit - p1.commit).toBeGreaterThan(50n); // byte-addressed: one record's size, not 1
    expect(first!.commitPosition).toBe(p1.commit);
  });

  test('forwards/backwards with fromRevision and maxCount', async () => {
    await client.appendToStream(
      'acc-1',
      [1, 2, 3, 4, 5].map((n) => event(n)),
    );
    const revisions = (events: ResolvedEvent[]) => events.map((e) => e.event!.revision);
    expect(revisions(await readStream('acc-1', { fromRevision: 2n, maxCount: 2 }))).toEqual([2n, 3n]);
    expect(revisions(await readStream('acc-1', { direction: BACKWARDS, fromRevision: END, maxCount: 2 }))).toEqual([4n, 3n]);
    expect(revisions(await readStream('acc-1', { direction: BACKWARDS, fromRevision: 1n }))).toEqual([1n, 0n]);
  });

  test('$all forwards from a position is INCLUSIVE, backwards is EXCLUSIVE', async () => {
    await client.appendToStream('acc-1', [event(1), event(2), event(3)]);
    const [, second] = await readStream('acc-1');
    const at: Position = second!.event!.position!;

    const forwards = await readAll({ fromPosition: at, direction: FORWARDS });
    expect(forwards.map((e) => e.event!.id)).toEqual([id(2), id(3)]);

    const backwards = await readAll({ fromPosition: at, direction: BACKWARDS });
    expect(backwards.map((e) => e.event!.id)).toEqual([id(1)]); // and no $epoch-information: hidden from $all

    const reads = emulator.allReadsServed();
    expect(reads.map((r) => r.returned)).toEqual([2, 1]);
  });

  test('a $all read from a position inside a record fails (the TF reader finds no record there)', async () => {
    await client.appendToStream('acc-1', [event(1)]);
    const [first] = await readStream('acc-1');
    const inside = { commit: first!.event!.position!.commit + 1n, prepare: first!.event!.position!.commit + 1n };
    await expect(readAll({ fromPosition: inside })).rejects.toThrow(/InvalidPosition/);
  });

  test('system records are interleaved in $all: $metadata of $$ streams, links, parked messages of stream groups; $all groups checkpoints/parked are hidden', async () => {
    await client.appendToStream('acc-1', [event(1)]);
    await client.setStreamMetadata('acc-1', { maxCount: 10 });
    emulator.log.append('$persistentsubscription-acc-1::g-parked', { kind: 'any' }, [
      {
        eventId: id(50),
        type: '$>',
        contentType: 'application/octet-stream',
        data: new TextEncoder().encode('0@acc-1'),
        metadata: new Uint8Array(),
      },
    ]);
    emulator.log.append('$persistentsubscription-$all::g-parked', { kind: 'any' }, [
      {
        eventId: id(51),
        type: '$>',
        contentType: 'application/octet-stream',
        data: new TextEncoder().encode('0@acc-1'),
        metadata: new Uint8Array(),
      },
    ]);
    await client.appendToStream('acc-1', [event(2)]);

    const all = await readAll();
    expect(all.map((e) => [e.event!.streamId, e.event!.type])).toEqual([
      ['acc-1', 'Deposited'],
      ['$$acc-1', '$metadata'],
      ['$persistentsubscription-acc-1::g-parked', '$>'],
      ['acc-1', 'Deposited'],
    ]);
  });

  test('links: resolveLinkTos gives `event` (the target, own position) and `link`; the read position is the link one', async () => {
    await client.appendToStream('acc-1', [event(1)]);
    emulator.log.append('links', { kind: 'any' }, [
      {
        eventId: id(60),
        type: '$>',
        contentType: 'application/octet-stream',
        data: new TextEncoder().encode('0@acc-1'),
        metadata: new Uint8Array(),
      },
      {
        eventId: id(61),
        type: '$>',
        contentType: 'application/octet-stream',
        data: new TextEncoder().encode('7@acc-1'),
        metadata: new Uint8Array(),
      },
    ]);
    const target = emulator.log.recordAt('acc-1', 0n)!;
    const link = emulator.log.recordAt('links', 0n)!;

    const [resolved, dangling] = await readStream('links', { resolveLinkTos: true });
    expect(resolved!.event!.id).toBe(id(1));
    expect(resolved!.event!.streamId).toBe('acc-1');
    expect(resolved!.event!.position).toEqual(target.position);
    expect(resolved!.link!.id).toBe(id(60));
    expect(resolved!.link!.position).toEqual(link.position);
    expect(resolved!.commitPosition).toBe(link.position.commit);
    // a link to an event that cannot be read: the link alone
    expect(dangling!.event).toBeUndefined();
    expect(dangling!.link!.id).toBe(id(61));

    const [unresolved] = await readStream('links', { resolveLinkTos: false });
    expect(unresolved!.event!.type).toBe('$>');
    expect(unresolved!.link).toBeUndefined();
  });

  test('$tb (truncate before) hides events from stream reads but not from $all', async () => {
    await client.appendToStream(
      'acc-1',
      [1, 2, 3].map((n) => event(n)),
    );
    await client.setStreamMetadata('acc-1', { truncateBefore: 2 });

    expect((await readStream('acc-1')).map((e) => e.event!.revision)).toEqual([2n]);
    expect((await readAll()).filter((e) => e.event!.streamId === 'acc-1')).toHaveLength(3);
  });

  test('`created` is the server clock, in ticks', async () => {
    emulator.log.now = () => new Date('2030-01-02T03:04:05.678Z');
    await client.appendToStream('acc-1', [event(1)]);
    const [read] = await readStream('acc-1');
    expect(read!.event!.created).toEqual(new Date('2030-01-02T03:04:05.678Z'));
  });

  test("the server clock is not the test process's: faking Date here does not move it", async () => {
    const before = Date.now();
    await withClockOffset(-3_600_000, () => client.appendToStream('acc-1', [event(1)]));
    const [read] = await readStream('acc-1');
    expect(read!.event!.created.getTime()).toBeGreaterThanOrEqual(before - 1000);
  });

  test('soft delete hides the stream (not found) and a later append recreates it after the old revisions; a tombstone is for ever', async () => {
    await client.appendToStream('acc-1', [event(1), event(2)]);
    await client.deleteStream('acc-1');
    await expect(readStream('acc-1')).rejects.toBeInstanceOf(StreamNotFoundError);
    await client.appendToStream('acc-1', [event(3)]);
    expect((await readStream('acc-1')).map((e) => e.event!.revision)).toEqual([2n]);

    await client.tombstoneStream('acc-2').catch(() => undefined); // missing stream: WEV for soft, fine for hard
    await client.appendToStream('acc-3', [event(4)]);
    await client.tombstoneStream('acc-3');
    await expect(readStream('acc-3')).rejects.toBeInstanceOf(StreamDeletedError);
    await expect(client.appendToStream('acc-3', [event(5)])).rejects.toBeInstanceOf(StreamDeletedError);
    expect((await readAll()).some((e) => e.event!.type === '$streamDeleted' && e.event!.revision === DELETED_STREAM)).toBe(true);
  });
});

describe('subscriptions', () => {
  beforeEach(() => start());

  test('to a stream: catch-up, caughtUp, then live; from a revision is exclusive', async () => {
    await client.appendToStream('acc-1', [event(1), event(2)]);
    const subscription = client.subscribeToStream('acc-1', { fromRevision: 0n });
    const seen: bigint[] = [];
    let caughtUp = false;
    subscription.on('caughtUp', () => (caughtUp = true));
    subscription.on('data', (e: ResolvedEvent) => seen.push(e.event!.revision));
    await waitFor(() => caughtUp, 'caughtUp');
    await client.appendToStream('acc-1', [event(3)]);
    await waitFor(() => seen.length === 2, 'the live event');
    expect(seen).toEqual([1n, 2n]);
    await subscription.unsubscribe();
  });

  test('to $all from a position is exclusive and goes live', async () => {
    await client.appendToStream('acc-1', [event(1), event(2)]);
    const [first] = await readStream('acc-1');
    const subscription = client.subscribeToAll({ fromPosition: first!.event!.position! });
    const seen: string[] = [];
    subscription.on('data', (e: AllStreamResolvedEvent) => seen.push(e.event!.id));
    await waitFor(() => seen.length === 1, 'catch-up');
    await client.appendToStream('acc-2', [event(3)]);
    await waitFor(() => seen.length === 2, 'live');
    expect(seen).toEqual([id(2), id(3)]);
    await subscription.unsubscribe();
  });

  test('filtered $all: checkpoints every maxSearchWindow x multiplier considered records; from Start with nothing matching the first checkpoint is End', async () => {
    const checkpoints: Position[] = [];
    const seen: string[] = [];
    const subscription = client.subscribeToAll({
      fromPosition: START,
      filter: eventTypeFilter({
        prefixes: ['Wanted'],
        checkpointInterval: 1,
        maxSearchWindow: 4,
        checkpointReached: (_s, p) => void checkpoints.push(p),
      }),
    });
    subscription.on('data', (e: AllStreamResolvedEvent) => seen.push(e.event!.type));
    await waitFor(() => checkpoints.length === 1, 'the end-of-catch-up checkpoint');
    // nothing sent yet: the checkpoint is TFPos(-1,-1), sent as Position.End
    expect(checkpoints[0]).toEqual({ commit: 0xffffffffffffffffn, prepare: 0xffffffffffffffffn });

    // ... and every later checkpoint compares lower than End, so the server drops them (MoveNextAsync)
    await client.appendToStream(
      'acc-1',
      [1, 2, 3, 4, 5, 6, 7, 8].map((n) => event(n)),
    );
    await client.appendToStream('acc-1', [jsonEvent({ type: 'Wanted', data: {} })]);
    await waitFor(() => seen.length === 1, 'the matching live event');
    expect(checkpoints).toHaveLength(1);
    expect(emulator.activeSubscriptions()).toHaveLength(1);
    await subscription.unsubscribe();
  });

  test('filtered $all from a position: the catch-up ends with a checkpoint there, then live checkpoints at the record completing each interval', async () => {
    await client.appendToStream('acc-1', [event(1), event(2)]);
    const [first] = await readStream('acc-1');
    const checkpoints: Position[] = [];
    const subscription = client.subscribeToAll({
      fromPosition: first!.event!.position!,
      filter: eventTypeFilter({
        prefixes: ['Wanted'],
        checkpointInterval: 1,
        maxSearchWindow: 4,
        checkpointReached: (_s, p) => void checkpoints.push(p),
      }),
    });
    await waitFor(() => checkpoints.length === 1, 'the end-of-catch-up checkpoint');
    expect(checkpoints[0]).toEqual(first!.event!.position);
    await client.appendToStream(
      'acc-1',
      [3, 4, 5, 6].map((n) => event(n)),
    );
    await waitFor(() => checkpoints.length === 2, 'a live checkpoint');
    expect(checkpoints[1]).toEqual(emulator.log.recordAt('acc-1', 5n)!.position);
    await subscription.unsubscribe();
  });

  test('subscribing from the last position goes live at once: no catch-up, so no checkpoint until the interval', async () => {
    await client.appendToStream('acc-1', [event(1)]);
    const [first] = await readStream('acc-1');
    const checkpoints: Position[] = [];
    let caughtUp = false;
    const subscription = client.subscribeToAll({
      fromPosition: first!.event!.position!,
      filter: eventTypeFilter({ prefixes: ['Wanted'], maxSearchWindow: 2, checkpointReached: (_s, p) => void checkpoints.push(p) }),
    });
    subscription.on('caughtUp', () => (caughtUp = true));
    await waitFor(() => caughtUp, 'caughtUp');
    expect(checkpoints).toEqual([]);
    await client.appendToStream('acc-1', [event(2), event(3)]);
    await waitFor(() => checkpoints.length === 1, 'a live checkpoint');
    expect(checkpoints[0]).toEqual(emulator.log.recordAt('acc-1', 2n)!.position);
    await subscription.unsubscribe();
  });
});

describe('server features and controls', () => {
  test('GetSupportedMethods: version 24.10.0, BatchAppend with deadline_duration, reads with position/events', async () => {
    await start();
    const features = new ServerFeaturesClient(`127.0.0.1:${emulator.port}`, grpc.credentials.createInsecure());
    try {
      const supported = await new Promise<SupportedMethods>((resolve, reject) =>
        features.getSupportedMethods(new Empty(), (error, response) => (error ? reject(error) : resolve(response))),
      );
      expect(supported.getEventStoreServerVersion()).toBe('24.10.0');
      const methods = supported.getMethodsList().map((m) => [`${m.getServiceName()}/${m.getMethodName()}`, m.getFeaturesList()]);
      expect(methods).toEqual(
        expect.arrayContaining([
          ['event_store.client.streams.streams/batchappend', ['deadline_duration']],
          ['event_store.client.streams.streams/read', ['position', 'events']],
          ['event_store.client.streams.streams/append', []],
          ['event_store.client.server_features.serverfeatures/getsupportedmethods', []],
        ]),
      );
    } finally {
      features.close();
    }
  });

  test('failNextAppends(afterCommit): the client sees UNAVAILABLE although the events were written', async () => {
    await start();
    await client.appendToStream('acc-1', [event(1)]);
    emulator.failNextAppends(1, { afterCommit: true });
    await expect(client.appendToStream('acc-1', [event(2)], { expectedRevision: 0n })).rejects.toBeInstanceOf(UnavailableError);
    expect(emulator.log.readStream('acc-1')).toHaveLength(2);
    // the retry with the same expected revision: below the current one now, ids match -> idempotent
    const retry = await client.appendToStream('acc-1', [event(2)], { expectedRevision: 0n });
    expect(retry.nextExpectedRevision).toBe(1n);
    expect(emulator.log.readStream('acc-1')).toHaveLength(2);
  });
});
