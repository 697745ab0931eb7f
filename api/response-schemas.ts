import { extendZodWithOpenApi } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import type { ChainProblem, HashForm, UnhashedField } from '../eventstore/hash-chain';
import { ApiKeyView } from './api-key-schemas';
import {
  AccountId,
  AccountView,
  BatchId,
  BatchItemStatusEnum,
  BatchStatusEnum,
  HoldId,
  HoldStatusEnum,
  Movement,
  TransferId,
  TransferView,
} from './schemas';

extendZodWithOpenApi(z);

/**
 * Response bodies of the event log, the stream browser, the audit check, readiness and the balance as of a moment,
 * for the OpenAPI document (api/openapi.ts). Response-side only: nothing here validates a request. The routes build
 * these bodies by hand; test/support/openapi-responses.ts checks every response the API test suites receive against
 * the document, so a field added here or there without the other fails a test.
 */

const Position = z
  .string()
  .regex(/^\d{1,19}\.\d{1,19}$/)
  .openapi({ example: '812.40', description: 'A position in the log' });
const Hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const JsonObject = z.record(z.string(), z.unknown());

/** Each event's link in the hash chain (docs/audit.md); absent for a store that keeps no chain. */
const ChainLinkFields = {
  hash: Hex64.nullable().optional().openapi({ description: 'The hash stored with the event, hex (null: none)' }),
  previousHash: Hex64.nullable()
    .optional()
    .openapi({ description: 'The hash it chains from: the previous event of its stream, or 64 zeros before revision 0' }),
  hashForm: z
    .enum(['v1', 'v2'] satisfies HashForm[])
    .optional()
    .openapi({ description: 'The canonical encoding the hash was computed over (v2 covers recorded time and the place in the log)' }),
  unhashed: z
    .array(z.enum(['occurredAt', 'recordedAt', 'position'] satisfies UnhashedField[]))
    .optional()
    .openapi({
      description:
        'Fields the store filled in after hashing the event (EventStoreDB): null in its hash, and `occurredAt` also left out of the hashed metadata',
    }),
};

export const LogEvent = z
  .object({
    position: Position,
    stream: z.string(),
    revision: z.number().int(),
    id: z.string(),
    type: z.string(),
    occurredAt: z.string().optional().openapi({ description: 'Business time (metadata.occurredAt)' }),
    recordedAt: z.string().openapi({ description: "The store's clock" }),
    data: JsonObject,
    metadata: JsonObject,
    ...ChainLinkFields,
  })
  .openapi('LogEvent');

export const EventsPage = z
  .object({
    events: z.array(LogEvent),
    next: Position.optional().openapi({
      description:
        'The position to continue after (`after`): present when the page is full, or when the store stopped at its scan budget before filling it (EventStoreDB, filtering by time: the page may be short, even empty); absent at the end of the log',
    }),
  })
  .openapi('EventsPage');

export const StreamsPage = z
  .object({
    streams: z.array(
      z.object({
        stream: z.string(),
        revision: z.number().int().openapi({ description: 'The revision of its last event' }),
        lastRecordedAt: z.string(),
        href: z.string().openapi({ description: 'GET this for its events' }),
      }),
    ),
    nextCursor: z.string().nullable().openapi({ description: '`cursor` of the next page, null on the last' }),
  })
  .openapi('StreamsPage');

export const StreamEvent = z
  .object({
    id: z.string(),
    type: z.string(),
    revision: z.number().int(),
    position: Position,
    recordedAt: z.string(),
    data: JsonObject,
    metadata: JsonObject,
    ...ChainLinkFields,
  })
  .openapi('StreamEvent');

export const StreamPage = z
  .object({
    stream: z.string(),
    events: z.array(StreamEvent),
    nextRevision: z.number().int().nullable().openapi({ description: '`fromRevision` of the next page, null on the last' }),
  })
  .openapi('StreamPage');

/** Every ChainProblem of eventstore/hash-chain.ts (the type check below fails when one is missing). */
const CHAIN_PROBLEMS = [
  'hash_mismatch',
  'missing_event',
  'missing_hash',
  'head_mismatch',
  'anchor_mismatch',
  'anchor_chain',
  'stream_deleted',
  'stamp_mismatch',
] as const satisfies readonly ChainProblem[];
const everyChainProblem: Exclude<ChainProblem, (typeof CHAIN_PROBLEMS)[number]> extends never ? true : never = true;
void everyChainProblem;

