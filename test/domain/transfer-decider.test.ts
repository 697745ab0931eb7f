import type { Decision } from '../../domain/rejection';
import { checkTransferRequest, decideTransfer, sameRequest, type TransferCommand } from '../../domain/transfer-decider';
import type { TransferEvent, TransferRequest } from '../../domain/transfer-events';
import { evolveTransfer, initialTransferState, type TransferState } from '../../domain/transfer-state';

const REQUEST: TransferRequest = { transferId: 'tr-1', fromAccountId: 'acc-a', toAccountId: 'acc-b', amount: 2_500 };
const requestCmd = (request: TransferRequest = REQUEST): TransferCommand => ({ type: 'RequestTransfer', request });
const DEBITED: TransferCommand = { type: 'RecordSourceDebited', accountId: 'acc-a', amount: 2_500, currency: 'EUR' };
const CREDITED: TransferCommand = { type: 'RecordTargetCredited', accountId: 'acc-b', amount: 2_500 };
const REFUNDED: TransferCommand = { type: 'RecordSourceRefunded', accountId: 'acc-a', amount: 2_500 };
const COMPLETE: TransferCommand = { type: 'CompleteTransfer' };
const FAIL: TransferCommand = { type: 'FailTransfer', reason: 'insufficient_funds', message: 'not enough' };
const COMPENSATE: TransferCommand = { type: 'CompensateTransfer', reason: 'account_closed', message: 'target closed' };

function accepted(decision: Decision<TransferEvent>): TransferEvent[] {
  if (!decision.ok) throw new Error(`expected acceptance, got ${decision.rejection.type}`);
  return decision.events;
}

/** Decides and folds each command, stamping events with increasing times. */
function run(commands: TransferCommand[], from: TransferState = initialTransferState()): { state: TransferState; events: TransferEvent[] } {
  let state = from;
  const events: TransferEvent[] = [];
  commands.forEach((command, i) => {
    for (const event of accepted(decideTransfer(state, command))) {
      events.push(event);
      state = evolveTransfer(state, { ...event, occurredAt: at(i) });
    }
  });
  return { state, events };
}
const at = (n: number) => new Date(Date.UTC(2024, 0, 1, 0, 0, n)).toISOString();
const stateOf = (...commands: TransferCommand[]) => run(commands).state;

describe('decideTransfer: RequestTransfer', () => {
  test('a new request is recorded', () => {
    expect(decideTransfer(initialTransferState(), requestCmd())).toEqual({
      ok: true,
      events: [{ type: 'TransferRequested', data: REQUEST }],
    });
  });

  test('the same payload again decides to no events', () => {
    expect(decideTransfer(stateOf(requestCmd()), requestCmd({ ...REQUEST }))).toEqual({ ok: true, events: [] });
  });

  test('the same payload is still a no-op after the transfer finished', () => {
    const done = stateOf(requestCmd(), DEBITED, CREDITED, COMPLETE);
    expect(decideTransfer(done, requestCmd())).toEqual({ ok: true, events: [] });
  });

  test.each<[string, Partial<TransferRequest>]>([
    ['another amount', { amount: 2_501 }],
    ['another source', { fromAccountId: 'acc-c' }],
    ['another target', { toAccountId: 'acc-c' }],
    ['an invalid amount', { amount: -1 }],
    ['the same account on both sides', { toAccountId: 'acc-a' }],
  ])('the same id with %s -> transfer_conflict', (_label, change) => {
    const decision = decideTransfer(stateOf(requestCmd()), requestCmd({ ...REQUEST, ...change }));
    expect(decision).toMatchObject({ ok: false, rejection: { type: 'transfer_conflict' } });
  });

  test.each<[string, unknown]>([
    ['zero', 0],
    ['negative', -100],
    ['fraction', 10.5],
    ['NaN', NaN],
    ['Infinity', Infinity],
    ['2**53', 2 ** 53],
    ["the string '100'", '100'],
  ])('an amount of %s -> invalid_amount', (_label, amount) => {
    const decision = decideTransfer(initialTransferState(), requestCmd({ ...REQUEST, amount: amount as number }));
    expect(decision).toMatchObject({ ok: false, rejection: { type: 'invalid_amount' } });
  });

  test('the same account on both sides -> same_account', () => {
    const decision = decideTransfer(initialTransferState(), requestCmd({ ...REQUEST, toAccountId: REQUEST.fromAccountId }));
    expect(decision).toMatchObject({ ok: false, rejection: { type: 'same_account' } });
  });

  test('checkTransferRequest: amount is checked before the accounts', () => {
    expect(checkTransferRequest({ ...REQUEST, toAccountId: 'acc-a', amount: 0 })).toMatchObject({
      ok: false,
      rejection: { type: 'invalid_amount' },
    });
    expect(checkTransferRequest(REQUEST)).toBeUndefined();
  });

  test('sameRequest compares every field of the payload', () => {
    expect(sameRequest(REQUEST, { ...REQUEST })).toBe(true);
    for (const change of [{ transferId: 'tr-2' }, { fromAccountId: 'x' }, { toAccountId: 'x' }, { amount: 1 }]) {
      expect(sameRequest(REQUEST, { ...REQUEST, ...change })).toBe(false);
    }
  });
});

