/**
 * The OpenAPI 3.1 document, generated from the contract's zod schemas: every route, its auth, its
 * bodies (JSON and the binary safetensors media type) and its problem responses.
 */
import type { OpenAPIHono } from '@hono/zod-openapi'
import { z } from 'zod'
import {
  aliasSchema,
  apiKeySchema,
  clientQuotasSchema,
  createClientRequestSchema,
  createClientResponseSchema,
  createKeyResponseSchema,
  createSessionRequestSchema,
  defaultMaxCoordinatesPerRequest,
  healthSchema,
  jsonSessionStepRequestSchema,
  jsonSessionStepResponseSchema,
  jsonStepRequestSchema,
  jsonStepResponseSchema,
  maxRowBytes,
  moveAliasRequestSchema,
  optimizerDetailSchema,
  optimizerListSchema,
  paths,
  problemCodes,
  problemMediaType,
  publishVersionResponseSchema,
  quotasSchema,
  resolveResponseSchema,
  safetensorsMediaType,
  sessionSchema,
  setClientQuotasRequestSchema,
  setQuotasRequestSchema,
  versionSchema,
} from '../contract'
import type { AppEnv } from './env'
import { operationExamples, problemExample } from './openapi-examples'

export const problemSchema = z
  .object({
    type: z.string().meta({ example: '/problems/step_conflict' }),
    title: z.string(),
    status: z.number().int(),
    detail: z.string().meta({ description: 'What went wrong and what to do next' }),
    code: z.enum(Object.keys(problemCodes) as [keyof typeof problemCodes, ...(keyof typeof problemCodes)[]]),
    requestId: z.string().optional(),
  })
  .catchall(z.unknown())
  .meta({ id: 'Problem', description: 'RFC 9457 problem details, plus a stable code and the request id' })

const binaryStepRequest = {
  type: 'string',
  format: 'binary',
  description:
    'safetensors: tensor `grads` F32 [N]; optional `state` [N, S] in F32, F16 or BF16 (absent = fresh state). ' +
    '`__metadata__` (all strings): `optimizer` (reference, required), `digest` (the digest the state was made under; ' +
    'required with a state, a pin otherwise), `hyperparameters` (JSON, baselines only), `state_dtype` (dtype of the ' +
    "returned state; default the sent state's, or F32).",
} as const
const binaryStepResponse = {
  type: 'string',
  format: 'binary',
  description:
    'safetensors: `updates` F32 [N] (add to the parameters), `state` [N, S] in the requested dtype; `__metadata__`: ' +
    "`optimizer` (name@version), `digest`. Streamed with Content-Length: the state's rows come first as they are " +
    'computed, then the updates (read tensors by their data_offsets, as any safetensors reader does).',
} as const
const binarySessionRequest = {
  type: 'string',
  format: 'binary',
  description:
    "safetensors: `grads` F32 [shard length]. Optional `__metadata__`: `step` (must equal the path), `digest` (must equal the session's).",
} as const
const binarySessionResponse = {
  type: 'string',
  format: 'binary',
  description: 'safetensors: `updates` F32 [shard length]; `__metadata__`: `digest`, `step`.',
} as const

const problems = (...statuses: number[]) =>
  Object.fromEntries(
    statuses.map((status) => [
      String(status),
      {
        description: Object.entries(problemCodes)
          .filter(([, s]) => s === status)
          .map(([code]) => code)
          .join(', '),
        content: { [problemMediaType]: { schema: problemSchema, example: problemExample(status) } },
      },
    ]),
  )

const json = <T extends z.ZodType>(schema: T) => ({ content: { 'application/json': { schema } } })
const stepHeaders = {
  'L2O-Digest': {
    description: 'The digest the answer was computed under',
    schema: { type: 'string' as const },
  },
  Deprecation: {
    description: 'RFC 9745: `@<unix seconds>` when the version that answered is deprecated',
    schema: { type: 'string' as const },
  },
}
const client = [{ clientKey: [] }]
const admin = [{ adminKey: [] }]
const example = (value: string) => z.string().meta({ example: value })
const nameParam = z.object({ name: example('l2o-mnist') })
const sessionParams = z.object({ id: z.string().meta({ example: 'ses_0123abcd' }) })

