import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { AccountRepository } from '../application/account-repository';
import { handleAccountCommand } from '../application/account-commands';
import type { CommandContext } from '../application/event-envelope';
import { transferStepId, type TransferLog } from '../application/transfer-log';
import { currencyMismatch } from '../domain/account-decider';
import { legsOf } from '../domain/account-state';
import { deterministicUuid } from '../domain/deterministic-id';
import type { Rejection } from '../domain/rejection';
import { sameRequest, type TransferCommand } from '../domain/transfer-decider';
import type { TransferState } from '../domain/transfer-state';
import { isTerminalStatus, type TerminalTransferStatus, type TransferFailureReason, type TransferStatus } from '../domain/transfer-events';
import type { TransferSagaInput } from '../workflows/transfer-saga-contract';
import { HoldLog } from '../application/hold-log';
import { createHoldActivities } from './hold-activities';
import { BatchLog } from '../application/batch-log';
import { createBatchActivities } from './batch-activities';

/** What the saga passes to every activity: the saga's own input. */
export type TransferActivityInput = TransferSagaInput;

export interface ActivityObserver {
  conflict(activity: string): void;
  /** A saga ran for a transfer the API never accepted: it moved nothing and wrote nothing (counted and logged). */
  unauthorized?(transferId: string, activity: string, why: string): void;
  /** A saga could not settle its transfer and waits for a person (TransferStatus = needs_attention). */
  needsAttention?(transferId: string, reason: string, message: string): void;
}

/** What the saga's settlement needs to know: why the forward path stopped, and whether a credit attempt may have run. */
export interface SettleInput extends TransferActivityInput {
  reason: TransferFailureReason;
  message: string;
  /** A credit attempt was scheduled: it may have landed, or may still land, on the target. */
  creditMayHaveRun: boolean;
}

export interface Settlement {
  outcome: Exclude<TransferStatus, 'pending'>;
  refunded: number;
}

export interface TransferActivityDeps {
  accounts: AccountRepository;
  transfers: TransferLog;
  /** The holds' streams (default: over the transfers' store): the hold saga's activities come with the transfer's. */
  holds?: HoldLog;
  /** The batches' streams (default: over the transfers' store): the batch saga's activities come with the transfer's. */
  batches?: BatchLog;
  observer?: ActivityObserver;
}

/**
 * Business rejections become non-retryable ApplicationFailures whose `type` is the rejection type
 * (explicit strings: minification renames classes). Anything else (store unreachable, timeouts)
 * is thrown as is, and Temporal retries it.
 */
function businessFailure(rejection: Rejection): ApplicationFailure {
  return ApplicationFailure.nonRetryable(rejection.message, rejection.type);
}

/** Metadata for events written by a saga step: the request's correlation id and actor, caused by this workflow's activity. */
function stepContext(input: TransferActivityInput): CommandContext {
  let causationId: string | undefined;
  try {
    const info = Context.current().info;
    causationId = `${info.workflowExecution?.workflowId ?? 'activity'}/${info.activityType}`;
  } catch {
    causationId = undefined; // called outside an activity (tests)
  }
  return {
    correlationId: input.correlationId,
    causationId,
    extra: { transferId: input.transferId, ...(input.actor ? { actor: input.actor } : {}) },
  };
}

/** Each leg's event ids derive from the transfer id and the leg: a retry re-sends the same ids. */
const legId = (transferId: string, leg: string) => (index: number, type: string) =>
  deterministicUuid('transfer', transferId, leg, type, String(index));

/** The one refusal of a run that has no accepted request behind it. */
export const UNAUTHORIZED = 'unauthorized';

