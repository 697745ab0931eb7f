import {
  BATCH_STREAM_PREFIX,
  TRANSFER_BATCH_EVENT_TYPES,
  type BatchCounts,
  type BatchStatus,
  type ItemFailure,
  type TransferBatchEvent,
} from '../domain/transfer-batch';
import {
  TERMINAL_STATUS_BY_EVENT,
  TRANSFER_EVENT_TYPES,
  TRANSFER_STREAM_PREFIX,
  type TerminalTransferStatus,
  type TransferEvent,
} from '../domain/transfer-events';
import { toDomainEvent } from '../application/event-envelope';
import type { RecordedEvent } from '../eventstore/event-store';
import type { BatchPlan, BatchProjection } from './projection';
import { arrayParams, explainSkippedWrite, streamRuns } from './projection';
import { transferBatchesDdl, transferBatchItemsDdl, transferBatchOutcomesDdl } from './read-model-schema';

/** The events that end a transfer: a batch item's outcome, on the item's own stream. */
const OUTCOME_TYPES = Object.keys(TERMINAL_STATUS_BY_EVENT) as (keyof typeof TERMINAL_STATUS_BY_EVENT)[];

const pos = (e: RecordedEvent) => [e.position.commit.toString(), e.position.prepare.toString()];

/**
 * The batch an event of a transfer stream was written for: every event a batch writes carries it in its metadata
 * (activities/batch-activities.ts); other transfers' events have none.
 */
function batchIdOf(recorded: RecordedEvent): string | undefined {
  const batchId = recorded.metadata.batchId;
  return typeof batchId === 'string' && batchId !== '' ? batchId : undefined;
}

// --- The statement: parameter arrays, in this order, for apply() (one event) and planBatch() (a delivery) alike ---

/** An item's outcome (upsert keyed by (batch, transfer), kept only when of a later revision of its stream). */
const OUTCOME_TYPES_SQL = ['text', 'text', 'text', 'text', 'text', 'bigint', 'bigint', 'bigint'];
/** A batch row, from a run of its stream that begins with TransferBatchAccepted. */
const BATCH_INSERT_TYPES = [
  'text',
  'boolean',
  'integer',
  'text',
  'text',
  'text',
  'timestamptz',
  'timestamptz',
  'jsonb',
  'text',
  'bigint',
  'bigint',
  'bigint',
];
/** The items of a batch inserted by this statement (written only with their batch's row). */
const ITEM_INSERT_TYPES = ['text', 'integer', 'text', 'text', 'text', 'bigint', 'text', 'text', 'text'];
/** A run on a batch row at the revision before it. */
const BATCH_UPDATE_TYPES = ['text', 'bigint', 'bigint', 'text', 'timestamptz', 'jsonb', 'text', 'bigint', 'bigint'];
/** Items refused at registration, by a run on an existing batch row (written only with that run). */
const ITEM_REJECT_TYPES = ['text', 'text', 'text', 'text'];

const GROUPS = [OUTCOME_TYPES_SQL, BATCH_INSERT_TYPES, ITEM_INSERT_TYPES, BATCH_UPDATE_TYPES, ITEM_REJECT_TYPES];

interface Rows {
  outcomes: unknown[][];
  batchInserts: unknown[][];
  itemInserts: unknown[][];
  batchUpdates: unknown[][];
  itemRejects: unknown[][];
}

const emptyRows = (): Rows => ({ outcomes: [], batchInserts: [], itemInserts: [], batchUpdates: [], itemRejects: [] });

/** The rows as parallel arrays (one per column), the groups in GROUPS' order. */
function columnsOf(rows: Rows): unknown[] {
  const groups = [rows.outcomes, rows.batchInserts, rows.itemInserts, rows.batchUpdates, rows.itemRejects];
  return groups.flatMap((list, g) => GROUPS[g]!.map((_type, column) => list.map((row) => row[column])));
}

/**
 * The statement's CTEs over the tables. Each writes its own rows: outcomes (their own table), new batches with their
 * items, runs on existing batches with the items they refuse. No row is written by two of them: a batch's stream is one
 * run per delivery (an insert or an update), and outcomes never touch the batch tables.
 */