/** Registers every route's description on the app's OpenAPI registry. */
// biome-ignore lint/suspicious/noExplicitAny: independent of the runtime's bindings.
export function registerOpenApi(app: OpenAPIHono<AppEnv<any>>): void {
  const r = app.openAPIRegistry
  r.registerComponent('securitySchemes', 'clientKey', {
    type: 'http',
    scheme: 'bearer',
    description: 'A client key: `Authorization: Bearer <key>`. `npm start` prints one on first start.',
  })
  r.registerComponent('securitySchemes', 'adminKey', {
    type: 'http',
    scheme: 'bearer',
    description: 'An admin key: `Authorization: Bearer <key>`.',
  })
  r.register('Problem', problemSchema)

  r.registerPath({
    method: 'get',
    path: paths.health,
    tags: ['meta'],
    summary: 'Liveness, runtime and tfjs backend',
    responses: { 200: { description: 'The server is up', ...json(healthSchema) } },
  })
  r.registerPath({
    method: 'get',
    path: paths.openapi,
    tags: ['meta'],
    summary: 'This document',
    responses: {
      200: { description: 'OpenAPI 3.1', content: { 'application/json': { schema: { type: 'object' } } } },
    },
  })
  r.registerPath({
    method: 'get',
    path: paths.docs,
    tags: ['meta'],
    summary: 'This document as a readable page',
    responses: { 200: { description: 'HTML', content: { 'text/html': { schema: { type: 'string' } } } } },
  })

  r.registerPath({
    method: 'get',
    path: paths.optimizers,
    tags: ['registry'],
    summary: 'List optimizers: learned ones with versions and aliases, and the baselines',
    responses: { 200: { description: 'Every optimizer', ...json(optimizerListSchema) } },
  })
  r.registerPath({
    method: 'get',
    path: paths.optimizer,
    tags: ['registry'],
    summary: 'Show one optimizer: versions (with cards) and aliases with their history',
    request: { params: nameParam },
    responses: { 200: { description: 'The optimizer', ...json(optimizerDetailSchema) }, ...problems(404) },
  })
  r.registerPath({
    method: 'get',
    path: paths.versionFile,
    tags: ['registry'],
    summary: 'A file published with a version: a plot or an analysis (immutable, like the version)',
    request: {
      params: z.object({
        name: z.string().meta({ example: 'l2o-mnist' }),
        version: z.string().meta({ example: '1.1.0' }),
        file: z.string().meta({ example: 'loss.png' }),
      }),
    },
    responses: {
      200: {
        description: "The file's bytes, with its media type; ETag is its digest",
        content: {
          'image/png': { schema: { type: 'string', format: 'binary' } },
          'application/json': { schema: { type: 'object' } },
        },
      },
      304: { description: 'Not modified (If-None-Match matched the ETag)' },
      ...problems(404),
    },
  })
  r.registerPath({
    method: 'get',
    path: paths.resolve,
    tags: ['registry'],
    summary: 'Resolve a reference to a version and digest',
    description:
      'References: `name` (= name@stable), `name@1.2.0`, `name@<alias>`, `name@sha256:<hex>`. Alias resolution ' +
      'skips deprecated versions. Resolve once at the start of a run and send the digest afterwards.',
    request: {
      query: z.object({
        ref: z.string().meta({ example: 'l2o-mnist@stable' }),
        hyperparameters: z
          .string()
          .optional()
          .meta({ description: 'JSON, baselines only', example: '{"learningRate":0.001}' }),
      }),
    },
    responses: {
      200: { description: 'The resolved optimizer', headers: stepHeaders, ...json(resolveResponseSchema) },
      ...problems(400, 404, 409),
    },
  })

  r.registerPath({
    method: 'post',
    path: paths.step,
    tags: ['steps'],
    summary: 'Stateless step: gradients (and state) in, updates and new state out',
    description:
      `Binary is the fast path; JSON (flat state) is for small N: bodies up to 8 MiB. At most ` +
      `${defaultMaxCoordinatesPerRequest} coordinates per request (see maxCoordinatesPerRequest in /v1/resolve). ` +
      'A request bound to a digest (the state it carries was made under it, or a pin) that names `name` or ' +
      '`name@alias` is served under that digest when it is a version of the same name, with a Deprecation header ' +
      "when that version is deprecated: the state's pin wins, so a run survives an alias move. A digest of another " +
      'name, an unknown one, or one that contradicts `name@version` is 409 digest_mismatch. JSON answers write ' +
      'each float32 as the shortest decimal that reads back as the same float32 (at most 9 significant digits). ' +
      'A step whose result is not finite is refused with 422 non_finite_result.',
    security: client,
    request: {
      body: {
        required: true,
        content: {
          [safetensorsMediaType]: { schema: binaryStepRequest },
          'application/json': { schema: jsonStepRequestSchema },
        },
      },
    },
    responses: {
      200: {
        description: 'Updates and the new state',
        headers: stepHeaders,
        content: {
          [safetensorsMediaType]: { schema: binaryStepResponse },
          'application/json': { schema: jsonStepResponseSchema },
        },
      },
      ...problems(400, 401, 404, 406, 408, 409, 413, 415, 422, 429, 503),
    },
  })

  r.registerPath({
    method: 'post',
    path: paths.sessions,
    tags: ['sessions'],
    summary: 'Create a session: the server keeps the state, sharded',
    description: `Pins the digest, the parameter count and the state dtype. Each shard holds at most shardSize coordinates, so that its state and last updates fit one ${maxRowBytes}-byte row. Creating a session writes no shard: a shard starts at step 0. Send an Idempotency-Key to make a retry safe: the same key from the same client answers 200 with the session it created (409 idempotency_conflict if the request differs).`,
    security: client,
    request: {
      headers: z.object({
        'Idempotency-Key': z
          .string()
          .max(200)
          .optional()
          .meta({ example: '3b1f8c52-6a4e-4f0e-9d2a-7c5e1b9a0f11' }),
      }),
      body: { required: true, ...json(createSessionRequestSchema) },
    },
    responses: {
      201: {
        description:
          'The session and its shard layout, compact: shardSize, shardCount and the steps as runs of shards (the answer does not grow with the number of shards)',
        ...json(sessionSchema),
      },
      200: { description: 'A retry: the session this Idempotency-Key created', ...json(sessionSchema) },
      ...problems(400, 401, 403, 404, 406, 409, 415, 429),
    },
  })
  r.registerPath({
    method: 'get',
    path: paths.session,
    tags: ['sessions'],
    summary: 'Read a session: its digest and the step of every shard',
    security: client,
    request: { params: sessionParams },
    responses: { 200: { description: 'The session', ...json(sessionSchema) }, ...problems(401, 404) },
  })
  r.registerPath({
    method: 'delete',
    path: paths.session,
    tags: ['sessions'],
    summary: 'Delete a session and its state',
    security: client,
    request: { params: sessionParams },
    responses: { 204: { description: 'Deleted' }, ...problems(401, 404) },
  })
  r.registerPath({
    method: 'post',
    path: paths.sessionStep,
    tags: ['sessions'],
    summary: 'Step one shard: gradients in, updates out',
    description:
      'Step t of a shard is applied once. t = current + 1 applies it; t = current with the same gradients returns ' +
      'the stored updates byte for byte (a safe retry), with other gradients 409 replay_mismatch (a client reusing a ' +
      'step number); anything else is 409 step_conflict, whose detail and `expectedStep` say what to send. Shard and ' +
      'step are plain decimals (no leading zeros, no escapes).',
    security: client,
    request: {
      params: z.object({
        id: z.string().meta({ example: 'ses_0123abcd' }),
        shard: z.number().int().min(0).meta({ example: 0 }),
        step: z.number().int().min(1).meta({ example: 1 }),
      }),
      body: {
        required: true,
        content: {
          [safetensorsMediaType]: { schema: binarySessionRequest },
          'application/json': { schema: jsonSessionStepRequestSchema },
        },
      },
    },
    responses: {
      200: {
        description: 'The updates of step t',
        headers: stepHeaders,
        content: {
          [safetensorsMediaType]: { schema: binarySessionResponse },
          'application/json': { schema: jsonSessionStepResponseSchema },
        },
      },
      ...problems(400, 401, 404, 406, 408, 409, 413, 415, 422, 429, 503),
    },
  })

  r.registerPath({
    method: 'post',
    path: paths.adminVersions,
    tags: ['admin'],
    summary: 'Publish a version from its weight file',
    description:
      'The server validates the file and computes its digest. The same bytes again create nothing (200, created: ' +
      'false); the same name@version with other bytes is 409 version_conflict. Moves `latest`; sets `stable` if absent.',
    security: admin,
    request: {
      params: nameParam,
      body: {
        required: true,
        content: {
          'multipart/form-data': {
            schema: {
              type: 'object',
              required: ['version', 'weights'],
              properties: {
                version: { type: 'string', example: '1.0.0' },
                weights: { type: 'string', format: 'binary', description: 'model.safetensors' },
                card: { type: 'string', format: 'binary', description: 'card.json (optional)' },
                files: {
                  type: 'array',
                  items: { type: 'string', format: 'binary' },
                  description:
                    'Plots and analyses kept with the version (optional; png, jpg, webp, json, csv, txt, md; ' +
                    "at most 16 files, 4 MiB each, 8 MiB in all). Their names are the uploads' file names.",
                },
              },
            },
          },
        },
      },
    },
    responses: {
      200: { description: 'Already published', ...json(publishVersionResponseSchema) },
      201: { description: 'Published', ...json(publishVersionResponseSchema) },
      ...problems(400, 401, 403, 409, 413, 415),
    },
  })
  r.registerPath({
    method: 'post',
    path: paths.adminDeprecate,
    tags: ['admin'],
    summary: 'Deprecate a version: pinned clients keep it (with a Deprecation header); aliases skip it',
    security: admin,
    request: { params: z.object({ name: example('l2o-mnist'), version: example('1.0.0') }) },
    responses: { 200: { description: 'The version', ...json(versionSchema) }, ...problems(401, 403, 404) },
  })
  r.registerPath({
    method: 'put',
    path: paths.adminAlias,
    tags: ['admin'],
    summary: 'Point an alias at a version (the move is kept in its history)',
    security: admin,
    request: {
      params: z.object({ name: example('l2o-mnist'), alias: example('stable') }),
      body: { required: true, ...json(moveAliasRequestSchema) },
    },
    responses: {
      200: { description: 'The alias', ...json(aliasSchema) },
      ...problems(400, 401, 403, 404, 415),
    },
  })
  r.registerPath({
    method: 'post',
    path: paths.adminClients,
    tags: ['admin'],
    summary: 'Create a client and its first key (the secret is shown once)',
    security: admin,
    request: { body: { required: true, ...json(createClientRequestSchema) } },
    responses: {
      201: { description: 'The client', ...json(createClientResponseSchema) },
      ...problems(400, 401, 403, 415),
    },
  })
  r.registerPath({
    method: 'post',
    path: paths.adminClientKeys,
    tags: ['admin'],
    summary: 'Create another key for a client (the secret is shown once)',
    security: admin,
    request: { params: z.object({ id: example('cli_0123abcd') }) },
    responses: {
      201: { description: 'The key', ...json(createKeyResponseSchema) },
      ...problems(401, 403, 404),
    },
  })
  r.registerPath({
    method: 'get',
    path: paths.adminQuotas,
    tags: ['admin'],
    summary: 'The default quotas of every client, and the failed-auth limit per address',
    security: admin,
    responses: { 200: { description: 'The defaults', ...json(quotasSchema) }, ...problems(401, 403) },
  })
  r.registerPath({
    method: 'put',
    path: paths.adminQuotas,
    tags: ['admin'],
    summary: 'Set default quotas (null returns a field to its built-in default)',
    security: admin,
    request: { body: { required: true, ...json(setQuotasRequestSchema) } },
    responses: {
      200: { description: 'The defaults', ...json(quotasSchema) },
      ...problems(400, 401, 403, 415),
    },
  })
  r.registerPath({
    method: 'get',
    path: paths.adminClientQuotas,
    tags: ['admin'],
    summary: "A client's quotas, which of them it has of its own, and what it holds",
    security: admin,
    request: { params: z.object({ id: example('cli_0123abcd') }) },
    responses: {
      200: { description: 'The quotas', ...json(clientQuotasSchema) },
      ...problems(401, 403, 404),
    },
  })
  r.registerPath({
    method: 'put',
    path: paths.adminClientQuotas,
    tags: ['admin'],
    summary: "Set a client's own quotas (null returns a field to the default)",
    security: admin,
    request: {
      params: z.object({ id: example('cli_0123abcd') }),
      body: { required: true, ...json(setClientQuotasRequestSchema) },
    },
    responses: {
      200: { description: 'The quotas', ...json(clientQuotasSchema) },
      ...problems(400, 401, 403, 404, 415),
    },
  })
  r.registerPath({
    method: 'delete',
    path: paths.adminKey,
    tags: ['admin'],
    summary: 'Revoke a key',
    description:
      'Revoking a revoked key answers it again. The last active admin key cannot be revoked (409 last_admin_key).',
    security: admin,
    request: { params: z.object({ id: example('key_0123abcd') }) },
    responses: {
      200: { description: 'The revoked key', ...json(apiKeySchema) },
      ...problems(401, 403, 404, 409),
    },
  })
}

