import type { AccountEvent } from '../domain/account-events';
import { evolveAccount, initialAccountState, type AccountState, type TransferLegs } from '../domain/account-state';
import { round, table } from './stats';

/**
 * `npm run bench -- fold`: a hot account's fold per event as its transfers pile up. Each leg is remembered in the
 * account's state (for idempotent retries and exact refunds); the baseline, measured in the same run, keeps them in
 * one flat map copied at every event, as the state did before its legs went into buckets (domain/account-state.ts).
 */
export function foldBench(quick: boolean): void {
  const sizes = quick ? [1_000, 10_000] : [1_000, 10_000, 50_000, 200_000];
  const rounds = 200;
  const debit = (transferId: string): AccountEvent => ({
    type: 'TransferDebited',
    data: { accountId: 'hot', transferId, amount: 1, toAccountId: 'other', balanceAfter: 0 },
  });
  let state: AccountState = { ...initialAccountState('hot'), status: 'open', currency: 'EUR' };
  let flat: Record<string, TransferLegs> = {};
  const flatEvolve = (legs: Record<string, TransferLegs>, transferId: string) => ({
    ...legs,
    [transferId]: { ...legs[transferId], debited: 1 },
  });
  const rows: Record<string, string | number>[] = [];
  let n = 0;
  for (const size of sizes) {
    // Grown without the flat baseline's copies (that alone would take minutes at the larger sizes).
    for (; n < size; n++) {
      state = evolveAccount(state, debit(`transfer-${n}`));
      flat[`transfer-${n}`] = { debited: 1 };
    }
    const perEvent = (work: (i: number) => unknown) => {
      const count = size >= 50_000 ? 20 : rounds;
      const t = performance.now();
      for (let i = 0; i < count; i++) work(i);
      return (performance.now() - t) / count;
    };
    const ours = perEvent((i) => evolveAccount(state, debit(`next-${i}`)));
    const baseline = perEvent((i) => flatEvolve(flat, `next-${i}`));
    rows.push({
      'transfers on the account': size,
      'ours ms/event': round(ours, 4),
      'flat map ms/event': round(baseline, 3),
      'flat / ours': `${round(baseline / ours, 1)}x`,
      'state JSON MB': round(JSON.stringify(state).length / 1e6, 2),
    });
  }
  flat = {};
  console.log('\nA hot account: the fold of one more event as its transfers pile up (same run, same machine)\n');
  console.log(table(rows));
}
