import type { ErrorRequestHandler, Response } from 'express';
import type { z } from 'zod';
import { EventStoreUnavailableError, EventStoreValidationError } from '../eventstore/errors';

/** RFC 9457 problem details. Never carries a stack trace. */
export interface FieldError {
  field: string;
  message: string;
}

export class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    readonly title: string,
    readonly detail?: string,
    readonly errors?: FieldError[],
    readonly extra: Record<string, unknown> = {},
  ) {
    super(detail ?? title);
    this.name = 'HttpProblem';
  }
}

export const problemType = (type: string) => `/problems/${type.replace(/_/g, '-')}`;

export function validationProblem(where: 'body' | 'query' | 'path' | 'header', error: z.ZodError): HttpProblem {
  const errors = error.issues.map((issue) => {
    const path = issue.path.map(String).join('.');
    const unknown = issue.code === 'unrecognized_keys' ? (issue as { keys?: string[] }).keys : undefined;
    if (unknown?.length) return { field: unknown.map((k) => (path ? `${path}.${k}` : k)).join(', '), message: 'is not a known field' };
    return { field: path || where, message: issue.message };
  });
  const detail = errors.map((e) => `${e.field} ${e.message}`).join('; ');
  return new HttpProblem(400, problemType('validation-error'), `Invalid request ${where}`, detail, errors);
}

export function sendProblem(res: Response, problem: HttpProblem, requestId?: string): void {
  res
    .status(problem.status)
    .type('application/problem+json')
    .send(
      JSON.stringify({
        type: problem.type,
        title: problem.title,
        status: problem.status,
        ...(problem.detail ? { detail: problem.detail } : {}),
        ...(problem.errors ? { errors: problem.errors } : {}),
        ...problem.extra,
        instance: res.req.originalUrl,
        ...(requestId ? { requestId } : {}),
      }),
    );
}

/** Maps any error to a problem response; unknown errors are logged with their stack and answered as a bare 500. */
export function problemHandler(log: (entry: Record<string, unknown>) => void): ErrorRequestHandler {
  return (error, req, res, _next) => {
    const requestId = res.locals.requestId as string | undefined;
    if (error instanceof HttpProblem) return sendProblem(res, error, requestId);
    const e = error as { type?: string; status?: number; message?: string };
    if (error instanceof EventStoreValidationError) {
      return sendProblem(
        res,
        new HttpProblem(400, problemType('validation-error'), 'Invalid request', error.message, [
          { field: error.field, message: error.reason },
        ]),
        requestId,
      );
    }
    if (error instanceof EventStoreUnavailableError) {
      log({ level: 'warn', msg: 'event store unavailable', requestId, error: error.message });
      return sendProblem(
        res,
        new HttpProblem(503, problemType('store-unavailable'), 'Event store unavailable', 'Retry shortly with the same idempotency key'),
        requestId,
      );
    }
    // A path parameter that is not percent-encoded UTF-8 (e.g. %ED%A0%80, a lone surrogate): express's router refuses to decode it.
    if (error instanceof URIError && e.status === 400) {
      return sendProblem(
        res,
        new HttpProblem(400, problemType('validation-error'), 'Invalid request path', 'A path parameter is not percent-encoded UTF-8', [
          { field: 'path', message: 'must be percent-encoded UTF-8' },
        ]),
        requestId,
      );
    }
    if (e.type === 'entity.parse.failed') {
      return sendProblem(
        res,
        new HttpProblem(400, problemType('malformed-json'), 'Malformed JSON body', 'The request body is not valid JSON', [
          { field: 'body', message: 'is not valid JSON' },
        ]),
        requestId,
      );
    }
    if (e.type === 'entity.too.large') {
      return sendProblem(
        res,
        new HttpProblem(413, problemType('body-too-large'), 'Request body too large', 'The request body exceeds the limit', [
          { field: 'body', message: 'is too large' },
        ]),
        requestId,
      );
    }
    if (e.type === 'charset.unsupported' || e.type === 'encoding.unsupported') {
      return sendProblem(res, new HttpProblem(415, problemType('unsupported-encoding'), 'Unsupported body encoding', e.message), requestId);
    }
    log({
      level: 'error',
      msg: 'unhandled error',
      requestId,
      method: req.method,
      path: req.originalUrl,
      error: error instanceof Error ? error.stack : String(error),
    });
    return sendProblem(
      res,
      new HttpProblem(
        503 === e.status ? 503 : 500,
        problemType('internal-error'),
        'Internal error',
        'The request could not be completed; it is safe to retry with the same idempotency key',
      ),
      requestId,
    );
  };
}
