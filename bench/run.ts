/**
 * `npm run bench [-- transfers|eventstore|fold] [--quick]` (never part of `npm test`).
 * Every figure is printed beside a baseline measured in the same run on the same servers. The transfers bench ends with
 * batches of 1,000 transfers (over 100 accounts and over 10 hot accounts, as ratios to the plain-SQL baseline and to the
 * run's single transfers at 32 in flight; `--no-batches` skips them) and a holds step (place + capture at 32 in flight,
 * as a ratio to the run's transfers/s at 32; capture answer p50/p95). The load comes from a process of its own.
 */
import { eventStoreBench } from './eventstore-bench';
import { foldBench } from './fold-bench';
import { transfersBench } from './transfers-bench';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const which = args.find((a) => !a.startsWith('--')) ?? 'transfers';
  if (which === 'eventstore') await eventStoreBench(quick);
  else if (which === 'fold') foldBench(quick);
  else if (which === 'transfers') await transfersBench(quick, args);
  else if (which === 'all') {
    await eventStoreBench(quick);
    await transfersBench(quick, args);
  } else {
    console.error(`Unknown benchmark '${which}': use transfers, eventstore, fold or all`);
    process.exit(2);
  }
  process.exit(0);
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
