import { isDeepStrictEqual } from 'node:util';
import { OpenAPIRegistry, OpenApiGeneratorV3, zodToOpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import type { Response, Test } from 'supertest';
import { z } from 'zod';
import { buildOpenApiDocument } from '../../api/openapi';
import * as schemas from '../../api/schemas';

/**
 * Checks HTTP responses against the zod schemas that feed the OpenAPI document (api/schemas.ts via
 * api/openapi.ts). The document decides which schema applies to a (method, path, status, content
 * type); the body is then parsed with that zod schema:
 * - a response the document names by reference (`#/components/schemas/Transfer`) is parsed with the
 *   api/schemas.ts export registered under that name;
 * - a response documented inline (history page, balance, health...) is parsed with the zod schema
 *   below that generates exactly the same JSON schema (compared with the document, so they cannot drift).
 * An undocumented path, status or content type is an error too.
 */

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';
export type HttpClient = Record<Method, (url: string) => Test>;
type OpenApiDocument = ReturnType<typeof buildOpenApiDocument>;
interface Documented {
  pattern: RegExp;
  path: string;
  method: string;
  responses: Record<string, { content?: Record<string, { schema: unknown }> }>;
}

/** Bodies api/openapi.ts documents inline (they are not exported from api/schemas.ts), rebuilt from the same parts. */
const INLINE_SCHEMAS: { name: string; schema: z.ZodType }[] = [
  {
    name: 'history page',
    schema: z.object({ accountId: schemas.AccountId, movements: z.array(schemas.Movement), nextCursor: z.string().nullable() }),
  },
  { name: 'balance as of', schema: z.object({ accountId: schemas.AccountId, asOf: z.string(), balance: z.number().int() }) },
  { name: 'health', schema: z.object({ status: z.string() }) },
  { name: 'free-form object', schema: z.object({}).passthrough() },
];

/** Paths served without being API operations. */
const UNDOCUMENTED_PATHS = [/^\/openapi\.json$/, /^\/docs(\/.*)?$/];

/** The JSON schema the OpenAPI generator makes of a zod schema used as a response body. */
function asDocumented(schema: z.ZodType): unknown {
  const registry = new OpenAPIRegistry();
  registry.registerPath({
    method: 'get',
    path: '/probe',
    responses: { 200: { description: 'probe', content: { 'application/json': { schema } } } },
  });
  const doc = new OpenApiGeneratorV3(registry.definitions).generateDocument({ openapi: '3.0.3', info: { title: 'probe', version: '0' } });
  return (doc.paths!['/probe']!.get!.responses['200'] as { content: Record<string, { schema: unknown }> }).content['application/json']!
    .schema;
}

/** Every export of api/schemas.ts registered as an OpenAPI component, by its component name. */
function componentSchemas(): Map<string, z.ZodType> {
  const byName = new Map<string, z.ZodType>();
  for (const value of Object.values(schemas)) {
    if (!(value instanceof z.ZodType)) continue;
    const refId = (zodToOpenAPIRegistry.get(value) as { _internal?: { refId?: string } } | undefined)?._internal?.refId;
    if (refId) byName.set(refId, value);
  }
  return byName;
}

export class OpenApiResponses {
  private readonly operations: Documented[];
  private readonly components = componentSchemas();
  private readonly inline = INLINE_SCHEMAS.map((s) => ({ ...s, documented: asDocumented(s.schema) }));
  /** What was checked: `METHOD /path/{template} STATUS -> schema name`, one entry per distinct combination. */
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
  }

  /** The zod schema the document gives this response, or why there is none. */
  schemaFor(
    method: string,
    url: string,
    status: number,
    contentType: string | undefined,
  ): { name: string; schema: z.ZodType; operation: string } | { undocumented: string } | undefined {
    const path = url.split('?')[0]!;
    if (UNDOCUMENTED_PATHS.some((p) => p.test(path))) return undefined;
    const operation = this.operations.find((o) => o.method === method.toUpperCase() && o.pattern.test(path));
    if (!operation) return { undocumented: `${method} ${path} is not in the OpenAPI document` };
    const label = `${operation.method} ${operation.path} ${status}`;
    const response = operation.responses[String(status)];
    if (!response) return { undocumented: `${label}: status not documented (documented: ${Object.keys(operation.responses).join(', ')})` };
    if (!response.content) return undefined; // documented without a body schema (e.g. /metrics, text)
    const mediaType = (contentType ?? '').split(';')[0]!.trim();
    const media = response.content[mediaType];
    if (!media)
      return {
        undocumented: `${label}: content type ${mediaType || '(none)'} not documented (documented: ${Object.keys(response.content).join(', ')})`,
      };
    const ref = (media.schema as { $ref?: string }).$ref;
    if (ref) {
      const name = ref.replace('#/components/schemas/', '');
      const schema = this.components.get(name);
      if (!schema) return { undocumented: `${label}: component ${name} is not an export of api/schemas.ts` };
      return { name, schema, operation: label };
    }
    const inline = this.inline.find((s) => isDeepStrictEqual(s.documented, media.schema));
    if (!inline)
      return {
        undocumented: `${label}: inline schema ${JSON.stringify(media.schema)} has no zod twin in test/support/openapi-responses.ts`,
      };
    return { name: inline.name, schema: inline.schema, operation: label };
  }

  /** Throws when the response is not one the document describes, or its body does not parse with the documented schema. */
  check(method: string, url: string, res: Response): void {
    const found = this.schemaFor(method, url, res.status, res.headers['content-type'] as string | undefined);
    if (!found) return;
    if ('undocumented' in found) throw new Error(`response not in the OpenAPI document: ${found.undocumented}\nbody: ${res.text}`);
    const parsed = found.schema.safeParse(res.body);
    if (!parsed.success) {
      throw new Error(
        `${method.toUpperCase()} ${url} -> ${res.status}: the body does not match ${found.name} (${found.operation}):\n${z.prettifyError(parsed.error)}\nbody: ${res.text}`,
      );
    }
    this.checked.add(`${found.operation} -> ${found.name}`);
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
