import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import type { AccountRepository } from '../application/account-repository';
import type { EventStore } from '../eventstore/event-store';
import type { Logger } from '../infra/logger';
import type { Metrics } from '../infra/metrics';
import type { AccessOptions } from './access-control';
import type { BusinessTimeSettings } from './business-time-settings';
import type { ConsoleOptions } from './console-routes';

export interface ApiDeps {
  store: EventStore;
  /** Sets the chosen adapter's own gauges when /metrics is read (wired in main/services.ts connectEventStore). */
  collectStoreMetrics?: () => Promise<void>;
  accounts: AccountRepository;
  readModels: Pool;
  temporal: Client;
  taskQueue: string;
  /** Request eager workflow start (the client shares the worker's NativeConnection: the local stack). */
  eagerStart?: boolean;
  metrics: Metrics;
  logger: Logger;
  /** Each dependency's reachability, for /ready. */
  checks: Record<string, () => Promise<void>>;
  /**
   * Parts whose failure leaves the API serving (/ready answers 200 `degraded`, not 503), e.g. the local stack's
   * projections thread while it is started again: reads from the read models fall behind, writes and the log still work.
   */
  degradingChecks?: Record<string, () => Promise<void>>;
  /** Longest wait for read-your-writes (?minPosition) and ?wait, in ms. Default 10 s / 30 s. */
  maxConsistencyWaitMs?: number;
  bodyLimit?: string;
  /** The most items of one POST /transfer-batches (TRANSFER_BATCH_MAX_ITEMS). Default 1,000 (MAX_BATCH_ITEMS). */
  transferBatchMaxItems?: number;
  /** API keys: OPERATOR_API_KEY, RATE_LIMIT_PER_MINUTE, METRICS_PUBLIC. */
  access?: AccessOptions;
  /** Business time: BOOKS_TIMEZONE, MAX_LATENESS, MAX_CLOCK_SKEW (defaults: UTC, 5 days, 2 minutes). */
  businessTime?: BusinessTimeSettings;
  /** The web console's settings (TEMPORAL_UI_URL). */
  console?: ConsoleOptions;
}
