/**
 * The persistent subscriptions rules of the EventStoreDB 24.10 emulator (test/support/esdb-emulator/persistent-*.ts),
 * driven through the REAL client (@eventstore/db-client 6.2.1 over gRPC), not through our adapter. Each test names the
 * server rule it checks; the emulator's files cite the server source (tag v24.10.0 of EventStore/EventStore).
 * No timing assertions: waits are for conditions, time-outs are forced with the emulator's controls, and the tests
 * that look at what happens between clock ticks turn the automatic tick off.
 */
import * as grpc from '@grpc/grpc-js';
import {
  AccessDeniedError,
  DISPATCH_TO_SINGLE,
  END,
  EventStoreDBClient,
  PARK,
  PersistentSubscriptionDoesNotExistError,
  PersistentSubscriptionDroppedError,
  PersistentSubscriptionExistsError,
  PersistentSubscriptionFailedError,
  PersistentSubscriptionMaximumSubscribersReachedError,
  PINNED,
  RETRY,
  ROUND_ROBIN,
  START,
  StreamNotFoundError,
  UnavailableError,
  jsonEvent,
  persistentSubscriptionToAllSettingsFromDefaults,
  streamNameFilter,
} from '@eventstore/db-client';
import type {
  Filter,
  PersistentSubscriptionToAll,
  PersistentSubscriptionToAllResolvedEvent,
  PersistentSubscriptionToAllSettings,
  ResolvedEvent,
} from '@eventstore/db-client';
import { PersistentSubscriptionsClient } from '@eventstore/db-client/generated/persistent_grpc_pb';
import * as pb from '@eventstore/db-client/generated/persistent_pb';
import { Empty } from '@eventstore/db-client/generated/shared_pb';
import { startEsdbEmulator } from '../support/esdb-emulator/server';
import type { EsdbEmulator } from '../support/esdb-emulator/server';
import type { PersistentSubscriptionsControl } from '../support/esdb-emulator/persistent-subscriptions';
import { hashString, smhasherVerification } from '../support/esdb-emulator/persistent-hash';
import { waitUntil } from '../support/wait-until';

jest.setTimeout(20_000);

const PREFIX = 'acct-';

/** A wait for a condition (never a timing assertion): polled often, since everything here is in-process. */
function until<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false): Promise<T> {
  return waitUntil(what, probe, 15_000, 5);
}

let emulator: EsdbEmulator;
let control: PersistentSubscriptionsControl;
let client: EventStoreDBClient;
let consumers: Consumer[] = [];

beforeEach(async () => {
  emulator = await startEsdbEmulator();
  control = emulator.persistentSubscriptions as PersistentSubscriptionsControl;
  client = EventStoreDBClient.connectionString(emulator.url);
  consumers = [];
});

afterEach(async () => {
  for (const consumer of consumers) await consumer.sub.unsubscribe().catch(() => undefined);
  expect(control.errors()).toEqual([]);
  control.close();
  await client.dispose();
  await emulator.stop();
});

interface Consumer {
  sub: PersistentSubscriptionToAll;
  received: PersistentSubscriptionToAllResolvedEvent[];
  errors: Error[];
  closed: () => boolean;
}

/** Joins a group; collects what it receives, its errors, and whether its stream closed. */
function consume(group: string, bufferSize = 10, from: EventStoreDBClient = client): Consumer {
  const sub = from.subscribeToPersistentSubscriptionToAll(group, { bufferSize });
  const consumer: Consumer = { sub, received: [], errors: [], closed: () => closed };
  let closed = false;
  sub.on('data', (event: PersistentSubscriptionToAllResolvedEvent) => consumer.received.push(event));
  sub.on('error', (error: Error) => consumer.errors.push(error));
  sub.on('close', () => {
    closed = true;
  });
  consumers.push(consumer);
  return consumer;
}

async function joined(consumer: Consumer, group: string): Promise<void> {
  await until(
    `a consumer of ${group} connected`,
    () => control.groupInfo(group)?.consumers.some((c) => c.inFlight >= 0) && consumer.sub.id !== undefined,
  );
}

function settings(changes: Partial<PersistentSubscriptionToAllSettings> = {}): PersistentSubscriptionToAllSettings {
  return persistentSubscriptionToAllSettingsFromDefaults({ startFrom: START, ...changes });
}

async function createGroup(
  group: string,
  changes: Partial<PersistentSubscriptionToAllSettings> = {},
  filter: Filter | undefined = streamNameFilter({ prefixes: [PREFIX] }),
) {
  await client.createPersistentSubscriptionToAll(group, settings(changes), filter ? { filter } : {});
}

async function append(stream: string, ...types: string[]): Promise<void> {
  await client.appendToStream(
    stream,
    types.map((type) => jsonEvent({ type, data: { type } })),
  );
}

