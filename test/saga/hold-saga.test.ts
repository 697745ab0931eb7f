import { randomUUID } from 'node:crypto';
import { HoldLog } from '../../application/hold-log';
import { handleAccountCommand } from '../../application/account-commands';
import { availableOf } from '../../domain/account-state';
import { acceptHold, captureHold, HoldRejectedError, voidHold, type HoldDeps } from '../../temporal/hold-client';
import { holdStatusQuery, holdWorkflowId } from '../../workflows/hold-saga-contract';
import { reconcileHolds, reconcileTransfers } from '../../temporal/transfer-reconciler';
import { transferWorkflowId } from '../../workflows/transfer-saga-contract';
import { TransferStack } from '../support/transfer-stack';

/**
 * The hold saga (issue 25) on a real Temporal dev server and PostgreSQL: reserve, then capture (in part), void or
 * expire, with money conserved and `available` never below zero.
 */
describe('holds: the hold saga', () => {
  let stack: TransferStack;
  let deps: HoldDeps;
  const operator = { actor: 'test-operator', correlationId: 'corr-hold' };

  beforeAll(async () => {
    stack = await TransferStack.create('hold_saga');
    await stack.startWorker();
    deps = { client: stack.client, taskQueue: stack.taskQueue, holds: new HoldLog(stack.store), transfers: stack.transfers };
  });
  afterAll(async () => stack?.close());

  const inSeconds = (s: number) => new Date(Date.now() + s * 1000).toISOString();
  const account = async (id: string) => (await stack.accounts.load(id)).state;
  async function placed(from: string, to: string, amount: number, expiresInSeconds = 3600) {
    const holdId = randomUUID();
    const accepted = await acceptHold(
      deps,
      { holdId, fromAccountId: from, toAccountId: to, amount, expiresAt: inSeconds(expiresInSeconds) },
      operator,
    );
    for (let i = 0; i < 200; i++) {
      const status = (await accepted.handle.query(holdStatusQuery)).status;
      if (status !== 'pending') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    return { holdId, handle: accepted.handle };
  }

  test('place, then capture in part: the captured part reaches the target as the transfer of the hold id, the rest is available again', async () => {
    const a = await stack.openAccount(1_000);
    const b = await stack.openAccount(0);
    const { holdId } = await placed(a, b, 600);
    const held = await account(a);
    expect({ balance: held.balance, held: held.held, available: availableOf(held) }).toEqual({ balance: 1_000, held: 600, available: 400 });
    expect(await stack.balance(b)).toBe(0);

    const answer = await captureHold(deps, holdId, 250, operator);
    expect(answer.status).toBe('captured');
    const after = await account(a);
    expect({ balance: after.balance, held: after.held }).toEqual({ balance: 750, held: 0 });
    expect(await stack.balance(b)).toBe(250);
    // The captured part is a transfer of the hold's id: completed, with the capture's actor.
    const transfer = (await stack.transfers.load(holdId)).state;
    expect(transfer).toMatchObject({
      status: 'completed',
      request: { amount: 250, fromAccountId: a, toAccountId: b },
      accepted: { actor: 'test-operator' },
    });
    const hold = (await deps.holds.load(holdId)).state;
    expect(hold).toMatchObject({ status: 'captured', captured: 250, released: 350, settled: true });
    // A repeat answers the same; another amount is refused; nothing moves twice.
    expect((await captureHold(deps, holdId, 250, operator)).status).toBe('captured');
    await expect(captureHold(deps, holdId, 300, operator)).rejects.toMatchObject({ rejection: { type: 'hold_finished' } });
    expect(await stack.balance(b)).toBe(250);
  });

  test('void releases all of it; a capture after is refused; available is whole again', async () => {
    const a = await stack.openAccount(500);
    const b = await stack.openAccount(0);
    const { holdId } = await placed(a, b, 500);
    expect((await account(a)).held).toBe(500);
    expect((await voidHold(deps, holdId, operator)).status).toBe('voided');
    const after = await account(a);
    expect({ balance: after.balance, held: after.held }).toEqual({ balance: 500, held: 0 });
    await expect(captureHold(deps, holdId, undefined, operator)).rejects.toBeInstanceOf(HoldRejectedError);
    expect(await stack.balance(b)).toBe(0);
  });

  test('every debit checks available: a withdrawal and another hold beyond it are refused while the hold stands', async () => {
    const a = await stack.openAccount(1_000);
    const b = await stack.openAccount(0);
    await placed(a, b, 900);
    expect(await handleAccountCommand(stack.accounts, a, { type: 'Withdraw', amount: 101 })).toMatchObject({
      ok: false,
      rejection: { type: 'insufficient_funds' },
    });
    const second = await placed(a, b, 200);
    expect((await deps.holds.load(second.holdId)).state).toMatchObject({ status: 'failed', failureReason: 'insufficient_funds' });
    expect((await account(a)).held).toBe(900);
  });

  test('a hold that could never be captured (target closed) is refused: failed, nothing reserved', async () => {
    const a = await stack.openAccount(100);
    const b = await stack.openAccount(0);
    expect(await handleAccountCommand(stack.accounts, b, { type: 'CloseAccount' })).toMatchObject({ ok: true });
    const { holdId } = await placed(a, b, 50);
    expect((await deps.holds.load(holdId)).state).toMatchObject({ status: 'failed', failureReason: 'account_closed' });
    expect((await account(a)).held).toBe(0);
  });

  test('at expiresAt an open hold is released by its own durable timer, across a worker restart; a capture after is 409 hold_expired', async () => {
    const a = await stack.openAccount(300);
    const b = await stack.openAccount(0);
    const { holdId, handle } = await placed(a, b, 300, 3);
    expect((await account(a)).held).toBe(300);
    await stack.stopWorker();
    await new Promise((r) => setTimeout(r, 500));
    await stack.startWorker();
    const result = await handle.result();
    expect(result.status).toBe('expired');
    expect((await account(a)).held).toBe(0);
    await expect(captureHold(deps, holdId, undefined, operator)).rejects.toMatchObject({ rejection: { type: 'hold_expired' } });
    expect(await stack.balance(b)).toBe(0);
    expect(await stack.balance(a)).toBe(300);
  });

  test('a capture whose credit cannot land (target closed meanwhile) gives the money back: compensated', async () => {
    const a = await stack.openAccount(400);
    const b = await stack.openAccount(0);
    const { holdId } = await placed(a, b, 400);
    expect(await handleAccountCommand(stack.accounts, b, { type: 'CloseAccount' })).toMatchObject({ ok: true });
    const answer = await captureHold(deps, holdId, 400, operator);
    expect(answer.status).toBe('compensated');
    const after = await account(a);
    expect({ balance: after.balance, held: after.held }).toEqual({ balance: 400, held: 0 });
    expect((await stack.transfers.load(holdId)).state.status).toBe('compensated');
  });

  test('a saga started straight on Temporal for a hold the API never accepted moves and writes nothing', async () => {
    const a = await stack.openAccount(100);
    const holdId = randomUUID();
    const handle = await stack.client.workflow.start('holdSaga', {
      workflowId: holdWorkflowId(holdId),
      taskQueue: stack.taskQueue,
      args: [{ holdId }],
    });
    const result = (await handle.result()) as { status: string; failureReason?: string };
    expect(result).toMatchObject({ status: 'failed', failureReason: 'unauthorized' });
    expect(await stack.eventTypes(`hold-${holdId}`)).toEqual([]);
    expect((await account(a)).held).toBe(0);
  });

  test("a transfer saga started by hand for a capture's transfer moves nothing; the hold's own saga finishes the capture", async () => {
    const a = await stack.openAccount(500);
    const b = await stack.openAccount(0);
    const { holdId, handle } = await placed(a, b, 500);
    // The capture is recorded (and its transfer accepted) but the saga is not woken yet: someone starts transfer-<id>.
    await deps.holds.accept(holdId, { type: 'RequestCapture', amount: 200, accepted: operator }, operator);
    await stack.transfers.accept({ transferId: holdId, fromAccountId: a, toAccountId: b, amount: 200 }, { ...operator, holdId });
    const meddler = await stack.client.workflow.start('transferSaga', {
      workflowId: transferWorkflowId(holdId),
      taskQueue: stack.taskQueue,
      args: [{ transferId: holdId, fromAccountId: a, toAccountId: b, amount: 200 }],
    });
    expect(await meddler.result()).toMatchObject({ status: 'failed', failureReason: 'unauthorized' });
    expect(await stack.balance(b)).toBe(0);
    expect((await account(a)).held).toBe(500);
    // The transfer reconciler leaves the capture's transfer to its hold.
    const transferDeps = { client: stack.client, taskQueue: stack.taskQueue, transfers: stack.transfers };
    expect((await reconcileTransfers(transferDeps)).repaired.map((r) => r.transferId)).not.toContain(holdId);
    const answer = await captureHold(deps, holdId, 200, operator);
    expect(answer.status).toBe('captured');
    expect((await handle.result()).status).toBe('captured');
    expect(await stack.balance(b)).toBe(200);
    expect(await stack.balance(a)).toBe(300);
  });

  test('a hold saga terminated while it waits is run again by the reconciler: the reservation still expires, nothing is stuck', async () => {
    const a = await stack.openAccount(250);
    const b = await stack.openAccount(0);
    const { holdId, handle } = await placed(a, b, 250, 3);
    await handle.terminate('an operator terminated it');
    expect((await account(a)).held).toBe(250);
    // Visibility lists the closed run once it has indexed it: pass again until it does (the deadline only bounds a hang).
    const reconcilerDeps = { client: stack.client, taskQueue: stack.taskQueue, transfers: stack.transfers, holds: deps.holds };
    let repaired: string[] = [];
    for (let pass = 0; pass < 100 && !repaired.includes(holdId); pass++) {
      repaired = (await reconcileHolds(reconcilerDeps)).repaired.map((r) => r.transferId);
      if (!repaired.includes(holdId)) await new Promise((r) => setTimeout(r, 100));
    }
    expect(repaired).toContain(holdId);
    const rerun = stack.client.workflow.getHandle(holdWorkflowId(holdId));
    expect(((await rerun.result()) as { status: string }).status).toBe('expired');
    expect((await account(a)).held).toBe(0);
    expect(await stack.balance(a)).toBe(250);
  });

  test('an operator cancels a waiting hold: it is voided by the system and the money is available again', async () => {
    const a = await stack.openAccount(300);
    const b = await stack.openAccount(0);
    const { holdId, handle } = await placed(a, b, 300);
    await handle.cancel();
    expect((await handle.result()).status).toBe('voided');
    expect((await account(a)).held).toBe(0);
    expect((await deps.holds.load(holdId)).state.voidedBy).toEqual({ actor: 'system' });
  });

  test('an expiry while the event store is down is recorded and released once it is back (the timer does not give up)', async () => {
    const a = await stack.openAccount(200);
    const b = await stack.openAccount(0);
    let outage = 0;
    const real = stack.realActivities();
    await stack.startWorker({
      ...real,
      nextDecision: async (input) => {
        if (input.timerFired && outage < 4) {
          outage += 1;
          throw new Error('event store unavailable (simulated outage)');
        }
        return real.nextDecision(input);
      },
    });
    try {
      const { handle } = await placed(a, b, 200, 2);
      expect((await handle.result()).status).toBe('expired');
      expect(outage).toBe(4);
      expect((await account(a)).held).toBe(0);
    } finally {
      await stack.startWorker();
    }
  });

  test('hot account: many holds, captures, voids and transfers on one account at once: money conserved, held and available never below zero', async () => {
    const hot = await stack.openAccount(10_000);
    const targets = await Promise.all(Array.from({ length: 4 }, () => stack.openAccount(0)));
    const holds = await Promise.all(Array.from({ length: 12 }, (_, i) => placed(hot, targets[i % 4]!, 700)));
    const transfers = Array.from({ length: 8 }, (_, i) => stack.transfer(hot, targets[i % 4]!, 250).catch(() => undefined));
    const settle = holds.map(({ holdId }, i) =>
      i % 3 === 0
        ? voidHold(deps, holdId, operator)
        : captureHold(deps, holdId, i % 3 === 1 ? 700 : 300, operator).catch((e: unknown) => ({ status: String(e) })),
    );
    await Promise.all([...transfers, ...settle]);
    const source = await account(hot);
    const received = (await Promise.all(targets.map((t) => stack.balance(t)))).reduce((x, y) => x + y, 0);
    expect(source.balance + received).toBe(10_000);
    expect(source.held).toBe(0);
    expect(source.balance).toBeGreaterThanOrEqual(0);
    for (const { holdId } of holds) expect((await deps.holds.load(holdId)).state.settled).toBe(true);
  });

  test('a capture whose Update arrives while the saga is looking at its stream is not lost until the expiry', async () => {
    const a = await stack.openAccount(100);
    const b = await stack.openAccount(0);
    const real = stack.realActivities();
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let looking = 0;
    const gated = async (input: Parameters<typeof real.nextDecision>[0]) => {
      if (!input.timerFired && !input.cancelled && ++looking === 1) await gate; // the first look, held open
      return real.nextDecision(input);
    };
    await stack.startWorker({ ...real, nextDecision: gated });
    try {
      const holdId = randomUUID();
      const accepted = await acceptHold(
        deps,
        { holdId, fromAccountId: a, toAccountId: b, amount: 100, expiresAt: inSeconds(20) },
        operator,
      );
      for (let i = 0; i < 400 && looking === 0; i++) await new Promise((r) => setTimeout(r, 25));
      expect(looking).toBe(1);
      // The capture is recorded and its Update sent while the first look is still running (it read the stream before).
      const capture = captureHold(deps, holdId, 100, operator);
      for (let i = 0; i < 400 && !(await deps.holds.load(holdId)).state.capture; i++) await new Promise((r) => setTimeout(r, 25));
      await new Promise((r) => setTimeout(r, 500)); // let the Update reach the worker while the look is held
      release();
      expect((await capture).status).toBe('captured');
      const steps = (await accepted.handle.result()).steps.map((s) => s.name);
      expect(steps).not.toContain('expiry'); // woken by the Update, not by the timer 20 s later
      expect(await stack.balance(b)).toBe(100);
    } finally {
      release();
      await stack.startWorker();
    }
  });

  test('a capture and the expiry racing: exactly one wins, and money is conserved either way', async () => {
    const results: string[] = [];
    for (let i = 0; i < 4; i++) {
      const a = await stack.openAccount(100);
      const b = await stack.openAccount(0);
      const { holdId, handle } = await placed(a, b, 100, 2);
      await new Promise((r) => setTimeout(r, 1_700 + i * 150));
      const capture = await captureHold(deps, holdId, undefined, operator).then(
        (s) => s.status,
        (e: unknown) => (e instanceof HoldRejectedError ? e.rejection.type : String(e)),
      );
      const final = await handle.result();
      results.push(`${capture}/${final.status}`);
      const [sa, sb] = [await account(a), await account(b)];
      expect(sa.balance + sb.balance).toBe(100);
      expect(sa.held).toBe(0);
      expect(final.status === 'captured' ? sb.balance : sa.balance).toBe(100);
      expect(['captured/captured', 'hold_expired/expired']).toContain(`${capture}/${final.status}`);
    }
    expect(results).toHaveLength(4);
  });
});
