import { randomBytes } from 'node:crypto';
import type { Express } from 'express';
import { Pool, type PoolClient } from 'pg';
import request from 'supertest';
import type { ApiDeps } from '../../api/api-deps';
import { createApp } from '../../api/app';
import { collectPostgresStoreMetrics, projectionMetrics } from '../../main/services';
import { AccountRepository } from '../../application/account-repository';
import type { EventStore, RecordedEvent } from '../../eventstore/event-store';
import { PostgresEventStore } from '../../eventstore/postgres/postgres-event-store';
import { createServicePool, PG_TIMEOUTS } from '../../infra/pg-pool';
import { silentLogger, type Logger } from '../../infra/logger';
import { Metrics } from '../../infra/metrics';
import { ALL_PROJECTIONS } from '../../projections/all-projections';
import type { Projection } from '../../projections/projection';
import { ProjectionRunner, projectionLag, type ProjectionObserver } from '../../projections/projection-runner';
import { transferWorkflowId } from '../../workflows/transfer-saga-contract';
import { checkedClient } from './openapi-responses';
import { TransferStack } from './transfer-stack';
import { waitUntil } from './wait-until';

/** A pool whose connections may die under it (a test kills them): errors surface on the next query, never as an unhandled 'error' event. */
export function resilientPool(connectionString: string, max = 10): Pool {
  const pool = new Pool({ connectionString, max });
  pool.on('error', () => undefined);
  pool.on('connect', (client: PoolClient) => client.on('error', () => undefined));
  return pool;
}

/** The connection string with an application_name, so a test can find (and kill) exactly these backends. */
export function withApplicationName(url: string, applicationName: string): string {
  const u = new URL(url);
  u.searchParams.set('application_name', applicationName);
  return u.toString();
}

/** What one runner delivered: every (projection, event, outcome) in delivery order. */
export class DeliveryLog {
  readonly entries: { projection: string; event: RecordedEvent; outcome: 'applied' | 'duplicate' | 'ignored' }[] = [];

  observer(metrics?: Metrics): ProjectionObserver {
    const forward = metricsObserver(metrics);
    return {
      applied: (projection, event, outcome) => {
        this.entries.push({ projection, event, outcome });
        forward.applied?.(projection, event, outcome);
      },
    };
  }

  count(projection: string, outcome?: 'applied' | 'duplicate' | 'ignored'): number {
    return this.entries.filter((e) => e.projection === projection && (outcome === undefined || e.outcome === outcome)).length;
  }
}

/** The observer main/services.ts startProjections wires: projection outcomes and finished transfers into the metrics. */
export function metricsObserver(metrics?: Metrics): ProjectionObserver {
  return metrics ? projectionMetrics(metrics) : {};
}

/** A ProjectionRunner with the pool (and optionally the event store) it owns, as the `projections` process has them. */
export interface RunningProjections {
  runner: ProjectionRunner;
  /** The runner's read-model pool. */
  pool: Pool;
  /** The store it subscribes through: its own when `ownStore` was asked for, else the stack's. */
  store: EventStore;
  ownsStore: boolean;
  /** The pool of its own store (made here and passed in, `ownStore` only): stop() ends it after closing the store. */
  storePool?: Pool;
  deliveries: DeliveryLog;
  applicationName: string;
  /** Graceful: stops the subscriptions (in-flight events finish and are checkpointed), then closes what it owns. */
  stop(): Promise<void>;
}

let runnerSeq = 0;

/** The operator key every ApiStack accepts (OPERATOR_API_KEY of its app) and http() sends. */
export const TEST_OPERATOR_KEY = `test-operator-${randomBytes(24).toString('base64url')}`;

/** The HTTP API on a TransferStack, with a projection runner feeding its read models. Requests go through supertest (no port). */
export class ApiStack {
  projections?: RunningProjections;

  private constructor(
    readonly stack: TransferStack,
    /** The API's read-model pool (ApiDeps.readModels). */
    readonly readModels: Pool,
    readonly metrics: Metrics,
    readonly deps: ApiDeps,
    readonly app: Express,
  ) {}