function revisions(events: readonly PersistentSubscriptionToAllResolvedEvent[]): string[] {
  return events.map((e) => `${e.event?.streamId}@${e.event?.revision}/${e.retryCount}`);
}

async function readAll(stream: string, resolveLinkTos = false): Promise<ResolvedEvent[]> {
  const events: ResolvedEvent[] = [];
  try {
    for await (const event of client.readStream(stream, { resolveLinkTos })) events.push(event);
  } catch (error) {
    if (!(error instanceof StreamNotFoundError)) throw error;
  }
  return events;
}

const parkedStream = (group: string) => `$persistentsubscription-$all::${group}-parked`;
const checkpointStream = (group: string) => `$persistentsubscription-$all::${group}-checkpoint`;
const text = (data: unknown) => Buffer.from(data as Uint8Array).toString('utf8');

describe('persistent subscriptions to $all on the emulator (real client)', () => {
  test('the Pinned strategies hash like XXHashUnsafe (SMHasher verification value of the server test)', () => {
    expect(smhasherVerification()).toBe(0x56d249b1);
  });

  test('Create stores every setting (GetInfo reads them back), a second Create is AlreadyExists, an unknown group is NotFound', async () => {
    await createGroup('settings', {
      resolveLinkTos: true,
      extraStatistics: true,
      messageTimeout: 5000,
      maxRetryCount: 3,
      checkPointAfter: 1000,
      checkPointLowerBound: 2,
      checkPointUpperBound: 7,
      maxSubscriberCount: 4,
      liveBufferSize: 50,
      readBatchSize: 5,
      historyBufferSize: 40,
      consumerStrategyName: PINNED,
    });
    await expect(createGroup('settings')).rejects.toBeInstanceOf(PersistentSubscriptionExistsError);

    const info = await client.getPersistentSubscriptionToAllInfo('settings');
    expect(info.eventSource).toBe('$all');
    expect(info.groupName).toBe('settings');
    expect(info.status).toBe('Live');
    expect(info.settings).toEqual({
      startFrom: START,
      resolveLinkTos: true,
      extraStatistics: true,
      messageTimeout: 5000,
      maxRetryCount: 3,
      checkPointAfter: 1000,
      checkPointLowerBound: 2,
      checkPointUpperBound: 7,
      maxSubscriberCount: 4,
      liveBufferSize: 50,
      readBatchSize: 5,
      historyBufferSize: 40,
      consumerStrategyName: 'Pinned',
    });

    // The client's defaults: startFrom END (C:-1/P:-1), RoundRobin, unbounded subscribers.
    await client.createPersistentSubscriptionToAll('defaults', persistentSubscriptionToAllSettingsFromDefaults());
    const defaults = await client.getPersistentSubscriptionToAllInfo('defaults');
    expect(defaults.settings.startFrom).toBe(END);
    expect(defaults.settings.consumerStrategyName).toBe(ROUND_ROBIN);
    expect(defaults.settings.maxSubscriberCount).toBe('unbounded');

    await expect(client.getPersistentSubscriptionToAllInfo('nope')).rejects.toBeInstanceOf(PersistentSubscriptionDoesNotExistError);
    const listed = await client.listPersistentSubscriptionsToAll();
    expect(listed.map((g) => g.groupName).sort()).toEqual(['defaults', 'settings']);
  });

  test('Create refuses ReadBatchSize >= BufferSize and a start position past the log (PersistentSubscriptionFailed, with the reason)', async () => {
    const tooBig = createGroup('batch', { readBatchSize: 50, historyBufferSize: 50 });
    await expect(tooBig).rejects.toBeInstanceOf(PersistentSubscriptionFailedError);
    await expect(tooBig).rejects.toMatchObject({
      reason: expect.stringContaining('ReadBatchSize may not be greater than or equal to BufferSize'),
    });

    const past = createGroup('past', { startFrom: { commit: 10_000_000n, prepare: 10_000_000n } });
    await expect(past).rejects.toMatchObject({
      reason:
        'Invalid Start From position: commit position must be less than or equal to the last commit position in the transaction file.',
    });
  });

  test('Read: a confirmation, then events with retry count 0 and their commit position, at most bufferSize in flight until acked', async () => {
    await append(`${PREFIX}1`, 'E0', 'E1', 'E2', 'E3', 'E4');
    await createGroup('reader');
    const consumer = consume('reader', 2);
    await until('two events', () => consumer.received.length >= 2);
    expect(consumer.sub.id).toBe('$all::reader');
    expect(revisions(consumer.received)).toEqual([`${PREFIX}1@0/0`, `${PREFIX}1@1/0`]);
    const first = consumer.received[0] as PersistentSubscriptionToAllResolvedEvent;
    expect(first.commitPosition).toBe(first.event?.position?.commit);
    expect(first.link).toBeUndefined();
    // The consumer's two slots are taken: nothing more is sent until an ack frees one.
    expect(control.groupInfo('reader')?.consumers).toEqual([expect.objectContaining({ maxInFlight: 2, inFlight: 2, availableSlots: 0 })]);
    expect(control.deliveries('reader')).toHaveLength(2);

    await consumer.sub.ack(first);
    await until('a third event', () => consumer.received.length >= 3);
    await consumer.sub.ack(...consumer.received.slice(1));
    await until('all five', () => consumer.received.length >= 5);
    expect(revisions(consumer.received).map((r) => r.split('@')[1])).toEqual(['0/0', '1/0', '2/0', '3/0', '4/0']);
  });

  test('a group whose buffer fills falls behind and catches up from the log: every event once, in order', async () => {
    await createGroup('behind', { historyBufferSize: 5, readBatchSize: 2, liveBufferSize: 3 });
    const consumer = consume('behind', 1);
    await joined(consumer, 'behind');
    for (let i = 0; i < 4; i++) await append(`${PREFIX}1`, ...Array.from({ length: 5 }, (_, j) => `E${i * 5 + j}`));
    expect(control.groupInfo('behind')?.status).toBe('Behind');
    for (let acked = 0; acked < 20; acked++) {
      await until(`event ${acked}`, () => consumer.received.length > acked);
      await consumer.sub.ack(consumer.received[acked] as PersistentSubscriptionToAllResolvedEvent);
    }
    expect(consumer.received.map((e) => e.event?.type)).toEqual(Array.from({ length: 20 }, (_, i) => `E${i}`));
    await until('live again', () => control.groupInfo('behind')?.status === 'Live');
  });

  test('Nack Retry: the message comes back ahead of newer events with retry_count + 1 (later events were already delivered)', async () => {
    await append(`${PREFIX}1`, 'E0', 'E1', 'E2');
    await createGroup('retry');
    const consumer = consume('retry', 2);
    await until('two events', () => consumer.received.length >= 2);
    await consumer.sub.nack(RETRY, 'not now', consumer.received[0] as PersistentSubscriptionToAllResolvedEvent);
    await until('the retried event', () => consumer.received.length >= 3);
    await consumer.sub.ack(...consumer.received.slice(1));
    await until('the last event', () => consumer.received.length >= 4);
    expect(revisions(consumer.received)).toEqual([`${PREFIX}1@0/0`, `${PREFIX}1@1/0`, `${PREFIX}1@0/1`, `${PREFIX}1@2/0`]);
  });

  test('past maxRetryCount the server parks the message itself: a "$>" (not JSON) to "<revision>@<stream>" in the parked stream, reason "Reached retry count of N"', async () => {
    await append(`${PREFIX}1`, 'E0', 'E1');
    await createGroup('retries', { maxRetryCount: 2 });
    const consumer = consume('retries', 10);
    await until('two events', () => consumer.received.length >= 2);
    await consumer.sub.ack(consumer.received[0] as PersistentSubscriptionToAllResolvedEvent);
    for (let attempt = 1; attempt <= 2; attempt++) {
      await consumer.sub.nack(
        RETRY,
        'failing',
        consumer.received[consumer.received.length - 1] as PersistentSubscriptionToAllResolvedEvent,
      );
      await until(`retry ${attempt}`, () => consumer.received.length >= 2 + attempt);
    }
    await consumer.sub.nack(RETRY, 'failing', consumer.received[consumer.received.length - 1] as PersistentSubscriptionToAllResolvedEvent);
    const parked = await until('the parked message', async () => {
      const events = await readAll(parkedStream('retries'));
      return events.length === 1 ? events : undefined;
    });
    expect(revisions(consumer.received)).toEqual([`${PREFIX}1@0/0`, `${PREFIX}1@1/0`, `${PREFIX}1@1/1`, `${PREFIX}1@1/2`]);
    const link = parked[0]?.event;
    expect(link?.type).toBe('$>');
    expect(link?.isJson).toBe(false);
    expect(text(link?.data)).toBe(`1@${PREFIX}1`);
    // ParkedMessageMetadata, camelCase (Newtonsoft with the server's settings).
    expect(link?.metadata).toEqual({
      added: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$/),
      reason: 'Reached retry count of 2',
      subscriptionEventNumber: 1,
    });
    const info = await client.getPersistentSubscriptionToAllInfo('retries');
    expect(info.stats.parkedMessageCount).toBe(1n);
  });

  test('Nack Park: reason "Client explicitly NAK\'ed message.\\n" + the reason; an event number of 0 is left out of the metadata', async () => {
    await append(`${PREFIX}1`, 'E0');
    await createGroup('park');
    const consumer = consume('park');
    await until('the event', () => consumer.received.length >= 1);
    await consumer.sub.nack(PARK, 'bad data', consumer.received[0] as PersistentSubscriptionToAllResolvedEvent);
    const parked = await until('the parked message', async () => (await readAll(parkedStream('park')))[0]);
    expect(parked.event?.metadata).toEqual({ added: expect.any(String), reason: "Client explicitly NAK'ed message.\nbad data" });
  });

  test("ReplayParked: each parked event comes back with the parked LINK and the event, at the LINK's position, retry count 0; the parked stream is truncated ($tb) at once", async () => {
    await append(`${PREFIX}1`, 'E0', 'E1', 'E2');
    await createGroup('replay');
    const consumer = consume('replay');
    await until('three events', () => consumer.received.length >= 3);
    const [e0, e1, e2] = consumer.received as [
      PersistentSubscriptionToAllResolvedEvent,
      PersistentSubscriptionToAllResolvedEvent,
      PersistentSubscriptionToAllResolvedEvent,
    ];
    await consumer.sub.nack(PARK, 'one', e0);
    await consumer.sub.nack(PARK, 'two', e1);
    await consumer.sub.ack(e2);
    const links = await until('two parked', async () => {
      const events = await readAll(parkedStream('replay'));
      return events.length === 2 ? events : undefined;
    });

    await client.replayParkedMessagesToAll('replay');
    await until('the replayed events', () => consumer.received.length >= 5);
    const replayed = consumer.received.slice(3);
    expect(replayed.map((r) => [r.event?.streamId, r.event?.revision, r.link?.streamId, r.link?.revision, r.retryCount])).toEqual([
      [`${PREFIX}1`, 0n, parkedStream('replay'), 0n, 0],
      [`${PREFIX}1`, 1n, parkedStream('replay'), 1n, 0],
    ]);
    replayed.forEach((r, i) => {
      const linkPosition = links[i]?.event?.position;
      expect(r.commitPosition).toBe(linkPosition?.commit);
      // The event itself is sent at the link's position too, not where it was written.
      expect(r.event?.position).toEqual(linkPosition);
      expect(r.event?.position).not.toEqual(e0.event?.position);
    });
    const metadata = await client.getStreamMetadata(parkedStream('replay'));
    expect(metadata.metadata?.truncateBefore).toBe(2);
    expect(await readAll(parkedStream('replay'))).toEqual([]);
    expect((await client.getPersistentSubscriptionToAllInfo('replay')).stats.parkedMessageCount).toBe(0n);
  });

  test('ReplayParked with stopAt replays the parked events before that number only, and truncates there', async () => {
    await append(`${PREFIX}1`, 'E0', 'E1', 'E2');
    await createGroup('stop-at');
    const consumer = consume('stop-at');
    await until('three events', () => consumer.received.length >= 3);
    for (const event of consumer.received.slice(0, 3)) await consumer.sub.nack(PARK, 'later', event);
    await until('three parked', async () => (await readAll(parkedStream('stop-at'))).length === 3);

    await client.replayParkedMessagesToAll('stop-at', { stopAt: 2 });
    await until('two replayed', () => consumer.received.length >= 5);
    expect(consumer.received.slice(3).map((r) => r.event?.revision)).toEqual([0n, 1n]);
    expect((await client.getStreamMetadata(parkedStream('stop-at'))).metadata?.truncateBefore).toBe(2);

    await client.replayParkedMessagesToAll('stop-at');
    await until('the last one', () => consumer.received.length >= 6);
    expect(consumer.received[5]?.event?.revision).toBe(2n);
    expect((await client.getStreamMetadata(parkedStream('stop-at'))).metadata?.truncateBefore).toBe(3);
  });

  test('message timeout: an unacked message is retried with retry_count + 1, and parked past maxRetryCount', async () => {
    control.autoTick(false);
    await append(`${PREFIX}1`, 'E0');
    await createGroup('timeout', { maxRetryCount: 1 });
    const consumer = consume('timeout');
    await until('the event', () => consumer.received.length >= 1);
    control.expireInFlight('timeout');
    await until('the event again', () => consumer.received.length >= 2);
    expect(consumer.received[1]?.retryCount).toBe(1);
    control.expireInFlight('timeout');
    const parked = await until('parked', async () => (await readAll(parkedStream('timeout')))[0]);
    expect(parked.event?.metadata).toMatchObject({ reason: 'Reached retry count of 1' });
    expect(consumer.received).toHaveLength(2);
  });

  test('a consumer that leaves: its in-flight messages go to another consumer with retry_count + 1 (never parked on that path)', async () => {
    await append(`${PREFIX}1`, 'E0', 'E1');
    await createGroup('leave', { maxRetryCount: 0 });
    const a = consume('leave');
    await until('A has both', () => a.received.length >= 2);
    const b = consume('leave');
    await until('B joined', () => control.groupInfo('leave')?.consumers.length === 2);
    await a.sub.unsubscribe();
    await until('B has both', () => b.received.length >= 2);
    expect(revisions(b.received)).toEqual([`${PREFIX}1@0/1`, `${PREFIX}1@1/1`]);
    expect(await readAll(parkedStream('leave'))).toEqual([]);
  });

  test('dropConsumers breaks the connection (UnavailableError); the messages come back to the next consumer with retry_count + 1', async () => {
    await append(`${PREFIX}1`, 'E0');
    await createGroup('drop');
    const a = consume('drop');
    await until('the event', () => a.received.length >= 1);
    expect(control.dropConsumers('drop')).toBe(1);
    await until('A sees the error', () => a.errors.length > 0);
    expect(a.errors[0]).toBeInstanceOf(UnavailableError);
    const b = consume('drop');
    await until('B has it', () => b.received.length >= 1);
    expect(b.received[0]?.retryCount).toBe(1);
  });

  test('RoundRobin: two consumers get the events in turn', async () => {
    await createGroup('rr', { consumerStrategyName: ROUND_ROBIN });
    const a = consume('rr');
    await joined(a, 'rr');
    const b = consume('rr');
    await until('both joined', () => control.groupInfo('rr')?.consumers.length === 2);
    await append(`${PREFIX}1`, 'E0', 'E1', 'E2', 'E3');
    await until('four delivered', () => control.deliveries('rr').length >= 4);
    const [first, second] = control.groupInfo('rr')?.consumers.map((c) => c.consumerId) ?? [];
    expect(control.deliveries('rr').map((d) => d.consumerId)).toEqual([first, second, first, second]);
    await until('both received', () => a.received.length === 2 && b.received.length === 2);
  });

  test('DispatchToSingle: the first consumer gets everything while it has room, then the next', async () => {
    await createGroup('single', { consumerStrategyName: DISPATCH_TO_SINGLE });
    const a = consume('single', 2);
    await joined(a, 'single');
    const b = consume('single', 10);
    await until('both joined', () => control.groupInfo('single')?.consumers.length === 2);
    await append(`${PREFIX}1`, 'E0', 'E1', 'E2', 'E3');
    await until('four received', () => a.received.length + b.received.length >= 4);
    expect(revisions(a.received)).toEqual([`${PREFIX}1@0/0`, `${PREFIX}1@1/0`]);
    expect(revisions(b.received)).toEqual([`${PREFIX}1@2/0`, `${PREFIX}1@3/0`]);
  });

  test('Pinned: all events of a stream go to one consumer; new streams go to the consumer with the fewest', async () => {
    const streams = ['acct-a', 'acct-b', 'acct-c', 'acct-d'];
    expect(new Set(streams.map((s) => hashString(s) % 1024)).size).toBe(4); // four different buckets
    await createGroup('pinned', { consumerStrategyName: PINNED });
    const a = consume('pinned');
    await joined(a, 'pinned');
    const b = consume('pinned');
    await until('both joined', () => control.groupInfo('pinned')?.consumers.length === 2);
    for (const stream of streams) await append(stream, 'E0');
    for (const stream of streams) await append(stream, 'E1');
    await until('eight received', () => a.received.length + b.received.length >= 8);
    const owner = new Map<string, string>();
    for (const d of control.deliveries('pinned')) {
      const stream = d.event?.stream as string;
      expect(owner.get(stream) ?? d.consumerId).toBe(d.consumerId);
      owner.set(stream, d.consumerId);
    }
    const [first, second] = control.groupInfo('pinned')?.consumers.map((c) => c.consumerId) ?? [];
    expect(streams.map((s) => owner.get(s))).toEqual([first, second, first, second]);
  });

  test('PinnedByCorrelation: 6.2.1 cannot ask for it (sent as DispatchToSingle); asked over gRPC, events with one $correlationId go to one consumer', async () => {
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    await createGroup('by-correlation-client', { consumerStrategyName: 'PinnedByCorrelation' });
    warn.mockRestore();
    expect((await client.getPersistentSubscriptionToAllInfo('by-correlation-client')).settings.consumerStrategyName).toBe(
      'DispatchToSingle',
    );

    await createOverGrpc('by-correlation', 'PinnedByCorrelation');
    expect((await client.getPersistentSubscriptionToAllInfo('by-correlation')).settings.consumerStrategyName).toBe('PinnedByCorrelation');
    const a = consume('by-correlation');
    await joined(a, 'by-correlation');
    const b = consume('by-correlation');
    await until('both joined', () => control.groupInfo('by-correlation')?.consumers.length === 2);
    // Same stream, two correlations / two streams, one correlation.
    const withCorrelation = (type: string, correlation: string) => jsonEvent({ type, data: {}, metadata: { $correlationId: correlation } });
    await client.appendToStream(`${PREFIX}x`, [withCorrelation('E0', 'c-1'), withCorrelation('E1', 'c-2')]);
    await client.appendToStream(`${PREFIX}y`, [withCorrelation('E0', 'c-1'), withCorrelation('E1', 'c-2')]);
    await until('four received', () => a.received.length + b.received.length >= 4);
    const byCorrelation = new Map<string, Set<string>>();
    for (const consumer of [a, b]) {
      for (const event of consumer.received) {
        const correlation = (event.event?.metadata as { $correlationId: string }).$correlationId;
        byCorrelation.set(correlation, (byCorrelation.get(correlation) ?? new Set()).add(consumer === a ? 'a' : 'b'));
      }
    }
    expect([...byCorrelation.values()].map((owners) => owners.size)).toEqual([1, 1]);
    expect([...(byCorrelation.get('c-1') ?? [])]).not.toEqual([...(byCorrelation.get('c-2') ?? [])]);
  });

  test('checkpoints: written at the message before the lowest unacknowledged one, every maxCheckpointCount acks; never by time with checkpointAfter 0', async () => {
    control.autoTick(false);
    await createGroup('checkpoint', { checkPointAfter: 0, checkPointLowerBound: 1, checkPointUpperBound: 1 });
    const consumer = consume('checkpoint');
    await joined(consumer, 'checkpoint');
    await append(`${PREFIX}1`, 'E0', 'E1', 'E2', 'E3');
    await until('four events', () => consumer.received.length >= 4);
    const [e0, e1, e2, e3] = consumer.received as PersistentSubscriptionToAllResolvedEvent[];
    const checkpointOf = (e: PersistentSubscriptionToAllResolvedEvent | undefined) =>
      `C:${e?.commitPosition}/P:${e?.event?.position?.prepare}`;
    const lastCheckpoint = async () => {
      const events = await readAll(checkpointStream('checkpoint'));
      const last = events[events.length - 1]?.event;
      return last ? { type: last.type, data: last.data } : undefined;
    };

    await consumer.sub.ack(
      e0 as PersistentSubscriptionToAllResolvedEvent,
      e2 as PersistentSubscriptionToAllResolvedEvent,
      e3 as PersistentSubscriptionToAllResolvedEvent,
    );
    await until('checkpoint at E0 (E1 is not acked)', async () => (await lastCheckpoint())?.data === checkpointOf(e0));
    expect(await lastCheckpoint()).toEqual({ type: '$SubscriptionCheckpoint', data: checkpointOf(e0) });
    control.tick();
    expect((await lastCheckpoint())?.data).toBe(checkpointOf(e0));

    await consumer.sub.ack(e1 as PersistentSubscriptionToAllResolvedEvent);
    await until('checkpoint at E3', async () => (await lastCheckpoint())?.data === checkpointOf(e3));
    expect((await client.getPersistentSubscriptionToAllInfo('checkpoint')).stats.lastCheckpointedEventPosition).toEqual(
      e3?.event?.position,
    );
  });

  test('checkpointAfter: below maxCheckpointCount only a clock tick writes the checkpoint, and only once minCheckpointCount is reached', async () => {
    control.autoTick(false);
    await createGroup('by-time', { checkPointAfter: 1000, checkPointLowerBound: 1, checkPointUpperBound: 100 });
    await createGroup('min-not-reached', { checkPointAfter: 1000, checkPointLowerBound: 1000, checkPointUpperBound: 2000 });
    const a = consume('by-time');
    const b = consume('min-not-reached');
    await joined(a, 'by-time');
    await joined(b, 'min-not-reached');
    await append(`${PREFIX}1`, 'E0', 'E1', 'E2');
    await until('three events each', () => a.received.length >= 3 && b.received.length >= 3);
    await a.sub.ack(...a.received);
    await b.sub.ack(...b.received);
    await until(
      'all acked',
      () => control.groupInfo('by-time')?.inFlight.length === 0 && control.groupInfo('min-not-reached')?.inFlight.length === 0,
    );
    expect(await readAll(checkpointStream('by-time'))).toEqual([]);

    control.tick();
    const last = a.received[2];
    const written = await readAll(checkpointStream('by-time'));
    expect(written.map((e) => e.event?.data)).toEqual([`C:${last?.commitPosition}/P:${last?.event?.position?.prepare}`]);
    expect(await readAll(checkpointStream('min-not-reached'))).toEqual([]);
  });

  test('restart: in-memory state is lost; the group resumes after its last checkpoint and redelivers what followed it, acked or not', async () => {
    control.autoTick(false);
    await createGroup('restart', { checkPointAfter: 0, checkPointLowerBound: 1, checkPointUpperBound: 1 });
    const consumer = consume('restart');
    await joined(consumer, 'restart');
    await append(`${PREFIX}1`, 'E0', 'E1', 'E2');
    await until('three events', () => consumer.received.length >= 3);
    await consumer.sub.ack(
      consumer.received[0] as PersistentSubscriptionToAllResolvedEvent,
      consumer.received[2] as PersistentSubscriptionToAllResolvedEvent,
    );
    await until('checkpoint at E0', async () => (await readAll(checkpointStream('restart'))).length > 0);

    control.restart();
    await until('the consumer is cut off', () => consumer.errors.length > 0);
    expect(consumer.errors[0]).toBeInstanceOf(UnavailableError);
    const again = consume('restart');
    await until('E1 and E2 again', () => again.received.length >= 2);
    expect(revisions(again.received)).toEqual([`${PREFIX}1@1/0`, `${PREFIX}1@2/0`]);
  });

  test('a filtered group checkpoints on a filtered-out event too; reloaded from such a checkpoint it skips the first matching event after it (OnCheckpointLoaded skips the first event read)', async () => {
    control.autoTick(false);
    await createGroup('skip-first', { checkPointAfter: 0, checkPointLowerBound: 1, checkPointUpperBound: 1 });
    const consumer = consume('skip-first');
    await joined(consumer, 'skip-first');
    await append(`${PREFIX}1`, 'E0');
    await until('E0', () => consumer.received.length >= 1);
    await consumer.sub.ack(consumer.received[0] as PersistentSubscriptionToAllResolvedEvent);
    await append('other-1', 'X'); // filtered out: counts as processed (HandleSkippedEvents), checkpoint at X
    const x = (await readAll('other-1'))[0]?.event?.position;
    await until('checkpoint at X', async () => {
      const events = await readAll(checkpointStream('skip-first'));
      return events[events.length - 1]?.event?.data === `C:${x?.commit}/P:${x?.prepare}`;
    });
    await consumer.sub.unsubscribe();
    await append(`${PREFIX}1`, 'E1', 'E2');
    control.restart();
    const again = consume('skip-first');
    await until('E2', () => again.received.some((e) => e.event?.type === 'E2'));
    expect(again.received.map((e) => e.event?.type)).toEqual(['E2']); // E1 is never delivered
  });

  test('Update: new settings for the group; its consumers are dropped (PersistentSubscriptionDropped) and unacked messages come back from the checkpoint', async () => {
    await append(`${PREFIX}1`, 'E0', 'E1');
    await createGroup('update');
    const consumer = consume('update');
    await until('two events', () => consumer.received.length >= 2);
    await client.updatePersistentSubscriptionToAll('update', settings({ maxRetryCount: 7, messageTimeout: 1234 }));
    await until('dropped', () => consumer.errors.length > 0);
    expect(consumer.errors[0]).toBeInstanceOf(PersistentSubscriptionDroppedError);
    const info = await client.getPersistentSubscriptionToAllInfo('update');
    expect(info.settings).toMatchObject({ maxRetryCount: 7, messageTimeout: 1234 });
    const again = consume('update');
    await until('both again', () => again.received.length >= 2);
    expect(revisions(again.received)).toEqual([`${PREFIX}1@0/0`, `${PREFIX}1@1/0`]);
    await expect(client.updatePersistentSubscriptionToAll('nope', settings())).rejects.toBeInstanceOf(
      PersistentSubscriptionDoesNotExistError,
    );
  });

  test('Delete: consumers dropped, the group gone (NotFound), its checkpoint and parked streams deleted', async () => {
    await append(`${PREFIX}1`, 'E0');
    await createGroup('delete', { checkPointUpperBound: 1, checkPointLowerBound: 1 });
    const consumer = consume('delete');
    await until('the event', () => consumer.received.length >= 1);
    await consumer.sub.nack(PARK, 'x', consumer.received[0] as PersistentSubscriptionToAllResolvedEvent);
    await until('parked', async () => (await readAll(parkedStream('delete'))).length === 1);
    await client.deletePersistentSubscriptionToAll('delete');
    await until('dropped', () => consumer.errors.length > 0);
    expect(consumer.errors[0]).toBeInstanceOf(PersistentSubscriptionDroppedError);
    await expect(client.getPersistentSubscriptionToAllInfo('delete')).rejects.toBeInstanceOf(PersistentSubscriptionDoesNotExistError);
    await expect(client.deletePersistentSubscriptionToAll('delete')).rejects.toBeInstanceOf(PersistentSubscriptionDoesNotExistError);
    expect(await readAll(parkedStream('delete'))).toEqual([]);
    const late = consume('delete');
    await until('refused', () => late.errors.length > 0);
    expect(late.errors[0]).toBeInstanceOf(PersistentSubscriptionDoesNotExistError);
  });

  test('maxSubscriberCount: a consumer over the limit is refused (MaximumSubscribersReached)', async () => {
    await createGroup('max', { maxSubscriberCount: 1 });
    const a = consume('max');
    await joined(a, 'max');
    const b = consume('max');
    await until('B refused', () => b.errors.length > 0);
    expect(b.errors[0]).toBeInstanceOf(PersistentSubscriptionMaximumSubscribersReachedError);
    expect(a.errors).toEqual([]);
  });

  test('AccessDenied is mapped by the client (denyAccess)', async () => {
    control.denyAccess(['create', 'read']);
    await expect(createGroup('denied')).rejects.toBeInstanceOf(AccessDeniedError);
    control.denyAccess([]);
    await createGroup('denied');
    control.denyAccess(['read']);
    const consumer = consume('denied');
    await until('refused', () => consumer.errors.length > 0);
    expect(consumer.errors[0]).toBeInstanceOf(AccessDeniedError);
  });

  test('without a filter a group gets system events too ($$ metadata, the configuration), but never the checkpoint or parked streams of $all groups', async () => {
    await client.createPersistentSubscriptionToAll('everything', settings({ checkPointLowerBound: 1, checkPointUpperBound: 1 }));
    const consumer = consume('everything');
    await joined(consumer, 'everything');
    await append(`${PREFIX}1`, 'E0');
    await client.setStreamMetadata(`${PREFIX}1`, { maxCount: 10 });
    await until('the metadata event', () => consumer.received.some((e) => e.event?.streamId === `$$${PREFIX}1`));
    for (const event of consumer.received) await consumer.sub.ack(event);
    await consumer.sub.nack(PARK, 'p', consumer.received.find((e) => e.event?.type === 'E0') as PersistentSubscriptionToAllResolvedEvent);
    await until('a checkpoint', async () => (await readAll(checkpointStream('everything'))).length > 0);
    await append(`${PREFIX}1`, 'E1');
    await until('E1', () => consumer.received.some((e) => e.event?.type === 'E1'));
    const streams = new Set(consumer.received.map((e) => e.event?.streamId));
    expect(streams).toContain('$persistentSubscriptionConfig');
    expect(streams).toContain(`$$${PREFIX}1`);
    expect([...streams].filter((s) => s?.startsWith('$persistentsubscription-$all::'))).toEqual([]);
  });

  test("resolveLinkTos: a link in $all comes with the link and the event, at the link's position", async () => {
    await append(`${PREFIX}1`, 'E0');
    await createGroup('links', { resolveLinkTos: true }, undefined);
    const consumer = consume('links');
    await joined(consumer, 'links');
    await client.appendToStream('$links-demo', [
      {
        type: '$>',
        data: new TextEncoder().encode(`0@${PREFIX}1`),
        contentType: 'application/octet-stream',
        id: crypto.randomUUID(),
      } as never,
    ]);
    const linked = await until('the link', () => consumer.received.find((e) => e.link?.streamId === '$links-demo'));
    expect(linked.event?.streamId).toBe(`${PREFIX}1`);
    expect(linked.commitPosition).toBe(linked.link?.position?.commit);
  });
});

