import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import type { Pool } from 'pg';
import { DefaultLogger, NativeConnection, Runtime, type Worker } from '@temporalio/worker';
import { createTransferActivities, type TransferActivities } from '../../activities/transfer-activities';
import { AccountRepository } from '../../application/account-repository';
import { handleAccountCommand } from '../../application/account-commands';
import { TransferLog } from '../../application/transfer-log';
import { PostgresEventStore } from '../../eventstore/postgres/postgres-event-store';
import { createServicePool, PG_TIMEOUTS } from '../../infra/pg-pool';
import { acceptTransfer } from '../../temporal/transfer-client';
import { createTransferWorker, transferWorkflowBundle } from '../../temporal/transfer-worker';
import type { TransferSagaInput, TransferSagaStatus } from '../../workflows/transfer-saga-contract';
import { createTestDatabase, temporalAddress, type TestDatabase } from './test-database';

let runtimeInstalled = false;
function quietRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  try {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
  } catch {
    /* already installed by another helper in this process */
  }
}

/** A real stack for one test file: its own database, event store, task queue and worker on the shared dev server. */
export class TransferStack {
  private workerRun?: Promise<void>;
  worker?: Worker;

  private constructor(
    readonly db: TestDatabase,
    readonly store: PostgresEventStore,
    /**
     * The pool the store runs on, made and owned by this stack (the store does not end it; close() does, after the
     * store): for the tests' own SQL (tampering, inspecting) and for watching the store's connections.
     */
    readonly pool: Pool,
    readonly accounts: AccountRepository,
    readonly transfers: TransferLog,
    readonly client: Client,
    readonly nativeConnection: NativeConnection,
    readonly taskQueue: string,
  ) {}

  static async create(label: string, options: { snapshotEvery?: number } = {}): Promise<TransferStack> {
    quietRuntime();
    const db = await createTestDatabase(label);
    // The pool the store would make for poolSize 30 (PostgresEventStore.connect), made here so that the stack owns it.
    const pool = createServicePool({
      connectionString: db.url,
      max: 30,
      applicationName: 'transfer-event-store',
      statementTimeoutMs: PG_TIMEOUTS.statementMs,
    });
    let store: PostgresEventStore;
    try {
      store = await PostgresEventStore.connect({ connectionString: db.url, pollIntervalMs: 200, poolSize: 30, pool });
    } catch (error) {
      await pool.end().catch(() => undefined);
      throw error;
    }
    const accounts = new AccountRepository(store, options.snapshotEvery ?? 50);
    const transfers = new TransferLog(store);
    const connection = await Connection.connect({ address: temporalAddress() });
    const client = new Client({ connection, namespace: 'default' });
    const nativeConnection = await NativeConnection.connect({ address: temporalAddress() });
    return new TransferStack(db, store, pool, accounts, transfers, client, nativeConnection, `${label}-${randomUUID().slice(0, 8)}`);
  }

  realActivities(): TransferActivities {
    return createTransferActivities({ accounts: this.accounts, transfers: this.transfers });
  }

  /** Starts a worker on this stack's task queue, with the real activities or a variant of them. */
  async startWorker(activities: Parameters<typeof createTransferWorker>[0]['activities'] = this.realActivities()): Promise<Worker> {
    await this.stopWorker();
    const worker = await createTransferWorker({
      connection: this.nativeConnection,
      namespace: 'default',
      taskQueue: this.taskQueue,
      activities,
      workflowBundle: await transferWorkflowBundle(),
    });
    this.worker = worker;
    this.workerRun = worker.run();
    return worker;
  }

  async stopWorker(): Promise<void> {
    if (this.worker && this.worker.getState() === 'RUNNING') this.worker.shutdown();
    await this.workerRun;
    this.worker = undefined;
    this.workerRun = undefined;
  }

  async openAccount(balance: number, currency = 'EUR'): Promise<string> {
    const accountId = randomUUID();
    const result = await handleAccountCommand(this.accounts, accountId, {
      type: 'OpenAccount',
      accountId,
      ownerId: 'owner-1',
      currency,
      ...(balance > 0 ? { initialDeposit: balance } : {}),
    });
    if (!result.ok) throw new Error(result.rejection.message);
    return accountId;
  }

  async balance(accountId: string): Promise<number> {
    return (await this.accounts.loadWithoutSnapshot(accountId)).state.balance;
  }

  async transfer(fromAccountId: string, toAccountId: string, amount: number, transferId = randomUUID()): Promise<TransferSagaStatus> {
    const input: TransferSagaInput = { transferId, fromAccountId, toAccountId, amount, correlationId: `test-${transferId}` };
    const { handle } = await acceptTransfer(this, input);
    return handle.result();
  }

  async eventTypes(stream: string): Promise<string[]> {
    return (await this.store.readStream(stream)).map((e) => e.type);
  }

  async close(): Promise<void> {
    await this.stopWorker();
    await this.client.connection.close();
    await this.nativeConnection.close();
    await this.store.close();
    await this.pool.end();
    await this.db.drop();
  }
}