function statementCtes(t: Record<string, string>): string[] {
  const batches = t.rm_transfer_batches!;
  const items = t.rm_transfer_batch_items!;
  const outcomes = t.rm_transfer_batch_outcomes!;
  let next = 1;
  const params = (types: readonly string[]) => {
    const text = arrayParams(next, types);
    next += types.length;
    return text;
  };
  return [
    `outs AS (
      INSERT INTO ${outcomes} AS o (batch_id, transfer_id, status, failure_reason, failure_message, revision, pos_commit, pos_prepare)
      SELECT * FROM unnest(${params(OUTCOME_TYPES_SQL)})
      ON CONFLICT (batch_id, transfer_id) DO UPDATE SET status = EXCLUDED.status, failure_reason = EXCLUDED.failure_reason,
        failure_message = EXCLUDED.failure_message, revision = EXCLUDED.revision, pos_commit = EXCLUDED.pos_commit,
        pos_prepare = EXCLUDED.pos_prepare
      WHERE o.revision < EXCLUDED.revision
      RETURNING 'o:' || o.batch_id || ':' || o.transfer_id AS k
    )`,
    `bins AS (
      INSERT INTO ${batches} (batch_id, atomic, item_count, status, actor, correlation_id, accepted_at, settled_at, settled_counts, message,
        revision, pos_commit, pos_prepare)
      SELECT * FROM unnest(${params(BATCH_INSERT_TYPES)})
      ON CONFLICT (batch_id) DO NOTHING
      RETURNING batch_id
    )`,
    `iins AS (
      INSERT INTO ${items} (batch_id, item_index, transfer_id, from_account_id, to_account_id, amount, status, failure_reason, failure_message)
      SELECT x.* FROM unnest(${params(ITEM_INSERT_TYPES)})
        AS x(batch_id, item_index, transfer_id, from_account_id, to_account_id, amount, status, failure_reason, failure_message)
      WHERE x.batch_id IN (SELECT batch_id FROM bins)
      RETURNING 1
    )`,
    `bupd AS (
      UPDATE ${batches} SET status = COALESCE(u.status, ${batches}.status), settled_at = COALESCE(u.settled_at, ${batches}.settled_at),
        settled_counts = COALESCE(u.settled_counts, ${batches}.settled_counts), message = COALESCE(u.message, ${batches}.message),
        revision = u.last, pos_commit = u.pos_commit, pos_prepare = u.pos_prepare
      FROM unnest(${params(BATCH_UPDATE_TYPES)}) AS u(id, first, last, status, settled_at, settled_counts, message, pos_commit, pos_prepare)
      WHERE ${batches}.batch_id = u.id AND ${batches}.revision = u.first - 1
      RETURNING ${batches}.batch_id
    )`,
    `irej AS (
      UPDATE ${items} SET status = 'failed', failure_reason = r.reason, failure_message = r.message
      FROM unnest(${params(ITEM_REJECT_TYPES)}) AS r(batch_id, transfer_id, reason, message)
      WHERE ${items}.batch_id = r.batch_id AND ${items}.transfer_id = r.transfer_id AND r.batch_id IN (SELECT batch_id FROM bupd)
      RETURNING 1
    )`,
  ];
}

const WRITTEN = `SELECT k FROM outs UNION ALL SELECT 'b:' || batch_id FROM bins UNION ALL SELECT 'b:' || batch_id FROM bupd`;

// --- Rows from events ---

/** An item's outcome row, or undefined for an event of a transfer that is no batch's item (or that ends nothing). */
function outcomeRow(recorded: RecordedEvent): { row: unknown[]; key: string } | undefined {
  const batchId = batchIdOf(recorded);
  const status: TerminalTransferStatus | undefined = (TERMINAL_STATUS_BY_EVENT as Record<string, TerminalTransferStatus>)[recorded.type];
  if (batchId === undefined || status === undefined || !recorded.stream.startsWith(TRANSFER_STREAM_PREFIX)) return undefined;
  const event = toDomainEvent<TransferEvent>(recorded, TRANSFER_EVENT_TYPES);
  const failure = event.type === 'TransferFailed' || event.type === 'TransferCompensated' ? event.data : undefined;
  const transferId = event.data.transferId;
  return {
    key: `o:${batchId}:${transferId}`,
    row: [batchId, transferId, status, failure?.reason ?? null, failure?.message ?? null, recorded.revision.toString(), ...pos(recorded)],
  };
}

