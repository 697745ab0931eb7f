import { randomUUID } from 'node:crypto';
import { accountStream } from '../../domain/account-events';
import { transferStream } from '../../domain/transfer-events';
import type { RecordedEvent } from '../../eventstore/event-store';
import { ApiStack } from '../support/api-stack';
import { withClockOffset } from '../support/clock-offset';

/**
 * Issue 9, item 10: the time of an event the service causes comes from one clock (the event store's),
 * not from the clock of whichever process wrote it. The API and the worker run on different hosts; here
 * the worker's clock is 3 s behind the API's (only `Date` is skewed, around the worker-side code).
 */
describe('event time comes from the event store, not from the writing process', () => {
  let api: ApiStack;

  beforeAll(async () => {
    api = await ApiStack.create('event_clock', { startProjections: false });
  });
  afterAll(async () => api?.close());

  const MOVES: Record<string, 1 | -1> = {
    MoneyDeposited: 1,
    TransferCredited: 1,
    TransferRefunded: 1,
    MoneyWithdrawn: -1,
    TransferDebited: -1,
  };

  /** The states an account actually went through: before it existed, then after each event, in stream order. */
  function statesOf(events: RecordedEvent[]): { revision: number | null; balance: number }[] {
    const states: { revision: number | null; balance: number }[] = [{ revision: null, balance: 0 }];
    let balance = 0;
    for (const e of events) {
      balance += (MOVES[e.type] ?? 0) * Number(e.data.amount ?? 0);
      states.push({ revision: Number(e.revision), balance });
    }
    return states;
  }

  async function balanceAsOf(accountId: string, asOf: string): Promise<{ revision: number | null; balance: number }> {
    const res = await api.http().get(`/accounts/${accountId}/balance`).query({ asOf });
    expect(res.status).toBe(200);
    return { revision: res.body.revision as number | null, balance: res.body.balance as number };
  }

  test('a worker whose clock is 3 s behind cannot make balance?asOf report a balance that never existed', async () => {
    const open = async (ownerId: string) => {
      const res = await api.http().post('/accounts').send({ ownerId, currency: 'EUR' });
      expect(res.status).toBe(201);
      return res.body.accountId as string;
    };
    const from = await open('payer');
    const to = await open('payee');
    const deposit = await api.http().post(`/accounts/${from}/deposits`).send({ amount: 1_000 });
    expect(deposit.status).toBe(200);

    // The worker host: its clock is 3 s behind the API's. It spends the deposit right away.
    const transferId = `skew-${randomUUID().slice(0, 8)}`;
    const input = { transferId, fromAccountId: from, toAccountId: to, amount: 1_000, correlationId: `corr-${transferId}` };
    const activities = api.stack.realActivities();
    // Accepted as the API accepts it (the request recorded on the transfer's stream): the legs execute only that.
    expect((await api.stack.transfers.accept(input, { actor: 'test', correlationId: input.correlationId })).ok).toBe(true);
    await withClockOffset(-3_000, async () => {
      const { currency } = await activities.requestAndDebit(input);
      await activities.creditAndComplete({ ...input, currency });
    });

    const source = await api.store.readStream(accountStream(from));
    const target = await api.store.readStream(accountStream(to));
    const transfer = await api.store.readStream(transferStream(transferId));
    expect(source.map((e) => e.type)).toEqual(['AccountOpened', 'MoneyDeposited', 'TransferDebited']);
    expect(target.map((e) => e.type)).toEqual(['AccountOpened', 'TransferCredited']);
    expect(transfer.map((e) => e.type)).toEqual([
      'TransferRequested',
      'TransferSourceDebited',
      'TransferTargetCredited',
      'TransferCompleted',
    ]);

    const at = (e: RecordedEvent) => Date.parse(e.metadata.occurredAt);
    // The audit question, asked at every moment something happened (and just before it): every answer is a
    // state the account actually went through.
    for (const [accountId, events] of [
      [from, source],
      [to, target],
    ] as const) {
      const existed = statesOf(events);
      const neverExisted: unknown[] = [];
      for (const e of events) {
        for (const moment of [new Date(at(e) - 1).toISOString(), e.metadata.occurredAt]) {
          const state = await balanceAsOf(accountId, moment);
          if (!existed.some((s) => s.revision === state.revision && s.balance === state.balance))
            neverExisted.push({ asOf: moment, ...state });
        }
      }
      expect({ accountId, existed, neverExisted }).toEqual({ accountId, existed, neverExisted: [] });
    }

    const [, funding, debit] = source;
    // Cause before effect: the debit happened after the deposit that funded it, the credit after the debit,
    // and the transfer was requested after the deposit (all written by different processes).
    expect(at(debit!)).toBeGreaterThanOrEqual(at(funding!));
    expect(at(target[1]!)).toBeGreaterThanOrEqual(at(debit!));
    expect(at(transfer[0]!)).toBeGreaterThanOrEqual(at(funding!));
    // Within each stream, time never goes backwards; and an event the service caused happened when it was recorded.
    for (const stream of [source, target, transfer]) {
      for (let i = 1; i < stream.length; i++) expect(at(stream[i]!)).toBeGreaterThanOrEqual(at(stream[i - 1]!));
      for (const e of stream) expect(e.metadata.occurredAt).toBe(e.recordedAt);
    }

    // The transfer's steps carry the recorded times too.
    const steps = (await api.stack.transfers.load(transferId)).state.steps;
    expect(steps.map((s) => s.at)).toEqual(transfer.map((e) => e.recordedAt));
  });
});
