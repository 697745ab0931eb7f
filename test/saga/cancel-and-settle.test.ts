import { randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { createTransferActivities, type TransferActivities } from '../../activities/transfer-activities';
import { handleAccountCommand } from '../../application/account-commands';
import { accountStream } from '../../domain/account-events';
import { transferStream } from '../../domain/transfer-events';
import { acceptTransfer } from '../../temporal/transfer-client';
import { RETRY_SETTLEMENT_SIGNAL, transferStatusQuery } from '../../workflows/transfer-saga-contract';
import { TransferStack } from '../support/transfer-stack';
import { waitUntil } from '../support/wait-until';

/**
 * An operator's cancel (`temporal workflow cancel`) at any stage of the saga must never create or
 * destroy money, and every saga ends in a terminal outcome on the transfer's stream, or stays open
 * as `needs_attention` for a person.
 */
describe('cancelling a saga, and settlements that cannot finish', () => {
  let stack: TransferStack;
  /** Per transfer: how the wrapped activities misbehave. */
  const modes = new Map<string, 'credit-lands-then-recording-fails' | 'credit-outage' | 'debit-outage' | 'settlement-refused'>();
  const attempts = new Map<string, number>();
  const attention: { transferId: string; reason: string }[] = [];
  const count = (id: string) => attempts.set(id, (attempts.get(id) ?? 0) + 1);

  beforeAll(async () => {
    stack = await TransferStack.create('cancelsettle');
    const real = createTransferActivities({
      accounts: stack.accounts,
      transfers: stack.transfers,
      observer: { conflict: () => undefined, needsAttention: (transferId, reason) => attention.push({ transferId, reason }) },
    });
    const activities: TransferActivities = {
      ...real,
      requestAndDebit: async (input) => {
        if (modes.get(input.transferId) === 'debit-outage') {
          count(input.transferId);
          throw new Error('event store unreachable');
        }
        return real.requestAndDebit(input);
      },
      creditAndComplete: async (input) => {
        const mode = modes.get(input.transferId);
        if (mode === 'credit-lands-then-recording-fails') {
          count(input.transferId);
          // The credit's append to the target lands; its append to the transfer stream then fails.
          const credited = await handleAccountCommand(stack.accounts, input.toAccountId, {
            type: 'CreditForTransfer',
            transferId: input.transferId,
            amount: input.amount,
            currency: input.currency,
            fromAccountId: input.fromAccountId,
          });
          if (!credited.ok) throw ApplicationFailure.nonRetryable(credited.rejection.message, credited.rejection.type);
          throw new Error('connection reset while recording the credit on the transfer stream');
        }
        if (mode === 'credit-outage') {
          count(input.transferId);
          throw new Error('event store unreachable');
        }
        return real.creditAndComplete(input);
      },
      settleTransfer: async (input) => {
        if (modes.get(input.transferId) === 'settlement-refused') {
          count(input.transferId);
          throw ApplicationFailure.nonRetryable('the transfer stream already ended otherwise', 'transfer_finished');
        }
        return real.settleTransfer(input);
      },
    };
    await stack.startWorker(activities);
  });
  afterAll(async () => stack?.close());

  async function begin(mode: Parameters<typeof modes.set>[1] | undefined, options: { closeTarget?: boolean } = {}) {
    const from = await stack.openAccount(1_000);
    const to = await stack.openAccount(0);
    if (options.closeTarget) {
      const closed = await handleAccountCommand(stack.accounts, to, { type: 'CloseAccount' });
      if (!closed.ok) throw new Error(closed.rejection.message);
    }
    const transferId = randomUUID();
    if (mode) modes.set(transferId, mode);
    const input = { transferId, fromAccountId: from, toAccountId: to, amount: 400, correlationId: `cancel-${transferId}` };
    const { handle } = await acceptTransfer(stack, input);
    return { from, to, transferId, input, handle };
  }

  const total = async (a: string, b: string) => (await stack.balance(a)) + (await stack.balance(b));

  test('cancelled after the credit landed on the target but before the transfer stream recorded it: the transfer completes, nothing is refunded', async () => {
    const { from, to, transferId, handle } = await begin('credit-lands-then-recording-fails');
    await waitUntil('two credit attempts', () => (attempts.get(transferId) ?? 0) >= 2, 60_000);
    await handle.cancel();
    const result = await handle.result();

    expect(result.status).toBe('completed');
    expect(await stack.balance(from)).toBe(600);
    expect(await stack.balance(to)).toBe(400);
    expect(await total(from, to)).toBe(1_000);
    expect(await stack.eventTypes(accountStream(from))).not.toContain('TransferRefunded');
    expect((await stack.eventTypes(accountStream(to))).filter((t) => t === 'TransferCredited')).toHaveLength(1);
    expect((await stack.eventTypes(transferStream(transferId))).at(-1)).toBe('TransferCompleted');
  });

  test('cancelled while the credit cannot be made: the credit is voided on the target, the source refunded; a late credit attempt is refused', async () => {
    const { from, to, transferId, input, handle } = await begin('credit-outage');
    await waitUntil('two credit attempts', () => (attempts.get(transferId) ?? 0) >= 2, 60_000);
    await handle.cancel();
    const result = await handle.result();

    expect(result).toMatchObject({ status: 'compensated', failureReason: 'cancelled' });
    expect(await stack.balance(from)).toBe(1_000);
    expect(await stack.balance(to)).toBe(0);
    expect(await stack.eventTypes(accountStream(to))).toEqual(['AccountOpened', 'TransferCreditVoided']);
    expect(await stack.eventTypes(transferStream(transferId))).toEqual([
      'TransferRequested',
      'TransferSourceDebited',
      'TransferSourceRefunded',
      'TransferCompensated',
    ]);

    // The attempt that was in flight when the operator cancelled wakes up.
    modes.delete(transferId);
    const late = await stack
      .realActivities()
      .creditAndComplete({ ...input, currency: 'EUR' })
      .catch((e: unknown) => e);
    expect(late).toBeInstanceOf(ApplicationFailure);
    expect((late as ApplicationFailure).type).toBe('transfer_finished');
    expect(await stack.balance(to)).toBe(0);
    expect(await total(from, to)).toBe(1_000);
  });

  test('cancelled before the debit could land: failed, nothing moved, and a late debit attempt is refused', async () => {
    const { from, to, transferId, input, handle } = await begin('debit-outage');
    await waitUntil('two debit attempts', () => (attempts.get(transferId) ?? 0) >= 2, 60_000);
    await handle.cancel();
    const result = await handle.result();

    expect(result).toMatchObject({ status: 'failed', failureReason: 'cancelled' });
    expect(await stack.balance(from)).toBe(1_000);
    expect(await stack.eventTypes(accountStream(from))).toEqual(['AccountOpened', 'MoneyDeposited', 'TransferDebitVoided']);
    expect(await stack.eventTypes(accountStream(to))).toEqual(['AccountOpened']); // no credit was ever attempted
    expect(await stack.eventTypes(transferStream(transferId))).toEqual(['TransferRequested', 'TransferFailed']);

    modes.delete(transferId);
    const late = await stack
      .realActivities()
      .requestAndDebit(input)
      .catch((e: unknown) => e);
    expect((late as ApplicationFailure).type).toBe('transfer_finished');
    expect(await stack.balance(from)).toBe(1_000);
  });

  test('a cancel after the saga completed changes nothing', async () => {
    const { from, to, handle } = await begin(undefined);
    expect((await handle.result()).status).toBe('completed');
    await handle.cancel().catch(() => undefined); // already closed: the server refuses, nothing happens
    expect(await stack.balance(from)).toBe(600);
    expect(await stack.balance(to)).toBe(400);
  });

  test('a settlement that is refused leaves the saga open as needs_attention (search attribute, metric) until a person asks it to retry', async () => {
    const { from, to, transferId, handle } = await begin('settlement-refused', { closeTarget: true });
    await waitUntil('needs_attention', async () => (await handle.query(transferStatusQuery)).status === 'needs_attention', 60_000);

    expect(attention).toContainEqual({ transferId, reason: 'transfer_finished' });
    await waitUntil(
      'the TransferStatus search attribute',
      async () => (await handle.describe()).searchAttributes.TransferStatus?.[0] === 'needs_attention',
      30_000,
    );
    expect((await handle.describe()).status.name).toBe('RUNNING');
    // The transfer's stream has no outcome yet: it is not silently failed.
    const types = await stack.eventTypes(transferStream(transferId));
    expect(types).not.toContain('TransferFailed');
    expect(types).not.toContain('TransferCompensated');
    expect(await stack.balance(from)).toBe(600); // debited, not yet refunded

    // The person fixes the cause, then asks for another try.
    modes.delete(transferId);
    await handle.signal(RETRY_SETTLEMENT_SIGNAL);
    const result = await handle.result();
    expect(result).toMatchObject({ status: 'compensated', failureReason: 'account_closed' });
    expect(await stack.balance(from)).toBe(1_000);
    expect(await stack.balance(to)).toBe(0);
    expect((await stack.eventTypes(transferStream(transferId))).at(-1)).toBe('TransferCompensated');
  });
});
