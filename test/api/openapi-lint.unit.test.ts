import { Spectral, type RulesetDefinition } from '@stoplight/spectral-core';
import { oas } from '@stoplight/spectral-rulesets';
import type { Response } from 'supertest';
import { buildOpenApiDocument } from '../../api/openapi';
import { OpenApiResponses } from '../support/openapi-responses';

/**
 * The OpenAPI document is the contract (issue 23, item 13; docs/openapi.md). This file checks the document itself;
 * test/support/api-stack.ts checks every response the API test suites receive against it.
 */

type Operation = {
  operationId?: string;
  tags?: string[];
  security?: unknown[];
  requestBody?: unknown;
  parameters?: unknown[];
  responses: Record<string, { content?: Record<string, { schema: { $ref?: string } }> }>;
};
const document = buildOpenApiDocument();
const operations = Object.entries(document.paths ?? {}).flatMap(([path, item]) =>
  Object.entries(item as Record<string, Operation>).map(([method, op]) => ({ key: `${method.toUpperCase()} ${path}`, path, method, op })),
);
const component = (ref: string | undefined) =>
  document.components!.schemas![ref!.replace('#/components/schemas/', '')] as { properties?: Record<string, unknown>; required?: string[] };

describe('the OpenAPI document', () => {
  test("passes Spectral's spectral:oas ruleset with no error, warning, information or hint", async () => {
    const spectral = new Spectral();
    spectral.setRuleset({ extends: [[oas as RulesetDefinition, 'recommended']] });
    const results = await spectral.run(JSON.stringify(document));
    expect(results.map((r) => `${r.code} at ${r.path.join('.')}: ${r.message}`)).toEqual([]);
  });

  test('every operation has a unique operationId and a tag the document defines', () => {
    expect(operations.length).toBeGreaterThanOrEqual(30);
    const defined = new Set((document.tags ?? []).map((t) => t.name));
    for (const { key, op } of operations) {
      expect({ key, operationId: typeof op.operationId }).toEqual({ key, operationId: 'string' });
      expect({ key, tags: op.tags?.filter((t) => defined.has(t)).length }).toEqual({ key, tags: 1 });
    }
    const ids = operations.map((o) => o.op.operationId);
    expect(new Set(ids).size).toBe(ids.length);
  });

  test('every response that has a body documents its schema; no free-form object is left', () => {
    for (const { key, op } of operations) {
      for (const [status, response] of Object.entries(op.responses)) {
        if (status === '204') continue; // no body
        expect({ key, status, documented: Object.keys(response.content ?? {}).length > 0 }).toEqual({ key, status, documented: true });
      }
    }
    // The five 200s that were `{}` (any object) name their fields now.
    for (const key of ['GET /events', 'GET /streams', 'GET /streams/{name}', 'GET /audit/verify', 'GET /ready']) {
      const op = operations.find((o) => o.key === key)!.op;
      const schema = component(op.responses['200']!.content!['application/json']!.schema.$ref);
      expect({ key, fields: Object.keys(schema.properties ?? {}).length > 1 }).toEqual({ key, fields: true });
    }
  });

  test('the balance as of a moment documents its basis, status and revision; events carry their hash-chain link', () => {
    const balance = operations.find((o) => o.key === 'GET /accounts/{id}/balance')!.op;
    const schema = component(balance.responses['200']!.content!['application/json']!.schema.$ref);
    expect(schema.required).toEqual(expect.arrayContaining(['basis', 'status', 'revision', 'balance', 'asOf', 'accountId']));
    for (const name of ['LogEvent', 'StreamEvent']) {
      expect(Object.keys(component(`#/components/schemas/${name}`).properties!)).toEqual(
        expect.arrayContaining(['hash', 'previousHash', 'hashForm']),
      );
    }
    const verify = operations.find((o) => o.key === 'GET /audit/verify')!.op;
    expect((verify.parameters as { name: string }[]).map((p) => p.name)).toEqual(expect.arrayContaining(['stream', 'anchorHash']));
  });

  test('the refusals are documented where they occur: 400, 401, 403, 413, 415, 429', () => {
    for (const { key, op } of operations) {
      const statuses = Object.keys(op.responses);
      const keyed = (op.security ?? []).length > 0;
      if (keyed) expect({ key, statuses }).toEqual({ key, statuses: expect.arrayContaining(['401', '429']) });
      if (op.requestBody) expect({ key, statuses }).toEqual({ key, statuses: expect.arrayContaining(['400', '413', '415']) });
      if ((op.parameters ?? []).length > 0) expect({ key, statuses }).toEqual({ key, statuses: expect.arrayContaining(['400']) });
    }
    expect(Object.keys(operations.find((o) => o.key === 'POST /api-keys')!.op.responses)).toContain('403');
    // 429 too-many-waits: the waits of ?minPosition and GET /transfers/{id}?wait.
    expect(Object.keys(operations.find((o) => o.key === 'GET /transfers/{id}')!.op.responses)).toContain('429');
    for (const status of ['409', '412', '422']) {
      expect(Object.keys(operations.find((o) => o.key === 'POST /accounts/{id}/deposits')!.op.responses)).toContain(status);
    }
  });
});

