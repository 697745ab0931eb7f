import Ajv, { type ValidateFunction } from 'ajv';
import type { Response, Test } from 'supertest';
import { buildOpenApiDocument } from '../../api/openapi';

/**
 * Checks HTTP responses against the OpenAPI document itself (api/openapi.ts, built from the zod schemas), with ajv:
 * the document decides which schema applies to a (method, path, status, content type), and the body is validated
 * against exactly that JSON schema, `$ref`s into `#/components/schemas` included.
 *
 * Stricter than the document reads: an object schema that lists its properties and says nothing of others is checked
 * as closed (`additionalProperties: false`), so a field the API sends and the document does not name fails too (a
 * schema that allows more says so: `additionalProperties`, as Problem's extension members and `data` do).
 * An undocumented path, status or content type is an error.
 *
 * ApiStack (test/support/api-stack.ts) runs every request of the API test suites through check(): the code and the
 * document cannot drift without a test failing.
 */

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';
export type HttpClient = Record<Method, (url: string) => Test>;
type OpenApiDocument = ReturnType<typeof buildOpenApiDocument>;
interface Documented {
  pattern: RegExp;
  path: string;
  method: string;
  responses: Record<string, { content?: Record<string, { schema: unknown }>; headers?: Record<string, { required?: boolean }> }>;
}

/** Paths served without being API operations (the document itself, its rendering, the console's static files). */
const UNDOCUMENTED_PATHS = [/^\/openapi\.json$/, /^\/docs(\/.*)?$/, /^\/console\/.+/];

const DOCUMENT_ID = 'openapi.json';

/** JSON pointer escaping (RFC 6901), for a $ref into the document. */
const pointer = (...parts: string[]) => parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');

/** A deep copy in which every object schema with `properties` and no `additionalProperties` is closed (and any-value schemas are plain `{}`). */
function closed(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(closed);
  if (!value || typeof value !== 'object') return value;
  const copy: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) copy[key] = key === 'example' ? inner : closed(inner);
  // `{ nullable: true }` alone (zod's unknown): any value; ajv wants `nullable` beside a `type`.
  if (copy.nullable === true && !('type' in copy)) delete copy.nullable;
  if (copy.type === 'object' && copy.properties && typeof copy.properties === 'object' && !('additionalProperties' in copy)) {
    copy.additionalProperties = false;
  }
  return copy;
}

export class OpenApiResponses {
  private readonly operations: Documented[];
  private readonly ajv: Ajv;
  private readonly validators = new Map<string, ValidateFunction>();
  /** What was checked: `METHOD /path/{template} STATUS media type`, one entry per distinct combination. */
  readonly checked = new Set<string>();

  constructor(readonly document: OpenApiDocument = buildOpenApiDocument()) {
    this.operations = Object.entries(document.paths ?? {}).flatMap(([path, item]) =>
      Object.entries(item as Record<string, { responses?: Documented['responses'] }>)
        .filter(([, op]) => op && typeof op === 'object' && 'responses' in op)
        .map(([method, op]) => ({
          path,
          method: method.toUpperCase(),
          responses: op.responses ?? {},
          pattern: new RegExp(`^${path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\\?\{[^}]+\\?\}/g, '[^/]+')}$`),
        })),
    );
    // OpenAPI 3.0 schema objects: `nullable` is ajv's own OpenAPI keyword; `example` and the rest are annotations.
    this.ajv = new Ajv({ allErrors: true, strict: false, validateFormats: false });
    this.ajv.addSchema(closed(document) as object, DOCUMENT_ID);
  }

