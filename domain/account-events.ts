import type { MinorUnits } from './money';

/** Events of an account stream `account-<accountId>`. Each carries the balance after it, for histories. */
export type AccountEvent =
  | { type: 'AccountOpened'; data: { accountId: string; ownerId: string; currency: string } }
  | { type: 'MoneyDeposited'; data: { accountId: string; amount: MinorUnits; balanceAfter: MinorUnits } }
  | { type: 'MoneyWithdrawn'; data: { accountId: string; amount: MinorUnits; balanceAfter: MinorUnits } }
  | { type: 'AccountClosed'; data: { accountId: string } }
  | {
      type: 'TransferDebited';
      data: { accountId: string; transferId: string; amount: MinorUnits; toAccountId: string; balanceAfter: MinorUnits };
    }
  | {
      type: 'TransferCredited';
      data: { accountId: string; transferId: string; amount: MinorUnits; fromAccountId: string; balanceAfter: MinorUnits };
    }
  | { type: 'TransferRefunded'; data: { accountId: string; transferId: string; amount: MinorUnits; balanceAfter: MinorUnits } }
  /**
   * The saga gave up on this transfer before any debit landed: a debit attempt still in flight
   * (a timed-out activity that wakes up late) must never land after the transfer was settled.
   */
  | { type: 'TransferDebitVoided'; data: { accountId: string; transferId: string } }
  /**
   * The saga settled this transfer without crediting this account (cancelled, or the credit was
   * given up): a credit attempt still in flight must never land after the source was refunded.
   */
  | { type: 'TransferCreditVoided'; data: { accountId: string; transferId: string } }
  /**
   * A hold (two-phase transfer) reserves money on this account: the balance stays, `held` grows, and every debit checks
   * `available = balance - held`. The hold's id is the id of the transfer its capture makes.
   */
  | { type: 'HoldPlaced'; data: { accountId: string; holdId: string; amount: MinorUnits; toAccountId: string; heldAfter: MinorUnits } }
  /**
   * The reservation ends: voided, expired, or captured (then a TransferDebited of the captured part follows in the same
   * append). `amount` is what was held (0 for a hold released before it was placed: no placement may land after it).
   */
  | {
      type: 'HoldReleased';
      data: { accountId: string; holdId: string; amount: MinorUnits; reason: HoldReleaseReason; heldAfter: MinorUnits };
    };

export type HoldReleaseReason = 'voided' | 'expired' | 'captured';

export type AccountEventType = AccountEvent['type'];

/** Every account event type, derived from the union: a type missing here fails to compile. */
const ACCOUNT_EVENT_TYPE_SET = {
  AccountOpened: true,
  MoneyDeposited: true,
  MoneyWithdrawn: true,
  AccountClosed: true,
  TransferDebited: true,
  TransferCredited: true,
  TransferRefunded: true,
  TransferDebitVoided: true,
  TransferCreditVoided: true,
  HoldPlaced: true,
  HoldReleased: true,
} as const satisfies Record<AccountEventType, true>;

export const ACCOUNT_EVENT_TYPES: readonly AccountEventType[] = Object.keys(ACCOUNT_EVENT_TYPE_SET) as AccountEventType[];

/** Events that move money, and their sign: the one place the sign of a movement lives. */
const MOVEMENT_SIGN = {
  MoneyDeposited: 1,
  MoneyWithdrawn: -1,
  TransferDebited: -1,
  TransferCredited: 1,
  TransferRefunded: 1,
} as const satisfies Partial<Record<AccountEventType, 1 | -1>>;

export type MovementEvent = Extract<AccountEvent, { type: keyof typeof MOVEMENT_SIGN }>;
export const MOVEMENT_TYPES = Object.keys(MOVEMENT_SIGN) as MovementEvent['type'][];

export function isMovement(event: AccountEvent): event is MovementEvent {
  return event.type in MOVEMENT_SIGN;
}

/** The signed change an event makes to its account's balance (0 for events that move no money). */
export function balanceChange(event: AccountEvent): MinorUnits {
  return isMovement(event) ? MOVEMENT_SIGN[event.type] * event.data.amount : 0;
}

export const accountStream = (accountId: string): string => `account-${accountId}`;
export const ACCOUNT_STREAM_PREFIX = 'account-';