/** The OpenAPI document of an app whose routes were described by registerOpenApi, with its examples. */
// biome-ignore lint/suspicious/noExplicitAny: independent of the runtime's bindings.
export function openApiDocument(app: OpenAPIHono<AppEnv<any>>): Record<string, unknown> {
  const document = app.getOpenAPI31Document({
    openapi: '3.1.0',
    info: {
      title: 'l2o: learned optimizers as a service',
      version: '1.0.0',
      description:
        'Runs frozen learned optimizers (the coordinatewise LSTM of Andrychowicz et al. 2016) and hand-designed ' +
        'baselines on your gradients. Errors are RFC 9457 application/problem+json. A request whose Accept admits ' +
        "none of its route's media types gets 406 not_acceptable before anything runs.",
    },
    tags: [
      { name: 'meta' },
      { name: 'registry', description: 'Public: optimizers, versions, aliases' },
      { name: 'steps', description: 'Client key: stateless steps' },
      { name: 'sessions', description: 'Client key: server-held state' },
      { name: 'admin', description: 'Admin key' },
    ],
  }) as unknown as OpenApiDocument
  addExamples(document)
  return document as unknown as Record<string, unknown>
}

interface MediaType {
  schema?: unknown
  example?: unknown
  examples?: Record<string, { value: unknown }>
}
interface Operation {
  parameters?: { name: string; in: string; example?: unknown; schema?: { example?: unknown } }[]
  requestBody?: { content: Record<string, MediaType> }
  responses: Record<string, { content?: Record<string, MediaType> }>
  security?: Record<string, string[]>[]
  'x-codeSamples'?: { lang: string; label: string; source: string }[]
}
interface OpenApiDocument {
  paths: Record<string, Record<string, Operation>>
}

