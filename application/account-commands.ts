import type { AccountCommand } from '../domain/account-decider';
import type { AccountState } from '../domain/account-state';
import type { AccountRepository } from './account-repository';
import { handleCommand, type CommandOptions, type CommandResult } from './command-handler';

export type AccountCommandResult = CommandResult<AccountState>;
export type AccountCommandOptions = CommandOptions<AccountState>;

/** A command on one account, through the one command path (application/command-handler.ts). */
export function handleAccountCommand(
  repository: AccountRepository,
  accountId: string,
  command: AccountCommand,
  options: AccountCommandOptions = {},
): Promise<AccountCommandResult> {
  return handleCommand(repository, accountId, command, options);
}
