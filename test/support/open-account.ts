import { randomUUID } from 'node:crypto';
import { handleAccountCommand } from '../../application/account-commands';
import type { AccountRepository } from '../../application/account-repository';

/** Opens an account in EUR with `balance` deposited (none when 0) through the one command path; fails the test if refused. */
export async function openAccount(accounts: AccountRepository, balance: number, ownerId = 'test'): Promise<string> {
  const accountId = randomUUID();
  const opened = await handleAccountCommand(accounts, accountId, {
    type: 'OpenAccount',
    accountId,
    ownerId,
    currency: 'EUR',
    ...(balance > 0 ? { initialDeposit: balance } : {}),
  });
  expect(opened.ok).toBe(true);
  return accountId;
}
