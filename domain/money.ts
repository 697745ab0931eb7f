/** Money is an integer count of minor units (cents). Never a float. */
export type MinorUnits = number;

export function isValidAmount(amount: unknown): amount is MinorUnits {
  return typeof amount === 'number' && Number.isSafeInteger(amount) && amount > 0;
}

/** ISO 4217-shaped currency code: three upper-case letters. */
export function isCurrencyCode(code: unknown): code is string {
  return typeof code === 'string' && /^[A-Z]{3}$/.test(code);
}