  static async create(
    label: string,
    options: {
      startProjections?: boolean;
      maxConsistencyWaitMs?: number;
      snapshotEvery?: number;
      rateLimitPerMinute?: number;
      logger?: Logger;
      /**
       * The event store the API writes and reads through (default: the stack's PostgreSQL store), e.g. the EventStoreDB
       * adapter on the emulator. The saga worker and the projections stay on the stack's store: use it with
       * startProjections: false, for what the API does on its own (account writes, reads of the log).
       */
      eventStore?: EventStore;
    } = {},
  ): Promise<ApiStack> {
    const stack = await TransferStack.create(label, { snapshotEvery: options.snapshotEvery });
    await stack.startWorker();
    const readModels = resilientPool(withApplicationName(stack.db.url, `${label}-api`), 10);
    const metrics = new Metrics();
    const apiStore = options.eventStore ?? stack.store;
    const deps: ApiDeps = {
      store: apiStore,
      collectStoreMetrics: () => collectPostgresStoreMetrics(stack.store, metrics),
      accounts: new AccountRepository(apiStore, options.snapshotEvery ?? 50),
      readModels,
      temporal: stack.client,
      taskQueue: stack.taskQueue,
      metrics,
      logger: options.logger ?? silentLogger,
      // Tests run as the operator (http() sends TEST_OPERATOR_KEY); the rate limit is out of the way unless a test sets it.
      access: { operatorApiKey: TEST_OPERATOR_KEY, rateLimitPerMinute: options.rateLimitPerMinute ?? 1_000_000_000 },
      checks: {
        postgres: async () => void (await readModels.query('SELECT 1')),
        temporal: async () => void (await stack.client.connection.workflowService.getSystemInfo({})),
        eventStore: async () => void (await apiStore.headPosition()),
      },
      maxConsistencyWaitMs: options.maxConsistencyWaitMs ?? 20_000,
    };
    const api = new ApiStack(stack, readModels, metrics, deps, createApp(deps));
    if (options.startProjections !== false) api.projections = await api.startProjections();
    return api;
  }

  get store(): PostgresEventStore {
    return this.stack.store;
  }

  /** The stack's test-owned pool, the one its store runs on (TransferStack.pool): for the tests' own SQL. */
  get pool(): Pool {
    return this.stack.pool;
  }

  get accounts(): AccountRepository {
    return this.stack.accounts;
  }

  /**
   * A supertest client for the app, authenticated as the operator (TEST_OPERATOR_KEY). Every response of http(), as()
   * and anonymous() is checked against the OpenAPI document (test/support/openapi-responses.ts): a status or body the
   * document does not describe fails the request.
   */
  http() {
    return this.as(TEST_OPERATOR_KEY);
  }

  /** Opens an account in EUR through the API as the operator (201 expected); its id. */
  async openAccount(ownerId: string, initialDeposit?: number): Promise<string> {
    const res = await this.http()
      .post('/accounts')
      .send({ ownerId, currency: 'EUR', ...(initialDeposit ? { initialDeposit } : {}) });
    if (res.status !== 201) throw new Error(`opening an account answered ${res.status}: ${res.text}`);
    return res.body.accountId as string;
  }

  /** A supertest client that sends `Authorization: Bearer <secret>` with every request. */
  as(secret: string) {
    return checkedClient(request.agent(this.app).set('Authorization', `Bearer ${secret}`));
  }

  /** A supertest client with no API key. */
  anonymous() {
    return checkedClient(request(this.app));
  }

  /**
   * Starts a ProjectionRunner with ALL_PROJECTIONS (same consumer groups every time, so a new one
   * resumes where the last stopped), on its own pool of the stack's database.
   * `ownStore`: subscribe through a separate PostgresEventStore, as the `projections` process does.
   */
  async startProjections(options: { ownStore?: boolean; projections?: readonly Projection[] } = {}): Promise<RunningProjections> {
    runnerSeq += 1;
    const applicationName = `projections-${runnerSeq}-${this.stack.taskQueue}`.slice(0, 60);
    const url = withApplicationName(this.stack.db.url, applicationName);
    const pool = resilientPool(url, 10);
    // Its own store runs on a pool made here (the one connect() would make for poolSize 10), so a test can end it (a crash).
    const storePool = options.ownStore
      ? createServicePool({
          connectionString: url,
          max: 10,
          applicationName: 'transfer-event-store',
          statementTimeoutMs: PG_TIMEOUTS.statementMs,
        })
      : undefined;
    storePool?.on('connect', (client: PoolClient) => client.on('error', () => undefined));
    const store = storePool
      ? await PostgresEventStore.connect({ connectionString: url, pollIntervalMs: 200, poolSize: 10, pool: storePool })
      : this.stack.store;
    const deliveries = new DeliveryLog();
    const runner = new ProjectionRunner(store, pool, options.projections ?? ALL_PROJECTIONS, deliveries.observer(this.metrics));
    await runner.start();
    let stopped = false;
    return {
      runner,
      pool,
      store,
      ownsStore: options.ownStore === true,
      ...(storePool ? { storePool } : {}),
      deliveries,
      applicationName,
      stop: async () => {
        if (stopped) return;
        stopped = true;
        await runner.stop();
        if (options.ownStore) await store.close();
        if (storePool && !storePool.ending) await storePool.end();
        await pool.end();
      },
    };
  }

