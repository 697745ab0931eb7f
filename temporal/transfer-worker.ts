import { NativeConnection, Worker, bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { TransferActivities } from '../activities/transfer-activities';
import { attemptDeadlineInterceptor } from '../infra/attempt-deadline';
import type { ReconcilerActivities } from './transfer-reconciler';

export interface TransferWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  /** The saga's activities, and the reconciler's where this worker also runs the reconciler. */
  activities: TransferActivities & Partial<ReconcilerActivities>;
  /** A prebuilt bundle (tests share one); otherwise the workflows are bundled at start. */
  workflowBundle?: WorkflowBundleWithSourceMap;
  maxConcurrentActivityTaskExecutions?: number;
  maxConcurrentWorkflowTaskExecutions?: number;
  maxCachedWorkflows?: number;
}

export const WORKFLOWS_PATH = require.resolve('../workflows');

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;
/** Bundles the workflow code once per process. */
export function transferWorkflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflowCode({
    workflowsPath: WORKFLOWS_PATH,
    logger: {
      log: () => undefined,
      trace: () => undefined,
      debug: () => undefined,
      info: () => undefined,
      warn: console.warn,
      error: console.error,
    },
  });
  return bundle;
}

export async function createTransferWorker(options: TransferWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    activities: options.activities,
    workflowBundle: options.workflowBundle ?? (await transferWorkflowBundle()),
    maxConcurrentActivityTaskExecutions: options.maxConcurrentActivityTaskExecutions,
    maxConcurrentWorkflowTaskExecutions: options.maxConcurrentWorkflowTaskExecutions,
    maxCachedWorkflows: options.maxCachedWorkflows,
    // Each activity attempt knows its deadline: no write starts that could land after it (infra/pg-pool.ts).
    interceptors: { activity: [attemptDeadlineInterceptor] },
  });
}
