import { Router } from 'express';
import { z } from 'zod';
import { isHashChained } from '../eventstore/hash-chain';
import type { ApiDeps } from './api-deps';
import { HttpProblem, problemType } from './problem';
import { parse } from './validate';

/** Stream names as the event store accepts them (eventstore/validation.ts). */
export const AuditVerifyQuery = z.strictObject({
  stream: z
    .string()
    .min(1)
    .max(200)
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.:@-]*$/, 'must start with a letter or digit and hold only letters, digits and _ . : @ -')
    .optional(),
  anchorHash: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex digits')
    .optional(),
});

/**
 * `GET /audit/verify?stream=<name>` (operators): walks the hash chain of one stream (or, without `stream`, of every
 * stream: that reads the whole log, about 1 s per 100 000 events) and answers 200 with the verification:
 * `ok`, the first broken link (stream, revision, problem, expected, found), the others up to 20, and the latest anchor.
 * `anchorHash` (an anchor hash kept outside the database): fail unless the anchors chain through it.
 * The links cover the recorded time and the place in the log too (form `v2`; docs/audit.md says what each link covers
 * and how to check a chain from GET /streams/{name} or GET /events without this route).
 * Operator-only: not listed for customers in api/access-control.ts, so its default (operators only) applies.
 */
export function auditRoutes(deps: ApiDeps): Router {
  const router = Router();
  router.get('/audit/verify', async (req, res) => {
    const q = parse(AuditVerifyQuery, req.query, 'query');
    if (!isHashChained(deps.store)) {
      throw new HttpProblem(501, problemType('not-implemented'), 'Not implemented', 'This event store keeps no hash chain');
    }
    const report = await deps.store.chainAudit().verify({ stream: q.stream, anchorHash: q.anchorHash });
    if (q.stream !== undefined && report.events === 0 && report.ok) {
      throw new HttpProblem(404, problemType('stream-not-found'), 'Stream not found', `No stream ${q.stream}`);
    }
    res.set('Cache-Control', 'no-store');
    res.json(report);
  });
  return router;
}
