import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { defaultPayloadConverter } from '@temporalio/common';
import type { History } from '@temporalio/common/lib/proto-utils';
import {
  bundleWorkflowCode,
  DefaultLogger,
  Runtime,
  Worker,
  type ReplayResult,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { transferWorkflowBundle } from '../../temporal/transfer-worker';
import { transferWorkflowId, type TransferSagaInput, type TransferSagaStatus } from '../../workflows/transfer-saga-contract';
import { historyFromJson, historyToJson } from '../support/history-json';
import { runSagaEndingIn, SAGA_OUTCOMES, type FinishedSaga } from '../support/saga-outcomes';
import { TransferStack } from '../support/transfer-stack';

const FIXTURES_DIR = path.resolve(__dirname, '../fixtures/histories');
const REORDERED_WORKFLOWS = path.resolve(__dirname, '../fixtures/workflows/reordered-transfer-saga.ts');

async function replayAll(
  workflowBundle: WorkflowBundleWithSourceMap,
  histories: { workflowId: string; history: History }[],
): Promise<ReplayResult[]> {
  const results: ReplayResult[] = [];
  for await (const result of Worker.runReplayHistories({ workflowBundle, replayName: `replay-${randomUUID().slice(0, 8)}` }, histories))
    results.push(result);
  return results;
}

/** Every history replayed, in order, and none with an error (the diff names each failed replay and its error). */
function expectCleanReplays(results: ReplayResult[], workflowIds: string[]): void {
  expect(results.map((r) => ({ workflowId: r.workflowId, error: r.error ? `${r.error.name}: ${r.error.message}` : 'none' }))).toEqual(
    workflowIds.map((workflowId) => ({ workflowId, error: 'none' })),
  );
}

/** The saga's return value, decoded from the history's closing event. */
function sagaResult(history: History): TransferSagaStatus {
  const last = history.events?.at(-1);
  const payload = last?.workflowExecutionCompletedEventAttributes?.result?.payloads?.[0];
  if (!payload) throw new Error('history does not end with a completed workflow execution');
  return defaultPayloadConverter.fromPayload<TransferSagaStatus>(payload);
}

/**
 * The workflow id the saga ran under (`transfer-<transferId>`, from its input): a saga checks that it runs as its
 * transfer's workflow (ACCEPTED_REQUEST), so a history replays only under its own id.
 */
function recordedWorkflowId(history: History): string {
  const payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  if (!payload) throw new Error('history does not start with the saga input');
  return transferWorkflowId(defaultPayloadConverter.fromPayload<TransferSagaInput>(payload).transferId);
}

/** One directory per shape of the saga ever released (v1-four-activities, v2-merged-legs, ...): every one must keep replaying. */
function fixtureVersions(): string[] {
  return fs
    .readdirSync(FIXTURES_DIR)
    .filter((d) => fs.statSync(path.join(FIXTURES_DIR, d)).isDirectory())
    .sort();
}

function loadFixtures(version?: string): { outcome: string; history: History }[] {
  const versions = version ? [version] : fixtureVersions();
  return versions.flatMap((v) =>
    fs
      .readdirSync(path.join(FIXTURES_DIR, v))
      .filter((f) => f.endsWith('.json'))
      .sort()
      .map((f) => ({
        outcome: `${v}/${path.basename(f, '.json')}`,
        history: historyFromJson(fs.readFileSync(path.join(FIXTURES_DIR, v, f), 'utf8')),
      })),
  );
}

// The negative control makes core log each non-determinism as a WARN: expected here, so only errors are shown.
try {
  Runtime.install({ logger: new DefaultLogger('ERROR'), telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' } } } });
} catch {
  /* a runtime is already installed in this process: keep it */
}

describe('workflow histories replay deterministically against the current workflow code', () => {
  let stack: TransferStack;
  beforeAll(async () => {
    stack = await TransferStack.create('replay');
    await stack.startWorker();
  });
  afterAll(async () => stack?.close());

  test('histories of sagas just run (completed, failed, compensated) replay without error, also after a JSON round trip', async () => {
    const sagas: FinishedSaga[] = [];
    for (const outcome of SAGA_OUTCOMES) sagas.push(await runSagaEndingIn(stack, outcome));
    // A second compensation path: the target does not exist.
    const from = await stack.openAccount(1_000);
    const missingTarget = await stack.transfer(from, randomUUID(), 300);
    expect(missingTarget).toMatchObject({ status: 'compensated', failureReason: 'account_not_found' });
    const missingHandle = stack.client.workflow.getHandle(`transfer-${missingTarget.transferId}`);

    const handles = [...sagas.map((s) => s.handle), missingHandle];
    const histories = await Promise.all(handles.map(async (h) => ({ workflowId: h.workflowId, history: await h.fetchHistory() })));
    expect(histories.map(({ history }) => sagaResult(history).status)).toEqual(['completed', 'failed', 'compensated', 'compensated']);

    const bundle = await transferWorkflowBundle();
    expectCleanReplays(
      await replayAll(bundle, histories),
      histories.map((h) => h.workflowId),
    );

    const roundTripped = histories.map(({ workflowId, history }) => ({ workflowId, history: historyFromJson(historyToJson(history)) }));
    expectCleanReplays(
      await replayAll(bundle, roundTripped),
      histories.map((h) => h.workflowId),
    );
  });

  test('the committed fixtures (test/fixtures/histories, from scripts/record-workflow-histories.ts) replay without error', async () => {
    expect(fixtureVersions()).toEqual(
      expect.arrayContaining(['v1-four-activities', 'v2-merged-legs', 'v3-safe-settlement', 'v4-local-legs', 'v5-accepted-request']),
    );
    for (const version of fixtureVersions()) {
      expect(loadFixtures(version).map((f) => f.outcome.split('/')[1])).toEqual([...SAGA_OUTCOMES].sort());
    }
    const fixtures = loadFixtures();
    for (const { outcome: versioned, history } of fixtures) {
      const outcome = versioned.split('/')[1]!;
      expect(history.events?.[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name).toBe('transferSaga');
      expect(sagaResult(history).status).toBe(outcome);
    }
    const results = await replayAll(
      await transferWorkflowBundle(),
      fixtures.map((f) => ({ workflowId: recordedWorkflowId(f.history), history: f.history })),
    );
    expectCleanReplays(
      results,
      fixtures.map((f) => recordedWorkflowId(f.history)),
    );
  });

  test('negative control: the fixtures fail to replay against a saga with another activity order (DeterminismViolationError)', async () => {
    const reordered = await bundleWorkflowCode({
      workflowsPath: REORDERED_WORKFLOWS,
      logger: {
        log: () => undefined,
        trace: () => undefined,
        debug: () => undefined,
        info: () => undefined,
        warn: () => undefined,
        error: console.error,
      },
    });
    const fixtures = loadFixtures();
    expect(fixtures.length).toBeGreaterThanOrEqual(3);

    const results = await replayAll(
      reordered,
      fixtures.map((f) => ({ workflowId: recordedWorkflowId(f.history), history: f.history })),
    );
    expect(results).toHaveLength(fixtures.length);
    for (const result of results) {
      expect(result.error).toBeInstanceOf(DeterminismViolationError);
    }
    // The single-history API throws it.
    await expect(Worker.runReplayHistory({ workflowBundle: reordered }, fixtures[0]!.history, 'fixture-single')).rejects.toBeInstanceOf(
      DeterminismViolationError,
    );
  });
});