// Puts each operation's examples (openapi-examples.ts) on its JSON bodies and its first success
// answer, and a curl command made from them as x-codeSamples.
function addExamples(document: OpenApiDocument): void {
  const examples = operationExamples as Record<
    string,
    { request?: unknown; otherRequests?: Record<string, unknown>; response: unknown }
  >
  for (const [path, item] of Object.entries(document.paths)) {
    for (const [method, operation] of Object.entries(item)) {
      const found = examples[`${method.toUpperCase()} ${path}`]
      if (found === undefined) continue
      const json = operation.requestBody?.content['application/json']
      if (json !== undefined && found.request !== undefined) {
        json.example = found.request
        if (found.otherRequests !== undefined) {
          json.examples = Object.fromEntries(
            [['learned', found.request], ...Object.entries(found.otherRequests)].map(([k, v]) => [
              k,
              { value: v },
            ]),
          )
          delete json.example
        }
      }
      const form = operation.requestBody?.content['multipart/form-data']
      if (form !== undefined && found.request !== undefined) form.example = found.request
      const success = Object.keys(operation.responses)
        .filter((status) => status.startsWith('2') && operation.responses[status].content !== undefined)
        .sort()[0]
      const answer = success === undefined ? undefined : operation.responses[success].content
      const media = answer?.['application/json'] ?? (answer && Object.values(answer)[0])
      if (media !== undefined) media.example = found.response
      operation['x-codeSamples'] = [
        { lang: 'shell', label: 'curl', source: curlOf(method, path, operation, found.request) },
      ]
    }
  }
}

