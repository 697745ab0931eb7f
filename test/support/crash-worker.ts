/**
 * A transfer worker meant to be killed: run as a child process (`npx tsx test/support/crash-worker.ts`)
 * by test/saga/worker-crash.test.ts. It polls the test's task queue on the shared Temporal dev server
 * with the real activities against the test's database, except `creditAndComplete`, which never resolves:
 * a saga it runs debits the source and then hangs in the credit until this process is SIGKILLed.
 *
 * Environment (all required):
 *   TEST_TEMPORAL_ADDRESS     the dev server (host:port)
 *   CRASH_WORKER_DATABASE_URL the test file's database
 *   CRASH_WORKER_TASK_QUEUE   the test file's task queue
 *   CRASH_WORKER_PARENT_PID   the test process: this worker exits when it is gone, so it cannot outlive the test
 * Stdout protocol: `ready` once the worker polls, `credit-started <transferId>` when the hanging credit begins,
 * `batch-credit-started <batchId>` when a batch's hanging credit phase begins (creditBatch never resolves either).
 */
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { createTransferActivities, type TransferActivities } from '../../activities/transfer-activities';
import { AccountRepository } from '../../application/account-repository';
import { TransferLog } from '../../application/transfer-log';
import { PostgresEventStore } from '../../eventstore/postgres/postgres-event-store';
import { createTransferWorker } from '../../temporal/transfer-worker';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

async function main(): Promise<void> {
  const address = required('TEST_TEMPORAL_ADDRESS');
  const databaseUrl = required('CRASH_WORKER_DATABASE_URL');
  const taskQueue = required('CRASH_WORKER_TASK_QUEUE');
  const parentPid = Number(required('CRASH_WORKER_PARENT_PID'));

  // Orphan guard: if the test process dies without killing us, go away on our own.
  setInterval(() => {
    try {
      process.kill(parentPid, 0);
    } catch {
      process.exit(3);
    }
  }, 500).unref();

  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const store = await PostgresEventStore.connect({ connectionString: databaseUrl, pollIntervalMs: 200, migrate: false });
  const real = createTransferActivities({ accounts: new AccountRepository(store), transfers: new TransferLog(store) });
  const activities: TransferActivities = {
    ...real,
    creditAndComplete: (input) => {
      process.stdout.write(`credit-started ${input.transferId}\n`);
      return new Promise<void>(() => undefined); // never settles: the saga is stuck between debit and credit
    },
    creditBatch: (input) => {
      process.stdout.write(`batch-credit-started ${input.batchId}\n`);
      return new Promise<never>(() => undefined); // never settles: the batch is stuck between its debits and its credits
    },
  };
  const connection = await NativeConnection.connect({ address });
  const worker = await createTransferWorker({ connection, namespace: 'default', taskQueue, activities });
  process.stdout.write('ready\n');
  await worker.run();
}

main().catch((error) => {
  process.stderr.write(`crash-worker failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