export function createTransferActivities({ accounts, transfers, holds, batches, observer }: TransferActivityDeps) {
  const onConflict = (activity: string) => () => observer?.conflict(activity);

  /**
   * The request this run executes: the one the API recorded on the transfer's stream as it accepted it, never the
   * saga's input (which anyone who reaches Temporal can choose). Only the transfer id is taken from the input; the
   * accounts, the amount, `reversalOf`, the actor and the correlation id come from the stream. No recorded request:
   * the run is refused (non-retryable `unauthorized`) before anything is written. Every activity that writes goes
   * through here, so every saga kind built on these activities inherits the rule.
   */
  async function accepted<T extends TransferActivityInput>(
    input: T,
    activity: string,
    leg: 'forward' | 'settle' = 'settle',
  ): Promise<T & { recorded: TransferState }> {
    let { state } = await transfers.load(input.transferId);
    if (!state.request && input.startedBeforeAcceptance === true) {
      // A saga in flight from before the API recorded requests (see the saga's ACCEPTED_REQUEST): recorded from its input, as then.
      state = await recordStep(input, requestOf(input));
    }
    if (!state.request) {
      const why = 'no request accepted by the API is recorded for this transfer';
      observer?.unauthorized?.(input.transferId, activity, why);
      throw ApplicationFailure.nonRetryable(`Transfer ${input.transferId}: ${why}; nothing moves`, UNAUTHORIZED);
    }
    if (
      state.accepted?.holdId !== undefined &&
      (activity === 'requestTransfer' || activity === 'debitSource' || activity === 'requestAndDebit')
    ) {
      // The captured part of a hold: only its capture debits the source (the hold's saga). A transfer saga run for it
      // (started by hand, or rerun by the reconciler) moves nothing; the hold's saga finishes it.
      const why = `transfer ${input.transferId} is the capture of hold ${state.accepted.holdId}: only that hold's saga debits it`;
      observer?.unauthorized?.(input.transferId, activity, why);
      throw ApplicationFailure.nonRetryable(why, UNAUTHORIZED);
    }
    if (state.accepted?.batchId !== undefined && activity !== 'acceptedRequest') {
      // An item of a batch: only the batch's saga moves and settles it (workflows/batch-saga.ts). A transfer saga run
      // for it (started by hand, or rerun by the reconciler) moves and writes nothing.
      const why = `transfer ${input.transferId} is an item of batch ${state.accepted.batchId}: only that batch's saga moves it`;
      observer?.unauthorized?.(input.transferId, activity, why);
      throw ApplicationFailure.nonRetryable(why, UNAUTHORIZED);
    }
    if (leg === 'forward' && (state.status === 'failed' || state.status === 'compensated')) {
      // A transfer that ended without moving money (or gave it back) takes no forward step again: a debit found
      // refunded must never be followed by a credit (a run of a finished transfer would create money).
      throw ApplicationFailure.nonRetryable(`Transfer ${input.transferId} already finished as ${state.status}`, 'transfer_finished');
    }
    const { transferId, fromAccountId, toAccountId, amount, reversalOf } = state.request;
    const run = { ...input, transferId, fromAccountId, toAccountId, amount, recorded: state };
    if (reversalOf) run.reversalOf = reversalOf;
    else delete run.reversalOf;
    // The actor and correlation id of the acceptance. Requests recorded by earlier releases' sagas carry none: their
    // runs keep the input's (those sagas were started by the API of that release).
    if (state.accepted) {
      run.actor = state.accepted.actor;
      if (state.accepted.correlationId) run.correlationId = state.accepted.correlationId;
      else delete run.correlationId;
    }
    return run;
  }

  /** Records one or more steps on the transfer's stream, in one append. */
  async function recordStep(input: TransferActivityInput, ...commands: TransferCommand[]) {
    const result = await transfers.record(
      input.transferId,
      commands,
      transferStepId(input.transferId),
      stepContext(input),
      onConflict('recordStep'),
    );
    if (!result.ok) throw businessFailure(result.rejection);
    return result.state;
  }

  const requestOf = ({ transferId, fromAccountId, toAccountId, amount, reversalOf }: TransferActivityInput): TransferCommand => ({
    type: 'RequestTransfer',
    request: { transferId, fromAccountId, toAccountId, amount, ...(reversalOf ? { reversalOf } : {}) },
  });

  /** On the transfer a reversal reverses: its events, caused by the reversal's saga. */
  async function onReversed(input: TransferActivityInput, command: TransferCommand): Promise<void> {
    const result = await transfers.record(
      input.reversalOf!,
      [command],
      (type) => deterministicUuid('transfer', input.transferId, 'reversal-of', input.reversalOf!, type),
      stepContext(input),
      onConflict('reversal'),
    );
    if (!result.ok) throw businessFailure(result.rejection);
  }

  /**
   * The request is on the transfer's stream (the API recorded it: `run` comes from there). A reversal then holds its
   * amount on the transfer it reverses (only a completed one, never beyond what is left: refused -> nothing moves).
   */
  async function requestTransfer(run: TransferActivityInput): Promise<void> {
    if (run.reversalOf) await onReversed(run, { type: 'ReserveReversal', reversalId: run.transferId, amount: run.amount });
  }

  /** `input` is an accepted run (see accepted()). */
  async function debitSource(input: TransferActivityInput): Promise<{ currency: string }> {
    // Both accounts in one read of the store.
    const [source, target] = await accounts.loadMany([input.fromAccountId, input.toAccountId]);
    const mismatch = currencyMismatch(source.state, target.state);
    if (mismatch) throw businessFailure(mismatch);
    const result = await handleAccountCommand(
      accounts,
      input.fromAccountId,
      {
        type: 'DebitForTransfer',
        transferId: input.transferId,
        amount: input.amount,
        currency: source.state.currency,
        toAccountId: input.toAccountId,
      },
      { context: stepContext(input), eventId: legId(input.transferId, 'debit'), onConflict: onConflict('debitSource'), preloaded: source },
    );
    if (!result.ok) throw businessFailure(result.rejection);
    await recordStep(input, {
      type: 'RecordSourceDebited',
      accountId: input.fromAccountId,
      amount: input.amount,
      currency: result.state.currency,
    });
    return { currency: result.state.currency };
  }

  /** `input` is an accepted run (see accepted()); the currency is the one the debit recorded, never the input's. */
  async function creditTarget(run: TransferActivityInput & { recorded: TransferState }, andComplete = false): Promise<void> {
    const currency = run.recorded.currency;
    if (currency === undefined) {
      // The saga credits only after its debit was recorded on the transfer's stream: a credit without one is no run of it.
      observer?.unauthorized?.(run.transferId, 'creditTarget', 'a credit without a recorded debit');
      throw ApplicationFailure.nonRetryable(`Transfer ${run.transferId}: no debit is recorded; refusing to credit`, UNAUTHORIZED);
    }
    const input = { ...run, currency };
    const result = await handleAccountCommand(
      accounts,
      input.toAccountId,
      {
        type: 'CreditForTransfer',
        transferId: input.transferId,
        amount: input.amount,
        currency: input.currency,
        fromAccountId: input.fromAccountId,
      },
      { context: stepContext(input), eventId: legId(input.transferId, 'credit'), onConflict: onConflict('creditTarget') },
    );
    if (!result.ok) throw businessFailure(result.rejection);
    const credited = { type: 'RecordTargetCredited', accountId: input.toAccountId, amount: input.amount } as const;
    if (andComplete) await recordStep(input, credited, { type: 'CompleteTransfer' });
    else await recordStep(input, credited);
  }

  /**
   * On the target: voids the transfer so that no credit attempt can land any more, unless the credit
   * already landed. Returns true when the target holds this transfer's credit.
   */
  async function voidCredit(input: TransferActivityInput): Promise<boolean> {
    const result = await handleAccountCommand(
      accounts,
      input.toAccountId,
      { type: 'VoidCreditForTransfer', transferId: input.transferId },
      { context: stepContext(input), eventId: legId(input.transferId, 'void-credit'), onConflict: onConflict('voidCredit') },
    );
    if (!result.ok) throw new Error(`voiding the credit decided a rejection (${result.rejection.type}); retrying`); // never expected
    return legsOf(result.state, input.transferId)?.credited !== undefined;
  }

  /** Gives the source back what this transfer debited (voids the transfer there when no debit landed). */
  async function refund(input: TransferActivityInput): Promise<{ refunded: number }> {
    const result = await handleAccountCommand(
      accounts,
      input.fromAccountId,
      { type: 'RefundForTransfer', transferId: input.transferId },
      { context: stepContext(input), eventId: legId(input.transferId, 'refund'), onConflict: onConflict('refundSource') },
    );
    if (!result.ok) throw ApplicationFailure.nonRetryable(result.rejection.message, result.rejection.type);
    const legs = legsOf(result.state, input.transferId);
    const refunded = legs?.refunded ?? 0;
    if (refunded > 0) {
      // The debit too, in the same append: its own step may never have been recorded (the debit
      // landed, then its recording failed until the saga gave up). Recorded steps are no-ops.
      await recordStep(
        input,
        { type: 'RecordSourceDebited', accountId: input.fromAccountId, amount: legs?.debited ?? refunded, currency: result.state.currency },
        { type: 'RecordSourceRefunded', accountId: input.fromAccountId, amount: refunded },
      );
    }
    return { refunded };
  }

  return {
    // The hold saga's activities (a capture's credit and settlement are this transfer's own, below).
    ...createHoldActivities({ accounts, transfers, holds: holds ?? new HoldLog(transfers.eventStore), observer }),
    // The batch saga's activities (a batch's items are transfers: the same accounts, legs and streams).
    ...createBatchActivities({ accounts, transfers, batches: batches ?? new BatchLog(transfers.eventStore), observer }),

    /**
     * The request the API accepted for this transfer, as the saga's input from here on (accounts, amount, reversalOf,
     * actor, correlation id from the stream), or null when none is recorded: the run then moves and writes nothing
     * (counted and logged as unauthorized).
     */
    async acceptedRequest(
      input: Pick<TransferActivityInput, 'transferId' | 'actor' | 'correlationId'>,
    ): Promise<(TransferActivityInput & { outcome?: TerminalTransferStatus; failureReason?: string }) | null> {
      try {
        const asked = { transferId: input.transferId, actor: input.actor, correlationId: input.correlationId } as TransferActivityInput;
        const { recorded, ...run } = await accepted(asked, 'acceptedRequest');
        // Already finished on its stream: the run only reports that outcome (it takes no step of a finished transfer).
        if (isTerminalStatus(recorded.status))
          return { ...run, outcome: recorded.status, ...(recorded.failureReason ? { failureReason: recorded.failureReason } : {}) };
        return run;
      } catch (error) {
        if (error instanceof ApplicationFailure && error.type === UNAUTHORIZED) return null;
        throw error;
      }
    },

    /** A run refused before any activity could look at the stream (started under another workflow id): counted and logged. */
    async reportUnauthorized(input: { transferId: string; why: string }): Promise<void> {
      observer?.unauthorized?.(String(input.transferId), 'reportUnauthorized', input.why);
    },

    /** The accepted request's reversal hold (the request itself is recorded by the API). Released shape v1's first step. */
    async requestTransfer(input: TransferActivityInput): Promise<void> {
      await requestTransfer(await accepted(input, 'requestTransfer', 'forward'));
    },

    /** Debits the source. Refuses before moving anything when the target exists in another currency. */
    async debitSource(input: TransferActivityInput): Promise<{ currency: string }> {
      return debitSource(await accepted(input, 'debitSource', 'forward'));
    },

    async creditTarget(input: TransferActivityInput & { currency: string }): Promise<void> {
      await creditTarget(await accepted(input, 'creditTarget', 'forward'));
    },

    /** The accepted request's reversal hold and the debit in one activity: one Temporal round trip fewer. */
    async requestAndDebit(input: TransferActivityInput): Promise<{ currency: string }> {
      const run = await accepted(input, 'requestAndDebit', 'forward');
      await requestTransfer(run);
      return debitSource(run);
    },

    /** The credit and the completion in one activity: one Temporal round trip fewer. */
    async creditAndComplete(input: TransferActivityInput & { currency: string }): Promise<void> {
      await creditTarget(await accepted(input, 'creditAndComplete', 'forward'), true);
    },

    /**
     * The compensation: gives the source back what this transfer debited. A no-op when the source
     * holds no debit for this transfer (the debit never happened) or was already refunded.
     * Returns the amount refunded by this transfer (0 when there was nothing to refund).
     */
    async refundSource(saga: TransferActivityInput): Promise<{ refunded: number }> {
      // Sagas of the released shapes (v1, v2) call this when the credit failed or was cancelled. The
      // credit may still land (a cancelled attempt keeps running): void it on the target first, and
      // never refund a transfer whose credit is on the target (a refund would create money).
      // A saga whose input is not the recorded request refunds nothing (that transfer is not its to touch).
      const { transferId, fromAccountId, toAccountId, amount, reversalOf } = saga;
      const asked = { transferId, fromAccountId, toAccountId, amount, ...(reversalOf ? { reversalOf } : {}) };
      const input = await accepted(saga, 'refundSource');
      const recorded = input.recorded;
      if (!sameRequest(recorded.request!, asked)) return { refunded: 0 };
      if (recorded.credited !== undefined || (await voidCredit(input))) {
        throw ApplicationFailure.nonRetryable(`Transfer ${input.transferId} was credited: refusing to refund it`, 'refund_after_credit');
      }
      return refund(input);
    },

    /**
     * The saga's settlement when its forward path stopped (a rejection, a cancel, retries exhausted):
     * the transfer ends in exactly one safe outcome, whatever landed before.
     * 1. When a credit attempt may have run, the target decides first: the credit landed (the transfer
     *    completes: money reached the target, a refund would create money), or it is voided there so
     *    that no late credit attempt can land any more.
     * 2. Otherwise the source gets back what this transfer debited (a debit not landed is voided).
     * 3. The outcome is recorded: completed, compensated (money moved and came back) or failed (nothing moved).
     * Idempotent: a retry, or a saga run again under the same transfer id, reaches the same outcome.
     */
    async settleTransfer(saga: SettleInput): Promise<Settlement> {
      const { transferId, fromAccountId, toAccountId, amount, reversalOf } = saga;
      const asked = { transferId, fromAccountId, toAccountId, amount, ...(reversalOf ? { reversalOf } : {}) };
      const input = await accepted(saga, 'settleTransfer');
      const recorded = input.recorded;
      // A saga of an earlier release whose input is not the recorded request: that transfer is not its to settle.
      if (!sameRequest(recorded.request!, asked)) {
        throw ApplicationFailure.nonRetryable(`Transfer ${input.transferId} already exists with a different payload`, 'transfer_conflict');
      }
      if (recorded.status === 'completed' || recorded.status === 'failed' || recorded.status === 'compensated') {
        // A reversal that ended without moving money gives its hold back, should an earlier run have left it (a no-op otherwise).
        if (input.reversalOf && recorded.status !== 'completed')
          await onReversed(input, { type: 'ReleaseReversal', reversalId: input.transferId });
        return { outcome: recorded.status, refunded: recorded.refunded ?? 0 };
      }
      if (recorded.credited !== undefined || (input.creditMayHaveRun && (await voidCredit(input)))) {
        const source = await accounts.load(input.fromAccountId);
        const debited = legsOf(source.state, input.transferId)?.debited ?? recorded.debited ?? input.amount;
        await recordStep(
          input,
          { type: 'RecordSourceDebited', accountId: input.fromAccountId, amount: debited, currency: source.state.currency },
          { type: 'RecordTargetCredited', accountId: input.toAccountId, amount: input.amount },
          { type: 'CompleteTransfer' },
        );
        return { outcome: 'completed', refunded: 0 };
      }
      const { refunded } = await refund(input);
      const outcome = refunded > 0 ? 'compensated' : 'failed';
      // A reversal that moved nothing (or gave it back) releases its hold on the transfer it reverses.
      if (input.reversalOf) await onReversed(input, { type: 'ReleaseReversal', reversalId: input.transferId });
      await recordStep(input, requestOf(input), {
        type: outcome === 'failed' ? 'FailTransfer' : 'CompensateTransfer',
        reason: input.reason,
        message: input.message,
      });
      return { outcome, refunded };
    },

    /** A saga that cannot settle waits for a person: counted and logged (never silently failed). */
    async reportNeedsAttention(input: TransferActivityInput & { reason: string; message: string }): Promise<void> {
      observer?.needsAttention?.(input.transferId, input.reason, input.message);
    },

    async completeTransfer(input: TransferActivityInput): Promise<void> {
      await recordStep(await accepted(input, 'completeTransfer'), { type: 'CompleteTransfer' });
    },

    /**
     * The outcome, with the request in the same append: when the store was down before the request
     * could be recorded, the transfer's stream still tells the story (request, then outcome).
     */
    async failTransfer(saga: TransferActivityInput & { reason: TransferFailureReason; message: string }): Promise<void> {
      const input = await accepted(saga, 'failTransfer');
      await recordStep(input, requestOf(input), { type: 'FailTransfer', reason: input.reason, message: input.message });
    },

    async compensateTransfer(saga: TransferActivityInput & { reason: TransferFailureReason; message: string }): Promise<void> {
      const input = await accepted(saga, 'compensateTransfer');
      await recordStep(input, requestOf(input), { type: 'CompensateTransfer', reason: input.reason, message: input.message });
    },
  };
}

export type TransferActivities = ReturnType<typeof createTransferActivities>;