/** What a run of one batch's events does to its rows (a run begins with the acceptance, or follows an applied event). */
interface BatchRun {
  batchId: string;
  accepted?: Extract<TransferBatchEvent, { type: 'TransferBatchAccepted' }>['data'];
  acceptedAt?: string;
  rejected: ItemFailure[];
  settled?: { status: Exclude<BatchStatus, 'pending'>; counts: BatchCounts; message?: string; at: string };
}

/** The run folded, or 'unfoldable' (an acceptance that is not the stream's first event, a first event that is not one). */
function foldRun(run: RecordedEvent[]): BatchRun | 'unfoldable' {
  const domain = run.map((e) => toDomainEvent<TransferBatchEvent>(e, TRANSFER_BATCH_EVENT_TYPES));
  const startsStream = run[0]!.revision === 0n;
  const acceptedFirst = domain[0]!.type === 'TransferBatchAccepted';
  if (startsStream !== acceptedFirst || domain.some((e, i) => i > 0 && e.type === 'TransferBatchAccepted')) return 'unfoldable';
  const folded: BatchRun = { batchId: run[0]!.stream.slice(BATCH_STREAM_PREFIX.length), rejected: [] };
  for (const [i, event] of domain.entries()) {
    switch (event.type) {
      case 'TransferBatchAccepted':
        folded.accepted = event.data;
        folded.acceptedAt = run[i]!.metadata.occurredAt;
        break;
      case 'TransferBatchItemsRejected':
        folded.rejected.push(...event.data.items);
        break;
      case 'TransferBatchSettled':
        folded.settled = {
          status: event.data.outcome,
          counts: event.data.counts,
          ...(event.data.message !== undefined ? { message: event.data.message } : {}),
          at: run[i]!.metadata.occurredAt,
        };
        break;
    }
  }
  return folded;
}

/** Adds a folded run's rows: a new batch and its items, or an update of the batch and the items it refuses. */
function addRun(rows: Rows, run: RecordedEvent[], folded: BatchRun): void {
  const last = run.at(-1)!;
  const settled = folded.settled;
  if (folded.accepted) {
    const a = folded.accepted;
    rows.batchInserts.push([
      folded.batchId,
      a.atomic,
      a.items.length,
      settled?.status ?? 'pending',
      a.accepted.actor,
      a.accepted.correlationId ?? null,
      folded.acceptedAt,
      settled?.at ?? null,
      settled ? JSON.stringify(settled.counts) : null,
      settled?.message ?? null,
      last.revision.toString(),
      ...pos(last),
    ]);
    const refused = new Map(folded.rejected.map((r) => [r.transferId, r]));
    for (const [index, item] of a.items.entries()) {
      const r = refused.get(item.transferId);
      rows.itemInserts.push([
        folded.batchId,
        index,
        item.transferId,
        item.fromAccountId,
        item.toAccountId,
        item.amount,
        r ? 'failed' : 'pending',
        r?.reason ?? null,
        r?.message ?? null,
      ]);
    }
    return;
  }
  rows.batchUpdates.push([
    folded.batchId,
    run[0]!.revision.toString(),
    last.revision.toString(),
    settled?.status ?? null,
    settled?.at ?? null,
    settled ? JSON.stringify(settled.counts) : null,
    settled?.message ?? null,
    ...pos(last),
  ]);
  for (const r of folded.rejected) rows.itemRejects.push([folded.batchId, r.transferId, r.reason, r.message]);
}