const ChainBreak = z
  .object({
    stream: z.string(),
    revision: z.string().nullable().openapi({ description: 'Where the chain breaks (null: the whole stream or the anchors)' }),
    problem: z.enum(CHAIN_PROBLEMS),
    expected: z.string(),
    found: z.string(),
    form: z.literal('v1').optional().openapi({ description: 'Checked against its v1 hash (from before migration 4)' }),
  })
  .openapi('ChainBreak');

const AnchorSummary = z
  .object({
    anchorId: z.string(),
    anchoredAt: z.string(),
    streams: z.number().int(),
    events: z.number().int(),
    headsHash: z.string(),
    anchorHash: z.string(),
  })
  .openapi('AnchorSummary');

export const ChainVerification = z
  .object({
    ok: z.boolean(),
    events: z.number().int().openapi({ description: 'Events whose hash was recomputed and checked' }),
    streams: z.number().int(),
    ms: z.number(),
    firstBroken: ChainBreak.optional().openapi({ description: 'The first broken link in the order verified' }),
    broken: z.array(ChainBreak).openapi({ description: 'The broken links, up to 20' }),
    anchor: AnchorSummary.optional().openapi({ description: 'The latest anchor, checked against the heads' }),
    lastHash: z.string().optional().openapi({ description: 'With `stream`: the hash of its last event' }),
    unhashedLegacyEvents: z.number().int().optional(),
    form: z.enum(['v1', 'v2']),
    v1Links: z.number().int().optional(),
  })
  .openapi('ChainVerification');

const Check = z.object({ ok: z.boolean(), ms: z.number().optional(), error: z.string().optional() });
const ProjectionReadiness = z.object({
  status: z.enum(['ok', 'degraded', 'unknown']),
  parkedEvents: z.number().int().optional(),
  firstParkedPosition: z.string().optional(),
  oldestParkedRecordedAt: z.string().optional(),
  error: z.string().optional(),
});

export const Readiness = z
  .object({
    status: z
      .enum(['ready', 'degraded', 'not_ready'])
      .openapi({ description: 'not_ready (503): a dependency is unreachable; degraded: a projection has parked events' }),
    checks: z.record(z.string(), Check).openapi({ description: 'Each dependency check by name (postgres, temporal, eventStore...)' }),
    projections: z.record(z.string(), ProjectionReadiness).openapi({ description: 'Each projection by name' }),
  })
  .openapi('Readiness');

export const BalanceAsOf = z
  .object({
    accountId: AccountId,
    asOf: z.string(),
    basis: z.enum(['business', 'recorded']),
    balance: z.number().int(),
    held: z.number().int().openapi({ description: 'Reserved by holds open at that moment (issue 25); part of the balance' }),
    available: z.number().int().openapi({ description: 'What could be paid out at that moment: balance - held' }),
    status: z
      .enum(['open', 'closed', 'not_opened_yet'])
      .openapi({ description: 'The account as of that moment (not_opened_yet: it was opened later)' }),
    revision: z.number().int().nullable().openapi({ description: 'The last revision folded (null: none)' }),
  })
  .openapi('BalanceAsOf');

export const AccountsPage = z
  .object({
    accounts: z.array(AccountView),
    next: z.string().optional().openapi({ description: 'The cursor (`after`) of the next page' }),
  })
  .openapi('AccountsPage');

export const HistoryPage = z
  .object({ accountId: AccountId, movements: z.array(Movement), nextCursor: z.string().nullable() })
  .openapi('HistoryPage');

export const TransfersPage = z
  .object({
    transfers: z.array(TransferView),
    next: z.string().optional().openapi({ description: 'The cursor (`after`) of the next page' }),
  })
  .openapi('TransfersPage');

export const ApiKeyList = z.object({ keys: z.array(ApiKeyView) }).openapi('ApiKeyList');

export const Health = z.object({ status: z.literal('ok') }).openapi('Health');

export const ConsoleConfig = z.object({ temporalUiUrl: z.string().nullable(), temporalNamespace: z.string() }).openapi('ConsoleConfig');

