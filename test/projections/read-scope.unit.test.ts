import type { RecordedEvent } from '../../eventstore/event-store';
import { accountScope, bothScopes, streamsScope } from '../../projections/read-scope';

/** Which parked events a read depends on (issue 23, item 8): projections/read-scope.ts. */
const event = (stream: string, data: Record<string, unknown>): RecordedEvent =>
  ({
    id: '00000000-0000-4000-8000-000000000000',
    type: 'Any',
    stream,
    revision: 0n,
    position: { commit: 1n, prepare: 1n },
    data,
    metadata: { occurredAt: '2026-03-02T00:00:00.000Z' },
    recordedAt: '2026-03-02T00:00:00.000Z',
  }) as RecordedEvent;

describe('read scopes', () => {
  const A = 'a1';
  const mine = accountScope(A);

  test('a read of one account depends on the events that name it, and on those that name no account', () => {
    expect(mine(event(`account-${A}`, { accountId: A }))).toBe(true);
    expect(mine(event('exception-e1', { exceptionId: 'e1', accountId: A }))).toBe(true);
    expect(mine(event('transfer-t1', { fromAccountId: 'b2', toAccountId: A }))).toBe(true);
    expect(mine(event('books-UTC', { date: '2026-03-02' }))).toBe(true);
    expect(mine(event('account-b2', { accountId: 'b2' }))).toBe(false);
    expect(mine(event('exception-e2', { accountId: 'b2' }))).toBe(false);
    expect(mine(event('transfer-t2', { fromAccountId: 'b2', toAccountId: 'c3' }))).toBe(false);
  });

  test('names are read from own properties only', () => {
    const inherited = Object.create({ accountId: A }) as Record<string, unknown>;
    expect(mine(event('exception-e3', inherited))).toBe(true); // names no account of its own: concerns every read
    expect(accountScope('b2')(event('exception-e3', inherited))).toBe(true);
    expect(mine(event('exception-e4', { accountId: 42 }))).toBe(true); // not a name: concerns every read
  });

  test('stream kinds, and both scopes at once', () => {
    const exceptions = streamsScope('exception-');
    expect(exceptions(event('exception-e1', {}))).toBe(true);
    expect(exceptions(event(`account-${A}`, {}))).toBe(false);
    const mineOnly = bothScopes(exceptions, mine);
    expect(mineOnly(event('exception-e1', { accountId: A }))).toBe(true);
    expect(mineOnly(event('exception-e2', { accountId: 'b2' }))).toBe(false);
    expect(mineOnly(event(`account-${A}`, { accountId: A }))).toBe(false);
  });
});