describe('the response check (test/support/openapi-responses.ts)', () => {
  const responses = new OpenApiResponses(document);
  const res = (status: number, body: unknown, contentType = 'application/json; charset=utf-8', headers: Record<string, string> = {}) =>
    ({ status, body, text: JSON.stringify(body), headers: { 'content-type': contentType, ...headers } }) as unknown as Response;
  const balance = {
    accountId: '0b5e6f8e-2f3c-4c1e-9d7a-5f2b9b1c3d4e',
    asOf: '2026-03-02T16:30:00.000Z',
    basis: 'business',
    balance: 100,
    held: 0,
    available: 100,
    status: 'open',
    revision: 3,
  };

  test('accepts a body as documented, and refuses a field the document does not name', () => {
    expect(() => responses.check('get', '/accounts/x/balance?asOf=now', res(200, balance))).not.toThrow();
    expect(() =>
      responses.check('get', '/accounts/x/balance', res(200, { ...balance, revision: null, status: 'not_opened_yet' })),
    ).not.toThrow();
    expect(() => responses.check('get', '/accounts/x/balance', res(200, { ...balance, secret: 1 }))).toThrow(
      /does not match BalanceAsOf[\s\S]*additional properties: secret/,
    );
    expect(() => responses.check('get', '/accounts/x/balance', res(200, { ...balance, basis: 'wall-clock' }))).toThrow(
      /does not match BalanceAsOf[\s\S]*\/basis/,
    );
  });

  test('refuses an undocumented status or content type; a route that does not exist may answer a 404 problem', () => {
    expect(() => responses.check('get', '/accounts/x/balance', res(418, balance))).toThrow(/status not documented/);
    expect(() => responses.check('get', '/accounts/x/balance', res(200, balance, 'text/plain'))).toThrow(/content type text\/plain/);
    const notFound = { type: '/problems/not-found', title: 'Not found', status: 404, instance: '/nowhere' };
    expect(() => responses.check('get', '/nowhere', res(404, notFound, 'application/problem+json'))).not.toThrow();
    expect(() => responses.check('get', '/nowhere', res(200, {}))).toThrow(/not in the OpenAPI document/);
  });

  test('a problem may carry extension members (RFC 9457), but needs its type, title and status; a 429 needs Retry-After', () => {
    const tooMany = {
      type: '/problems/too-many-waits',
      title: 'Too many waits in progress',
      status: 429,
      retryAfterSeconds: 7,
      maxConcurrentWaits: 4,
    };
    const problemJson = 'application/problem+json';
    expect(() => responses.check('get', '/transfers/t-1?wait=5', res(429, tooMany, problemJson, { 'retry-after': '7' }))).not.toThrow();
    expect(() => responses.check('get', '/transfers/t-1?wait=5', res(429, tooMany, problemJson))).toThrow(/header Retry-After is missing/);
    expect(() => responses.check('get', '/transfers/t-1', res(429, { status: 429 }, problemJson, { 'retry-after': '7' }))).toThrow(
      /does not match Problem[\s\S]*title/,
    );
  });
});
