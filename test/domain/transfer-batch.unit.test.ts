import { fold } from '../../domain/decider';
import {
  batchOutcome,
  checkBatchRequest,
  countOutcomes,
  transferBatchDecider,
  type BatchRequest,
  type TransferBatchCommand,
  type TransferBatchEvent,
  type TransferBatchState,
} from '../../domain/transfer-batch';

/** The batch stream's decider, given / when / then. */
const given = (events: TransferBatchEvent[]): TransferBatchState =>
  fold(transferBatchDecider, events, transferBatchDecider.initialState('b1'));
const when = (state: TransferBatchState, command: TransferBatchCommand) => transferBatchDecider.decide(state, command);

const request: BatchRequest = {
  batchId: 'b1',
  atomic: false,
  items: [
    { transferId: 't1', fromAccountId: 'a', toAccountId: 'b', amount: 100 },
    { transferId: 't2', fromAccountId: 'a', toAccountId: 'c', amount: 50 },
  ],
};
const accepted = { actor: 'key-1', correlationId: 'corr-1' };
const acceptedEvent: TransferBatchEvent = { type: 'TransferBatchAccepted', data: { ...request, accepted } };

describe('transfer batch decider', () => {
  test('accepting a batch records it with who asked; the same batch again records nothing', () => {
    expect(when(given([]), { type: 'AcceptBatch', request, accepted })).toEqual({ ok: true, events: [acceptedEvent] });
    expect(when(given([acceptedEvent]), { type: 'AcceptBatch', request, accepted: { actor: 'someone-else' } })).toEqual({
      ok: true,
      events: [],
    });
  });

  test('the same batch id with another payload is a conflict: another amount, another order, atomic or not', () => {
    const state = given([acceptedEvent]);
    const variants: BatchRequest[] = [
      { ...request, items: [{ ...request.items[0]!, amount: 101 }, request.items[1]!] },
      { ...request, items: [request.items[1]!, request.items[0]!] },
      { ...request, atomic: true },
      { ...request, items: [request.items[0]!] },
    ];
    for (const variant of variants)
      expect(when(state, { type: 'AcceptBatch', request: variant, accepted })).toMatchObject({
        ok: false,
        rejection: { type: 'transfer_conflict' },
      });
  });

  test('refused items are recorded once each; items that are not the batch are ignored', () => {
    const state = given([acceptedEvent]);
    const refuse = { transferId: 't2', reason: 'transfer_conflict' as const, message: 'taken' };
    const first = when(state, {
      type: 'RejectItems',
      items: [refuse, { transferId: 'not-in-batch', reason: 'transfer_conflict', message: 'x' }],
    });
    expect(first).toEqual({ ok: true, events: [{ type: 'TransferBatchItemsRejected', data: { batchId: 'b1', items: [refuse] } }] });
    const after = given([acceptedEvent, ...(first.ok ? first.events : [])]);
    expect(after.rejected.get('t2')).toEqual(refuse);
    expect(when(after, { type: 'RejectItems', items: [refuse] })).toEqual({ ok: true, events: [] });
  });

  test('a batch settles once: a retried settlement records nothing', () => {
    const counts = { completed: 1, failed: 1, compensated: 0 };
    const settled: TransferBatchEvent = { type: 'TransferBatchSettled', data: { batchId: 'b1', outcome: 'partially_completed', counts } };
    expect(when(given([acceptedEvent]), { type: 'SettleBatch', outcome: 'partially_completed', counts })).toEqual({
      ok: true,
      events: [settled],
    });
    const state = given([acceptedEvent, settled]);
    expect(state).toMatchObject({ status: 'partially_completed', counts });
    expect(when(state, { type: 'SettleBatch', outcome: 'completed', counts: { completed: 2, failed: 0, compensated: 0 } })).toEqual({
      ok: true,
      events: [],
    });
    expect(when(given([]), { type: 'SettleBatch', outcome: 'completed', counts })).toMatchObject({
      ok: false,
      rejection: { type: 'transfer_not_found' },
    });
  });

  test('a batch is checked whole before anything is written, naming the first bad item', () => {
    expect(checkBatchRequest(request)).toBeUndefined();
    expect(checkBatchRequest({ ...request, items: [] })).toEqual({ field: 'items', message: expect.any(String) });
    expect(checkBatchRequest(request, 1)).toEqual({ field: 'items', message: 'A batch holds at most 1 items' });
    const bad = (i: number, item: Partial<BatchRequest['items'][number]>) => ({
      ...request,
      items: request.items.map((x, k) => (k === i ? { ...x, ...item } : x)),
    });
    expect(checkBatchRequest(bad(1, { amount: 0 }))?.field).toBe('items[1].amount');
    expect(checkBatchRequest(bad(1, { amount: 1.5 }))?.field).toBe('items[1].amount');
    expect(checkBatchRequest(bad(1, { amount: Number.MAX_SAFE_INTEGER + 1 }))?.field).toBe('items[1].amount');
    expect(checkBatchRequest(bad(0, { toAccountId: 'a' }))?.field).toBe('items[0].toAccountId');
    expect(checkBatchRequest(bad(1, { transferId: 't1' }))?.field).toBe('items[1].transferId');
  });

  test("the batch's outcome follows its items'", () => {
    expect(batchOutcome(countOutcomes(['completed', 'completed']))).toBe('completed');
    expect(batchOutcome(countOutcomes(['completed', 'failed']))).toBe('partially_completed');
    expect(batchOutcome(countOutcomes(['completed', 'compensated']))).toBe('partially_completed');
    expect(batchOutcome(countOutcomes(['failed', 'compensated']))).toBe('failed');
    expect(countOutcomes(['failed', 'failed', 'compensated'])).toEqual({ completed: 0, failed: 2, compensated: 1 });
  });
});
