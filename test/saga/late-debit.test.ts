import { randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { accountStream } from '../../domain/account-events';
import { transferStream } from '../../domain/transfer-events';
import { TransferStack } from '../support/transfer-stack';

/**
 * Activity attempts that Temporal has given up on can still be running (a stalled connection wakes
 * up later). Once the saga settled a transfer without a debit, such a late debit must not land:
 * the compensation voids the transfer on the source account, and the debit decides against it.
 */
describe('a late debit after the saga gave up', () => {
  let stack: TransferStack;
  beforeAll(async () => {
    stack = await TransferStack.create('latedebit');
  });
  afterAll(async () => stack?.close());

  test('the refund voids the transfer on the source; a debit attempt arriving afterwards is refused and moves nothing', async () => {
    const activities = stack.realActivities();
    const from = await stack.openAccount(1_000);
    const to = await stack.openAccount(0);
    const input = { transferId: randomUUID(), fromAccountId: from, toAccountId: to, amount: 400 };

    // The saga's path when every debit attempt timed out: compensate (nothing to refund), record failed.
    expect(await activities.refundSource(input)).toEqual({ refunded: 0 });
    await activities.failTransfer({ ...input, reason: 'infrastructure', message: 'debit attempts exhausted' });

    // The stalled attempt wakes up.
    const late = await activities.requestAndDebit(input).catch((e: unknown) => e);
    expect(late).toBeInstanceOf(ApplicationFailure);
    expect((late as ApplicationFailure).type).toBe('transfer_finished');
    expect((late as ApplicationFailure).nonRetryable).toBe(true);

    expect(await stack.balance(from)).toBe(1_000);
    expect(await stack.eventTypes(accountStream(from))).toEqual(['AccountOpened', 'MoneyDeposited', 'TransferDebitVoided']);
    // The outcome was recorded with its request, although the request step itself never ran.
    expect(await stack.eventTypes(transferStream(input.transferId))).toEqual(['TransferRequested', 'TransferFailed']);
  });
});
