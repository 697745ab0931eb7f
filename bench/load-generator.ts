/**
 * The bench's load generator, in a process of its own (forked by bench/load-generator-client.ts), so that the service's
 * process spends its CPU on the service only. It sends transfers and batches to the API over HTTP, starts the no-op
 * sagas on Temporal as a client would, and runs the plain-SQL baseline's transactions; it reports latencies back over
 * IPC. It never runs in the service's process.
 */
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { Pool } from 'pg';
import { withTransaction } from '../infra/pg-transaction';
import { transferWorkflowId } from '../workflows/transfer-saga-contract';
import { runConcurrently } from './stats';

export interface LoadInit {
  baseUrl: string;
  apiKey: string;
  /** POST /transfers with `Prefer: wait=10` (the answer is the outcome); otherwise 202 then GET ?wait. */
  preferWait: boolean;
  temporalAddress: string;
  databaseUrl: string;
  poolSize: number;
  /** The accounts transfers move money between (random pairs). */
  accountIds: string[];
  /** Rows 0..plainAccounts-1 of plain_balances (the plain-SQL baseline). */
  plainAccounts: number;
}

export type LoadTask =
  | { kind: 'http-transfer'; from?: string }
  | { kind: 'noop-saga'; taskQueue: string }
  | { kind: 'noop-remote-saga'; taskQueue: string }
  | { kind: 'plain-sql' };

export interface BatchItemSpec {
  fromAccountId: string;
  toAccountId: string;
  amount: number;
}

export type LoadRequest =
  | { type: 'init'; init: LoadInit }
  | { type: 'run'; id: number; task: LoadTask; total: number; concurrency: number }
  | { type: 'batch'; id: number; batchId: string; items: BatchItemSpec[]; pollMs: number; timeoutMs: number }
  | { type: 'close' };

export interface RunDone {
  type: 'done';
  id: number;
  ms: number;
  latencies: number[];
  /** http-transfer: POST /transfers sent -> its answer; and request -> terminal outcome. */
  postTimes: number[];
  sagaTimes: number[];
}

export interface BatchDone {
  type: 'batch-done';
  id: number;
  /** POST /transfer-batches sent -> its answer. */
  postMs: number;
  /** POST sent -> the batch seen settled (GET /transfer-batches/{id}): the last item's outcome. */
  settledMs: number;
  postStatus: number;
  /** The last GET's body (status, counts). */
  batch: { status: string; counts?: Record<string, number>; itemCount?: number } & Record<string, unknown>;
  polls: number;
  /** Polls that failed on the network and were asked again (their causes). */
  pollErrors: string[];
}

export type LoadReply = { type: 'ready' } | RunDone | BatchDone | { type: 'error'; id: number; message: string };

let init: LoadInit;
let temporal: Client | undefined;
let sqlPool: Pool | undefined;

const send = (reply: LoadReply) => process.send!(reply);

