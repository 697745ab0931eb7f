import { ACCOUNT_STREAM_PREFIX } from '../domain/account-events';
import type { RecordedEvent } from '../eventstore/event-store';

/**
 * What a read depends on (issue 23): given a parked event, whether the read's answer could lack it. A read with
 * ?minPosition is refused (503 projection-degraded) only for a parked event its scope concerns, so one event a
 * projection cannot apply does not stop the reads of every other account; without a scope, every parked event
 * concerns the read (a read over all accounts). The consumer groups park a failed event's later events of the same
 * stream behind it, so a scope that takes a stream's event takes all of them. The runner applies it
 * (projection-runner.ts, waitForProjection's `scope`): only when something is parked at or before the position asked,
 * over the group's parked events (listed once while they stay the same).
 */
export type ReadScope = (parked: RecordedEvent) => boolean;

/** The account ids an event names: its stream's (`account-<id>`) and those of its data (accountId, fromAccountId, toAccountId). */
function accountsNamed(event: RecordedEvent): string[] {
  const ids: string[] = [];
  if (event.stream.startsWith(ACCOUNT_STREAM_PREFIX)) ids.push(event.stream.slice(ACCOUNT_STREAM_PREFIX.length));
  const data: unknown = event.data;
  if (typeof data === 'object' && data !== null) {
    for (const field of ['accountId', 'fromAccountId', 'toAccountId']) {
      const value: unknown = Object.hasOwn(data, field) ? (data as Record<string, unknown>)[field] : undefined;
      if (typeof value === 'string') ids.push(value);
    }
  }
  return ids;
}

/**
 * A read about one account (its balance, history, statement, exceptions): it depends on the events that name the
 * account, and on every event that names none (a close of the books, a malformed event: assumed to concern every
 * account). An event of another account does not hold it back.
 */
export function accountScope(accountId: string): ReadScope {
  return (event) => {
    const named = accountsNamed(event);
    return named.length === 0 || named.includes(accountId);
  };
}

/** Only the events of streams starting with one of the prefixes (a read made of those streams' rows alone). */
export function streamsScope(...prefixes: string[]): ReadScope {
  return (event) => prefixes.some((prefix) => event.stream.startsWith(prefix));
}

/** Both scopes: the event concerns the read only if it concerns each. */
export function bothScopes(a: ReadScope, b: ReadScope): ReadScope {
  return (event) => a(event) && b(event);
}