describe('decideTransfer: steps are recorded once', () => {
  const requested = () => stateOf(requestCmd());

  test.each<[string, TransferCommand, TransferEvent]>([
    [
      'RecordSourceDebited',
      DEBITED,
      { type: 'TransferSourceDebited', data: { transferId: 'tr-1', accountId: 'acc-a', amount: 2_500, currency: 'EUR' } },
    ],
    ['RecordTargetCredited', CREDITED, { type: 'TransferTargetCredited', data: { transferId: 'tr-1', accountId: 'acc-b', amount: 2_500 } }],
    ['RecordSourceRefunded', REFUNDED, { type: 'TransferSourceRefunded', data: { transferId: 'tr-1', accountId: 'acc-a', amount: 2_500 } }],
    ['CompleteTransfer', COMPLETE, { type: 'TransferCompleted', data: { transferId: 'tr-1' } }],
    ['FailTransfer', FAIL, { type: 'TransferFailed', data: { transferId: 'tr-1', reason: 'insufficient_funds', message: 'not enough' } }],
    [
      'CompensateTransfer',
      COMPENSATE,
      { type: 'TransferCompensated', data: { transferId: 'tr-1', reason: 'account_closed', message: 'target closed' } },
    ],
  ])('%s: recorded the first time (with the transfer id), a no-op the second time', (_name, command, expected) => {
    const first = accepted(decideTransfer(requested(), command));
    expect(first).toEqual([expected]);
    const after = run([command], requested()).state;
    expect(decideTransfer(after, command)).toEqual({ ok: true, events: [] });
  });

  test('a step recorded again with other values is still a no-op (the first record stands)', () => {
    const state = stateOf(requestCmd(), DEBITED, CREDITED, REFUNDED);
    expect(decideTransfer(state, { ...DEBITED, amount: 1, currency: 'USD' } as TransferCommand)).toEqual({ ok: true, events: [] });
    expect(decideTransfer(state, { ...CREDITED, amount: 1 } as TransferCommand)).toEqual({ ok: true, events: [] });
    expect(decideTransfer(state, { ...REFUNDED, amount: 1 } as TransferCommand)).toEqual({ ok: true, events: [] });
    expect(state).toMatchObject({ debited: 2_500, credited: 2_500, refunded: 2_500, currency: 'EUR' });
  });

  test.each<[string, TransferCommand[], TransferCommand]>([
    ['completed -> complete again', [requestCmd(), DEBITED, CREDITED, COMPLETE], COMPLETE],
    ['failed -> fail again', [requestCmd(), FAIL], FAIL],
    [
      'failed -> fail again with another reason',
      [requestCmd(), FAIL],
      { type: 'FailTransfer', reason: 'infrastructure', message: 'other' },
    ],
    ['compensated -> compensate again', [requestCmd(), DEBITED, REFUNDED, COMPENSATE], COMPENSATE],
  ])('terminal transitions are idempotent: %s', (_label, history, again) => {
    const { state, events } = run(history);
    expect(decideTransfer(state, again)).toEqual({ ok: true, events: [] });
    expect(run([again], state).state).toEqual(state);
    expect(events.length).toBe(history.length);
  });
});

