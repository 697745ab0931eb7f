import { randomUUID } from 'node:crypto';
import { handleAccountCommand } from '../../application/account-commands';
import { accountStream } from '../../domain/account-events';
import { transferStream } from '../../domain/transfer-events';
import { acceptTransfer, TransferConflictError } from '../../temporal/transfer-client';
import { transferStatusQuery, transferWorkflowId } from '../../workflows/transfer-saga-contract';
import { balanceAfterMismatches, runningBalances } from '../support/exact-balances';
import { TransferStack } from '../support/transfer-stack';

describe('transfer saga on the real Temporal dev server and the PostgreSQL store', () => {
  let stack: TransferStack;
  beforeAll(async () => {
    stack = await TransferStack.create('saga');
    await stack.startWorker();
  });
  afterAll(async () => stack?.close());

  test('happy path: balances move, events are on all three streams, status completed', async () => {
    const from = await stack.openAccount(10_000);
    const to = await stack.openAccount(500);
    const transferId = randomUUID();
    const result = await stack.transfer(from, to, 2_500, transferId);
    expect(result.status).toBe('completed');
    expect(await stack.balance(from)).toBe(7_500);
    expect(await stack.balance(to)).toBe(3_000);
    expect(await stack.eventTypes(accountStream(from))).toEqual(['AccountOpened', 'MoneyDeposited', 'TransferDebited']);
    expect(await stack.eventTypes(accountStream(to))).toEqual(['AccountOpened', 'MoneyDeposited', 'TransferCredited']);
    expect(await stack.eventTypes(transferStream(transferId))).toEqual([
      'TransferRequested',
      'TransferSourceDebited',
      'TransferTargetCredited',
      'TransferCompleted',
    ]);
    const [debit] = (await stack.store.readStream(accountStream(from))).slice(-1);
    expect(debit!.metadata).toMatchObject({
      transferId,
      correlationId: `test-${transferId}`,
      causationId: `transfer-${transferId}/requestAndDebit`,
    });
    const status = await stack.client.workflow.getHandle(transferWorkflowId(transferId)).query(transferStatusQuery);
    expect(status.steps.map((s) => [s.name, s.status])).toEqual([
      ['accepted request', 'done'],
      ['request and debit source', 'done'],
      ['credit target and complete', 'done'],
    ]);
    const description = await stack.client.workflow.getHandle(transferWorkflowId(transferId)).describe();
    expect(description.memo).toMatchObject({ fromAccountId: from, toAccountId: to, amount: 2_500 });
    expect(description.searchAttributes.TransferStatus).toEqual(['completed']);
  });

  test('insufficient funds: failed, balances unchanged, nothing debited', async () => {
    const from = await stack.openAccount(100);
    const to = await stack.openAccount(0);
    const transferId = randomUUID();
    const result = await stack.transfer(from, to, 101, transferId);
    expect(result).toMatchObject({ status: 'failed', failureReason: 'insufficient_funds' });
    expect(await stack.balance(from)).toBe(100);
    expect(await stack.balance(to)).toBe(0);
    // No debit; the compensation voided the transfer on the source, so no late debit attempt can land.
    expect(await stack.eventTypes(accountStream(from))).toEqual(['AccountOpened', 'MoneyDeposited', 'TransferDebitVoided']);
    expect(await stack.eventTypes(transferStream(transferId))).toEqual(['TransferRequested', 'TransferFailed']);
  });

  test('target closed: compensated, source refunded', async () => {
    const from = await stack.openAccount(1_000);
    const to = await stack.openAccount(0);
    expect((await handleAccountCommand(stack.accounts, to, { type: 'CloseAccount' })).ok).toBe(true);
    const transferId = randomUUID();
    const result = await stack.transfer(from, to, 400, transferId);
    expect(result).toMatchObject({ status: 'compensated', failureReason: 'account_closed' });
    expect(await stack.balance(from)).toBe(1_000);
    expect(await stack.eventTypes(accountStream(from))).toEqual(['AccountOpened', 'MoneyDeposited', 'TransferDebited', 'TransferRefunded']);
    expect(await stack.eventTypes(accountStream(to))).toEqual(['AccountOpened', 'AccountClosed']);
    expect(await stack.eventTypes(transferStream(transferId))).toEqual([
      'TransferRequested',
      'TransferSourceDebited',
      'TransferSourceRefunded',
      'TransferCompensated',
    ]);
  });

  test('target missing: compensated, source refunded', async () => {
    const from = await stack.openAccount(1_000);
    const result = await stack.transfer(from, randomUUID(), 250);
    expect(result).toMatchObject({ status: 'compensated', failureReason: 'account_not_found' });
    expect(await stack.balance(from)).toBe(1_000);
  });

  test('source missing or currencies differ: failed before anything moves', async () => {
    const to = await stack.openAccount(0);
    expect(await stack.transfer(randomUUID(), to, 10)).toMatchObject({ status: 'failed', failureReason: 'account_not_found' });
    const usd = await stack.openAccount(1_000, 'USD');
    expect(await stack.transfer(usd, to, 10)).toMatchObject({ status: 'failed', failureReason: 'currency_mismatch' });
    expect(await stack.balance(usd)).toBe(1_000);
    expect(await stack.balance(to)).toBe(0);
  });

  test('the same transfer id twice returns the existing saga; with another payload it is refused', async () => {
    const from = await stack.openAccount(1_000);
    const to = await stack.openAccount(0);
    const transferId = randomUUID();
    const input = { transferId, fromAccountId: from, toAccountId: to, amount: 300 };
    const first = await acceptTransfer(stack, input);
    const second = await acceptTransfer(stack, input);
    expect(first.created).toBe(true);
    expect(second.created).toBe(false);
    await first.handle.result();
    const third = await acceptTransfer(stack, input); // after completion too
    expect(third.created).toBe(false);
    await expect(acceptTransfer(stack, { ...input, amount: 301 })).rejects.toBeInstanceOf(TransferConflictError);
    expect(await stack.balance(from)).toBe(700);
    expect(await stack.balance(to)).toBe(300);
  });

  test('hot account: 50 concurrent transfers draining one account never overdraw it and conserve money', async () => {
    const funds = 10_000;
    const amount = 700; // 14 fit, 36 must fail
    const hot = await stack.openAccount(funds);
    const targets = await Promise.all(Array.from({ length: 5 }, () => stack.openAccount(0)));
    // Accepted one after the other (as requests reach the API), their sagas all running at once on the hot account.
    const handles = [];
    for (let i = 0; i < 50; i++) {
      const transferId = randomUUID();
      const input = { transferId, fromAccountId: hot, toAccountId: targets[i % targets.length]!, amount, actor: 'test' };
      handles.push((await acceptTransfer(stack, input)).handle);
    }
    const results = await Promise.all(handles.map((h) => h.result()));
    // Never overdrawn, at any moment: the hot account's balance after each of its events, recomputed
    // exactly from the amounts alone (not from the fold or the events' own balanceAfter), never goes below zero.
    const hotEvents = await stack.store.readStream(accountStream(hot), { maxCount: 1000 });
    const running = runningBalances(hotEvents);
    expect(running.filter((r) => r.balance < 0n).map((r) => `${r.type} #${r.index} -> ${r.balance}`)).toEqual([]);
    expect(balanceAfterMismatches(running)).toEqual([]);
    const completed = results.filter((r) => r.status === 'completed').length;
    expect(results.every((r) => ['completed', 'failed', 'compensated'].includes(r.status))).toBe(true);
    expect(completed).toBe(Math.floor(funds / amount));
    expect(hotEvents.filter((e) => e.type === 'TransferDebited')).toHaveLength(completed);
    expect(results.filter((r) => r.status === 'failed').every((r) => r.failureReason === 'insufficient_funds')).toBe(true);
    const hotBalance = await stack.balance(hot);
    const targetBalances = await Promise.all(targets.map((t) => stack.balance(t)));
    expect(running.at(-1)!.balance).toBe(BigInt(hotBalance));
    expect(hotBalance).toBe(funds - completed * amount);
    expect(hotBalance + targetBalances.reduce((a, b) => a + b, 0)).toBe(funds);
  });
});