function curlOf(method: string, path: string, operation: Operation, request: unknown): string {
  let url = path
  const query: string[] = []
  for (const p of operation.parameters ?? []) {
    const value = String(p.example ?? p.schema?.example ?? `<${p.name}>`)
    if (p.in === 'path') url = url.replace(`{${p.name}}`, encodeURIComponent(value))
    if (p.in === 'query') query.push(`${p.name}=${encodeURIComponent(value)}`)
  }
  const parts = [
    `curl -X ${method.toUpperCase()} "$L2O${url}${query.length > 0 ? `?${query.join('&')}` : ''}"`,
  ]
  const security = operation.security?.[0]
  if (security?.adminKey !== undefined) parts.push('-H "Authorization: Bearer $ADMIN"')
  if (security?.clientKey !== undefined) parts.push('-H "Authorization: Bearer $KEY"')
  const content = operation.requestBody?.content ?? {}
  if (content['application/json'] !== undefined && request !== undefined) {
    parts.push("-H 'Content-Type: application/json'", `-d '${JSON.stringify(request)}'`)
  } else if (content['multipart/form-data'] !== undefined) {
    parts.push('-F version=1.0.0 -F weights=@model.safetensors -F card=@card.json -F files=@loss.png')
  }
  return parts.join(' \\\n  ')
}
