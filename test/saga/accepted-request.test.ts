import { randomUUID } from 'node:crypto';
import { createTransferActivities } from '../../activities/transfer-activities';
import { handleAccountCommand } from '../../application/account-commands';
import { accountStream } from '../../domain/account-events';
import { transferStream } from '../../domain/transfer-events';
import { acceptTransfer } from '../../temporal/transfer-client';
import type { transferSaga } from '../../workflows/transfer-saga';
import { TRANSFER_SAGA, transferWorkflowId, type TransferSagaInput } from '../../workflows/transfer-saga-contract';
import { TransferStack } from '../support/transfer-stack';

/**
 * Issue 23, items 1 and 2: only a request the API accepted moves money, exactly as accepted. Anyone who reaches
 * Temporal's frontend can start `transferSaga` with any input: such a run moves nothing, writes nothing on any stream,
 * ends `failed` with reason `unauthorized`, and is counted. A run of an accepted transfer executes the request
 * recorded on its stream, whatever its own input says, and writes its events as the accepted actor.
 */
describe('every saga run executes exactly the request the API accepted, or nothing', () => {
  let stack: TransferStack;
  const refused: { transferId: string; activity: string }[] = [];

  beforeAll(async () => {
    stack = await TransferStack.create('accepted_request');
    await stack.startWorker(
      createTransferActivities({
        accounts: stack.accounts,
        transfers: stack.transfers,
        observer: { conflict: () => undefined, unauthorized: (transferId, activity) => refused.push({ transferId, activity }) },
      }),
    );
  });
  afterAll(async () => stack?.close());

  const startStraightOnTemporal = (input: TransferSagaInput, workflowId = transferWorkflowId(input.transferId)) =>
    stack.client.workflow.start<typeof transferSaga>(TRANSFER_SAGA, {
      workflowId,
      taskQueue: stack.taskQueue,
      args: [input],
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
    });

  test('a saga started straight on Temporal with a made-up request moves nothing, writes nothing, ends failed: unauthorized', async () => {
    const victim = await stack.openAccount(5_000);
    const thief = await stack.openAccount(0);
    const before = { victim: await stack.eventTypes(accountStream(victim)), thief: await stack.eventTypes(accountStream(thief)) };
    const transferId = randomUUID();
    const handle = await startStraightOnTemporal({
      transferId,
      fromAccountId: victim,
      toAccountId: thief,
      amount: 4_000,
      actor: 'env-operator',
      correlationId: 'forged',
    });
    expect(await handle.result()).toMatchObject({ status: 'failed', failureReason: 'unauthorized' });
    expect(await stack.balance(victim)).toBe(5_000);
    expect(await stack.balance(thief)).toBe(0);
    expect(await stack.eventTypes(accountStream(victim))).toEqual(before.victim);
    expect(await stack.eventTypes(accountStream(thief))).toEqual(before.thief);
    expect(await stack.eventTypes(transferStream(transferId))).toEqual([]);
    expect(refused).toContainEqual(expect.objectContaining({ transferId }));
  });

  test('a run under another workflow id, for an accepted transfer, is refused before it touches anything', async () => {
    const from = await stack.openAccount(1_000);
    const to = await stack.openAccount(0);
    const transferId = randomUUID();
    const recorded = await stack.transfers.accept({ transferId, fromAccountId: from, toAccountId: to, amount: 100 }, { actor: 'key_a' });
    expect(recorded.ok).toBe(true);
    const handle = await startStraightOnTemporal({ transferId, fromAccountId: from, toAccountId: to, amount: 100 }, `evil-${transferId}`);
    expect(await handle.result()).toMatchObject({ status: 'failed', failureReason: 'unauthorized' });
    expect(await stack.eventTypes(transferStream(transferId))).toEqual(['TransferRequested']);
    expect(await stack.balance(from)).toBe(1_000);
    expect(refused).toContainEqual(expect.objectContaining({ transferId, activity: 'reportUnauthorized' }));
  });

  test('a run of an accepted transfer with another input executes the accepted request, as the accepted actor', async () => {
    const from = await stack.openAccount(1_000);
    const to = await stack.openAccount(0);
    const thief = await stack.openAccount(0);
    const transferId = randomUUID();
    // Accepted (recorded), its saga not started yet: someone starts it straight on Temporal with another target and amount.
    const recorded = await stack.transfers.accept(
      { transferId, fromAccountId: from, toAccountId: to, amount: 100 },
      { actor: 'key_00000000000000dd', correlationId: 'accepted-1' },
    );
    expect(recorded.ok).toBe(true);
    const handle = await startStraightOnTemporal({
      transferId,
      fromAccountId: from,
      toAccountId: thief,
      amount: 900,
      actor: 'env-operator',
      correlationId: 'forged',
    });
    expect(await handle.result()).toMatchObject({ status: 'completed' });
    expect(await stack.balance(from)).toBe(900);
    expect(await stack.balance(to)).toBe(100);
    expect(await stack.balance(thief)).toBe(0);
    for (const stream of [transferStream(transferId), accountStream(from), accountStream(to)]) {
      const written = (await stack.store.readStream(stream)).filter((e) => e.metadata.transferId === transferId);
      expect(written.length).toBeGreaterThan(0);
      for (const e of written) expect(e.metadata).toMatchObject({ actor: 'key_00000000000000dd', correlationId: 'accepted-1' });
    }
  });

  test('acceptTransfer records the request with its actor before the saga starts; the same id with another payload writes nothing', async () => {
    const from = await stack.openAccount(1_000);
    const to = await stack.openAccount(0);
    const transferId = randomUUID();
    const input = { transferId, fromAccountId: from, toAccountId: to, amount: 300, actor: 'key_ee', correlationId: 'c-1' };
    const { handle } = await acceptTransfer(stack, input);
    expect(await handle.result()).toMatchObject({ status: 'completed' });
    const [requested] = await stack.store.readStream(transferStream(transferId));
    expect(requested).toMatchObject({
      type: 'TransferRequested',
      data: { transferId, fromAccountId: from, toAccountId: to, amount: 300, accepted: { actor: 'key_ee', correlationId: 'c-1' } },
      metadata: { actor: 'key_ee', correlationId: 'c-1' },
    });
    const events = await stack.eventTypes(transferStream(transferId));
    await expect(acceptTransfer(stack, { ...input, amount: 301 })).rejects.toMatchObject({ name: 'TransferConflictError' });
    expect(await stack.eventTypes(transferStream(transferId))).toEqual(events);
  });

  test('a run started again after its transfer ended compensated takes no step: no money is created', async () => {
    // Reviewed attack: the debit of a finished transfer answered "already debited" (though refunded), and the credit
    // then landed: A=5000, B=0 became 5000/1000.
    const from = await stack.openAccount(5_000);
    const to = await stack.openAccount(0);
    const closed = await stack.openAccount(0);
    const transferId = randomUUID();
    // Compensated: the credit is refused because the target is closed after the request was accepted.
    expect((await handleAccountCommand(stack.accounts, closed, { type: 'CloseAccount' })).ok).toBe(true);
    const { handle } = await acceptTransfer(stack, { transferId, fromAccountId: from, toAccountId: closed, amount: 1_000, actor: 'k' });
    expect(await handle.result()).toMatchObject({ status: 'compensated' });
    const streams = [transferStream(transferId), accountStream(from), accountStream(closed), accountStream(to)];
    const before = await Promise.all(streams.map((s) => stack.eventTypes(s)));

    const again = await startStraightOnTemporal({ transferId, fromAccountId: from, toAccountId: closed, amount: 1_000 });
    expect(await again.result()).toMatchObject({ status: 'compensated' });
    expect(await Promise.all(streams.map((s) => stack.eventTypes(s)))).toEqual(before);
    expect(await stack.balance(from)).toBe(5_000);
    expect(await stack.balance(closed)).toBe(0);
  });

  test('a run started on Temporal before the request was accepted does not block it: acceptTransfer starts the saga anew', async () => {
    const from = await stack.openAccount(1_000);
    const to = await stack.openAccount(0);
    const transferId = randomUUID();
    const squatter = await startStraightOnTemporal({ transferId, fromAccountId: from, toAccountId: to, amount: 1 });
    expect(await squatter.result()).toMatchObject({ status: 'failed', failureReason: 'unauthorized' });
    const { handle, created } = await acceptTransfer(stack, { transferId, fromAccountId: from, toAccountId: to, amount: 600, actor: 'k' });
    expect(created).toBe(true);
    expect(await handle.result()).toMatchObject({ status: 'completed' });
    expect(await stack.balance(to)).toBe(600);
  });
});
