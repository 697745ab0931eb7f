import type { Decider } from './decider';
import { ACCOUNT_EVENT_TYPES, accountStream, type AccountEvent } from './account-events';
import { availableOf, draftAccount, evolveAccount, initialAccountState, legsOf, sealAccount, type AccountState } from './account-state';
import { isCurrencyCode, isValidAmount, MAX_BALANCE, type MinorUnits } from './money';
import { accept, reject, type Decision, type Rejection } from './rejection';

/** Commands on one account. The transfer legs carry the transfer id: a leg already applied decides to nothing. */
export type AccountCommand =
  | { type: 'OpenAccount'; accountId: string; ownerId: string; currency: string; initialDeposit?: MinorUnits }
  | { type: 'Deposit'; amount: MinorUnits }
  | { type: 'Withdraw'; amount: MinorUnits }
  | { type: 'CloseAccount' }
  | { type: 'DebitForTransfer'; transferId: string; amount: MinorUnits; currency: string; toAccountId: string }
  | { type: 'CreditForTransfer'; transferId: string; amount: MinorUnits; currency: string; fromAccountId: string }
  | { type: 'RefundForTransfer'; transferId: string }
  /** The compensation's first step on the target: no credit may land any more (a no-op when it already has). */
  | { type: 'VoidCreditForTransfer'; transferId: string }
  /** Reserves money for a hold (two-phase transfer): `available` goes down, the balance stays. */
  | { type: 'PlaceHold'; holdId: string; amount: MinorUnits; currency: string; toAccountId: string }
  /** Ends a hold's reservation without moving money; before it was placed, no placement can land any more. */
  | { type: 'ReleaseHold'; holdId: string; reason: 'voided' | 'expired' }
  /** Ends the reservation and debits the captured part (at most what was held) as the transfer of the hold's id. */
  | { type: 'CaptureHold'; holdId: string; amount: MinorUnits; currency: string; toAccountId: string };

type AccountDecision = Decision<AccountEvent>;

function requireOpen(state: AccountState): AccountDecision | undefined {
  if (state.status === 'none') return reject('account_not_found', `Account ${state.accountId || '(unknown)'} does not exist`);
  if (state.status === 'closed') return reject('account_closed', `Account ${state.accountId} is closed`);
  return undefined;
}

function requireAmount(amount: unknown): AccountDecision | undefined {
  return isValidAmount(amount) ? undefined : reject('invalid_amount', 'Amount must be a positive safe integer of minor units');
}

/** Deposits and credits keep the balance at or below MAX_BALANCE, so refunds of debits in flight always fit. */
function requireRoom(state: AccountState, amount: MinorUnits): AccountDecision | undefined {
  return state.balance + amount <= MAX_BALANCE
    ? undefined
    : reject('balance_limit_exceeded', `Account ${state.accountId} cannot hold more than ${MAX_BALANCE} minor units`);
}

/** What both legs of a transfer require of this account: another counterpart, open, a valid amount, its currency. */
function requireTransferLeg(state: AccountState, counterpartId: string, amount: unknown, currency: string): AccountDecision | undefined {
  if (counterpartId === state.accountId) return reject('same_account', 'A transfer needs two different accounts');
  return (
    requireOpen(state) ??
    requireAmount(amount) ??
    (state.currency !== currency
      ? reject('currency_mismatch', `Account ${state.accountId} holds ${state.currency}, the transfer is in ${currency}`)
      : undefined)
  );
}

/**
 * The currency rule of a transfer, checked before anything moves (the API and the debit leg use it;
 * each leg's own check is requireTransferLeg): both accounts must hold the same currency.
 */
export function currencyMismatch(source: AccountState, target: AccountState): Rejection | undefined {
  if (source.status === 'none' || target.status === 'none' || source.currency === target.currency) return undefined;
  return {
    type: 'currency_mismatch',
    message: `Account ${source.accountId} holds ${source.currency}, ${target.accountId} holds ${target.currency}`,
  };
}

