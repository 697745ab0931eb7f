import { randomUUID } from 'node:crypto';
import { handleAccountCommand } from '../../application/account-commands';
import type { TransferActivities } from '../../activities/transfer-activities';
import { accountStream } from '../../domain/account-events';
import { transferStream } from '../../domain/transfer-events';
import { acceptTransfer } from '../../temporal/transfer-client';
import { TransferStack } from '../support/transfer-stack';
import { activityExecutions } from '../support/workflow-history';

type Leg = 'requestAndDebit' | 'creditAndComplete' | 'settleTransfer';

/**
 * The real activities, except that for the transfers a test marks, the chosen leg lands its effect
 * (the real activity runs to completion) and then reports a plain, retryable failure, on its first
 * attempt only: the acknowledgement is lost, Temporal retries, and the retry must write nothing new.
 */
class LossyActivities {
  private readonly lossy = new Map<string, Leg>();
  private readonly calls = new Map<string, number>();

  constructor(private readonly real: TransferActivities) {}

  loseFirstAcknowledgement(transferId: string, leg: Leg): void {
    this.lossy.set(transferId, leg);
  }

  callsOf(transferId: string, leg: Leg): number {
    return this.calls.get(`${transferId}/${leg}`) ?? 0;
  }

  activities(): TransferActivities {
    const wrap =
      <A extends { transferId: string }, R>(leg: Leg, run: (input: A) => Promise<R>) =>
      async (input: A): Promise<R> => {
        const key = `${input.transferId}/${leg}`;
        const attempt = (this.calls.get(key) ?? 0) + 1;
        this.calls.set(key, attempt);
        const result = await run(input);
        if (attempt === 1 && this.lossy.get(input.transferId) === leg) throw new Error(`${leg} landed but its acknowledgement was lost`);
        return result;
      };
    return {
      ...this.real,
      requestAndDebit: wrap('requestAndDebit', (input) => this.real.requestAndDebit(input)),
      creditAndComplete: wrap('creditAndComplete', (input) => this.real.creditAndComplete(input)),
      settleTransfer: wrap('settleTransfer', (input) => this.real.settleTransfer(input)),
    };
  }
}

const count = (types: string[], type: string) => types.filter((t) => t === type).length;

