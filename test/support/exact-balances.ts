/**
 * Exact money arithmetic for tests: balances recomputed with BigInt from the signed amounts of an
 * account's events alone, independent of the code under test (its fold, its `balanceAfter`) and of
 * floating point (a Number sum past 2^53 rounds on both sides of a comparison alike; BigInt does not).
 */

/** What moves money on an account and in which direction; every other account event moves nothing. */
const SIGN: Record<string, 1n | -1n> = {
  MoneyDeposited: 1n,
  TransferCredited: 1n,
  TransferRefunded: 1n,
  MoneyWithdrawn: -1n,
  TransferDebited: -1n,
};

interface AccountEventLike {
  type: string;
  data: unknown;
}

/** The signed amount an account event moves, exactly (0n for events that move no money). Throws on a non-integer amount. */
export function exactSignedAmount(event: AccountEventLike): bigint {
  const sign = SIGN[event.type];
  if (sign === undefined) return 0n;
  const amount = (event.data as { amount?: unknown }).amount;
  if (typeof amount !== 'number' || !Number.isInteger(amount))
    throw new Error(`${event.type} carries a non-integer amount: ${String(amount)}`);
  return sign * BigInt(amount);
}

export interface RunningBalance {
  index: number;
  type: string;
  /** The balance after this event, recomputed exactly. */
  balance: bigint;
  /** The event's own balanceAfter, when it carries one. */
  recordedBalanceAfter?: number;
}

/** The balance after each event, from the signed amounts alone (BigInt), beside what each event recorded. */
export function runningBalances(events: readonly AccountEventLike[]): RunningBalance[] {
  let balance = 0n;
  return events.map((event, index) => {
    balance += exactSignedAmount(event);
    const recorded = (event.data as { balanceAfter?: unknown }).balanceAfter;
    return { index, type: event.type, balance, ...(typeof recorded === 'number' ? { recordedBalanceAfter: recorded } : {}) };
  });
}

/** The events whose recorded balanceAfter differs from the exact running balance (empty when they all agree). */
export function balanceAfterMismatches(
  running: readonly RunningBalance[],
): { index: number; type: string; exact: string; recorded: number }[] {
  return running
    .filter(
      (r) =>
        r.recordedBalanceAfter !== undefined && (!Number.isInteger(r.recordedBalanceAfter) || BigInt(r.recordedBalanceAfter) !== r.balance),
    )
    .map((r) => ({ index: r.index, type: r.type, exact: r.balance.toString(), recorded: r.recordedBalanceAfter! }));
}
