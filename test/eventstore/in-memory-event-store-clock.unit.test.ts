import { randomUUID } from 'node:crypto';
import { EventStoreUnavailableError } from '../../eventstore/errors';
import type { ExpectedRevision, NewEvent, RecordedEvent } from '../../eventstore/event-store';
import { InMemoryEventStore } from '../../eventstore/memory/in-memory-event-store';
import { waitUntil } from '../support/wait-until';

/**
 * What the contract cannot show on its own for the in-memory adapter: its clock is injectable (as the database's is
 * in test/eventstore/postgres-recorded-at.test.ts, where the test moves it by SQL), the log shares no objects with
 * its callers, and a consumer group's standby takes over when the active subscriber stops.
 */

/** An event as the service writes one it causes: no occurrence time of its own. */
function serviceEvent(type = 'ThingHappened', data: NewEvent['data'] = {}): NewEvent {
  return { id: randomUUID(), type, data, metadata: { correlationId: randomUUID() } };
}

/** A clock the test sets. */
function settableClock(start: string) {
  let now = Date.parse(start);
  return {
    clock: () => now,
    set: (iso: string) => {
      now = Date.parse(iso);
    },
  };
}

describe('in-memory event store: the injected clock is the store clock', () => {
  test('recordedAt and the default occurredAt come from the clock, at millisecond precision', async () => {
    const time = settableClock('2026-05-01T10:00:00.000Z');
    const store = new InMemoryEventStore({ clock: () => time.clock() + 0.7 });
    const appended = await store.appendToStream('s-1', [serviceEvent(), serviceEvent()], { expectedRevision: 'no_stream' });
    expect(appended.recordedAt).toBe('2026-05-01T10:00:00.000Z');
    const events = await store.readStream('s-1');
    expect(events.map((e) => [e.recordedAt, e.metadata.occurredAt])).toEqual(
      Array(2).fill(['2026-05-01T10:00:00.000Z', '2026-05-01T10:00:00.000Z']),
    );
    expect(await store.listStreams()).toEqual([{ stream: 's-1', revision: 1n, lastRecordedAt: '2026-05-01T10:00:00.000Z' }]);
  });

  test.each<ExpectedRevision | 'revision'>(['revision', 'stream_exists', 'any'])(
    'a clock set back never moves a stream back in time (%s); another stream gets the clock as it is',
    async (kind) => {
      const time = settableClock('2026-05-01T11:00:00.000Z');
      const store = new InMemoryEventStore({ clock: time.clock });
      const first = await store.appendToStream('stepped', [serviceEvent(), serviceEvent()], { expectedRevision: 'no_stream' });
      time.set('2026-05-01T10:00:00.000Z'); // set back an hour
      const expected: ExpectedRevision = kind === 'revision' ? first.nextExpectedRevision : kind;
      const next = await store.appendToStream('stepped', [serviceEvent()], { expectedRevision: expected });
      expect(next.recordedAt).toBe('2026-05-01T11:00:00.000Z');
      const events = await store.readStream('stepped');
      expect(events.map((e) => e.recordedAt)).toEqual(Array(3).fill('2026-05-01T11:00:00.000Z'));
      expect(events[2]!.metadata.occurredAt).toBe(events[2]!.recordedAt);

      const other = await store.appendToStream('other', [serviceEvent()], { expectedRevision: 'no_stream' });
      expect(other.recordedAt).toBe('2026-05-01T10:00:00.000Z');
      time.set('2026-05-01T12:30:00.000Z');
      expect((await store.appendToStream('stepped', [serviceEvent()], { expectedRevision: 'any' })).recordedAt).toBe(
        '2026-05-01T12:30:00.000Z',
      );
    },
  );

  test('an explicit occurrence time is kept and filtered on; a retried append answers with the first recording time', async () => {
    const time = settableClock('2026-05-02T09:00:00.000Z');
    const store = new InMemoryEventStore({ clock: time.clock });
    const late: NewEvent = { ...serviceEvent('Late'), metadata: { occurredAt: '2025-06-01T12:00:00.000Z' } };
    const first = await store.appendToStream('late', [late], { expectedRevision: 'no_stream' });
    time.set('2026-05-02T09:05:00.000Z');
    expect(await store.appendToStream('late', [late], { expectedRevision: 'no_stream' })).toEqual(first);
    const [recorded] = await store.readStream('late');
    expect(recorded).toMatchObject({ recordedAt: '2026-05-02T09:00:00.000Z', metadata: { occurredAt: '2025-06-01T12:00:00.000Z' } });
    expect(
      (await store.readAll({ occurredFrom: '2025-06-01T12:00:00.000Z', occurredTo: '2025-06-01T12:00:00.000Z' })).map((e) => e.id),
    ).toEqual([late.id]);
    expect(await store.readAll({ occurredFrom: '2026-01-01T00:00:00Z' })).toEqual([]);
  });

  test('parked events are stamped with the clock, and parkedSummary reports the oldest recording time', async () => {
    const time = settableClock('2026-05-03T08:00:00.000Z');
    const store = new InMemoryEventStore({ clock: time.clock });
    await store.appendToStream('p-1', [serviceEvent('Poison')], { expectedRevision: 'no_stream' });
    time.set('2026-05-03T08:10:00.000Z');
    const sub = await store.subscribe('g', { from: 'start' }, async () => Promise.reject(new Error('nope')), {
      maxAttempts: 2,
      retryBackoffMs: 1,
    });
    try {
      await waitUntil('the event parked', async () => (await store.listParked('g')).length === 1, 10_000, 10);
      const [parked] = await store.listParked('g');
      expect(parked).toMatchObject({ parkedAt: '2026-05-03T08:10:00.000Z', attempts: 2, blocked: false, error: 'Error: nope' });
      expect(await store.parkedSummary('g')).toEqual({
        count: 1,
        first: parked!.event.position,
        oldestRecordedAt: '2026-05-03T08:00:00.000Z',
      });
    } finally {
      await sub.stop();
      await store.close();
    }
  });

  test('a clock that answers nonsense fails the append loudly and writes nothing', async () => {
    let broken = false;
    const store = new InMemoryEventStore({ clock: () => (broken ? new Date('not a time') : Date.now()) });
    await store.appendToStream('c', [serviceEvent()], { expectedRevision: 'no_stream' });
    broken = true;
    await expect(store.appendToStream('c', [serviceEvent()], { expectedRevision: 0n })).rejects.toThrow(/clock returned an invalid time/);
    broken = false;
    expect(await store.readStream('c')).toHaveLength(1);
  });
});

