import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { defaultPayloadConverter } from '@temporalio/common';
import type { History } from '@temporalio/common/lib/proto-utils';
import { DefaultLogger, Runtime, Worker, type ReplayResult, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import type { WorkflowHandle } from '@temporalio/client';
import { handleAccountCommand } from '../../application/account-commands';
import { BatchLog } from '../../application/batch-log';
import type { BatchItem } from '../../domain/transfer-batch';
import { MAX_BALANCE } from '../../domain/money';
import { acceptBatch, type AcceptBatchDeps } from '../../temporal/batch-client';
import { transferWorkflowBundle } from '../../temporal/transfer-worker';
import type { transferBatchSaga } from '../../workflows/batch-saga';
import {
  batchStatusQuery,
  batchWorkflowId,
  TRANSFER_BATCH_SAGA,
  type BatchSagaInput,
  type BatchSagaStatus,
} from '../../workflows/batch-saga-contract';
import { RETRY_SETTLEMENT_SIGNAL } from '../../workflows/transfer-saga-contract';
import { historyFromJson, historyToJson } from '../support/history-json';
import { TransferStack } from '../support/transfer-stack';
import { waitUntil } from '../support/wait-until';

/**
 * Recorded histories of the batch saga (issue 26) replayed against the current workflow code, as
 * test/saga/hold-replay.test.ts does for the hold saga and test/saga/replay.test.ts for the transfer saga: a change to
 * workflows/batch-saga.ts that would break batches already running in production (a batch whose settlement the rules
 * refused waits, for as long as it takes, for a person's retry) fails here with a DeterminismViolationError. Version
 * such a change with patched() instead of re-recording.
 *
 * The fixtures are test/fixtures/histories/batch-v1-<outcome>.json (files, not a folder: replay.test.ts takes every
 * folder there for a version of the transfer saga; hold-replay.test.ts takes only hold-v*-*.json). `v1` is the first
 * released shape of the batch saga; a later shape that must keep old histories replaying adds batch-v2-<outcome>.json
 * beside them (every batch-v*-*.json file is replayed).
 *
 * To re-record (only when old histories are meant to be dropped, or to add the next version's files):
 *
 *   RECORD_BATCH_HISTORIES=v1 npx jest test/saga/batch-replay.test.ts
 *
 * runs every scenario below on the test stack (the jest global setup's Temporal dev server and PostgreSQL), replays it,
 * and writes each history as batch-<version>-<outcome>.json in the proto3 JSON form of `temporal workflow show --output
 * json` (test/support/history-json.ts, pretty-printed for review).
 */

const FIXTURES_DIR = path.resolve(__dirname, '../fixtures/histories');
const FIXTURE_FILE = /^batch-(v\d+)-([a-z-]+)\.json$/;
const RECORD_VERSION = process.env.RECORD_BATCH_HISTORIES;

/** Every way a batch ends that the saga has a path for, with the status its saga returns. */
const BATCH_OUTCOMES = {
  /** Three items, all fine. */
  completed: 'completed',
  /** Not atomic: one item fine, one refused at its debit (insufficient funds), one whose target is closed (compensated). */
  partial: 'partially_completed',
  /** Atomic, one item refused at its debit: nothing is debited, every item fails. */
  aborted: 'failed',
  /** Atomic, one target closed: the debits landed, the credits are refused together, every debit is refunded. */
  'atomic-credit-refused': 'failed',
  /** Started straight on Temporal as batch-<id> for a batch the API never accepted: ends failed (unauthorized), writes nothing. */
  unauthorized: 'failed',
  /**
   * Not atomic: a refund the account rules refuse (it would take the source past Number.MAX_SAFE_INTEGER) stops the
   * settlement; the saga reports it and waits as needs_attention; a person withdraws from the source and signals
   * retrySettlement; the settlement then lands (one item completed, one compensated).
   */
  'needs-attention-then-retry': 'partially_completed',
} as const satisfies Record<string, BatchSagaStatus['status']>;
type BatchOutcome = keyof typeof BATCH_OUTCOMES;
const OUTCOMES = Object.keys(BATCH_OUTCOMES) as BatchOutcome[];

/** The activities each outcome's saga must have scheduled, in order (so that replaying it exercises that path). */
const FORWARD = ['acceptedBatch', 'registerBatchItems', 'debitBatch', 'creditBatch'];
const ACTIVITY_PATHS: Record<BatchOutcome, string[]> = {
  completed: [...FORWARD, 'settleBatch'],
  partial: [...FORWARD, 'settleBatch'],
  aborted: ['acceptedBatch', 'registerBatchItems', 'debitBatch', 'settleBatch'],
  'atomic-credit-refused': [...FORWARD, 'settleBatch'],
  unauthorized: ['acceptedBatch'],
  'needs-attention-then-retry': [...FORWARD, 'settleBatch', 'reportBatchNeedsAttention', 'settleBatch'],
};

// The negative control makes core log each non-determinism as a WARN: expected here, so only errors are shown.
try {
  Runtime.install({ logger: new DefaultLogger('ERROR'), telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' } } } });
} catch {
  /* a runtime is already installed in this process: keep it */
}

async function replayAll(
  workflowBundle: WorkflowBundleWithSourceMap,
  histories: { workflowId: string; history: History }[],
): Promise<ReplayResult[]> {
  const results: ReplayResult[] = [];
  for await (const result of Worker.runReplayHistories(
    { workflowBundle, replayName: `batch-replay-${randomUUID().slice(0, 8)}` },
    histories,
  ))
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
function sagaResult(history: History): BatchSagaStatus {
  const payload = history.events?.at(-1)?.workflowExecutionCompletedEventAttributes?.result?.payloads?.[0];
  if (!payload) throw new Error('history does not end with a completed workflow execution');
  return defaultPayloadConverter.fromPayload<BatchSagaStatus>(payload);
}

/** `batch-<batchId>` from the saga's input: the saga checks that it runs as its batch's workflow, so a history replays only under it. */
function recordedWorkflowId(history: History): string {
  const payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  if (!payload) throw new Error('history does not start with the saga input');
  return batchWorkflowId(defaultPayloadConverter.fromPayload<BatchSagaInput>(payload).batchId);
}

/**
 * The paths a history of each outcome must have taken: the activities it scheduled, in order, and whether a person's
 * retrySettlement signal woke it (only the needs-attention outcome).
 */
function expectPathsOf(outcome: BatchOutcome, history: History): void {
  const events = history.events ?? [];
  expect({
    outcome,
    activities: events.flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? []),
    signals: events.flatMap((e) => e.workflowExecutionSignaledEventAttributes?.signalName ?? []),
  }).toEqual({
    outcome,
    activities: ACTIVITY_PATHS[outcome],
    signals: outcome === 'needs-attention-then-retry' ? [RETRY_SETTLEMENT_SIGNAL] : [],
  });
}

function loadFixtures(): { file: string; version: string; outcome: BatchOutcome; history: History }[] {
  return fs
    .readdirSync(FIXTURES_DIR)
    .filter((f) => FIXTURE_FILE.test(f))
    .sort()
    .map((file) => {
      const [, version, outcome] = FIXTURE_FILE.exec(file)!;
      if (!(outcome! in BATCH_OUTCOMES)) throw new Error(`${file}: unknown outcome ${outcome}`);
      return {
        file,
        version: version!,
        outcome: outcome as BatchOutcome,
        history: historyFromJson(fs.readFileSync(path.join(FIXTURES_DIR, file), 'utf8')),
      };
    });
}

describe('batch saga histories replay deterministically against the current workflow code', () => {
  let stack: TransferStack;
  let deps: AcceptBatchDeps;
  const operator = { actor: 'replay-operator', correlationId: 'corr-batch-replay' };

  beforeAll(async () => {
    stack = await TransferStack.create('batch_replay');
    await stack.startWorker();
    deps = { client: stack.client, taskQueue: stack.taskQueue, batches: new BatchLog(stack.store) };
  });
  afterAll(async () => stack?.close());

  const item = (fromAccountId: string, toAccountId: string, amount: number): BatchItem => ({
    transferId: randomUUID(),
    fromAccountId,
    toAccountId,
    amount,
  });
  const balances = (ids: string[]) => Promise.all(ids.map((id) => stack.balance(id)));
  const accepted = async (items: BatchItem[], atomic: boolean) =>
    (await acceptBatch(deps, { batchId: randomUUID(), atomic, items }, operator)).handle;
  async function closedAccount(): Promise<string> {
    const id = await stack.openAccount(0);
    expect(await handleAccountCommand(stack.accounts, id, { type: 'CloseAccount' })).toMatchObject({ ok: true });
    return id;
  }
  async function command(accountId: string, cmd: Parameters<typeof handleAccountCommand>[2]): Promise<void> {
    expect({ cmd: cmd.type, result: await handleAccountCommand(stack.accounts, accountId, cmd) }).toMatchObject({
      cmd: cmd.type,
      result: { ok: true },
    });
  }

  /**
   * An account holding 9 * MAX_BALANCE (9e15, just under Number.MAX_SAFE_INTEGER, about 9.007e15), by the account rules
   * alone: deposits and credits stop at MAX_BALANCE, a refund always lands. Eight times: a debit of MAX_BALANCE for a
   * transfer of no saga (the account's own command), then a deposit back to MAX_BALANCE; then the eight refunds.
   */
  async function accountPastTheLimit(): Promise<string> {
    const id = await stack.openAccount(MAX_BALANCE);
    const ids = Array.from({ length: 8 }, () => randomUUID());
    for (const transferId of ids) {
      await command(id, { type: 'DebitForTransfer', transferId, amount: MAX_BALANCE, currency: 'EUR', toAccountId: randomUUID() });
      await command(id, { type: 'Deposit', amount: MAX_BALANCE });
    }
    for (const transferId of ids) await command(id, { type: 'RefundForTransfer', transferId });
    expect(await stack.balance(id)).toBe(9 * MAX_BALANCE);
    return id;
  }

  async function run(outcome: BatchOutcome): Promise<WorkflowHandle<typeof transferBatchSaga>> {
    switch (outcome) {
      case 'completed': {
        const [a, b, c] = [await stack.openAccount(1_000), await stack.openAccount(0), await stack.openAccount(0)];
        const handle = await accepted([item(a, b, 100), item(a, c, 200), item(a, b, 300)], false);
        expect(await handle.result()).toMatchObject({ counts: { completed: 3, failed: 0, compensated: 0, pending: 0 } });
        expect(await balances([a, b, c])).toEqual([400, 400, 200]);
        return handle;
      }
      case 'partial': {
        const [a, b, poor, closed] = [
          await stack.openAccount(1_000),
          await stack.openAccount(0),
          await stack.openAccount(10),
          await closedAccount(),
        ];
        const handle = await accepted([item(a, b, 300), item(poor, b, 11), item(a, closed, 7)], false);
        expect(await handle.result()).toMatchObject({ counts: { completed: 1, failed: 1, compensated: 1, pending: 0 } });
        expect(await balances([a, b, poor, closed])).toEqual([700, 300, 10, 0]);
        return handle;
      }
      case 'aborted': {
        const [a, b, poor] = [await stack.openAccount(1_000), await stack.openAccount(0), await stack.openAccount(10)];
        const handle = await accepted([item(a, b, 100), item(poor, b, 11)], true);
        expect(await handle.result()).toMatchObject({
          failureReason: 'batch_aborted',
          counts: { completed: 0, failed: 2, compensated: 0, pending: 0 },
        });
        expect(await balances([a, b, poor])).toEqual([1_000, 0, 10]);
        expect(await stack.eventTypes(`account-${a}`)).not.toContain('TransferDebited');
        return handle;
      }
      case 'atomic-credit-refused': {
        const [a, b, closed] = [await stack.openAccount(1_000), await stack.openAccount(0), await closedAccount()];
        const handle = await accepted([item(a, b, 100), item(a, closed, 200)], true);
        expect(await handle.result()).toMatchObject({
          failureReason: 'batch_aborted',
          counts: { completed: 0, failed: 0, compensated: 2, pending: 0 },
        });
        expect(await balances([a, b, closed])).toEqual([1_000, 0, 0]);
        // The debits landed, then were given back.
        expect((await stack.eventTypes(`account-${a}`)).filter((t) => t === 'TransferDebited' || t === 'TransferRefunded')).toEqual([
          'TransferDebited',
          'TransferDebited',
          'TransferRefunded',
          'TransferRefunded',
        ]);
        return handle;
      }
      case 'unauthorized': {
        const batchId = randomUUID();
        const handle = await stack.client.workflow.start<typeof transferBatchSaga>(TRANSFER_BATCH_SAGA, {
          workflowId: batchWorkflowId(batchId),
          taskQueue: stack.taskQueue,
          args: [{ batchId }],
        });
        expect(await handle.result()).toMatchObject({ failureReason: 'unauthorized' });
        expect(await stack.store.readStream(`batch-${batchId}`)).toEqual([]);
        return handle;
      }
      case 'needs-attention-then-retry': {
        // big (9e15) sends all of it to a closed account; c sends MAX_BALANCE to big. Debits: big -> 0. Credits: the
        // closed target refuses, big takes c's MAX_BALANCE. Settlement: big's refund of 9e15 would make 1e16, past
        // Number.MAX_SAFE_INTEGER: the account rules refuse it (RefundForTransfer), so the settlement stops.
        const big = await accountPastTheLimit();
        const [c, closed] = [await stack.openAccount(MAX_BALANCE), await closedAccount()];
        const handle = await accepted([item(big, closed, 9 * MAX_BALANCE), item(c, big, MAX_BALANCE)], false);
        // Wait until the saga has reported and waits for the signal: a signal sent before would be cleared by it.
        const waiting = await waitUntil('the batch waits as needs_attention', async () => {
          const status = await handle.query(batchStatusQuery);
          const last = status.steps.at(-1);
          return status.status === 'needs_attention' && last?.name === 'report needs attention' && last.status === 'done' && status;
        });
        expect(waiting.failureMessage).toMatch(/^settlement refused: .*past 9007199254740991 minor units/);
        expect((await handle.describe()).status.name).toBe('RUNNING');
        expect(await balances([big, c, closed])).toEqual([MAX_BALANCE, 0, 0]);
        // A person makes room for the refund, then asks for another try.
        await command(big, { type: 'Withdraw', amount: MAX_BALANCE });
        await handle.signal(RETRY_SETTLEMENT_SIGNAL);
        expect(await handle.result()).toMatchObject({ counts: { completed: 1, failed: 0, compensated: 1, pending: 0 } });
        expect(await balances([big, c, closed])).toEqual([9 * MAX_BALANCE, 0, 0]);
        return handle;
      }
    }
  }

  test('histories of batch sagas just run (completed, partial, aborted, atomic credit refused, unauthorized, needs attention then retry) replay without error, also after a JSON round trip', async () => {
    const histories: { outcome: BatchOutcome; workflowId: string; history: History }[] = [];
    for (const outcome of OUTCOMES) {
      const handle = await run(outcome);
      const result = await handle.result();
      expect({ outcome, status: result.status }).toEqual({ outcome, status: BATCH_OUTCOMES[outcome] });
      histories.push({ outcome, workflowId: handle.workflowId, history: await handle.fetchHistory() });
    }
    for (const { outcome, history } of histories) expectPathsOf(outcome, history);

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

    if (RECORD_VERSION) {
      if (!/^v\d+$/.test(RECORD_VERSION)) throw new Error(`RECORD_BATCH_HISTORIES=${RECORD_VERSION}: expected a version such as v1`);
      for (const { outcome, history } of histories) {
        const file = path.join(FIXTURES_DIR, `batch-${RECORD_VERSION}-${outcome}.json`);
        fs.writeFileSync(file, `${historyToJson(history)}\n`);
        process.stderr.write(`[batch-replay] ${outcome}: ${history.events?.length ?? 0} events -> ${path.relative(process.cwd(), file)}\n`);
      }
    }
  });

  test('the committed fixtures (test/fixtures/histories/batch-v*-*.json) replay without error', async () => {
    const fixtures = loadFixtures();
    // Every version recorded has every outcome, and v1 is there.
    const versions = [...new Set(fixtures.map((f) => f.version))];
    expect(versions).toContain('v1');
    for (const version of versions)
      expect(fixtures.filter((f) => f.version === version).map((f) => f.outcome)).toEqual([...OUTCOMES].sort());
    for (const { file, outcome, history } of fixtures) {
      expect({ file, type: history.events?.[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name }).toEqual({
        file,
        type: TRANSFER_BATCH_SAGA,
      });
      expect({ file, status: sagaResult(history).status }).toEqual({ file, status: BATCH_OUTCOMES[outcome] });
      expectPathsOf(outcome, history);
    }
    expectCleanReplays(
      await replayAll(
        await transferWorkflowBundle(),
        fixtures.map((f) => ({ workflowId: recordedWorkflowId(f.history), history: f.history })),
      ),
      fixtures.map((f) => recordedWorkflowId(f.history)),
    );
  });

  test('negative control: a fixture whose recorded commands no longer match the code fails to replay (DeterminismViolationError)', async () => {
    // The completed batch's history with its first activity renamed: the code schedules acceptedBatch where the
    // history records another activity, as it would after the saga's steps were reordered without patched().
    const fixture = loadFixtures().find((f) => f.version === 'v1' && f.outcome === 'completed')!;
    const tampered = historyFromJson(historyToJson(fixture.history));
    const scheduled = tampered.events?.find((e) => e.activityTaskScheduledEventAttributes)?.activityTaskScheduledEventAttributes;
    expect(scheduled?.activityType?.name).toBe('acceptedBatch');
    scheduled!.activityType!.name = 'registerBatchItems';
    const results = await replayAll(await transferWorkflowBundle(), [{ workflowId: recordedWorkflowId(tampered), history: tampered }]);
    expect(results).toHaveLength(1);
    expect(results[0]!.error).toBeInstanceOf(DeterminismViolationError);
  });
});