describe('evolveTransfer', () => {
  test('starts empty', () => {
    expect(initialTransferState()).toEqual({ status: 'none', steps: [], reversals: new Map() });
  });

  test('happy path: pending until completed, with every step and its time', () => {
    const { state, events } = run([requestCmd(), DEBITED, CREDITED, COMPLETE]);
    expect(events.map((e) => e.type)).toEqual([
      'TransferRequested',
      'TransferSourceDebited',
      'TransferTargetCredited',
      'TransferCompleted',
    ]);
    expect(state).toEqual({
      status: 'completed',
      request: REQUEST,
      currency: 'EUR',
      debited: 2_500,
      credited: 2_500,
      reversals: new Map(),
      steps: [
        { name: 'requested', at: at(0) },
        { name: 'source_debited', at: at(1) },
        { name: 'target_credited', at: at(2) },
        { name: 'completed', at: at(3) },
      ],
    });
  });

  test('status is pending after the request and after each intermediate step', () => {
    let state = initialTransferState();
    const statuses: string[] = [];
    for (const command of [requestCmd(), DEBITED, CREDITED]) {
      state = run([command], state).state;
      statuses.push(state.status);
    }
    expect(statuses).toEqual(['pending', 'pending', 'pending']);
  });

  test('failure: status failed, reason and message kept', () => {
    const { state } = run([requestCmd(), FAIL]);
    expect(state).toMatchObject({ status: 'failed', failureReason: 'insufficient_funds', failureMessage: 'not enough' });
    expect(state.steps.map((s) => s.name)).toEqual(['requested', 'failed']);
    expect(state.debited).toBeUndefined();
  });

  test('compensation: debited, refunded, compensated', () => {
    const { state } = run([requestCmd(), DEBITED, REFUNDED, COMPENSATE]);
    expect(state).toMatchObject({
      status: 'compensated',
      debited: 2_500,
      refunded: 2_500,
      failureReason: 'account_closed',
      failureMessage: 'target closed',
    });
    expect(state.credited).toBeUndefined();
    expect(state.steps.map((s) => s.name)).toEqual(['requested', 'source_debited', 'source_refunded', 'compensated']);
  });

  test('uses the time it is given and does not mutate its input', () => {
    const before = stateOf(requestCmd());
    const copy = structuredClone(before);
    const after = evolveTransfer(before, {
      type: 'TransferCompleted',
      data: { transferId: 'tr-1' },
      occurredAt: '2030-05-05T05:05:05.000Z',
    });
    expect(before).toEqual(copy);
    expect(after.steps.at(-1)).toEqual({ name: 'completed', at: '2030-05-05T05:05:05.000Z' });
    expect(after.steps).not.toBe(before.steps);
  });
});

describe('decideTransfer: a finished transfer is final', () => {
  const rejectionOf = (decision: Decision<TransferEvent>) => (decision.ok ? 'accepted' : decision.rejection.type);

  test.each([
    ['completed', [requestCmd(), DEBITED, CREDITED, COMPLETE]],
    ['failed', [requestCmd(), FAIL]],
    ['compensated', [requestCmd(), DEBITED, REFUNDED, COMPENSATE]],
  ] as const)('%s: no other outcome and no further step', (status, commands) => {
    const state = stateOf(...commands);
    expect(state.status).toBe(status);
    const others = [COMPLETE, FAIL, COMPENSATE].filter((c) => c !== commands[commands.length - 1]);
    for (const other of others) expect(rejectionOf(decideTransfer(state, other))).toBe('transfer_finished');
    for (const step of [DEBITED, CREDITED, REFUNDED].filter((c) => !(commands as readonly TransferCommand[]).includes(c))) {
      expect(rejectionOf(decideTransfer(state, step))).toBe('transfer_finished');
    }
  });

  test('a step of a transfer never requested is refused (no event with an empty transfer id)', () => {
    for (const command of [DEBITED, CREDITED, REFUNDED, COMPLETE, FAIL, COMPENSATE]) {
      expect(rejectionOf(decideTransfer(initialTransferState(), command))).toBe('transfer_not_found');
    }
  });
});