describe('lost acknowledgement: an activity whose append landed but which reported failure is retried without a second event', () => {
  let stack: TransferStack;
  let lossy: LossyActivities;

  beforeAll(async () => {
    stack = await TransferStack.create('lostack');
    lossy = new LossyActivities(stack.realActivities());
    await stack.startWorker(lossy.activities());
  });
  afterAll(async () => stack?.close());

  async function run(from: string, to: string, amount: number, leg: Leg) {
    const transferId = randomUUID();
    lossy.loseFirstAcknowledgement(transferId, leg);
    const { handle } = await acceptTransfer(stack, { transferId, fromAccountId: from, toAccountId: to, amount });
    const result = await handle.result();
    const executions = activityExecutions(await handle.fetchHistory());
    return { transferId, result, executions };
  }

  test('requestAndDebit lands, then fails on its first attempt: completed, debited once', async () => {
    const from = await stack.openAccount(5_000);
    const to = await stack.openAccount(100);
    const { transferId, result, executions } = await run(from, to, 1_200, 'requestAndDebit');

    expect(result.status).toBe('completed');
    const sourceTypes = await stack.eventTypes(accountStream(from));
    expect(count(sourceTypes, 'TransferDebited')).toBe(1);
    expect(sourceTypes).toEqual(['AccountOpened', 'MoneyDeposited', 'TransferDebited']);
    const transferTypes = await stack.eventTypes(transferStream(transferId));
    expect(count(transferTypes, 'TransferSourceDebited')).toBe(1);
    expect(transferTypes).toEqual(['TransferRequested', 'TransferSourceDebited', 'TransferTargetCredited', 'TransferCompleted']);
    expect(await stack.balance(from)).toBe(3_800);
    expect(await stack.balance(to)).toBe(1_300);

    expect(lossy.callsOf(transferId, 'requestAndDebit')).toBeGreaterThanOrEqual(2);
    expect(lossy.callsOf(transferId, 'creditAndComplete')).toBe(1);
    const debit = executions.find((e) => e.activityType === 'requestAndDebit')!;
    expect(debit).toMatchObject({ outcome: 'completed' });
    expect(debit.attempt).toBeGreaterThanOrEqual(2);
  });

  test('creditAndComplete lands, then fails on its first attempt: completed, credited once', async () => {
    const from = await stack.openAccount(5_000);
    const to = await stack.openAccount(100);
    const { transferId, result, executions } = await run(from, to, 700, 'creditAndComplete');

    expect(result.status).toBe('completed');
    const targetTypes = await stack.eventTypes(accountStream(to));
    expect(count(targetTypes, 'TransferCredited')).toBe(1);
    expect(targetTypes).toEqual(['AccountOpened', 'MoneyDeposited', 'TransferCredited']);
    expect(count(await stack.eventTypes(accountStream(from)), 'TransferDebited')).toBe(1);
    const transferTypes = await stack.eventTypes(transferStream(transferId));
    expect(count(transferTypes, 'TransferSourceDebited')).toBe(1);
    expect(count(transferTypes, 'TransferTargetCredited')).toBe(1);
    expect(transferTypes).toEqual(['TransferRequested', 'TransferSourceDebited', 'TransferTargetCredited', 'TransferCompleted']);
    expect(await stack.balance(from)).toBe(4_300);
    expect(await stack.balance(to)).toBe(800);

    expect(lossy.callsOf(transferId, 'creditAndComplete')).toBeGreaterThanOrEqual(2);
    expect(lossy.callsOf(transferId, 'requestAndDebit')).toBe(1);
    const credit = executions.find((e) => e.activityType === 'creditAndComplete')!;
    expect(credit).toMatchObject({ outcome: 'completed' });
    expect(credit.attempt).toBeGreaterThanOrEqual(2);
  });

  test('the settlement (refund and outcome) lands, then fails on its first attempt (target closed): compensated, refunded once', async () => {
    const from = await stack.openAccount(2_000);
    const to = await stack.openAccount(0);
    expect((await handleAccountCommand(stack.accounts, to, { type: 'CloseAccount' })).ok).toBe(true);
    const { transferId, result, executions } = await run(from, to, 900, 'settleTransfer');

    expect(result).toMatchObject({ status: 'compensated', failureReason: 'account_closed' });
    const sourceTypes = await stack.eventTypes(accountStream(from));
    expect(count(sourceTypes, 'TransferRefunded')).toBe(1);
    expect(sourceTypes).toEqual(['AccountOpened', 'MoneyDeposited', 'TransferDebited', 'TransferRefunded']);
    expect(await stack.eventTypes(accountStream(to))).toEqual(['AccountOpened', 'AccountClosed']);
    expect(await stack.eventTypes(transferStream(transferId))).toEqual([
      'TransferRequested',
      'TransferSourceDebited',
      'TransferSourceRefunded',
      'TransferCompensated',
    ]);
    const refundedEvent = (await stack.store.readStream(transferStream(transferId))).find((e) => e.type === 'TransferSourceRefunded')!;
    expect(refundedEvent.data).toMatchObject({ amount: 900 });
    expect(await stack.balance(from)).toBe(2_000); // whole again
    expect(await stack.balance(to)).toBe(0);

    expect(lossy.callsOf(transferId, 'settleTransfer')).toBeGreaterThanOrEqual(2);
    const refund = executions.find((e) => e.activityType === 'settleTransfer')!;
    expect(refund).toMatchObject({ outcome: 'completed' });
    expect(refund.attempt).toBeGreaterThanOrEqual(2);
    expect(executions.filter((e) => e.activityType === 'settleTransfer')).toHaveLength(1);
    expect(executions.find((e) => e.activityType === 'creditAndComplete')).toMatchObject({ outcome: 'failed' });
  });
});
