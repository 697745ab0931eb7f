import { randomUUID } from 'node:crypto';
import type { TransferActivities } from '../../activities/transfer-activities';
import { accountStream } from '../../domain/account-events';
import { acceptTransfer } from '../../temporal/transfer-client';
import { transferStatusQuery } from '../../workflows/transfer-saga-contract';
import { TransferStack } from '../support/transfer-stack';
import { waitUntil } from '../support/wait-until';
import { activityExecutions } from '../support/workflow-history';

/**
 * A credit whose append lands but which keeps reporting failure (the store answers, then the
 * connection drops, again and again) must never lead to a refund: the source would get its money
 * back while the target keeps the credit, and money would be created. The saga stays pending and
 * retries until the credit reports success, then completes.
 */
describe('credit outage after the credit landed', () => {
  let stack: TransferStack;
  let outage = true;
  let creditAttempts = 0;

  beforeAll(async () => {
    stack = await TransferStack.create('creditoutage');
    const real = stack.realActivities();
    const activities: TransferActivities = {
      ...real,
      creditAndComplete: async (input) => {
        creditAttempts += 1;
        await real.creditAndComplete(input);
        if (outage) throw new Error('connection reset after the credit was appended');
      },
    };
    await stack.startWorker(activities);
  });
  afterAll(async () => stack?.close());

  test('the saga keeps retrying the credit, never refunds, and completes once the outage ends', async () => {
    const from = await stack.openAccount(1_000);
    const to = await stack.openAccount(0);
    const transferId = randomUUID();
    const { handle } = await acceptTransfer(stack, {
      transferId,
      fromAccountId: from,
      toAccountId: to,
      amount: 400,
    });

    await waitUntil('four failed credit attempts', () => creditAttempts >= 4, 60_000);
    expect((await handle.query(transferStatusQuery)).status).toBe('pending');
    expect(await stack.balance(from)).toBe(600);
    expect(await stack.balance(to)).toBe(400);
    expect(await stack.eventTypes(accountStream(from))).not.toContain('TransferRefunded');

    // The credit runs as a local activity first; past its short local budget it is handed to the remote
    // activity, whose retry policy has no attempt limit (a credit that landed must never be refunded).
    const history = await handle.fetchHistory();
    const scheduled = (history.events ?? []).map((e) => e.activityTaskScheduledEventAttributes).filter((a) => a != null);
    const credit = scheduled.find((a) => a!.activityType?.name === 'creditAndComplete');
    expect(credit?.retryPolicy?.maximumAttempts ?? 0).toBe(0);
    // The debit ran as a local activity: a marker names it and its result.
    expect(activityExecutions(history).find((e) => e.activityType === 'requestAndDebit')).toMatchObject({
      local: true,
      outcome: 'completed',
    });

    // Remote retries happen on the server and add no history events: a credit retried for an hour
    // keeps the history it has now.
    const attemptsSoFar = creditAttempts;
    await waitUntil('two more credit attempts', () => creditAttempts >= attemptsSoFar + 2, 60_000);
    expect((await handle.fetchHistory()).events?.length).toBe(history.events?.length);

    outage = false;
    const result = await handle.result();
    expect(result.status).toBe('completed');
    expect(await stack.balance(from)).toBe(600);
    expect(await stack.balance(to)).toBe(400);
    expect((await stack.eventTypes(accountStream(to))).filter((t) => t === 'TransferCredited')).toHaveLength(1);
  });
});