describe('decideTransfer: retries after the outcome', () => {
  test('a step already recorded is still a no-op once the transfer finished (a retried activity succeeds)', () => {
    const completed = stateOf(requestCmd(), DEBITED, CREDITED, COMPLETE);
    expect(decideTransfer(completed, CREDITED)).toEqual({ ok: true, events: [] });
    expect(decideTransfer(completed, DEBITED)).toEqual({ ok: true, events: [] });
    expect(decideTransfer(completed, COMPLETE)).toEqual({ ok: true, events: [] });
    const compensated = stateOf(requestCmd(), DEBITED, REFUNDED, COMPENSATE);
    expect(decideTransfer(compensated, REFUNDED)).toEqual({ ok: true, events: [] });
  });
});

describe('decideTransfer: reversal holds on a completed transfer', () => {
  const reserve = (reversalId: string, amount: number) => ({ type: 'ReserveReversal', reversalId, amount }) as const;
  const release = (reversalId: string) => ({ type: 'ReleaseReversal', reversalId }) as const;
  const completed = () => run([requestCmd(), DEBITED, CREDITED, COMPLETE]).state;

  test('holds never pass the amount; a released hold gives its amount back; retries are no-ops', () => {
    let state = completed();
    state = run([reserve('r-1', 1_000)], state).state;
    expect(run([reserve('r-1', 1_000)], state).events).toEqual([]); // retried: nothing new
    state = run([reserve('r-2', 1_500)], state).state;
    expect(decideTransfer(state, reserve('r-3', 1))).toMatchObject({ ok: false, rejection: { type: 'reversal_exceeds_original' } });
    state = run([release('r-2')], state).state;
    expect(run([release('r-2')], state).events).toEqual([]);
    expect(decideTransfer(state, reserve('r-3', 1_500))).toMatchObject({ ok: true });
    expect(decideTransfer(state, reserve('r-3', 1_501))).toMatchObject({ ok: false, rejection: { type: 'reversal_exceeds_original' } });
    expect(decideTransfer(state, reserve('r-1', 999))).toMatchObject({ ok: false, rejection: { type: 'transfer_conflict' } });
  });

  test('only a completed transfer can be reversed', () => {
    const pending = run([requestCmd(), DEBITED]).state;
    expect(decideTransfer(pending, reserve('r-1', 1))).toMatchObject({ ok: false, rejection: { type: 'transfer_not_completed' } });
    expect(decideTransfer(initialTransferState(), reserve('r-1', 1))).toMatchObject({
      ok: false,
      rejection: { type: 'transfer_not_found' },
    });
  });
});

describe('reversal holds given back are final', () => {
  test('a released hold cannot be reserved again (a reversal run again after it failed holds nothing)', () => {
    let state = initialTransferState();
    state = evolveTransfer(state, {
      type: 'TransferRequested',
      data: { transferId: 't', fromAccountId: 'a', toAccountId: 'b', amount: 1_000 },
    } as never);
    state = evolveTransfer(state, { type: 'TransferCompleted', data: { transferId: 't' } } as never);
    state = evolveTransfer(state, { type: 'TransferReversalReserved', data: { transferId: 't', reversalId: 'r', amount: 400 } } as never);
    state = evolveTransfer(state, { type: 'TransferReversalReleased', data: { transferId: 't', reversalId: 'r' } } as never);
    expect(decideTransfer(state, { type: 'ReserveReversal', reversalId: 'r', amount: 400 })).toMatchObject({
      ok: false,
      rejection: { type: 'transfer_finished' },
    });
    expect(decideTransfer(state, { type: 'ReserveReversal', reversalId: 'r2', amount: 1_000 })).toMatchObject({ ok: true });
  });
});
