import type { RouteConfig } from '@asteasolutions/zod-to-openapi';
import type { z } from 'zod';
import * as s from './schemas';

interface Helpers {
  registerPath(route: RouteConfig): void;
  json(schema: z.ZodType, description: string): { description: string; content: { 'application/json': { schema: z.ZodType } } };
  body(schema: z.ZodType): { content: { 'application/json': { schema: z.ZodType } } };
  problem: { description: string; content: Record<string, { schema: z.ZodType }> };
}

/** The business-time operations (issue 14) in the OpenAPI document (api/openapi.ts calls this). */
export function registerBusinessTimePaths({ registerPath, json, body, problem }: Helpers): void {
  registerPath({
    method: 'post',
    path: '/books/close',
    summary: 'Close a business day of BOOKS_TIMEZONE (and every open day before it): its statements are published as they stand',
    description:
      'Idempotent (closing a closed day writes nothing and answers 200 with `closed: []`) and ordered (days close in order; the first close starts the books). A day closes only once it has ended (422 day-not-ended). Records of a closed day that arrive later do not change its published statement: they become correction notices.',
    request: { body: body(s.CloseBooksBody) },
    responses: { 200: json(s.BooksClosed, 'Closed (or closed already)'), 400: problem, 422: problem },
  });
  registerPath({
    method: 'get',
    path: '/accounts/{id}/statements/{date}',
    summary:
      "An account's statement of one business day: opening balance, movements in business-time order with running balances, closing balance",
    description:
      'For a closed day, the figures as published (records recorded before the close), plus `corrections` (records of that day recorded after the close) and the corrected balances. Movements of the same instant come in recorded order (by revision). A running balance below zero (a late record) is shown and flagged (`belowZero`). With `minPosition`, 503 projection-degraded only when a parked event of this account or of the books lies at or before it.',
    request: { params: s.StatementParams, query: s.ReadQuery },
    responses: { 200: json(s.Statement, 'The statement'), 400: problem, 404: problem, 503: problem },
  });
  registerPath({
    method: 'get',
    path: '/corrections',
    summary: 'Correction notices (late records of closed days) in the order they arose, for downstream reporting to follow',
    description:
      'With `minPosition`, 503 projection-degraded only when a parked movement or close of the books lies at or before it (a parked exception does not concern this feed).',
    request: { query: s.CorrectionsQuery },
    responses: { 200: json(s.CorrectionsPage, 'A page of notices; poll again with after=next'), 400: problem, 503: problem },
  });
  registerPath({
    method: 'get',
    path: '/exceptions',
    summary: 'Late records refused as too late (older than MAX_LATENESS), kept for manual handling, with the original request',
    description:
      'With `minPosition`, 503 projection-degraded only when a parked exception event lies at or before it (of the account asked for, with `accountId`).',
    request: { query: s.ExceptionsQuery },
    responses: { 200: json(s.ExceptionsPage, 'A page of exceptions, in the order they were held'), 400: problem, 503: problem },
  });
  registerPath({
    method: 'post',
    path: '/exceptions/{id}/accept',
    summary: "Apply a held late record to its account (an operator's override, recorded as such); idempotent",
    description:
      'The record is written through the normal command path with its business time; its event carries `override: true`, the exception id and the operator (`actor`). The overdraft rule is checked now. The account refusing it (e.g. insufficient funds, or a record dated before the account was opened: before-account-opened) is 422 and the exception stays open.',
    request: { params: s.ExceptionParams },
    responses: { 200: json(s.ExceptionDecision, 'Accepted (or accepted already)'), 400: problem, 404: problem, 409: problem, 422: problem },
  });
  registerPath({
    method: 'post',
    path: '/exceptions/{id}/reject',
    summary: 'Close a held late record without applying it; idempotent',
    request: { params: s.ExceptionParams, body: body(s.RejectExceptionBody) },
    responses: { 200: json(s.ExceptionDecision, 'Rejected (or rejected already)'), 400: problem, 404: problem, 409: problem },
  });
}