/** A hold (issue 25, docs/holds.md): from its own stream, with its saga's steps when the saga can be asked. */
export const HoldView = z
  .object({
    holdId: HoldId,
    fromAccountId: AccountId,
    toAccountId: AccountId,
    amount: z.number().int().openapi({ description: 'What the hold reserves on the source (integer minor units)' }),
    currency: z.string().optional().openapi({ description: "The source's currency, once the reservation is placed" }),
    status: HoldStatusEnum,
    expiresAt: z.string().openapi({ description: 'When an open hold is released by itself (ISO-8601)' }),
    captured: z
      .number()
      .int()
      .optional()
      .openapi({ description: "What reached the target: the transfer of the hold's id (0 when compensated)" }),
    released: z.number().int().optional().openapi({ description: "What went back to the source's available" }),
    failureReason: z.string().optional(),
    steps: z
      .array(z.object({ name: z.string(), at: z.string(), status: z.string().optional(), detail: z.string().optional() }))
      .optional()
      .openapi({ description: "The saga's steps with their times (empty when its saga cannot be asked; absent in lists)" }),
    createdAt: z.string().optional().openapi({ description: 'When the hold was accepted (in lists, which are ordered by it)' }),
  })
  .openapi('Hold');

export const HoldsPage = z
  .object({
    holds: z.array(HoldView),
    next: z.string().optional().openapi({ description: 'The cursor (`after`) of the next page' }),
  })
  .openapi('HoldsPage');

// --- Batches of transfers (issue 26) ---

const BatchCounts = z
  .object({
    completed: z.number().int(),
    failed: z.number().int(),
    compensated: z.number().int(),
    pending: z.number().int().openapi({ description: 'Items without an outcome yet' }),
  })
  .openapi('TransferBatchCounts');

/** The answer of POST /transfer-batches: what was accepted, and the transfer id of each item. */
export const TransferBatchAccepted = z
  .object({
    batchId: BatchId,
    atomic: z.boolean(),
    status: BatchStatusEnum,
    itemCount: z.number().int(),
    counts: BatchCounts.optional().openapi({ description: 'Once the batch has settled' }),
    message: z.string().optional(),
    items: z
      .array(z.object({ index: z.number().int(), transferId: TransferId }))
      .openapi({ description: "Each item's place in the batch and its transfer id (GET /transfers/{id} shows it)" }),
  })
  .openapi('TransferBatchAccepted');

export const TransferBatchItem = z
  .object({
    index: z.number().int().openapi({ description: 'Its place in the batch, from 0' }),
    transferId: TransferId,
    fromAccountId: AccountId,
    toAccountId: AccountId,
    amount: z.number().int(),
    status: BatchItemStatusEnum,
    failureReason: z.string().optional(),
    failureMessage: z.string().optional(),
  })
  .openapi('TransferBatchItem');

/** The saga's own view while it runs (best effort: absent when it cannot be asked). */
const BatchProgress = z
  .object({
    status: z.enum(['pending', 'completed', 'failed', 'partially_completed', 'needs_attention']).openapi({
      description: '`needs_attention`: a settlement the rules refused waits for a person',
    }),
    phase: z.enum(['accepted', 'registering', 'debiting', 'crediting', 'settling', 'settled']),
    refused: z.number().int().openapi({ description: 'Items refused so far' }),
    counts: BatchCounts,
    failureReason: z.string().optional(),
    failureMessage: z.string().optional(),
  })
  .openapi('TransferBatchProgress');

const BatchFields = {
  batchId: BatchId,
  atomic: z.boolean(),
  status: BatchStatusEnum,
  itemCount: z.number().int(),
  counts: BatchCounts,
  actor: z.string().optional().openapi({ description: 'The API key that started it (operators only)' }),
  acceptedAt: z.string().optional().openapi({ description: 'Absent until the batches read model has the batch' }),
  settledAt: z.string().optional(),
  message: z.string().optional(),
};

export const TransferBatchView = z
  .object({
    ...BatchFields,
    progress: BatchProgress.optional().openapi({ description: "While it is pending: the saga's progress, when the saga answers in time" }),
    items: z.array(TransferBatchItem).openapi({ description: 'A page of its items, in their order' }),
    nextCursor: z.string().optional().openapi({ description: 'The `cursor` of the next page of items' }),
  })
  .openapi('TransferBatch');

export const TransferBatchesPage = z
  .object({
    batches: z.array(z.object(BatchFields).openapi('TransferBatchSummary')),
    next: z.string().optional().openapi({ description: 'The cursor (`after`) of the next page' }),
  })
  .openapi('TransferBatchesPage');