describe('in-memory event store: copies in and out', () => {
  test('changing an appended or a read event afterwards changes nothing in the log; data is stored as JSON', async () => {
    const store = new InMemoryEventStore();
    const e = serviceEvent('Noted', { nested: { amount: 5 }, dropped: undefined as unknown as null });
    await store.appendToStream('copies', [e], { expectedRevision: 'no_stream' });
    (e.data.nested as { amount: number }).amount = 999;
    const [read] = await store.readStream('copies');
    expect(read!.data).toStrictEqual({ nested: { amount: 5 } });
    (read!.data.nested as { amount: number }).amount = 7;
    read!.position.prepare = 99n;
    const [again] = await store.readAll();
    expect(again!.data).toStrictEqual({ nested: { amount: 5 } });
    expect(again!.position).toEqual({ commit: 0n, prepare: 0n });
  });

  test('what a read returns can be written back as is (e.g. a snapshot of a state that came from a read)', async () => {
    const store = new InMemoryEventStore();
    await store.appendToStream('source', [serviceEvent('Noted', { state: { balance: 5, legs: [{ id: 'a' }] } })], {
      expectedRevision: 'no_stream',
    });
    const [read] = await store.readStream('source');
    const [viaAll] = await store.readAll();
    await store.appendToStream('copy', [serviceEvent('Copied', read!.data), serviceEvent('Copied', viaAll!.data)], {
      expectedRevision: 'no_stream',
    });
    expect((await store.readStream('copy')).map((e) => e.data)).toEqual([read!.data, read!.data]);
  });

  test('event ids come back in lower case, and an upper-case retry of the same append is recognised', async () => {
    const store = new InMemoryEventStore();
    const e = { ...serviceEvent(), id: randomUUID().toUpperCase() };
    const first = await store.appendToStream('ids', [e], { expectedRevision: 'no_stream' });
    expect((await store.readStream('ids'))[0]!.id).toBe(e.id.toLowerCase());
    expect(await store.appendToStream('ids', [{ ...e, id: e.id.toLowerCase() }], { expectedRevision: 'no_stream' })).toEqual(first);
  });

  test('positions: commit numbers the appends, prepare the events; headPosition is the last', async () => {
    const store = new InMemoryEventStore();
    expect(await store.headPosition()).toBeUndefined();
    await store.appendToStream('a', [serviceEvent(), serviceEvent()], { expectedRevision: 'no_stream' });
    await store.appendToStream('b', [serviceEvent()], { expectedRevision: 'no_stream' });
    expect((await store.readAll()).map((e) => [e.position.commit, e.position.prepare])).toEqual([
      [0n, 0n],
      [0n, 1n],
      [1n, 2n],
    ]);
    expect(await store.headPosition()).toEqual({ commit: 1n, prepare: 2n });
  });
});

describe('in-memory event store: consumer groups in one process', () => {
  test('one subscriber of a group delivers at a time; a standby takes over from the checkpoint when it stops', async () => {
    const store = new InMemoryEventStore();
    const seen: { by: string; event: RecordedEvent }[] = [];
    const handler = (by: string) => async (event: RecordedEvent) => void seen.push({ by, event });
    const leader = await store.subscribe('shared', { from: 'start' }, handler('leader'));
    const standby = await store.subscribe('shared', { from: 'start' }, handler('standby'));
    try {
      await store.appendToStream('x', [serviceEvent(), serviceEvent()], { expectedRevision: 'no_stream' });
      await waitUntil('two events delivered', () => seen.length === 2, 10_000, 10);
      await leader.stop();
      await store.appendToStream('x', [serviceEvent()], { expectedRevision: 1n });
      await waitUntil('the standby delivering', () => seen.length === 3, 10_000, 10);
      await new Promise((resolve) => setTimeout(resolve, 50)); // nothing more comes
      expect(seen.map((s) => [s.by, s.event.revision])).toEqual([
        ['leader', 0n],
        ['leader', 1n],
        ['standby', 2n],
      ]);
    } finally {
      await standby.stop();
      await leader.stop(); // idempotent
    }
  });

  test('a closed store stops its subscribers and refuses further calls as unavailable', async () => {
    const store = new InMemoryEventStore();
    const seen: string[] = [];
    await store.subscribe('g', { from: 'start' }, async (e) => void seen.push(e.id));
    const e = serviceEvent();
    await store.appendToStream('x', [e], { expectedRevision: 'no_stream' });
    await waitUntil('the event delivered', () => seen.length === 1, 10_000, 10);
    await store.close();
    await store.close();
    await expect(store.appendToStream('x', [serviceEvent()], { expectedRevision: 0n })).rejects.toBeInstanceOf(EventStoreUnavailableError);
    await expect(store.readStream('x')).rejects.toBeInstanceOf(EventStoreUnavailableError);
    expect(seen).toEqual([e.id]);
  });
});