  /** The documented response for this one, or why there is none (undefined: nothing to check). */
  private documented(
    method: string,
    url: string,
    status: number,
    headers: Record<string, unknown>,
  ): { label: string; name: string; validate?: ValidateFunction } | { undocumented: string } | undefined {
    const path = url.split('?')[0]!;
    const operation = this.operations.find((o) => o.method === method.toUpperCase() && o.pattern.test(path));
    if (!operation && UNDOCUMENTED_PATHS.some((p) => p.test(path))) return undefined;
    if (!operation) {
      // A path the API does not serve answers 404 with a problem (api/app.ts): that is checked as a Problem.
      if (status === 404 && String(headers['content-type'] ?? '').startsWith('application/problem+json'))
        return { label: `${method.toUpperCase()} (no route) 404`, name: 'Problem', validate: this.component('Problem') };
      return { undocumented: `${method.toUpperCase()} ${path} is not in the OpenAPI document (answered ${status})` };
    }
    const label = `${operation.method} ${operation.path} ${status}`;
    const response = operation.responses[String(status)];
    if (!response) return { undocumented: `${label}: status not documented (documented: ${Object.keys(operation.responses).join(', ')})` };
    const missing = Object.entries(response.headers ?? {}).find(([name, header]) => header.required && !(name.toLowerCase() in headers));
    if (missing) return { undocumented: `${label}: the documented header ${missing[0]} is missing` };
    if (!response.content) return { label, name: 'no body' }; // documented without a body schema (e.g. 204, /metrics' text)
    const mediaType = String(headers['content-type'] ?? '')
      .split(';')[0]!
      .trim();
    const media = response.content[mediaType];
    if (!media)
      return {
        undocumented: `${label}: content type ${mediaType || '(none)'} not documented (documented: ${Object.keys(response.content).join(', ')})`,
      };
    const ref = `${DOCUMENT_ID}#/${pointer('paths', operation.path, operation.method.toLowerCase(), 'responses', String(status), 'content', mediaType, 'schema')}`;
    const validate = this.compiled(ref);
    const component = (media.schema as { $ref?: string }).$ref;
    return { label, name: component ? component.replace('#/components/schemas/', '') : `the inline schema (${mediaType})`, validate };
  }

  private component(name: string): ValidateFunction {
    return this.compiled(`${DOCUMENT_ID}#/${pointer('components', 'schemas', name)}`);
  }

  private compiled(ref: string): ValidateFunction {
    let validate = this.validators.get(ref);
    if (!validate) {
      validate = this.ajv.compile({ $ref: ref });
      this.validators.set(ref, validate);
    }
    return validate;
  }

  /** Throws when the response is not one the document describes, or its body does not match the documented schema. */
  check(method: string, url: string, res: Response): void {
    const found = this.documented(method, url, res.status, (res.headers ?? {}) as Record<string, unknown>);
    if (!found) return;
    if ('undocumented' in found) throw new Error(`response not in the OpenAPI document: ${found.undocumented}\nbody: ${res.text}`);
    // A JSON body is checked as parsed; any other (the console's HTML) as its text.
    const mediaType = String(res.headers['content-type'] ?? '')
      .split(';')[0]!
      .trim();
    const body: unknown = mediaType.endsWith('json') ? res.body : res.text;
    if (found.validate && !found.validate(body)) {
      const errors = (found.validate.errors ?? [])
        .map((e) => {
          const extra = 'additionalProperty' in e.params ? `: ${String(e.params.additionalProperty)}` : '';
          return `  ${e.instancePath || '(body)'} ${e.message}${extra}`;
        })
        .join('\n');
      throw new Error(
        `${method.toUpperCase()} ${url} -> ${res.status}: the body does not match ${found.name} (${found.label}):\n${errors}\nbody: ${res.text?.slice(0, 2000)}`,
      );
    }
    this.checked.add(`${found.label} -> ${found.name}`);
  }

  /**
   * Wraps a supertest client (e.g. ApiStack.http(), with whatever credentials it sends): every
   * response is checked, and a mismatch fails the request with the reason.
   */
  http(client: HttpClient): HttpClient {
    const checked = (method: Method) => (url: string) => client[method](url).expect((res: Response) => this.check(method, url, res));
    return { get: checked('get'), post: checked('post'), put: checked('put'), patch: checked('patch'), delete: checked('delete') };
  }
}

let shared: OpenApiResponses | undefined;

/** One checker per test process (the document is built once; each schema is compiled on first use). */
export function sharedOpenApiResponses(): OpenApiResponses {
  shared ??= new OpenApiResponses();
  return shared;
}

const CHECKED_METHODS = new Set<string>(['get', 'post', 'put', 'patch', 'delete']);

/**
 * The same supertest client (an agent, or request(app)), whose every request checks its response against the
 * document: an undocumented status, path or content type, or a body that does not match, fails the request (and so
 * the test that awaits it) with the reason.
 */
export function checkedClient<T extends object>(client: T, responses: OpenApiResponses = sharedOpenApiResponses()): T {
  return new Proxy(client, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof property !== 'string' || !CHECKED_METHODS.has(property) || typeof value !== 'function') return value;
      return (url: string, ...rest: unknown[]) =>
        (value as (url: string, ...rest: unknown[]) => Test)
          .call(receiver, url, ...rest)
          .expect((res: Response) => responses.check(property, url, res));
    },
  });
}