/** The pure decision: from the current state and a command, the new events or a rejection. */
export function decideAccount(state: AccountState, command: AccountCommand): AccountDecision {
  switch (command.type) {
    case 'OpenAccount': {
      if (state.status !== 'none') return reject('account_already_exists', `Account ${command.accountId} already exists`);
      if (!isCurrencyCode(command.currency)) return reject('invalid_currency', 'Currency must be a 3-letter ISO 4217 code');
      const events: AccountEvent[] = [
        { type: 'AccountOpened', data: { accountId: command.accountId, ownerId: command.ownerId, currency: command.currency } },
      ];
      if (command.initialDeposit !== undefined) {
        const bad = requireAmount(command.initialDeposit) ?? requireRoom(state, command.initialDeposit);
        if (bad) return bad;
        events.push({
          type: 'MoneyDeposited',
          data: { accountId: command.accountId, amount: command.initialDeposit, balanceAfter: command.initialDeposit },
        });
      }
      return accept(events);
    }
    case 'Deposit':
      return (
        requireOpen(state) ??
        requireAmount(command.amount) ??
        requireRoom(state, command.amount) ??
        accept([
          {
            type: 'MoneyDeposited',
            data: { accountId: state.accountId, amount: command.amount, balanceAfter: state.balance + command.amount },
          },
        ])
      );
    case 'Withdraw':
      return (
        requireOpen(state) ??
        requireAmount(command.amount) ??
        (command.amount > availableOf(state)
          ? reject('insufficient_funds', insufficient(state, 'withdraw', command.amount))
          : accept([
              {
                type: 'MoneyWithdrawn',
                data: { accountId: state.accountId, amount: command.amount, balanceAfter: state.balance - command.amount },
              },
            ]))
      );
    case 'CloseAccount':
      return (
        requireOpen(state) ??
        (state.balance !== 0
          ? reject('account_has_balance', `Account ${state.accountId} holds ${state.balance}; only an empty account can close`)
          : accept([{ type: 'AccountClosed', data: { accountId: state.accountId } }]))
      );
    case 'DebitForTransfer': {
      const legs = legsOf(state, command.transferId);
      if (legs?.refunded !== undefined) {
        // Debited and given back: the transfer was settled. A debit again is no success a credit could follow.
        return reject('transfer_finished', `Transfer ${command.transferId} was refunded to ${state.accountId}: it can no longer debit it`);
      }
      if (legs?.held !== undefined && legs.holdReleased !== 'captured') {
        // The id is a hold's on this account: only its capture debits it (CaptureHold).
        return reject('transfer_conflict', `${command.transferId} is a hold on ${state.accountId}, not a transfer`);
      }
      if (legs?.debited !== undefined) return accept([]); // already debited: idempotent
      if (legs?.voided) {
        return reject(
          'transfer_finished',
          `Transfer ${command.transferId} was settled without a debit of ${state.accountId}: it can no longer debit it`,
        );
      }
      return (
        requireTransferLeg(state, command.toAccountId, command.amount, command.currency) ??
        (command.amount > availableOf(state)
          ? reject('insufficient_funds', insufficient(state, 'debit', command.amount))
          : accept([
              {
                type: 'TransferDebited',
                data: {
                  accountId: state.accountId,
                  transferId: command.transferId,
                  amount: command.amount,
                  toAccountId: command.toAccountId,
                  balanceAfter: state.balance - command.amount,
                },
              },
            ]))
      );
    }
    case 'CreditForTransfer': {
      const legs = legsOf(state, command.transferId);
      if (legs?.credited !== undefined) return accept([]); // already credited: idempotent
      if (legs?.creditVoided) {
        return reject(
          'transfer_finished',
          `Transfer ${command.transferId} was settled without a credit of ${state.accountId}: it can no longer credit it`,
        );
      }
      return (
        requireTransferLeg(state, command.fromAccountId, command.amount, command.currency) ??
        requireRoom(state, command.amount) ??
        accept([
          {
            type: 'TransferCredited',
            data: {
              accountId: state.accountId,
              transferId: command.transferId,
              amount: command.amount,
              fromAccountId: command.fromAccountId,
              balanceAfter: state.balance + command.amount,
            },
          },
        ])
      );
    }
    case 'RefundForTransfer': {
      // Compensation must always be able to succeed: already refunded or voided is a no-op, and a
      // refund lands even on an account closed since (the money must go back somewhere visible).
      const legs = legsOf(state, command.transferId);
      if (legs?.refunded !== undefined || legs?.voided) return accept([]);
      if (legs?.debited === undefined) {
        // No debit (yet): void the transfer on this account, so a late debit attempt cannot land.
        // A missing account has nothing to void (and must not get a stream).
        return state.status === 'none'
          ? accept([])
          : accept([{ type: 'TransferDebitVoided', data: { accountId: state.accountId, transferId: command.transferId } }]);
      }
      if (!Number.isSafeInteger(state.balance + legs.debited)) {
        // Unreachable under MAX_BALANCE unless many maximum-size transfers are compensated at once:
        // never write an inexact balance; the saga keeps retrying and shows the transfer as needing attention.
        return reject(
          'balance_limit_exceeded',
          `Refunding ${legs.debited} would take account ${state.accountId} past ${Number.MAX_SAFE_INTEGER} minor units`,
        );
      }
      return accept([
        {
          type: 'TransferRefunded',
          data: {
            accountId: state.accountId,
            transferId: command.transferId,
            amount: legs.debited,
            balanceAfter: state.balance + legs.debited,
          },
        },
      ]);
    }
    case 'VoidCreditForTransfer': {
      // The credit landed (the caller reads it from the state: the transfer must complete), or it was
      // already voided, or no credit can ever land here (a missing or closed account: closing is
      // final): nothing to write.
      const legs = legsOf(state, command.transferId);
      if (legs?.credited !== undefined || legs?.creditVoided || state.status !== 'open') return accept([]);
      return accept([{ type: 'TransferCreditVoided', data: { accountId: state.accountId, transferId: command.transferId } }]);
    }
    case 'PlaceHold': {
      const legs = legsOf(state, command.holdId);
      if (legs?.holdReleased !== undefined) return reject('hold_finished', `Hold ${command.holdId} on ${state.accountId} already ended`);
      if (legs?.held !== undefined) {
        return legs.held === command.amount
          ? accept([]) // already placed: idempotent
          : reject('hold_conflict', `Hold ${command.holdId} already reserves ${legs.held} on ${state.accountId}`);
      }
      if (legs !== undefined) return reject('hold_conflict', `${command.holdId} is a transfer of ${state.accountId}, not a hold`);
      return (
        requireTransferLeg(state, command.toAccountId, command.amount, command.currency) ??
        (command.amount > availableOf(state)
          ? reject('insufficient_funds', insufficient(state, 'hold', command.amount))
          : accept([
              {
                type: 'HoldPlaced',
                data: {
                  accountId: state.accountId,
                  holdId: command.holdId,
                  amount: command.amount,
                  toAccountId: command.toAccountId,
                  heldAfter: state.held + command.amount,
                },
              },
            ]))
      );
    }
    case 'ReleaseHold': {
      // Must always be able to succeed (an expiry or a void is a compensation of the reservation).
      const legs = legsOf(state, command.holdId);
      if (legs?.holdReleased !== undefined) return accept([]); // already released: idempotent
      if (legs?.held === undefined) {
        // Not placed (yet): no placement may land any more. A missing account has nothing to release (and gets no stream).
        if (state.status === 'none' || legs !== undefined) return accept([]);
        return accept([
          {
            type: 'HoldReleased',
            data: { accountId: state.accountId, holdId: command.holdId, amount: 0, reason: command.reason, heldAfter: state.held },
          },
        ]);
      }
      return accept([
        {
          type: 'HoldReleased',
          data: {
            accountId: state.accountId,
            holdId: command.holdId,
            amount: legs.held,
            reason: command.reason,
            heldAfter: state.held - legs.held,
          },
        },
      ]);
    }
    case 'CaptureHold': {
      const legs = legsOf(state, command.holdId);
      if (legs?.holdReleased === 'captured') {
        return legs.debited === command.amount
          ? accept([]) // already captured: idempotent
          : reject('hold_finished', `Hold ${command.holdId} was captured for ${legs.debited ?? 0}, not ${command.amount}`);
      }
      if (legs?.holdReleased !== undefined)
        return reject('hold_finished', `Hold ${command.holdId} on ${state.accountId} was ${legs.holdReleased}`);
      if (legs?.held === undefined) return reject('hold_not_placed', `Hold ${command.holdId} reserves nothing on ${state.accountId}`);
      if (legs.voided || legs.refunded !== undefined) {
        // The transfer of the hold's id was settled on this account without this capture (a transfer saga run for it):
        // a debit now could never be credited or refunded by it.
        return reject('hold_finished', `The transfer ${command.holdId} was settled on ${state.accountId}: the hold cannot be captured`);
      }
      const bad = requireAmount(command.amount) ?? requireTransferLeg(state, command.toAccountId, command.amount, command.currency);
      if (bad) return bad;
      if (command.amount > legs.held)
        return reject('capture_exceeds_hold', `Hold ${command.holdId} reserves ${legs.held}, cannot capture ${command.amount}`);
      // The reserved money is in the balance (held <= balance always): the captured part is debited from it at once.
      return accept([
        {
          type: 'HoldReleased',
          data: {
            accountId: state.accountId,
            holdId: command.holdId,
            amount: legs.held,
            reason: 'captured',
            heldAfter: state.held - legs.held,
          },
        },
        {
          type: 'TransferDebited',
          data: {
            accountId: state.accountId,
            transferId: command.holdId,
            amount: command.amount,
            toAccountId: command.toAccountId,
            balanceAfter: state.balance - command.amount,
          },
        },
      ]);
    }
  }
}

function insufficient(state: AccountState, what: string, amount: MinorUnits): string {
  const available = availableOf(state);
  return state.held > 0
    ? `Account ${state.accountId} has ${available} available (${state.balance} less ${state.held} held), cannot ${what} ${amount}`
    : `Account ${state.accountId} holds ${state.balance}, cannot ${what} ${amount}`;
}

/** Accounts as a decider: the stream `account-<id>`, its events, its fold and its rules. */
export const accountDecider: Decider<AccountState, AccountCommand, AccountEvent> = {
  name: 'Account',
  streamName: accountStream,
  eventTypes: ACCOUNT_EVENT_TYPES,
  initialState: initialAccountState,
  evolve: evolveAccount,
  draft: draftAccount,
  seal: sealAccount,
  decide: decideAccount,
};
