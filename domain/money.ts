/** Money is an integer count of minor units (cents). Never a float. */
export type MinorUnits = number;

export function isValidAmount(amount: unknown): amount is MinorUnits {
  return typeof amount === 'number' && Number.isSafeInteger(amount) && amount > 0;
}

/** ISO 4217-shaped currency code: three upper-case letters. */
export function isCurrencyCode(code: unknown): code is string {
  return typeof code === 'string' && /^[A-Z]{3}$/.test(code);
}

/**
 * The most an account may hold: 10^15 minor units (10 trillion in a 2-decimal currency), about a
 * ninth of Number.MAX_SAFE_INTEGER. Deposits and credits that would pass it are refused; a refund
 * gives back money that left this account and always lands, even past the limit. A balance can only
 * exceed the limit by the refunds of transfers in flight from the account, each at most the limit:
 * it would take eight maximum-size transfers compensated at once on an account sitting at the limit
 * to approach MAX_SAFE_INTEGER, and the refund's own guard still refuses to pass it.
 */
export const MAX_BALANCE: MinorUnits = 1_000_000_000_000_000;