/**
 * Batches (issue 26): rm_transfer_batches, rm_transfer_batch_items and rm_transfer_batch_outcomes (read-model-schema.ts),
 * from two kinds of streams, so one projection (and one checkpoint, for minPosition) covers a batch and its items' ends:
 * - `batch-<id>`: TransferBatchAccepted makes the batch's row and its items' rows (pending), TransferBatchItemsRejected
 *   fails the items whose id belongs to another transfer, TransferBatchSettled ends the batch. The batch row is guarded
 *   by its stream's revision, as the transfers' rows are: a redelivery is a duplicate, an event ahead of its stream is
 *   retried (OutOfOrderError).
 * - `transfer-<id>` of an item: its TransferCompleted / TransferFailed / TransferCompensated (metadata.batchId names the
 *   batch) is its outcome row, kept only when of a later revision than the one there: a redelivery changes nothing, and
 *   an outcome applied before its batch's acceptance simply waits there for its item row.
 * Every stream, narrowed by event type (as business-time-projection.ts): the transfer outcomes of transfers that are no
 * batch's items are 'ignored'.
 */
export const transferBatchesProjection: BatchProjection = {
  name: 'transfer-batches',
  streamPrefix: '',
  eventTypes: [...TRANSFER_BATCH_EVENT_TYPES, ...OUTCOME_TYPES],
  tables: {
    rm_transfer_batches: transferBatchesDdl,
    rm_transfer_batch_items: transferBatchItemsDdl,
    rm_transfer_batch_outcomes: transferBatchOutcomesDdl,
  },
  async apply(client, recorded, tables) {
    const rows = emptyRows();
    if (recorded.stream.startsWith(BATCH_STREAM_PREFIX)) {
      const batchId = recorded.stream.slice(BATCH_STREAM_PREFIX.length);
      const why = (first: string) =>
        explainSkippedWrite(
          client,
          `SELECT revision::text AS revision FROM ${tables.rm_transfer_batches!} WHERE batch_id = $1`,
          batchId,
          recorded,
          first,
        );
      const folded = foldRun([recorded]);
      if (folded === 'unfoldable') return why(`Batch ${batchId}: ${recorded.type} at revision ${recorded.revision}`);
      addRun(rows, [recorded], folded);
      const result = await client.query<{ k: string }>(`WITH ${statementCtes(tables).join(',\n')} ${WRITTEN}`, columnsOf(rows));
      if (result.rows.length === 1) return 'applied';
      return why(`Batch ${batchId}: ${recorded.type} before TransferBatchAccepted`);
    }
    const outcome = outcomeRow(recorded);
    if (!outcome) return 'ignored';
    rows.outcomes.push(outcome.row);
    const result = await client.query<{ k: string }>(`WITH ${statementCtes(tables).join(',\n')} ${WRITTEN}`, columnsOf(rows));
    // Not written: this revision of the item's stream (or a later one) is there already.
    return result.rows.length === 1 ? 'applied' : 'duplicate';
  },
  planBatch: planTransferBatches,
};

/**
 * A delivery in one statement (see BatchPlan): each batch stream's run folded into one write (a new batch with its
 * items, or an update guarded by the revision before the run), and each item outcome keyed. Left to apply(): a stream
 * whose events do not follow each other, a run that cannot be folded, the same outcome twice in the delivery, and every
 * unit the statement did not write (a duplicate, or an event ahead of its stream: apply() says which).
 */
function planTransferBatches(events: RecordedEvent[], tables: Record<string, string>): BatchPlan {
  const rows = emptyRows();
  const units: BatchPlan['units'] = [];
  const ignored: RecordedEvent[] = [];
  const rest: RecordedEvent[] = [];
  const batchEvents: RecordedEvent[] = [];
  const keys = new Set<string>();
  for (const event of events) {
    if (event.stream.startsWith(BATCH_STREAM_PREFIX)) {
      batchEvents.push(event);
      continue;
    }
    const outcome = outcomeRow(event);
    if (!outcome) ignored.push(event);
    else if (keys.has(outcome.key)) rest.push(event);
    else {
      keys.add(outcome.key);
      rows.outcomes.push(outcome.row);
      units.push({ key: outcome.key, events: [event] });
    }
  }
  const { runs, broken } = streamRuns(batchEvents);
  rest.push(...broken);
  for (const run of runs) {
    const folded = foldRun(run);
    if (folded === 'unfoldable') {
      rest.push(...run);
      continue;
    }
    addRun(rows, run, folded);
    units.push({ key: `b:${folded.batchId}`, events: run });
  }
  return { ctes: statementCtes(tables), values: columnsOf(rows), written: WRITTEN, units, unwritten: 'one-by-one', ignored, rest };
}