  /** Waits until every projection has applied every event of the log (after the writes of interest are done). */
  async caughtUp(timeoutMs = 60_000): Promise<void> {
    await waitUntil(
      'projections to catch up with the event store',
      async () => {
        const lags = await Promise.all(ALL_PROJECTIONS.map((p) => projectionLag(this.store, this.readModels, p)));
        return lags.every((l) => l.caughtUp);
      },
      timeoutMs,
      50,
    );
  }

  async close(): Promise<void> {
    await this.projections?.stop().catch(() => undefined);
    await this.readModels.end().catch(() => undefined);
    await this.stack.close();
  }
}

/** Count of events in the store (every stream) and its head: what "the store is unchanged" compares. */
/**
 * Every committed event, counted directly (not through headPosition, which hides events behind any
 * transaction still open in the cluster, e.g. a projection's, and so can move without a new event).
 */
export async function storeFingerprint(pool: Pool): Promise<{ events: number; head: string }> {
  const result = await pool.query<{ n: string; last: string | null }>(
    'SELECT count(*)::text AS n, max(position)::text AS last FROM es_events',
  );
  return { events: Number(result.rows[0]!.n), head: result.rows[0]!.last ?? 'empty' };
}

/**
 * Background traffic through the API: deposits, withdrawals and transfers between `accounts`, from
 * `concurrency` loops, until stop(). stop() also waits for every saga it started to finish.
 */
export class ApiLoad {
  readonly transferIds: string[] = [];
  /** Responses that are not one of the expected outcomes of their request (should stay empty). */
  readonly unexpected: string[] = [];
  requests = 0;
  private stopping = false;
  private loops: Promise<void>[] = [];

  constructor(
    private readonly api: ApiStack,
    private readonly accounts: readonly string[],
    private readonly random: () => number,
    private readonly concurrency = 6,
    /** A breath between two requests of a loop, so the loops do not starve the rest of this process. */
    private readonly pauseMs = 5,
  ) {}

  start(): this {
    this.loops = Array.from({ length: this.concurrency }, () => this.loop());
    return this;
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.random() * items.length)]!;
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      const roll = this.random();
      const account = this.pick(this.accounts);
      const amount = 1 + Math.floor(this.random() * 500);
      try {
        if (roll < 0.4) {
          const res = await this.api.http().post(`/accounts/${account}/deposits`).send({ amount });
          if (res.status !== 200 && res.status !== 422) this.unexpected.push(`deposit ${res.status} ${res.text}`);
        } else if (roll < 0.55) {
          const res = await this.api.http().post(`/accounts/${account}/withdrawals`).send({ amount });
          if (res.status !== 200 && res.status !== 422) this.unexpected.push(`withdrawal ${res.status} ${res.text}`);
        } else {
          let to = this.pick(this.accounts);
          while (to === account) to = this.pick(this.accounts);
          const transferId = `load-${this.transferIds.length}-${Math.floor(this.random() * 1e9).toString(36)}`;
          const res = await this.api
            .http()
            .post('/transfers')
            .send({ transferId, fromAccountId: account, toAccountId: to, amount: amount * 4 });
          if (res.status === 202) this.transferIds.push(transferId);
          else if (!(res.status === 422 && res.body.type === '/problems/currency-mismatch'))
            this.unexpected.push(`transfer ${res.status} ${res.text}`);
        }
      } catch (error) {
        this.unexpected.push(`request failed: ${error instanceof Error ? error.message : String(error)}`);
      }
      this.requests += 1;
      await new Promise((resolve) => setTimeout(resolve, this.pauseMs));
    }
  }

  /** Stops issuing requests, then waits until every saga started has finished. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.loops);
    for (const transferId of this.transferIds) await this.api.stack.client.workflow.getHandle(transferWorkflowId(transferId)).result();
  }
}
