import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { AccountRepository } from '../application/account-repository';
import { handleAccountCommand } from '../application/account-commands';
import type { CommandContext } from '../application/event-envelope';
import type { HoldLog } from '../application/hold-log';
import { transferStepId, type TransferLog } from '../application/transfer-log';
import { legsOf } from '../domain/account-state';
import { deterministicUuid } from '../domain/deterministic-id';
import type { HoldCommand, HoldState } from '../domain/hold';
import type { Rejection } from '../domain/rejection';
import type { AcceptedBy, TransferFailureReason } from '../domain/transfer-events';
import type { ActivityObserver } from './transfer-activities';

export interface HoldActivityInput {
  holdId: string;
}

/** What the saga does next, read from the hold's stream (where the API records captures and voids). */
export type HoldDecision =
  | { kind: 'none' }
  | { kind: 'capture'; amount: number }
  | { kind: 'void' }
  | { kind: 'expire' }
  /** Nothing more happens to it: its status says how it ended. */
  | { kind: 'settled' };

/** The accepted hold as the saga sees it (everything from the hold's stream, nothing from the saga's input). */
export interface AcceptedHold {
  holdId: string;
  fromAccountId: string;
  toAccountId: string;
  amount: number;
  expiresAt: string;
  status: HoldState['status'];
  settled: boolean;
  actor: string;
  correlationId?: string;
  failureReason?: string;
}

export interface HoldActivityDeps {
  accounts: AccountRepository;
  transfers: TransferLog;
  holds: HoldLog;
  observer?: ActivityObserver;
}

function businessFailure(rejection: Rejection): ApplicationFailure {
  return ApplicationFailure.nonRetryable(rejection.message, rejection.type);
}

const legId = (holdId: string, leg: string) => (index: number, type: string) => deterministicUuid('hold', holdId, leg, type, String(index));

/**
 * The hold saga's activities. Like the transfer's, they act only on what the API recorded (the hold's stream, and for a
 * capture the transfer of the hold's id that the API accepted with it): an input that names anything else changes
 * nothing. The capture's credit and its settlement are the transfer's own activities (creditAndComplete,
 * settleTransfer), so a capture inherits every rule of a transfer: a refund never lands while the credit may have.
 */
