/**
 * Records one transfer saga history per outcome (completed, failed, compensated) as JSON fixtures
 * in test/fixtures/histories/<outcome>.json. test/saga/replay.test.ts replays them against the
 * current workflow code, so a change to the saga that breaks determinism for workflows already
 * running in production fails the tests. Re-record only when old histories are meant to be
 * dropped (and never to make a determinism failure go away: version the workflow with patched()).
 *
 *   npx tsx scripts/record-workflow-histories.ts [outputDir]
 *
 * Uses the test stack: TEMPORAL_ADDRESS / DATABASE_URL when set (the database server needs to let
 * the user create databases; a throwaway one is created and dropped), otherwise it starts a
 * Temporal dev server and an embedded PostgreSQL itself, like the jest globalSetup.
 */
import fs from 'node:fs';
import path from 'node:path';
import globalSetup from '../test/support/global-setup';
import globalTeardown from '../test/support/global-teardown';
import { historyToJson } from '../test/support/history-json';
import { runSagaEndingIn, SAGA_OUTCOMES } from '../test/support/saga-outcomes';
import { TransferStack } from '../test/support/transfer-stack';

async function main(): Promise<void> {
  // One directory per released shape of the saga, e.g. test/fixtures/histories/v2-merged-legs.
  const outputDir = path.resolve(process.argv[2] ?? path.join(__dirname, '../test/fixtures/histories/current'));
  await globalSetup();
  try {
    const stack = await TransferStack.create('record_histories');
    try {
      await stack.startWorker();
      fs.mkdirSync(outputDir, { recursive: true });
      for (const outcome of SAGA_OUTCOMES) {
        const { handle } = await runSagaEndingIn(stack, outcome);
        const history = await handle.fetchHistory();
        // The proto3 JSON form (as `temporal workflow show --output json` and the SDK's historyToJSON, which
        // this install cannot use: see test/support/history-json.ts), pretty-printed for review.
        const json = historyToJson(history);
        const file = path.join(outputDir, `${outcome}.json`);
        fs.writeFileSync(file, `${json}\n`);
        console.log(`${outcome}: ${history.events?.length ?? 0} events -> ${path.relative(process.cwd(), file)}`);
      }
    } finally {
      await stack.close();
    }
  } finally {
    await globalTeardown();
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
