import { randomUUID } from 'node:crypto';
import { DuplicateEventIdError, EventStoreValidationError, WrongExpectedVersionError } from '../../eventstore/errors';
import type { EventStore, ExpectedRevision, NewEvent, RecordedEvent, Subscription } from '../../eventstore/event-store';
import { BLOCKED_BY_PARKED, comparePositions } from '../../eventstore/event-store';
import { chainedFieldsOf, chainHashes, GENESIS_HASH, isHashChained } from '../../eventstore/hash-chain';
import { withClockOffset } from '../support/clock-offset';

/**
 * The one contract every EventStore adapter must pass. Run by test/eventstore/*.test.ts against
 * PostgreSQL always, and against EventStoreDB whenever ESDB_URL is set.
 */
export interface ContractSubject {
  store: EventStore;
  /** Adapters that deliver each stream in revision order to a consumer group (EventStoreDB persistent subscriptions do not promise it). */
  orderedDelivery: boolean;
  /** subscribeInBatches hands over several events at once (EventStoreDB's adapter hands them over one by one). */
  batchedDelivery?: boolean;
  /**
   * Whether every event delivered to the group so far has been acknowledged where the store keeps the group's
   * progress. EventStoreDB's acks are fire-and-forget messages on the subscription's call: one still in flight when
   * the consumer stops is lost and its event redelivered (at least once), so a test that means "acknowledged, then
   * stopped" waits for this first. Absent where an ack is done when the handler's turn ends (PostgreSQL).
   */
  groupSettled?(group: string): Promise<boolean>;
  cleanup(): Promise<void>;
}

export function event(type = 'ThingHappened', data: Record<string, unknown> = {}, occurredAt = new Date().toISOString()): NewEvent {
  return { id: randomUUID(), type, data: data as NewEvent['data'], metadata: { occurredAt, correlationId: randomUUID() } };
}