export function createHoldActivities({ accounts, transfers, holds, observer }: HoldActivityDeps) {
  function context(hold: HoldState, by?: AcceptedBy): CommandContext {
    let causationId: string | undefined;
    try {
      const info = Context.current().info;
      causationId = `${info.workflowExecution?.workflowId ?? 'activity'}/${info.activityType}`;
    } catch {
      causationId = undefined; // outside an activity (tests)
    }
    const who = by ?? hold.accepted;
    return {
      ...(who?.correlationId ? { correlationId: who.correlationId } : {}),
      causationId,
      extra: { holdId: hold.holdId, ...(who ? { actor: who.actor } : {}) },
    };
  }

  /** The hold as recorded, or a refusal (non-retryable `unauthorized`) when the API never accepted it. */
  async function accepted(holdId: string, activity: string): Promise<HoldState> {
    const { state } = await holds.load(holdId);
    if (!state.request) {
      const why = 'no hold accepted by the API is recorded';
      observer?.unauthorized?.(holdId, activity, why);
      throw ApplicationFailure.nonRetryable(`Hold ${holdId}: ${why}; nothing moves`, 'unauthorized');
    }
    return state;
  }

  async function record(hold: HoldState, command: HoldCommand, by?: AcceptedBy): Promise<HoldState> {
    const result = await holds.record(hold.holdId, command, context(hold, by));
    if (!result.ok) throw businessFailure(result.rejection);
    return result.state;
  }

  function view(hold: HoldState): AcceptedHold {
    const r = hold.request!;
    return {
      holdId: hold.holdId,
      fromAccountId: r.fromAccountId,
      toAccountId: r.toAccountId,
      amount: r.amount,
      expiresAt: r.expiresAt,
      status: hold.status,
      settled: hold.settled,
      actor: hold.accepted?.actor ?? 'unknown',
      ...(hold.accepted?.correlationId ? { correlationId: hold.accepted.correlationId } : {}),
      ...(hold.failureReason ? { failureReason: hold.failureReason } : {}),
    };
  }

  return {
    /** The hold the API accepted, or null: the run then moves and writes nothing. */
    async acceptedHold({ holdId }: HoldActivityInput): Promise<AcceptedHold | null> {
      try {
        return view(await accepted(holdId, 'acceptedHold'));
      } catch (error) {
        if (error instanceof ApplicationFailure && error.type === 'unauthorized') return null;
        throw error;
      }
    },

    /**
     * Reserves the money on the source, unless a void or the expiry was decided first. A refusal (not enough available,
     * a closed account) is recorded on the hold's stream: it ends `failed`, nothing reserved.
     */
    async placeHold({ holdId }: HoldActivityInput): Promise<AcceptedHold> {
      const hold = await accepted(holdId, 'placeHold');
      if (hold.status !== 'pending') return view(hold);
      const r = hold.request!;
      const [source, target] = await accounts.loadMany([r.fromAccountId, r.toAccountId]);
      const currency = source.state.currency;
      const unpayable: { reason: TransferFailureReason; message: string } | undefined =
        target.state.status === 'none'
          ? { reason: 'account_not_found', message: `Account ${r.toAccountId} does not exist` }
          : target.state.status === 'closed'
            ? { reason: 'account_closed', message: `Account ${r.toAccountId} is closed: a capture could not be paid into it` }
            : source.state.status !== 'none' && target.state.currency !== currency
              ? {
                  reason: 'currency_mismatch',
                  message: `Account ${r.fromAccountId} holds ${currency}, ${r.toAccountId} holds ${target.state.currency}`,
                }
              : undefined;
      if (unpayable) {
        const { reason, message } = unpayable;
        // A void of the source's reservation first (a no-op): no placement can land after the refusal.
        await handleAccountCommand(
          accounts,
          r.fromAccountId,
          { type: 'ReleaseHold', holdId, reason: 'voided' },
          { context: context(hold), eventId: legId(holdId, 'release') },
        );
        return view(await record(hold, { type: 'RefuseHold', reason, message }));
      }
      const result = await handleAccountCommand(
        accounts,
        r.fromAccountId,
        { type: 'PlaceHold', holdId, amount: r.amount, currency, toAccountId: r.toAccountId },
        { context: context(hold), eventId: legId(holdId, 'place'), preloaded: source },
      );
      if (!result.ok)
        return view(await record(hold, { type: 'RefuseHold', reason: result.rejection.type, message: result.rejection.message }));
      return view(await record(hold, { type: 'RecordReserved', accountId: r.fromAccountId, amount: r.amount, currency }));
    },

    /**
     * What to do next, from the hold's stream: a capture or a void the API recorded, or, when the timer fired with
     * neither, the expiry (recorded here: the stream's expected revision lets exactly one of a capture and the expiry
     * win). `cancelled`: an operator cancelled the saga: with no capture recorded, the hold is voided by the system.
     */
    async nextDecision(input: HoldActivityInput & { timerFired: boolean; cancelled?: boolean }): Promise<HoldDecision> {
      let hold = await accepted(input.holdId, 'nextDecision');
      if (!hold.settled && !hold.capture && hold.status !== 'voided' && hold.status !== 'expired') {
        if (input.cancelled) hold = await record(hold, { type: 'RequestVoid', accepted: { actor: 'system' } }, { actor: 'system' });
        else if (input.timerFired) hold = await record(hold, { type: 'ReachExpiry' });
      }
      if (hold.settled) return { kind: 'settled' };
      if (hold.capture) return { kind: 'capture', amount: hold.capture.amount };
      if (hold.status === 'voided') return { kind: 'void' };
      if (hold.status === 'expired') return { kind: 'expire' };
      return { kind: 'none' };
    },

    /**
     * The capture's first leg: the transfer of the hold's id (recorded as the API accepted it with the capture; recorded
     * here again, idempotently, should the API have stopped between the two), then on the source in one append: the
     * reservation ends and the captured part is debited. Returns the currency for the credit.
     */
    async captureHold({ holdId }: HoldActivityInput): Promise<{ currency: string }> {
      const hold = await accepted(holdId, 'captureHold');
      if (!hold.capture) throw ApplicationFailure.nonRetryable(`Hold ${holdId}: no capture is recorded`, 'unauthorized');
      const r = hold.request!;
      const amount = hold.capture.amount;
      const request = { transferId: holdId, fromAccountId: r.fromAccountId, toAccountId: r.toAccountId, amount };
      const recorded = await transfers.accept(request, { ...hold.capture.accepted, holdId });
      if (!recorded.ok)
        throw businessFailure(
          recorded.rejection.type === 'transfer_conflict'
            ? { type: 'hold_conflict', message: recorded.rejection.message }
            : recorded.rejection,
        );
      const source = await accounts.load(r.fromAccountId);
      const result = await handleAccountCommand(
        accounts,
        r.fromAccountId,
        { type: 'CaptureHold', holdId, amount, currency: source.state.currency, toAccountId: r.toAccountId },
        { context: context(hold, hold.capture.accepted), eventId: legId(holdId, 'capture'), preloaded: source },
      );
      if (!result.ok) throw businessFailure(result.rejection);
      const debited = await transfers.record(
        holdId,
        [{ type: 'RecordSourceDebited', accountId: r.fromAccountId, amount, currency: result.state.currency }],
        transferStepId(holdId),
        context(hold, hold.capture.accepted),
      );
      if (!debited.ok) throw businessFailure(debited.rejection);
      return { currency: result.state.currency };
    },

    /** Records how the capture's transfer ended: completed (captured) or given back (compensated). */
    async recordCaptureOutcome(
      input: HoldActivityInput & { outcome: 'completed' | 'failed' | 'compensated'; reason?: TransferFailureReason; message?: string },
    ): Promise<AcceptedHold> {
      const hold = await accepted(input.holdId, 'recordCaptureOutcome');
      const amount = hold.capture?.amount ?? 0;
      if (input.outcome === 'completed')
        return view(await record(hold, { type: 'RecordCaptured', amount, released: (hold.reserved ?? amount) - amount }));
      return view(
        await record(hold, {
          type: 'RecordCaptureCompensated',
          amount,
          reason: input.reason ?? 'infrastructure',
          message: input.message ?? 'the capture was given back',
        }),
      );
    },

    /** Ends the reservation on the source (after a void or the expiry) and records what went back. Always succeeds. */
    async releaseHold(input: HoldActivityInput & { reason: 'voided' | 'expired' }): Promise<AcceptedHold> {
      const hold = await accepted(input.holdId, 'releaseHold');
      if (hold.settled) return view(hold);
      const r = hold.request!;
      const result = await handleAccountCommand(
        accounts,
        r.fromAccountId,
        { type: 'ReleaseHold', holdId: input.holdId, reason: input.reason },
        { context: context(hold, hold.voidedBy), eventId: legId(input.holdId, 'release') },
      );
      if (!result.ok) throw new Error(`releasing hold ${input.holdId} decided a rejection (${result.rejection.type}); retrying`); // never expected
      const legs = legsOf(result.state, input.holdId);
      const released = legs?.holdReleased === 'captured' ? 0 : (legs?.held ?? 0);
      return view(await record(hold, { type: 'RecordReleased', amount: released, reason: input.reason }));
    },
  };
}

export type HoldActivities = ReturnType<typeof createHoldActivities>;
