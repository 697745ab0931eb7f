import type { RouteConfig } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import * as out from './response-schemas';
import * as s from './schemas';

interface Helpers {
  registerPath(route: RouteConfig): void;
  json(schema: z.ZodType, description: string): { description: string; content: { 'application/json': { schema: z.ZodType } } };
  body(schema: z.ZodType): { content: { 'application/json': { schema: z.ZodType } } };
  problem: { description: string; content: Record<string, { schema: z.ZodType }> };
}

/** The batch operations (issue 26) in the OpenAPI document (api/openapi.ts calls this). */
export function registerTransferBatchPaths({ registerPath, json, body, problem }: Helpers): void {
  const batchNotFound = {
    description:
      "`/problems/batch-not-found`: no such batch (for a customer, also one it may not read: one with an item from another owner's account)",
    content: problem.content,
  };
  registerPath({
    method: 'post',
    path: '/transfer-batches',
    summary: 'Start a batch of transfers moved by one saga (idempotent by batchId or Idempotency-Key)',
    description:
      "Up to TRANSFER_BATCH_MAX_ITEMS (default 1,000) items, each a transfer of its own (its id, its outcome, listed in GET /transfers). `atomic`: all or nothing. Every item is checked before anything is written: a bad item is 400 naming `items[i].field`, another owner's source 403 naming `items[i].fromAccountId`, an account that does not exist or a currency that differs 422 naming the item's field. An item without `transferId` gets one derived from the batch id and its place (a retry names the same transfers). A customer's ids (the batch's and the items') are scoped to its owner as transfer ids are (docs/access-control.md).",
    request: {
      headers: z.object({
        'Idempotency-Key': z.string().optional().openapi({ description: 'The batch id (must equal `batchId` when both are given)' }),
        Prefer: z.string().optional().openapi({
          description: 'RFC 7240 `wait=N` (seconds, capped at 10): answer 201 with the settled batch when the saga ends in time',
        }),
      }),
      body: body(s.CreateTransferBatchBody),
    },
    responses: {
      201: json(out.TransferBatchAccepted, 'Settled within the preferred wait (Prefer: wait=N; Preference-Applied says so)'),
      202: json(out.TransferBatchAccepted, 'Accepted: the saga runs (Location: the batch)'),
      200: json(out.TransferBatchAccepted, 'Already known (the same batch again): nothing new written'),
      400: problem,
      403: {
        description: "A customer key, and an item's fromAccountId is another owner's account (names the item; nothing written)",
        content: problem.content,
      },
      409: { description: '`/problems/transfer-conflict`: this batch id was used with another payload', content: problem.content },
      413: {
        description: 'The body is larger than the limit (512 bytes per TRANSFER_BATCH_MAX_ITEMS item, plus 16 kB)',
        content: problem.content,
      },
      422: {
        description:
          "An item's source or target does not exist, or their currencies differ (names the item's field; for a customer, another owner's target answers `/problems/account-not-found` either way); nothing written",
        content: problem.content,
      },
    },
  });
  registerPath({
    method: 'get',
    path: '/transfer-batches',
    summary: 'Batches, newest first, by status, cursor-paginated (operators)',
    request: { query: s.TransferBatchListQuery },
    responses: {
      200: json(out.TransferBatchesPage, 'A page of batches; `next` is the cursor of the next page'),
      400: problem,
    },
  });
  registerPath({
    method: 'get',
    path: '/transfer-batches/{id}',
    summary: "A batch with a page of its items' outcomes, and the saga's progress while it runs",
    description:
      'Items in their order, `limit` at a time (default 100, at most 500); `nextCursor` continues. From the batches read model (with `minPosition`: once it has applied that position); a batch it has not seen yet is read from its own stream, its items pending. A customer reads the batches whose every source it owns.',
    request: { params: s.TransferBatchParams, query: s.TransferBatchQuery },
    responses: { 200: json(out.TransferBatchView, 'The batch'), 404: batchNotFound },
  });
}