/** CreateReq over raw gRPC with the `consumer_strategy` string (the 6.2.1 client only sends the enum). */
async function createOverGrpc(group: string, consumerStrategy: string): Promise<void> {
  const raw = new PersistentSubscriptionsClient(`127.0.0.1:${emulator.port}`, grpc.credentials.createInsecure());
  const settings = new pb.CreateReq.Settings();
  settings.setMaxRetryCount(10);
  settings.setMinCheckpointCount(10);
  settings.setMaxCheckpointCount(1000);
  settings.setLiveBufferSize(500);
  settings.setReadBatchSize(20);
  settings.setHistoryBufferSize(500);
  settings.setMessageTimeoutMs(30_000);
  settings.setCheckpointAfterMs(2000);
  settings.setConsumerStrategy(consumerStrategy);
  const all = new pb.CreateReq.AllOptions();
  all.setStart(new Empty());
  const filter = new pb.CreateReq.AllOptions.FilterOptions();
  const expression = new pb.CreateReq.AllOptions.FilterOptions.Expression();
  expression.setPrefixList([PREFIX]);
  filter.setStreamIdentifier(expression);
  filter.setCount(new Empty());
  filter.setCheckpointintervalmultiplier(1);
  all.setFilter(filter);
  const options = new pb.CreateReq.Options();
  options.setGroupName(group);
  options.setSettings(settings);
  options.setAll(all);
  const request = new pb.CreateReq();
  request.setOptions(options);
  try {
    await new Promise<void>((resolve, reject) => raw.create(request, (error) => (error ? reject(error) : resolve())));
  } finally {
    raw.close();
  }
}
