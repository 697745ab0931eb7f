import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { defaultPayloadConverter } from '@temporalio/common';
import type { History } from '@temporalio/common/lib/proto-utils';
import { DefaultLogger, Runtime, Worker, type ReplayResult, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import type { WorkflowHandle } from '@temporalio/client';
import { handleAccountCommand } from '../../application/account-commands';
import { HoldLog } from '../../application/hold-log';
import { acceptHold, captureHold, voidHold, type HoldDeps } from '../../temporal/hold-client';
import { transferWorkflowBundle } from '../../temporal/transfer-worker';
import type { holdSaga } from '../../workflows/hold-saga';
import { HOLD_SAGA, holdStatusQuery, holdWorkflowId, type HoldSagaInput, type HoldSagaStatus } from '../../workflows/hold-saga-contract';
import { historyFromJson, historyToJson } from '../support/history-json';
import { TransferStack } from '../support/transfer-stack';

/**
 * Recorded histories of the hold saga (issue 25) replayed against the current workflow code, as test/saga/replay.test.ts
 * does for the transfer saga: a change to workflows/hold-saga.ts that would break holds already running in production
 * (a hold waits durably, for days, on its timer) fails here with a DeterminismViolationError. Version such a change
 * with patched() instead of re-recording.
 *
 * The fixtures are test/fixtures/histories/hold-v1-<outcome>.json (files, not a folder: replay.test.ts takes every
 * folder there for a version of the transfer saga). `v1` is the first released shape of the hold saga; a later shape
 * that must keep old histories replaying adds hold-v2-<outcome>.json beside them (every hold-v*-*.json file is replayed).
 *
 * To re-record (only when old histories are meant to be dropped, or to add the next version's files):
 *
 *   RECORD_HOLD_HISTORIES=v1 npx jest test/saga/hold-replay.test.ts
 *
 * runs every scenario below on the test stack (the jest global setup's Temporal dev server and PostgreSQL), replays it,
 * and writes each history as hold-<version>-<outcome>.json in the proto3 JSON form of `temporal workflow show --output
 * json` (test/support/history-json.ts, pretty-printed for review).
 */

const FIXTURES_DIR = path.resolve(__dirname, '../fixtures/histories');
const FIXTURE_FILE = /^hold-(v\d+)-([a-z-]+)\.json$/;
const RECORD_VERSION = process.env.RECORD_HOLD_HISTORIES;

/** Every way a hold ends that the saga has a path for, with the status its saga returns. */
const HOLD_OUTCOMES = {
  /** Placed (600 of 1,000), captured in part (250): the rest released. */
  capture: 'captured',
  /** Placed, then voided: all of it released. */
  void: 'voided',
  /** Placed with expiresAt two seconds ahead: the saga's own timer expires it. */
  expiry: 'expired',
  /** Placed, the target closed meanwhile, captured: the credit cannot land and the source gets it back. */
  compensated: 'compensated',
  /** Started straight on Temporal for a hold the API never accepted: ends failed (unauthorized), writes nothing. */
  unauthorized: 'failed',
} as const satisfies Record<string, HoldSagaStatus['status']>;
type HoldOutcome = keyof typeof HOLD_OUTCOMES;
const OUTCOMES = Object.keys(HOLD_OUTCOMES) as HoldOutcome[];

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
    { workflowBundle, replayName: `hold-replay-${randomUUID().slice(0, 8)}` },
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
function sagaResult(history: History): HoldSagaStatus {
  const payload = history.events?.at(-1)?.workflowExecutionCompletedEventAttributes?.result?.payloads?.[0];
  if (!payload) throw new Error('history does not end with a completed workflow execution');
  return defaultPayloadConverter.fromPayload<HoldSagaStatus>(payload);
}

/** `hold-<holdId>` from the saga's input: the saga checks that it runs as its hold's workflow, so a history replays only under it. */
function recordedWorkflowId(history: History): string {
  const payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  if (!payload) throw new Error('history does not start with the saga input');
  return holdWorkflowId(defaultPayloadConverter.fromPayload<HoldSagaInput>(payload).holdId);
}

function eventKinds(history: History): Set<string> {
  const kinds = new Set<string>();
  for (const event of history.events ?? [])
    for (const [key, value] of Object.entries(event)) if (key.endsWith('EventAttributes') && value) kinds.add(key);
  return kinds;
}

/**
 * The paths a history of each outcome must have taken, so that replaying it exercises them: the captures and the void
 * woke the saga with an Update (its accepted and completed events are in the history), the expiry fired the timer.
 */
function expectPathsOf(outcome: HoldOutcome, history: History): void {
  const kinds = eventKinds(history);
  expect({
    outcome,
    update: kinds.has('workflowExecutionUpdateAcceptedEventAttributes') && kinds.has('workflowExecutionUpdateCompletedEventAttributes'),
    timerFired: kinds.has('timerFiredEventAttributes'),
  }).toEqual({ outcome, update: ['capture', 'void', 'compensated'].includes(outcome), timerFired: outcome === 'expiry' });
}

function loadFixtures(): { file: string; version: string; outcome: HoldOutcome; history: History }[] {
  return fs
    .readdirSync(FIXTURES_DIR)
    .filter((f) => FIXTURE_FILE.test(f))
    .sort()
    .map((file) => {
      const [, version, outcome] = FIXTURE_FILE.exec(file)!;
      if (!(outcome! in HOLD_OUTCOMES)) throw new Error(`${file}: unknown outcome ${outcome}`);
      return {
        file,
        version: version!,
        outcome: outcome as HoldOutcome,
        history: historyFromJson(fs.readFileSync(path.join(FIXTURES_DIR, file), 'utf8')),
      };
    });
}

/**
 * The saga has settled, or has reserved the hold and is waiting for a decision. Not just `held`: workflows/hold-saga.ts
 * clears its wake-up flag after its first look for a decision, so a capture or void sent while that look runs (right
 * after the reservation) is answered only at the expiry. Waiting until the look is done keeps these runs clear of that.
 */
function waitingOrDone(status: HoldSagaStatus): boolean {
  if (status.status === 'pending') return false;
  if (status.status !== 'held') return true;
  const last = status.steps.at(-1);
  return last?.name === 'look for a decision' && last.status === 'done';
}

describe('hold saga histories replay deterministically against the current workflow code', () => {
  let stack: TransferStack;
  let deps: HoldDeps;
  const operator = { actor: 'replay-operator', correlationId: 'corr-hold-replay' };

  beforeAll(async () => {
    stack = await TransferStack.create('hold_replay');
    await stack.startWorker();
    deps = { client: stack.client, taskQueue: stack.taskQueue, holds: new HoldLog(stack.store), transfers: stack.transfers };
  });
  afterAll(async () => stack?.close());

  const inSeconds = (s: number) => new Date(Date.now() + s * 1000).toISOString();

  /** Accepts a hold and waits until its saga has reserved it and waits (a wait: the deadline only bounds a hang). */
  async function placed(from: string, to: string, amount: number, expiresInSeconds = 3600) {
    const holdId = randomUUID();
    const { handle } = await acceptHold(
      deps,
      { holdId, fromAccountId: from, toAccountId: to, amount, expiresAt: inSeconds(expiresInSeconds) },
      operator,
    );
    for (let i = 0; i < 600 && !waitingOrDone(await handle.query(holdStatusQuery)); i++) await new Promise((r) => setTimeout(r, 50));
    expect((await handle.query(holdStatusQuery)).status).toBe('held');
    return { holdId, handle };
  }

  async function run(outcome: HoldOutcome): Promise<WorkflowHandle<typeof holdSaga>> {
    const a = await stack.openAccount(1_000);
    const b = await stack.openAccount(0);
    switch (outcome) {
      case 'capture': {
        const { holdId, handle } = await placed(a, b, 600);
        expect((await captureHold(deps, holdId, 250, operator)).status).toBe('captured');
        expect([await stack.balance(a), await stack.balance(b)]).toEqual([750, 250]);
        return handle;
      }
      case 'void': {
        const { holdId, handle } = await placed(a, b, 600);
        expect((await voidHold(deps, holdId, operator)).status).toBe('voided');
        return handle;
      }
      case 'expiry': {
        const { handle } = await placed(a, b, 600, 2);
        expect((await handle.result()).status).toBe('expired');
        return handle;
      }
      case 'compensated': {
        const { holdId, handle } = await placed(a, b, 600);
        expect(await handleAccountCommand(stack.accounts, b, { type: 'CloseAccount' })).toMatchObject({ ok: true });
        expect((await captureHold(deps, holdId, 400, operator)).status).toBe('compensated');
        expect(await stack.balance(a)).toBe(1_000);
        return handle;
      }
      case 'unauthorized': {
        const holdId = randomUUID();
        const handle = await stack.client.workflow.start<typeof holdSaga>(HOLD_SAGA, {
          workflowId: holdWorkflowId(holdId),
          taskQueue: stack.taskQueue,
          args: [{ holdId }],
        });
        expect(await handle.result()).toMatchObject({ status: 'failed', failureReason: 'unauthorized' });
        return handle;
      }
    }
  }

  test('histories of hold sagas just run (capture in part, void, expiry, compensated capture, unauthorized) replay without error, also after a JSON round trip', async () => {
    const histories: { outcome: HoldOutcome; workflowId: string; history: History }[] = [];
    for (const outcome of OUTCOMES) {
      const handle = await run(outcome);
      const result = await handle.result();
      expect(result.status).toBe(HOLD_OUTCOMES[outcome]);
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
      if (!/^v\d+$/.test(RECORD_VERSION)) throw new Error(`RECORD_HOLD_HISTORIES=${RECORD_VERSION}: expected a version such as v1`);
      for (const { outcome, history } of histories) {
        const file = path.join(FIXTURES_DIR, `hold-${RECORD_VERSION}-${outcome}.json`);
        fs.writeFileSync(file, `${historyToJson(history)}\n`);
        process.stderr.write(`[hold-replay] ${outcome}: ${history.events?.length ?? 0} events -> ${path.relative(process.cwd(), file)}\n`);
      }
    }
  });

  test('the committed fixtures (test/fixtures/histories/hold-v*-*.json) replay without error', async () => {
    const fixtures = loadFixtures();
    // Every version recorded has every outcome, and v1 is there.
    const versions = [...new Set(fixtures.map((f) => f.version))];
    expect(versions).toContain('v1');
    for (const version of versions)
      expect(fixtures.filter((f) => f.version === version).map((f) => f.outcome)).toEqual([...OUTCOMES].sort());
    for (const { file, outcome, history } of fixtures) {
      expect({ file, type: history.events?.[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name }).toEqual({
        file,
        type: HOLD_SAGA,
      });
      expect({ file, status: sagaResult(history).status }).toEqual({ file, status: HOLD_OUTCOMES[outcome] });
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
    // The capture's history with its first step renamed: the code runs acceptedHold where the history records another
    // activity, as it would after the saga's steps were reordered without patched(). Its steps run as local
    // activities, recorded as markers whose data names the activity type.
    const fixture = loadFixtures().find((f) => f.version === 'v1' && f.outcome === 'capture')!;
    const tampered = historyFromJson(historyToJson(fixture.history));
    const marker = tampered.events?.find((e) => e.markerRecordedEventAttributes)?.markerRecordedEventAttributes;
    const payload = marker?.details?.data?.payloads?.[0];
    const data = JSON.parse(Buffer.from(payload!.data!).toString('utf8')) as { activity_type: string };
    expect(data.activity_type).toBe('acceptedHold');
    payload!.data = Buffer.from(JSON.stringify({ ...data, activity_type: 'placeHold' }));
    const results = await replayAll(await transferWorkflowBundle(), [{ workflowId: recordedWorkflowId(tampered), history: tampered }]);
    expect(results).toHaveLength(1);
    expect(results[0]!.error).toBeInstanceOf(DeterminismViolationError);
  });
});
