/**
 * The staff API's OpenAPI 3.1 document (/api/openapi.json), generated from the operation registry
 * (src/lib/api/operations.ts): the request schemas are the zod schemas the endpoints validate with
 * (as JSON Schema 2020-12, what OpenAPI 3.1 uses), each operation names its permission
 * (`x-candor-permission`), and every refusal is an RFC 9457 problem (`application/problem+json`).
 */
import { z } from 'zod';
import { type ApiOperation, apiOperations, problemTypes, takesIdempotencyKey } from './operations.ts';

type JsonSchema = Record<string, unknown>;

/** A zod schema as an inline JSON Schema (without its own `$schema`: the document's dialect is 2020-12). */
export function jsonSchemaOf(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any' }) as JsonSchema;
  return rest;
}

const problemSchema: JsonSchema = {
  type: 'object',
  required: ['type', 'title', 'status'],
  properties: {
    type: { type: 'string', format: 'uri', description: 'where this kind of problem is explained (/api/reference#problem-…)' },
    title: { type: 'string' },
    status: { type: 'integer', minimum: 400, maximum: 599 },
    detail: { type: 'string' },
    errors: {
      type: 'array',
      description: 'each field that is wrong (422)',
      items: {
        type: 'object',
        required: ['field', 'message'],
        properties: { field: { type: 'string' }, message: { type: 'string' } },
      },
    },
    findings: {
      type: 'array',
      description: 'what the personal-data guard found, partly masked',
      items: { type: 'object', required: ['label', 'preview'], properties: { label: { type: 'string' }, preview: { type: 'string' } } },
    },
  },
};

const COMMON_PROBLEMS = [400, 401, 403, 429, 500] as const;

const problemResponse = (status: number) => ({
  description: problemTypes
    .filter((p) => p.status === status)
    .map((p) => p.title)
    .join(' / '),
  content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
});

/** The path and query parameters of an operation, from its zod schemas. */
function parametersOf(operation: ApiOperation): JsonSchema[] {
  const out: JsonSchema[] = [];
  for (const [where, schema] of [
    ['path', operation.params],
    ['query', operation.query],
  ] as const) {
    const json = jsonSchemaOf(schema, 'input');
    const properties = (json.properties ?? {}) as Record<string, JsonSchema>;
    const required = new Set((json.required ?? []) as string[]);
    for (const [name, property] of Object.entries(properties)) {
      const { description, ...rest } = property;
      out.push({
        name,
        in: where,
        required: where === 'path' || required.has(name),
        schema: rest,
        ...(description ? { description } : {}),
      });
    }
  }
  return out;
}

function operationObject(operation: ApiOperation): JsonSchema {
  // a body may be too large (413, refused before it is read)
  const statuses = [...new Set([...COMMON_PROBLEMS, ...(operation.body ? [413] : []), ...operation.problems])].sort();
  const parameters = parametersOf(operation);
  if (takesIdempotencyKey(operation)) {
    parameters.push({
      name: 'Idempotency-Key',
      in: 'header',
      required: true,
      description:
        'names this request (1–255 printable ASCII characters, e.g. a UUID): a retry with the same key gets the first answer, never a second action',
      schema: { type: 'string', minLength: 1, maxLength: 255, pattern: '^[\\x20-\\x7E]+$' },
    });
  }
  return {
    operationId: operation.id,
    summary: operation.summary,
    description: `${operation.description}\n\nRequires the permission \`${operation.permission}\`.`,
    'x-candor-permission': operation.permission,
    security: [{ bearer: [] }],
    ...(parameters.length ? { parameters } : {}),
    ...(operation.body
      ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchemaOf(operation.body, 'input') } } } }
      : {}),
    responses: {
      [String(operation.success.status)]: {
        description: operation.success.description,
        content: { 'application/json': { schema: jsonSchemaOf(operation.success.schema, 'output') } },
      },
      ...Object.fromEntries(statuses.map((s) => [String(s), problemResponse(s)])),
    },
  };
}

export function openApiDocument(publicUrl: URL, version: string): JsonSchema {
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const operation of apiOperations) {
    paths[operation.path] ??= {};
    const item = paths[operation.path];
    if (item) item[operation.method.toLowerCase()] = operationObject(operation);
  }
  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: {
      title: 'Candor staff API',
      version,
      description:
        'What a responder does in the console, for programs: incidents, maintenance, subscribers, change notices, deliveries. Authenticate with an API token made in the console (Console → API tokens) as `Authorization: Bearer cnd_…`; it holds only the permissions it was given that its creator still has. Every POST needs an `Idempotency-Key`. Errors are RFC 9457 problem details. Each token may make 600 requests a minute. No CORS: call it from servers, not browsers.',
    },
    servers: [{ url: new URL('/', publicUrl).href.replace(/\/$/, '') }],
    security: [{ bearer: [] }],
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'an API token, `cnd_…`' } },
      schemas: { Problem: problemSchema },
    },
  };
}
