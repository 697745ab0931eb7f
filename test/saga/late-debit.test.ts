import { randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { createTransferActivities, type TransferActivities, type TransferActivityInput } from '../../activities/transfer-activities';
import { handleAccountCommand } from '../../application/account-commands';
import { AccountRepository, type LoadedAccount } from '../../application/account-repository';
import { accountStream } from '../../domain/account-events';
import { transferStream } from '../../domain/transfer-events';
import { legsOf } from '../../domain/account-state';
import { TransferStack } from '../support/transfer-stack';

/**
 * An AccountRepository whose next load of one account stops after reading, until released: a debit
 * attempt that read the account, then stalled (a slow connection, a paused process) before its append.
 */
class StallingRepository extends AccountRepository {
  private stall?: { accountId: string; loaded: (loaded: LoadedAccount) => void; resume: Promise<void> };

  /** The next load of `accountId` stalls once it has read the account; `loaded` resolves with what it read. */
  stallNextLoad(accountId: string): { loaded: Promise<LoadedAccount>; resume: () => void } {
    let loaded!: (l: LoadedAccount) => void;
    let resume!: () => void;
    const read = new Promise<LoadedAccount>((resolve) => (loaded = resolve));
    this.stall = { accountId, loaded, resume: new Promise<void>((resolve) => (resume = resolve)) };
    return { loaded: read, resume };
  }

  override async load(accountId: string): Promise<LoadedAccount> {
    const loaded = await super.load(accountId);
    const stall = this.stall;
    if (stall && stall.accountId === accountId) {
      this.stall = undefined;
      stall.loaded(loaded);
      await stall.resume;
    }
    return loaded;
  }
}

/** How the saga gives up on a transfer whose debit never reported back, in the current shape and in the released v1/v2 shapes. */
const SETTLEMENTS: [string, (activities: TransferActivities, input: TransferActivityInput) => Promise<void>][] = [
  [
    'settleTransfer (current saga)',
    async (activities, input) => {
      expect(
        await activities.settleTransfer({
          ...input,
          reason: 'infrastructure',
          message: 'debit attempts timed out',
          creditMayHaveRun: false,
        }),
      ).toEqual({ outcome: 'failed', refunded: 0 });
    },
  ],
  [
    'refundSource + failTransfer (v1/v2 sagas)',
    async (activities, input) => {
      expect(await activities.refundSource(input)).toEqual({ refunded: 0 });
      await activities.failTransfer({ ...input, reason: 'infrastructure', message: 'debit attempts timed out' });
    },
  ],
];

/**
 * Activity attempts that Temporal has given up on can still be running (a stalled connection wakes
 * up later). Once the saga settled a transfer without a debit, such a late debit must not land:
 * the settlement voids the transfer on the source account. The dangerous attempt is the one that
 * read the source BEFORE the void and appends after it: its expected revision is stale, so its
 * append is refused, and its re-decision sees the void.
 */
describe('a late debit after the saga gave up', () => {
  let stack: TransferStack;
  beforeAll(async () => {
    stack = await TransferStack.create('latedebit');
  });
  afterAll(async () => stack?.close());

  test.each(SETTLEMENTS)(
    'a debit attempt that read the source before %s voided the transfer: its append is refused, it re-decides transfer_finished, nothing moves',
    async (_name, settle) => {
      const from = await stack.openAccount(1_000);
      const to = await stack.openAccount(0);
      const input = { transferId: randomUUID(), fromAccountId: from, toAccountId: to, amount: 400 };

      // Accepted as the API accepts it: the request is on the transfer's stream before any leg runs.
      expect((await stack.transfers.accept(input, { actor: 'test' })).ok).toBe(true);
      // The attempt that will stall: it reads the request and the source, and stops before its append.
      const stalling = new StallingRepository(stack.store);
      let conflicts = 0;
      const stalled = createTransferActivities({
        accounts: stalling,
        transfers: stack.transfers,
        observer: { conflict: () => void (conflicts += 1) },
      });
      const { loaded, resume } = stalling.stallNextLoad(from);
      const late = stalled.requestAndDebit(input).then(
        () => 'debited',
        (error: unknown) => error,
      );
      const stale = await loaded;
      expect(legsOf(stale.state, input.transferId)).toBeUndefined(); // it read the source before any void
      expect(stale.state.balance).toBe(1_000);

      // Meanwhile Temporal gave up on that attempt, and the saga settles: nothing debited, so the transfer is voided on the source.
      await settle(stack.realActivities(), input);
      expect(await stack.eventTypes(accountStream(from))).toEqual(['AccountOpened', 'MoneyDeposited', 'TransferDebitVoided']);

      // The stalled attempt wakes up and appends with what it read before the void.
      resume();
      const outcome = await late;
      // No money moved: nothing landed after the void.
      expect(await stack.eventTypes(accountStream(from))).toEqual(['AccountOpened', 'MoneyDeposited', 'TransferDebitVoided']);
      expect(await stack.balance(from)).toBe(1_000);
      expect(await stack.balance(to)).toBe(0);
      expect(await stack.eventTypes(accountStream(to))).not.toContain('TransferCredited');
      // The outcome was recorded with its request; no debit step.
      expect(await stack.eventTypes(transferStream(input.transferId))).toEqual(['TransferRequested', 'TransferFailed']);
      // How: its append (stale expected revision) was refused once, and its re-decision saw the void.
      expect(conflicts).toBe(1);
      expect(outcome).toBeInstanceOf(ApplicationFailure);
      expect(outcome).toMatchObject({ type: 'transfer_finished', nonRetryable: true });
    },
  );

  test('handleAccountCommand with a state preloaded before the void: the append is refused and re-decided into transfer_finished', async () => {
    const from = await stack.openAccount(1_000);
    const transferId = randomUUID();
    const before = await stack.accounts.load(from);

    const voided = await handleAccountCommand(stack.accounts, from, { type: 'RefundForTransfer', transferId });
    expect(voided).toMatchObject({ ok: true, eventsWritten: 1 });

    let conflicts = 0;
    const late = await handleAccountCommand(
      stack.accounts,
      from,
      { type: 'DebitForTransfer', transferId, amount: 400, currency: 'EUR', toAccountId: randomUUID() },
      { preloaded: before, onConflict: () => void (conflicts += 1) },
    );
    expect(await stack.eventTypes(accountStream(from))).toEqual(['AccountOpened', 'MoneyDeposited', 'TransferDebitVoided']);
    expect(await stack.balance(from)).toBe(1_000);
    expect(conflicts).toBe(1);
    expect(late).toMatchObject({ ok: false, rejection: { type: 'transfer_finished' } });
  });
});