process.on('message', (message: LoadRequest) => {
  void handle(message).catch((error: unknown) => {
    const id = 'id' in message ? message.id : -1;
    send({ type: 'error', id, message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  });
});
// The parent gone (crashed, killed): nothing left to load.
process.on('disconnect', () => process.exit(0));

async function handle(message: LoadRequest): Promise<void> {
  switch (message.type) {
    case 'init': {
      init = message.init;
      temporal = new Client({ connection: await Connection.connect({ address: init.temporalAddress }), namespace: 'default' });
      // Idle connections kept (pg closes them after 10 s by default): each plain-SQL step would open its connections again
      // after the other variants ran, which a short step (--quick: 40 transactions) would measure more than the SQL.
      sqlPool = new Pool({ connectionString: init.databaseUrl, max: init.poolSize, idleTimeoutMillis: 0 });
      send({ type: 'ready' });
      return;
    }
    case 'run': {
      const postTimes: number[] = [];
      const sagaTimes: number[] = [];
      const latencies: number[] = [];
      const task = taskOf(message.task, postTimes, sagaTimes);
      const ms = await runConcurrently(message.total, message.concurrency, async () => {
        const t = performance.now();
        await task();
        latencies.push(performance.now() - t);
      });
      send({ type: 'done', id: message.id, ms, latencies, postTimes, sagaTimes });
      return;
    }
    case 'batch':
      send(await batch(message));
      return;
    case 'close':
      await temporal?.connection.close();
      await sqlPool?.end();
      process.exit(0);
  }
}

function taskOf(task: LoadTask, postTimes: number[], sagaTimes: number[]): () => Promise<void> {
  switch (task.kind) {
    case 'http-transfer':
      return () => viaHttp(task.from ? [task.from, randomAccount(task.from)] : randomPair(), postTimes, sagaTimes);
    case 'noop-saga':
      return () => noopSaga(task.taskQueue);
    case 'noop-remote-saga':
      return () => noopRemoteSaga(task.taskQueue);
    case 'plain-sql':
      return plainSql;
  }
}

const headers = (extra: Record<string, string> = {}) => ({ authorization: `Bearer ${init.apiKey}`, ...extra });

function randomAccount(not?: string): string {
  for (;;) {
    const id = init.accountIds[Math.floor(Math.random() * init.accountIds.length)]!;
    if (id !== not) return id;
  }
}

function randomPair(): [string, string] {
  const ids = init.accountIds;
  const a = Math.floor(Math.random() * ids.length);
  const b = (a + 1 + Math.floor(Math.random() * (ids.length - 1))) % ids.length;
  return [ids[a]!, ids[b]!];
}

/** One transfer over HTTP, awaited until its outcome (`Prefer: wait`, else 202 and GET ?wait). */
async function viaHttp([from, to]: [string, string], postTimes: number[], sagaTimes: number[]): Promise<void> {
  const transferId = randomUUID();
  const t0 = performance.now();
  const post = await fetch(`${init.baseUrl}/transfers`, {
    method: 'POST',
    headers: headers({ 'content-type': 'application/json', ...(init.preferWait ? { prefer: 'wait=10' } : {}) }),
    body: JSON.stringify({ transferId, fromAccountId: from, toAccountId: to, amount: 1 + Math.floor(Math.random() * 1000) }),
  });
  postTimes.push(performance.now() - t0);
  if (post.status === 201) {
    // Prefer: wait: the answer is the outcome.
    const body = (await post.json()) as { status: string };
    if (body.status !== 'completed') throw new Error(`transfer ${transferId} ended ${body.status}`);
    sagaTimes.push(performance.now() - t0);
    return;
  }
  if (post.status !== 202) throw new Error(`POST /transfers answered ${post.status}: ${await post.text()}`);
  for (;;) {
    const get = await fetch(`${init.baseUrl}/transfers/${transferId}?wait=30`, { headers: headers() });
    const body = (await get.json()) as { status: string };
    if (body.status !== 'pending') {
      if (body.status !== 'completed') throw new Error(`transfer ${transferId} ended ${body.status}`);
      break;
    }
  }
  sagaTimes.push(performance.now() - t0);
}

async function noopSaga(taskQueue: string): Promise<void> {
  const [from, to] = randomPair();
  // Started straight on Temporal (the no-op saga moves no money, so nothing is accepted on a stream for it).
  const transferId = randomUUID();
  const handle = await temporal!.workflow.start('transferSaga', {
    taskQueue,
    workflowId: transferWorkflowId(transferId),
    args: [{ transferId, fromAccountId: from, toAccountId: to, amount: 1 }],
  });
  await handle.result();
}

async function noopRemoteSaga(taskQueue: string): Promise<void> {
  const [from, to] = randomPair();
  await temporal!.workflow.execute('twoRemoteLegs', {
    taskQueue,
    workflowId: `noop-remote-${randomUUID()}`,
    args: [{ transferId: randomUUID(), fromAccountId: from, toAccountId: to, amount: 1 }],
  });
}

/** Baseline 3: one PostgreSQL transaction moving money between two balance rows. */
async function plainSql(): Promise<void> {
  const n = init.plainAccounts;
  const a = Math.floor(Math.random() * n);
  const b = (a + 1 + Math.floor(Math.random() * (n - 1))) % n;
  const amount = 1 + Math.floor(Math.random() * 1000);
  await withTransaction(sqlPool!, async (client) => {
    // Lock both rows in a fixed order (no deadlocks), check funds, move the money.
    const rows = await client.query<{ account_id: number; balance: string }>(
      'SELECT account_id, balance FROM plain_balances WHERE account_id = ANY($1) ORDER BY account_id FOR UPDATE',
      [[a, b]],
    );
    const source = rows.rows.find((r) => r.account_id === a)!;
    if (Number(source.balance) < amount) throw new Error('insufficient funds');
    await client.query('UPDATE plain_balances SET balance = balance - $2 WHERE account_id = $1', [a, amount]);
    await client.query('UPDATE plain_balances SET balance = balance + $2 WHERE account_id = $1', [b, amount]);
  });
}

/**
 * One batch: POST /transfer-batches (no `Prefer: wait`, whose 10 s cap is shorter than a batch: the answer is the
 * acceptance, 202), then GET /transfer-batches/{id} every pollMs until it is no longer pending. The time to that answer
 * is the time to the last item's outcome (within pollMs).
 */
async function batch(message: Extract<LoadRequest, { type: 'batch' }>): Promise<BatchDone> {
  const t0 = performance.now();
  const post = await fetch(`${init.baseUrl}/transfer-batches`, {
    method: 'POST',
    headers: headers({ 'content-type': 'application/json' }),
    body: JSON.stringify({ batchId: message.batchId, items: message.items }),
  });
  const postMs = performance.now() - t0;
  const postBody = (await post.json().catch(() => ({}))) as BatchDone['batch'];
  if (post.status !== 200 && post.status !== 201 && post.status !== 202)
    throw new Error(`POST /transfer-batches answered ${post.status}: ${JSON.stringify(postBody)}`);
  let body = postBody;
  let polls = 0;
  const pollErrors: string[] = [];
  while (body.status === undefined || body.status === 'pending') {
    if (performance.now() - t0 > message.timeoutMs)
      throw new Error(`batch ${message.batchId} not settled within ${message.timeoutMs / 1000} s`);
    if (polls > 0) await new Promise((r) => setTimeout(r, message.pollMs));
    polls++;
    let get: Response;
    try {
      get = await fetch(`${init.baseUrl}/transfer-batches/${message.batchId}?limit=1`, { headers: headers() });
    } catch (error) {
      // A read: asked again (once seen on a loaded machine: a kept-alive connection closed under the request). Counted.
      const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : String(error);
      pollErrors.push(cause);
      if (pollErrors.length > 5)
        throw new Error(`GET /transfer-batches/${message.batchId} failed: ${pollErrors.join('; ')}`, { cause: error });
      continue;
    }
    if (get.status === 404) continue; // not yet in the read model
    if (get.status !== 200) throw new Error(`GET /transfer-batches/${message.batchId} answered ${get.status}: ${await get.text()}`);
    body = (await get.json()) as BatchDone['batch'];
  }
  const settledMs = performance.now() - t0;
  return { type: 'batch-done', id: message.id, postMs, settledMs, postStatus: post.status, batch: body, polls, pollErrors };
}