/** Each test uses its own unique names, so tests never see each other's streams. */
function unique(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

async function eventually<T>(check: () => T | Promise<T>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

export function describeEventStoreContract(adapter: string, makeSubject: () => Promise<ContractSubject>): void {
  describe(`EventStore contract: ${adapter}`, () => {
    let subject: ContractSubject;
    let store: EventStore;
    const subscriptions: Subscription[] = [];

    beforeAll(async () => {
      subject = await makeSubject();
      store = subject.store;
    });
    afterEach(async () => {
      await Promise.all(subscriptions.splice(0).map((s) => s.stop()));
    });
    afterAll(async () => {
      await subject?.cleanup();
    });

    describe('expected revision', () => {
      const cases: { name: string; existing: number; expected: ExpectedRevision; ok: boolean }[] = [
        { name: 'no_stream on a missing stream', existing: 0, expected: 'no_stream', ok: true },
        { name: 'no_stream on an existing stream', existing: 2, expected: 'no_stream', ok: false },
        { name: 'stream_exists on a missing stream', existing: 0, expected: 'stream_exists', ok: false },
        { name: 'stream_exists on an existing stream', existing: 2, expected: 'stream_exists', ok: true },
        { name: 'any on a missing stream', existing: 0, expected: 'any', ok: true },
        { name: 'any on an existing stream', existing: 2, expected: 'any', ok: true },
        { name: 'the current revision', existing: 2, expected: 1n, ok: true },
        { name: 'a stale revision', existing: 2, expected: 0n, ok: false },
        { name: 'a future revision', existing: 2, expected: 5n, ok: false },
        { name: 'a revision on a missing stream', existing: 0, expected: 0n, ok: false },
      ];
      test.each(cases)('$name -> $ok', async ({ existing, expected, ok }) => {
        const stream = unique('matrix');
        if (existing > 0)
          await store.appendToStream(
            stream,
            Array.from({ length: existing }, () => event()),
            { expectedRevision: 'no_stream' },
          );
        const attempt = store.appendToStream(stream, [event('Appended')], { expectedRevision: expected });
        if (ok) {
          const result = await attempt;
          expect(result.nextExpectedRevision).toBe(BigInt(existing));
          const events = await store.readStream(stream);
          expect(events.map((e) => e.revision)).toEqual(Array.from({ length: existing + 1 }, (_, i) => BigInt(i)));
          expect(events.at(-1)!.type).toBe('Appended');
          expect(comparePositions(events.at(-1)!.position, result.position)).toBe(0);
        } else {
          const error = await attempt.then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(error).toBeInstanceOf(WrongExpectedVersionError);
          const wev = error as WrongExpectedVersionError;
          expect(wev.stream).toBe(stream);
          expect(wev.expected).toBe(expected);
          expect(wev.actual).toBe(existing > 0 ? BigInt(existing - 1) : 'no_stream');
          expect(await store.readStream(stream)).toHaveLength(existing);
        }
      });
    });

    test('concurrent appenders with the same expected revision: exactly one wins, the others learn the actual revision', async () => {
      const stream = unique('race');
      await store.appendToStream(stream, [event()], { expectedRevision: 'no_stream' });
      const results = await Promise.allSettled(
        Array.from({ length: 20 }, (_, i) => store.appendToStream(stream, [event('Raced', { writer: i })], { expectedRevision: 0n })),
      );
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(19);
      for (const l of lost) {
        expect(l.reason).toBeInstanceOf(WrongExpectedVersionError);
        expect((l.reason as WrongExpectedVersionError).actual).toBe(1n);
      }
      expect(await store.readStream(stream)).toHaveLength(2);
    });

    test('concurrent creators with no_stream: exactly one creates the stream', async () => {
      const stream = unique('create-race');
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, () => store.appendToStream(stream, [event()], { expectedRevision: 'no_stream' })),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect(await store.readStream(stream)).toHaveLength(1);
    });

    test('writers that retry on conflict all land, with gapless revisions', async () => {
      const stream = unique('contended');
      const writers = 10;
      const perWriter = 5;
      await Promise.all(
        Array.from({ length: writers }, async (_, w) => {
          for (let i = 0; i < perWriter; i++) {
            for (;;) {
              const current = await store.readStream(stream, { direction: 'backwards', maxCount: 1 });
              const expected: ExpectedRevision = current[0] ? current[0].revision : 'no_stream';
              try {
                await store.appendToStream(stream, [event('Counted', { w, i })], { expectedRevision: expected });
                break;
              } catch (error) {
                if (!(error instanceof WrongExpectedVersionError)) throw error;
              }
            }
          }
        }),
      );
      const events = await store.readStream(stream);
      expect(events.map((e) => e.revision)).toEqual(Array.from({ length: writers * perWriter }, (_, i) => BigInt(i)));
      expect(new Set(events.map((e) => `${e.data.w}/${e.data.i}`)).size).toBe(writers * perWriter);
    });

    describe('idempotent append (the event id is the idempotency key)', () => {
      test('re-sending the same events with the same expected revision writes nothing new and succeeds', async () => {
        const stream = unique('idem');
        await store.appendToStream(stream, [event()], { expectedRevision: 'no_stream' });
        const batch = [event('A'), event('B')];
        const first = await store.appendToStream(stream, batch, { expectedRevision: 0n });
        const again = await store.appendToStream(stream, batch, { expectedRevision: 0n });
        expect(again.nextExpectedRevision).toBe(first.nextExpectedRevision);
        expect(comparePositions(again.position, first.position)).toBe(0);
        expect((await store.readStream(stream)).map((e) => e.type)).toEqual(['ThingHappened', 'A', 'B']);
      });

      test('a retried stream creation (no_stream) is idempotent too', async () => {
        const stream = unique('idem-create');
        const batch = [event('Opened')];
        await store.appendToStream(stream, batch, { expectedRevision: 'no_stream' });
        await expect(store.appendToStream(stream, batch, { expectedRevision: 'no_stream' })).resolves.toMatchObject({
          nextExpectedRevision: 0n,
        });
        expect(await store.readStream(stream)).toHaveLength(1);
      });

      test('the same ids at another place are refused, and nothing is written', async () => {
        const stream = unique('idem-conflict');
        const batch = [event('A')];
        await store.appendToStream(stream, batch, { expectedRevision: 'no_stream' });
        await store.appendToStream(stream, [event('B')], { expectedRevision: 0n });
        const error = await store.appendToStream(stream, batch, { expectedRevision: 1n }).catch((e: unknown) => e);
        expect(error instanceof DuplicateEventIdError || error instanceof WrongExpectedVersionError).toBe(true);
        expect(await store.readStream(stream)).toHaveLength(2);
      });
    });

    describe('appendToStreams: many streams in one call, each answered as appendToStream answers it', () => {
      test('300 streams (more than one transaction of the PostgreSQL adapter) land, each at its revision', async () => {
        const prefix = unique('bulk');
        const first = await store.appendToStreams(
          Array.from({ length: 300 }, (_, i) => ({
            stream: `${prefix}-${i}`,
            events: [event('Opened', { i })],
            options: { expectedRevision: 'no_stream' as const },
          })),
        );
        expect(first.every((o) => o.ok && o.result.nextExpectedRevision === 0n)).toBe(true);
        const second = await store.appendToStreams(
          Array.from({ length: 300 }, (_, i) => ({
            stream: `${prefix}-${i}`,
            events: [event('Moved', { i }), event('Moved', { i: i + 1 })],
            options: { expectedRevision: 0n },
          })),
        );
        expect(second.every((o) => o.ok && o.result.nextExpectedRevision === 2n)).toBe(true);
        const read = await store.readStreams([0, 150, 299].map((i) => ({ stream: `${prefix}-${i}` })));
        expect(read.map((events) => events.map((e) => [e.type, e.revision, (e.data as { i: number }).i]))).toEqual(
          [0, 150, 299].map((i) => [
            ['Opened', 0n, i],
            ['Moved', 1n, i],
            ['Moved', 2n, i + 1],
          ]),
        );
      });

      test("one append's conflict fails that append alone: the others land, and a retry of the whole call is idempotent", async () => {
        const prefix = unique('bulkconflict');
        await store.appendToStream(`${prefix}-b`, [event()], { expectedRevision: 'no_stream' });
        const appends = ['a', 'b', 'c'].map((x) => ({
          stream: `${prefix}-${x}`,
          events: [event('First')],
          options: { expectedRevision: 'no_stream' as const },
        }));
        const outcomes = await store.appendToStreams(appends);
        expect(outcomes.map((o) => o.ok)).toEqual([true, false, true]);
        expect(outcomes[1]).toMatchObject({ ok: false, error: expect.any(WrongExpectedVersionError) });
        expect((await store.readStream(`${prefix}-b`)).map((e) => e.type)).toEqual(['ThingHappened']);
        // The same call again: the landed ones are found, not written twice.
        const again = await store.appendToStreams(appends);
        expect(again.map((o) => o.ok)).toEqual([true, false, true]);
        const landed = (o: (typeof outcomes)[number]) =>
          o.ok ? { revision: o.result.nextExpectedRevision, position: o.result.position } : o.error.name;
        expect(again.map(landed)).toEqual(outcomes.map(landed));
        for (const x of ['a', 'c']) expect(await store.readStream(`${prefix}-${x}`)).toHaveLength(1);
      });

      test('bad input anywhere in the call writes nothing: an invalid event, a stream named twice', async () => {
        const prefix = unique('bulkbad');
        const good = { stream: `${prefix}-good`, events: [event()], options: { expectedRevision: 'no_stream' as const } };
        await expect(
          store.appendToStreams([
            good,
            { stream: `${prefix}-bad`, events: [{ ...event(), type: '' }], options: { expectedRevision: 'no_stream' } },
          ]),
        ).rejects.toBeInstanceOf(EventStoreValidationError);
        await expect(store.appendToStreams([good, { ...good, events: [event()] }])).rejects.toBeInstanceOf(EventStoreValidationError);
        expect(await store.readStream(`${prefix}-good`)).toEqual([]);
      });
    });

    describe('reading', () => {
      test('readStream pages forwards and backwards', async () => {
        const stream = unique('paging');
        const appended = await store.appendToStream(
          stream,
          Array.from({ length: 12 }, (_, i) => event('N', { i })),
          { expectedRevision: 'no_stream' },
        );
        expect(appended.nextExpectedRevision).toBe(11n);
        const page = await store.readStream(stream, { fromRevision: 3n, maxCount: 4 });
        expect(page.map((e) => e.data.i)).toEqual([3, 4, 5, 6]);
        const back = await store.readStream(stream, { direction: 'backwards', maxCount: 3 });
        expect(back.map((e) => e.data.i)).toEqual([11, 10, 9]);
        const backFrom = await store.readStream(stream, { direction: 'backwards', fromRevision: 2n });
        expect(backFrom.map((e) => e.data.i)).toEqual([2, 1, 0]);
        expect(await store.readStream(unique('missing'))).toEqual([]);
      });

      test('readStreams answers several streams at once, each as readStream does, in the order asked', async () => {
        const long = unique('many-long');
        const short = unique('many-short');
        await store.appendToStream(
          long,
          Array.from({ length: 12 }, (_, i) => event('N', { i })),
          { expectedRevision: 'no_stream' },
        );
        await store.appendToStream(short, [event('S', { i: 0 }), event('S', { i: 1 })], { expectedRevision: 'no_stream' });
        const missing = unique('many-missing');
        const reads = [
          { stream: short },
          { stream: long, fromRevision: 9n },
          { stream: missing },
          { stream: long, fromRevision: 2n, maxCount: 3 },
          { stream: short, fromRevision: 5n },
          { stream: long },
        ];
        const answers = await store.readStreams(reads);
        expect(answers.map((events) => events.map((e) => e.data.i))).toEqual([
          [0, 1],
          [9, 10, 11],
          [],
          [2, 3, 4],
          [],
          [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
        ]);
        for (const [i, read] of reads.entries())
          expect(answers[i]).toEqual(await store.readStream(read.stream, { fromRevision: read.fromRevision, maxCount: read.maxCount }));
        expect(await store.readStreams([])).toEqual([]);
        await expect(store.readStreams([{ stream: short }, { stream: '' }])).rejects.toBeInstanceOf(EventStoreValidationError);
      });

      test('recorded events carry the metadata, revision, position and a recording time apart from the occurrence time', async () => {
        const stream = unique('meta');
        const occurredAt = '2026-03-03T10:00:00.000Z';
        const e = event('Late', { amount: 5 }, occurredAt);
        e.metadata.transferId = 't-1';
        await store.appendToStream(stream, [e], { expectedRevision: 'no_stream' });
        const [recorded] = await store.readStream(stream);
        expect(recorded).toMatchObject({ id: e.id, type: 'Late', data: { amount: 5 }, stream, revision: 0n });
        expect(recorded!.metadata).toMatchObject({ occurredAt, transferId: 't-1', correlationId: e.metadata.correlationId });
        expect(Date.parse(recorded!.recordedAt)).toBeGreaterThan(Date.parse(occurredAt));
      });

      test('readAll pages by position and filters by stream prefix, event type and occurrence time', async () => {
        const prefix = unique('all');
        const t = (day: number) => `2025-01-${String(day).padStart(2, '0')}T12:00:00.000Z`;
        await store.appendToStream(`${prefix}-a`, [event('Opened', {}, t(1)), event('Deposited', {}, t(2))], {
          expectedRevision: 'no_stream',
        });
        await store.appendToStream(`${prefix}-b`, [event('Opened', {}, t(3)), event('Withdrawn', {}, t(4))], {
          expectedRevision: 'no_stream',
        });
        await store.appendToStream(unique('other'), [event('Opened', {}, t(2))], { expectedRevision: 'no_stream' });

        const mine = await eventually(async () => {
          const all = await store.readAll({ streamPrefix: prefix });
          expect(all).toHaveLength(4);
          return all;
        });
        for (let i = 1; i < mine.length; i++) expect(comparePositions(mine[i - 1]!.position, mine[i]!.position)).toBe(-1);

        const firstTwo = await store.readAll({ streamPrefix: prefix, maxCount: 2 });
        const rest = await store.readAll({ streamPrefix: prefix, fromPosition: firstTwo.at(-1)!.position });
        expect([...firstTwo, ...rest].map((e) => e.id)).toEqual(mine.map((e) => e.id));

        const opened = await store.readAll({ streamPrefix: prefix, eventTypes: ['Opened'] });
        expect(opened.map((e) => e.stream)).toEqual([`${prefix}-a`, `${prefix}-b`]);
        const midWeek = await store.readAll({ streamPrefix: prefix, occurredFrom: t(2), occurredTo: t(3) });
        expect(midWeek.map((e) => e.type)).toEqual(['Deposited', 'Opened']);
      });

      test('listStreams lists streams by prefix with their revision', async () => {
        const prefix = unique('list');
        await store.appendToStream(`${prefix}-1`, [event(), event()], { expectedRevision: 'no_stream' });
        await store.appendToStream(`${prefix}-2`, [event()], { expectedRevision: 'no_stream' });
        const streams = await eventually(async () => {
          const s = await store.listStreams({ prefix });
          expect(s).toHaveLength(2);
          return s;
        });
        expect(streams.map((s) => [s.stream, s.revision])).toEqual([
          [`${prefix}-1`, 1n],
          [`${prefix}-2`, 0n],
        ]);
        expect((await store.listStreams({ prefix, after: `${prefix}-1` })).map((s) => s.stream)).toEqual([`${prefix}-2`]);
      });
    });

    describe("recording time: the store's clock, in order within a stream", () => {
      /** As the service writes the events it causes: no occurrence time of the writer's own. */
      const untimed = (type = 'ThingHappened'): NewEvent => {
        const e = event(type);
        delete e.metadata.occurredAt;
        return e;
      };

      test('an event written without occurredAt occurred when the store recorded it, and readAll filters on that time', async () => {
        const stream = unique('untimed');
        const e = untimed();
        const appended = await store.appendToStream(stream, [e], { expectedRevision: 'no_stream' });
        const [recorded] = await store.readStream(stream);
        expect(recorded!.metadata).toMatchObject({ occurredAt: recorded!.recordedAt, correlationId: e.metadata.correlationId });
        if (appended.recordedAt !== undefined) expect(appended.recordedAt).toBe(recorded!.recordedAt);
        const at = recorded!.recordedAt;
        const found = await eventually(async () => {
          const all = await store.readAll({ streamPrefix: stream, occurredFrom: at, occurredTo: at });
          expect(all).toHaveLength(1);
          return all;
        });
        expect(found[0]!.id).toBe(e.id);
      });

      test("recordedAt is the store's clock: a writer whose clock is an hour off does not move it", async () => {
        const stream = unique('skewed');
        const hour = 3_600_000;
        const before = Date.now();
        const first = await withClockOffset(-hour, () => store.appendToStream(stream, [untimed()], { expectedRevision: 'no_stream' }));
        await withClockOffset(hour, () => store.appendToStream(stream, [untimed()], { expectedRevision: first.nextExpectedRevision }));
        const after = Date.now();
        for (const recorded of await store.readStream(stream)) {
          // The store and this test share a machine (or a synchronised clock): minutes of slack, not an hour.
          expect(Date.parse(recorded.recordedAt)).toBeGreaterThan(before - 5 * 60_000);
          expect(Date.parse(recorded.recordedAt)).toBeLessThan(after + 5 * 60_000);
          expect(recorded.metadata.occurredAt).toBe(recorded.recordedAt);
        }
      });

      test('recordedAt never goes backwards within a stream; listStreams reports the last one', async () => {
        const stream = unique('monotonic');
        const first = await store.appendToStream(stream, [untimed(), untimed(), untimed()], { expectedRevision: 'no_stream' });
        const appends = [
          first,
          await store.appendToStream(stream, [untimed()], { expectedRevision: first.nextExpectedRevision }),
          await store.appendToStream(stream, [untimed(), untimed()], { expectedRevision: 'stream_exists' }),
          await store.appendToStream(stream, [untimed()], { expectedRevision: 'any' }),
        ];
        const recorded = await store.readStream(stream);
        expect(recorded.map((e) => e.revision)).toEqual([0n, 1n, 2n, 3n, 4n, 5n, 6n]);
        for (let i = 1; i < recorded.length; i++)
          expect(Date.parse(recorded[i]!.recordedAt)).toBeGreaterThanOrEqual(Date.parse(recorded[i - 1]!.recordedAt));
        for (const appended of appends) {
          if (appended.recordedAt !== undefined)
            expect(appended.recordedAt).toBe(recorded[Number(appended.nextExpectedRevision)]!.recordedAt);
        }
        const [summary] = await eventually(async () => {
          const s = await store.listStreams({ prefix: stream });
          expect(s).toHaveLength(1);
          return s;
        });
        expect(summary!.lastRecordedAt).toBe(recorded.at(-1)!.recordedAt);
      });
    });

    describe('validation: bad input gives a clear error and writes nothing', () => {
      const bad: { name: string; stream: unknown; events: unknown; expected?: unknown; field: RegExp }[] = [
        { name: 'empty stream name', stream: '', events: [event()], field: /stream/ },
        { name: 'over-long stream name', stream: 'x'.repeat(201), events: [event()], field: /stream/ },
        { name: 'stream name with spaces', stream: 'a b', events: [event()], field: /stream/ },
        { name: 'no events', stream: 'fine', events: [], field: /events/ },
        { name: 'event id not a uuid', stream: 'fine', events: [{ ...event(), id: 'nope' }], field: /id/ },
        { name: 'empty event type', stream: 'fine', events: [{ ...event(), type: '' }], field: /type/ },
        { name: 'data not an object', stream: 'fine', events: [{ ...event(), data: 'text' }], field: /data/ },
        { name: 'data with a function', stream: 'fine', events: [{ ...event(), data: { f: () => 1 } }], field: /data/ },
        { name: 'data with NaN', stream: 'fine', events: [{ ...event(), data: { n: Number.NaN } }], field: /data/ },
        { name: 'data with a bigint', stream: 'fine', events: [{ ...event(), data: { n: 1n } }], field: /data/ },
        {
          name: 'occurredAt that is not a timestamp',
          stream: 'fine',
          events: [{ ...event(), metadata: { occurredAt: 'last tuesday' } }],
          field: /occurredAt/,
        },
        { name: 'negative expected revision', stream: 'fine', events: [event()], expected: -1n, field: /expectedRevision/ },
        { name: 'number expected revision', stream: 'fine', events: [event()], expected: 3, field: /expectedRevision/ },
      ];
      test.each(bad)('$name', async ({ stream, events, expected, field }) => {
        const name = typeof stream === 'string' && stream === 'fine' ? unique('valid') : (stream as string);
        const error = await store
          .appendToStream(name, events as NewEvent[], { expectedRevision: (expected ?? 'any') as ExpectedRevision })
          .catch((e: unknown) => e);
        expect(error).toBeInstanceOf(EventStoreValidationError);
        expect((error as EventStoreValidationError).field).toMatch(field);
        if (typeof name === 'string' && name.startsWith('valid-')) expect(await store.readStream(name)).toEqual([]);
      });
    });

    describe('durable consumer groups', () => {
      test('deliver matching events; the checkpoint survives a restart and nothing is lost', async () => {
        const prefix = unique('sub');
        const group = unique('group');
        const seen: string[] = [];
        const handler = async (e: RecordedEvent) => {
          seen.push(e.id);
        };
        const first = [event('One'), event('Two')];
        await store.appendToStream(`${prefix}-x`, first, { expectedRevision: 'no_stream' });
        let sub = await store.subscribe(group, { streamPrefix: prefix, from: 'start' }, handler);
        await eventually(() => expect(seen).toEqual(expect.arrayContaining(first.map((e) => e.id))));
        if (subject.groupSettled) await eventually(async () => expect(await subject.groupSettled!(group)).toBe(true));
        await sub.stop();

        const whileDown = [event('Three'), event('Four')];
        await store.appendToStream(`${prefix}-x`, whileDown, { expectedRevision: 1n });
        await store.appendToStream(unique('unrelated'), [event()], { expectedRevision: 'no_stream' });
        const before = seen.length;
        sub = await store.subscribe(group, { streamPrefix: prefix, from: 'start' }, handler);
        subscriptions.push(sub);
        await eventually(() => expect(seen).toEqual(expect.arrayContaining(whileDown.map((e) => e.id))));
        // Resumed from the checkpoint: the first events are not all delivered again.
        expect(seen.slice(before).filter((id) => first.some((e) => e.id === id)).length).toBeLessThan(first.length);
        expect(new Set(seen)).toEqual(new Set([...first, ...whileDown].map((e) => e.id)));
      });

      test("a group created 'from end' only sees events appended after it", async () => {
        const prefix = unique('end');
        await store.appendToStream(`${prefix}-x`, [event('Old')], { expectedRevision: 'no_stream' });
        const seen: string[] = [];
        subscriptions.push(
          await store.subscribe(unique('group'), { streamPrefix: prefix, from: 'end' }, async (e) => void seen.push(e.type)),
        );
        await store.appendToStream(`${prefix}-x`, [event('New')], { expectedRevision: 0n });
        await eventually(() => expect(seen).toEqual(['New']));
      });

      test('filters by event type', async () => {
        const prefix = unique('types');
        const seen: string[] = [];
        subscriptions.push(
          await store.subscribe(unique('group'), { eventTypes: [`${prefix}Wanted`], from: 'start' }, async (e) => void seen.push(e.type)),
        );
        await store.appendToStream(`${prefix}-x`, [event(`${prefix}Wanted`), event(`${prefix}Ignored`), event(`${prefix}Wanted`)], {
          expectedRevision: 'no_stream',
        });
        await eventually(() => expect(seen).toEqual([`${prefix}Wanted`, `${prefix}Wanted`]));
      });

      test('a failing handler is retried, then the event is parked with its error, and a replay delivers it again', async () => {
        const prefix = unique('park');
        const group = unique('group');
        const poison = event('Poison');
        const fine = event('Fine');
        let healed = false;
        const attempts = new Map<string, number>();
        const handled: string[] = [];
        subscriptions.push(
          await store.subscribe(
            group,
            { streamPrefix: prefix, from: 'start' },
            async (e) => {
              attempts.set(e.id, (attempts.get(e.id) ?? 0) + 1);
              if (e.type === 'Poison' && !healed) throw new Error('projection bug: cannot handle Poison');
              handled.push(e.id);
            },
            { maxAttempts: 3, retryBackoffMs: 10 },
          ),
        );
        await store.appendToStream(`${prefix}-x`, [poison], { expectedRevision: 'no_stream' });
        await store.appendToStream(`${prefix}-y`, [fine], { expectedRevision: 'no_stream' });
        const parked = await eventually(async () => {
          const p = await store.listParked(group);
          expect(p).toHaveLength(1);
          return p;
        });
        expect(parked[0]!.event.id).toBe(poison.id);
        expect(parked[0]!.error).toMatch(/cannot handle Poison/);
        expect(attempts.get(poison.id)).toBe(3);
        expect(parked[0]!.blocked).toBe(false);
        await eventually(() => expect(handled).toContain(fine.id)); // the parked event does not block other streams

        healed = true;
        expect(await store.replayParked(group)).toBe(1);
        await eventually(() => expect(handled).toContain(poison.id));
        await eventually(async () => expect(await store.listParked(group)).toHaveLength(0));
      });

      test('batched delivery hands over every event once; a failing batch is split so a poison event is parked alone', async () => {
        const prefix = unique('batch');
        const group = unique('group');
        const handled: string[] = [];
        const batchSizes: number[] = [];
        const events = Array.from({ length: 30 }, (_, i) => event(i === 17 ? 'Poison' : 'Fine', { i }));
        // The poison in a stream of its own (later events of its stream would be parked behind it, see below).
        await store.appendToStream(`${prefix}-x`, events.slice(0, 17), { expectedRevision: 'no_stream' });
        await store.appendToStream(`${prefix}-poison`, [events[17]!], { expectedRevision: 'no_stream' });
        await store.appendToStream(`${prefix}-x`, events.slice(18), { expectedRevision: 16n });
        subscriptions.push(
          await store.subscribeInBatches(
            group,
            { streamPrefix: prefix, from: 'start' },
            async (batch) => {
              batchSizes.push(batch.length);
              if (batch.some((e) => e.type === 'Poison')) throw new Error('cannot handle Poison');
              handled.push(...batch.map((e) => e.id));
            },
            { maxBatchSize: 10, maxAttempts: 2, retryBackoffMs: 10 },
          ),
        );
        await eventually(async () => expect(await store.listParked(group)).toHaveLength(1));
        await eventually(() => expect(new Set(handled).size).toBe(29));
        expect((await store.listParked(group))[0]!.event.id).toBe(events[17]!.id);
        expect(handled).not.toContain(events[17]!.id);
        expect(Math.max(...batchSizes)).toBeLessThanOrEqual(10);
        if (subject.orderedDelivery) {
          expect(handled).toEqual(events.filter((_, i) => i !== 17).map((e) => e.id)); // in order, each once
          if (subject.batchedDelivery !== false) expect(Math.max(...batchSizes)).toBeGreaterThan(1); // it really batched
        }
      });

      test('no cascade: once an event is parked, the later events of its stream are parked behind it unattempted, other streams flow, and a replay delivers the stream in order', async () => {
        const prefix = unique('cascade');
        const group = unique('group');
        let healed = false;
        const attempts = new Map<string, number>();
        const handled: RecordedEvent[] = [];
        subscriptions.push(
          await store.subscribeInBatches(
            group,
            { streamPrefix: prefix, from: 'start' },
            async (batch) => {
              for (const e of batch) attempts.set(e.id, (attempts.get(e.id) ?? 0) + 1);
              if (batch.some((e) => e.type === 'Poison') && !healed) throw new Error('projection bug: cannot handle Poison');
              handled.push(...batch);
            },
            { maxAttempts: 3, retryBackoffMs: 10, maxBatchSize: 10 },
          ),
        );
        const [a0, a1, a2, a3, b0] = [event('Fine'), event('Poison'), event('Fine'), event('Fine'), event('Fine')];
        await store.appendToStream(`${prefix}-a`, [a0, a1], { expectedRevision: 'no_stream' });
        await eventually(async () => expect((await store.listParked(group)).map((p) => p.event.id)).toEqual([a1.id]));
        await store.appendToStream(`${prefix}-a`, [a2, a3], { expectedRevision: 1n });
        await store.appendToStream(`${prefix}-b`, [b0], { expectedRevision: 'no_stream' });

        const parked = await eventually(async () => {
          const p = await store.listParked(group);
          expect(p.map((x) => x.event.id)).toEqual([a1.id, a2.id, a3.id]);
          return p;
        });
        await eventually(() => expect(handled.map((e) => e.id)).toContain(b0.id)); // another stream flows
        // The later events of the poisoned stream never reached the handler: no retry budget spent on them.
        expect(attempts.get(a2.id)).toBeUndefined();
        expect(attempts.get(a3.id)).toBeUndefined();
        expect(parked.map((p) => p.blocked)).toEqual([false, true, true]);
        expect(parked[1]!.attempts).toBe(0);
        expect(parked[1]!.error).toContain(BLOCKED_BY_PARKED);
        expect(parked[1]!.error).toContain(`${prefix}-a`);

        // Counted through the port: all of them, and those at or before a position.
        expect(await store.parkedSummary(group)).toMatchObject({ count: 3, first: parked[0]!.event.position });
        expect((await store.parkedSummary(group, parked[0]!.event.position)).count).toBe(1);
        const beforePoison = (await store.readStream(`${prefix}-a`))[0]!.position;
        expect(await store.parkedSummary(group, beforePoison)).toEqual({ count: 0 });
        expect((await store.parkedSummary(group)).oldestRecordedAt).toBe(parked[0]!.event.recordedAt);

        if (subject.orderedDelivery) {
          // A replay before the fix: the poison fails again and is parked again; the events behind it stay parked, unattempted.
          const parkedAt = parked[0]!.parkedAt;
          expect(await store.replayParked(group)).toBe(3);
          await eventually(async () => {
            const again = await store.listParked(group);
            expect(again.map((p) => p.event.id)).toEqual([a1.id, a2.id, a3.id]);
            expect(again[0]!.parkedAt).not.toBe(parkedAt);
            expect(again[0]!.attempts).toBe(2 * parked[0]!.attempts);
            expect(again.slice(1).map((p) => p.blocked)).toEqual([true, true]);
          });
          expect(attempts.get(a2.id)).toBeUndefined();
          expect(attempts.get(a3.id)).toBeUndefined();
        }

        healed = true;
        expect(await store.replayParked(group)).toBeGreaterThan(0);
        await eventually(async () => expect(await store.listParked(group)).toHaveLength(0));
        await eventually(() => expect(handled.map((e) => e.id)).toEqual(expect.arrayContaining([a1.id, a2.id, a3.id])));
        expect(await store.parkedSummary(group)).toEqual({ count: 0 });
        if (subject.orderedDelivery) {
          // The stream, in revision order, each event once.
          expect(handled.filter((e) => e.stream === `${prefix}-a`).map((e) => e.revision)).toEqual([0n, 1n, 2n, 3n]);
          expect(attempts.get(a2.id)).toBe(1);
        }
      });

      test('countEvents counts the events after a position that match a filter, without reading them', async () => {
        const prefix = unique('count');
        const types = [`${prefix}X`, `${prefix}Y`, `${prefix}X`, `${prefix}X`, `${prefix}Y`];
        await store.appendToStream(
          `${prefix}-1`,
          types.slice(0, 2).map((t) => event(t)),
          { expectedRevision: 'no_stream' },
        );
        await store.appendToStream(
          `${prefix}-2`,
          types.slice(2).map((t) => event(t)),
          { expectedRevision: 'no_stream' },
        );
        await store.appendToStream(unique('other'), [event(`${prefix}X`)], { expectedRevision: 'no_stream' });
        const mine = await eventually(async () => {
          const all = await store.readAll({ streamPrefix: prefix });
          expect(all).toHaveLength(5);
          return all;
        });
        expect(await store.countEvents({ streamPrefix: prefix })).toMatchObject({
          count: 5,
          oldestRecordedAt: mine[0]!.recordedAt,
          saturated: false,
        });
        expect((await store.countEvents({ streamPrefix: prefix, eventTypes: [`${prefix}X`] })).count).toBe(3);
        expect((await store.countEvents({ eventTypes: [`${prefix}X`] })).count).toBe(4);
        expect((await store.countEvents({ streamPrefix: prefix, fromPosition: mine[1]!.position })).count).toBe(3);
        expect(await store.countEvents({ streamPrefix: unique('nothing') })).toEqual({
          count: 0,
          oldestRecordedAt: undefined,
          saturated: false,
        });
      });

      test('many concurrent writers while a subscriber runs: it sees every event, none skipped, each stream in order', async () => {
        const prefix = unique('load');
        const seen: RecordedEvent[] = [];
        subscriptions.push(await store.subscribe(unique('group'), { streamPrefix: prefix, from: 'start' }, async (e) => void seen.push(e)));
        const streams = 8;
        const perStream = 25;
        const written = new Set<string>();
        await Promise.all(
          Array.from({ length: streams }, async (_, s) => {
            for (let i = 0; i < perStream; i++) {
              const e = event('Tick', { s, i });
              await store.appendToStream(`${prefix}-${s}`, [e], { expectedRevision: i === 0 ? 'no_stream' : BigInt(i - 1) });
              written.add(e.id);
            }
          }),
        );
        await eventually(() => expect(new Set(seen.map((e) => e.id))).toEqual(written), 60_000);
        if (subject.orderedDelivery) {
          expect(seen).toHaveLength(written.size); // no duplicates either
          for (let s = 0; s < streams; s++) {
            const revisions = seen.filter((e) => e.stream === `${prefix}-${s}`).map((e) => Number(e.revision));
            expect(revisions).toEqual(Array.from({ length: perStream }, (_, i) => i));
          }
        }
      });
    });

    // Tamper evidence (eventstore/hash-chain.ts). Tampering itself needs the adapter's storage: test/audit/.
    describe('hash chain', () => {
      const auditOf = () => {
        if (isHashChained(store)) return store.chainAudit();
        console.warn(`hash chain: the ${adapter} adapter keeps no hash chain (no chainAudit()); these cases are not run for it`);
        return undefined;
      };

      test('a clean stream verifies, and its hashes are reproduced in TypeScript from the events read through the port', async () => {
        const audit = auditOf();
        if (!audit) return;
        const stream = unique('chain');
        const tricky = {
          big: 1e21,
          small: 1.5e-7,
          third: 1 / 3,
          neg: -42,
          text: 'é "quoted" \\ \n\t\u0001 €𝄞',
          nested: { b: [1, { z: null, a: true }], aa: {} },
          é: 1,
          zz: 2,
          a: 3,
        };
        await store.appendToStream(stream, [event('Opened', tricky), event('Second', { n: 1 })], { expectedRevision: 'no_stream' });
        await store.appendToStream(stream, [event('Third')], { expectedRevision: 1n });
        await store.appendToStream(stream, [event('Fourth'), event('Fifth'), event('Sixth')], { expectedRevision: 'stream_exists' });
        await store.appendToStream(stream, [event('Seventh')], { expectedRevision: 'any' });
        // One more without occurredAt: the store stamps it (before hashing on PostgreSQL, after on EventStoreDB).
        await store.appendToStream(stream, [{ id: randomUUID(), type: 'Untimed', data: { n: 8 }, metadata: { correlationId: 'c' } }], {
          expectedRevision: 6n,
        });
        const events = await store.readStream(stream);
        // What each link says the store filled in after hashing (null in the hash): what an auditor reads from the API.
        const links = await audit.linksOf(events);
        expect(links.every((l) => l !== undefined)).toBe(true);
        if (audit.coversStoreStamps) expect(links.every((l) => (l?.unhashed ?? []).length === 0)).toBe(true);
        const expected = chainHashes(
          GENESIS_HASH,
          events.map((e, i) => chainedFieldsOf(e, links[i]?.unhashed)),
        );
        expect(links.map((l) => l?.hash)).toEqual(expected.map((h) => h.toString('hex')));
        const report = await audit.verify({ stream });
        expect(report).toMatchObject({ ok: true, events: 8, streams: 1, broken: [] });
        expect(report.lastHash).toBe(expected.at(-1)!.toString('hex'));
        // The store's own metadata carries no hash: the chain is the store's, not the writer's.
        expect(events.every((e) => !('auditHash' in e.metadata))).toBe(true);
      });

      test("concurrent appenders ('any', 'stream_exists', a specific revision; one or several events each) keep one unbroken chain", async () => {
        const audit = auditOf();
        if (!audit) return;
        const stream = unique('chain-race');
        // Several events per append, creating the stream at once, then one per append.
        await Promise.all(
          Array.from({ length: 4 }, (_, i) =>
            store.appendToStream(stream, [event('Pair', { i }), event('Pair', { i })], { expectedRevision: 'any' }),
          ),
        );
        await Promise.all(
          Array.from({ length: 12 }, (_, i) => store.appendToStream(stream, [event('Raced', { i })], { expectedRevision: 'any' })),
        );
        await Promise.allSettled(
          Array.from({ length: 6 }, () => store.appendToStream(stream, [event('Pinned')], { expectedRevision: 19n })),
        );
        await Promise.allSettled(
          Array.from({ length: 6 }, () =>
            store.appendToStream(stream, [event('PinnedPair'), event('PinnedPair')], { expectedRevision: 20n }),
          ),
        );
        await Promise.all(
          Array.from({ length: 4 }, () =>
            store.appendToStream(stream, [{ id: randomUUID(), type: 'Untimed', data: {}, metadata: { correlationId: randomUUID() } }], {
              expectedRevision: 'stream_exists',
            }),
          ),
        );
        const report = await audit.verify({ stream });
        expect(report).toMatchObject({ ok: true, events: 27, broken: [] });
      });
    });
  });
}
