/**
 * zod schemas for every JSON request and response body: the one source of truth for the server's
 * validation, its OpenAPI document, and the SDK's types. Plain zod (`.meta()` feeds OpenAPI).
 */
import { z } from 'zod'
import { architectureSchema } from './architecture'
import { aliasPattern, digestPattern, namePattern, semverPattern } from './reference'
import { stateDtypes } from './wire'

export const digestSchema = z
  .string()
  .regex(digestPattern)
  .meta({ example: `sha256:${'0'.repeat(64)}` })
export const nameSchema = z.string().regex(namePattern).meta({ example: 'l2o-mnist' })
export const semverSchema = z.string().regex(semverPattern).meta({ example: '1.0.0' })
export const aliasNameSchema = z.string().regex(aliasPattern).meta({ example: 'stable' })
export const referenceSchema = z
  .string()
  .min(1)
  .max(200)
  .meta({ description: 'name, name@1.2.0, name@alias or name@sha256:<hex>', example: 'l2o-mnist@stable' })
export const stateDtypeSchema = z.enum(stateDtypes)
/** Hyper-parameters of a hand-designed baseline, e.g. `{ learningRate: 0.01 }`. */
export const hyperparametersSchema = z.record(z.string(), z.number())
export const optimizerKindSchema = z.enum(['learned', 'baseline'])
export const versionStatusSchema = z.enum(['active', 'deprecated'])

/** A file published with a version (a plot, an analysis), served at paths.versionFile. */
export const versionFileSchema = z
  .object({
    name: z.string().meta({ example: 'loss.png' }),
    mediaType: z.string().meta({ example: 'image/png' }),
    sizeBytes: z.number().int(),
    digest: digestSchema.meta({ description: 'sha256 of the file' }),
  })
  .meta({ id: 'VersionFile' })

export const versionSchema = z
  .object({
    name: nameSchema,
    version: semverSchema,
    digest: digestSchema,
    status: versionStatusSchema,
    createdAt: z.string().meta({ description: 'ISO 8601' }),
    sizeBytes: z.number().int(),
    architecture: architectureSchema,
    card: z.unknown().meta({ description: 'card.json as published' }),
    /** Plots and analysis files published with the version (absent from older servers). */
    files: z.array(versionFileSchema).optional(),
  })
  .meta({ id: 'Version' })

export const aliasSchema = z
  .object({
    alias: aliasNameSchema,
    version: semverSchema,
    digest: digestSchema,
    updatedAt: z.string(),
    history: z.array(z.object({ version: semverSchema, digest: digestSchema, movedAt: z.string() })),
  })
  .meta({ id: 'Alias' })

export const optimizerSummarySchema = z
  .object({
    name: nameSchema,
    kind: optimizerKindSchema,
    description: z.string(),
    versions: z.array(semverSchema),
    aliases: z.record(z.string(), semverSchema),
  })
  .meta({ id: 'OptimizerSummary' })

export const optimizerListSchema = z.object({ optimizers: z.array(optimizerSummarySchema) })

export const optimizerDetailSchema = z
  .object({
    name: nameSchema,
    kind: optimizerKindSchema,
    description: z.string(),
    versions: z.array(versionSchema),
    aliases: z.array(aliasSchema),
    /** Baselines only: the defaults of their hyper-parameters. */
    hyperparameters: hyperparametersSchema.optional(),
    /** Baselines only: every hyper-parameter, its allowed range, and its default (none: required). */
    hyperparameterSpecs: z
      .record(z.string(), z.object({ range: z.string(), default: z.number().optional() }))
      .optional()
      .meta({ example: { learningRate: { range: '> 0' }, beta1: { range: 'in [0, 1)', default: 0.9 } } }),
  })
  .meta({ id: 'OptimizerDetail' })

export const resolveResponseSchema = z
  .object({
    reference: z.string(),
    name: nameSchema,
    kind: optimizerKindSchema,
    /** null for baselines. */
    version: semverSchema.nullable(),
    digest: digestSchema,
    deprecated: z.boolean(),
    architecture: architectureSchema.nullable(),
    hyperparameters: hyperparametersSchema.nullable(),
    /** Floats of state per coordinate (S). */
    stateSize: z.number().int(),
    maxCoordinatesPerRequest: z.number().int(),
    stateDtypes: z.array(stateDtypeSchema),
  })
  .meta({ id: 'Resolved' })

/** JSON stateless step (small N; binary is the fast path). `state` is the flat row-major [N, S] state. */
export const jsonStepRequestSchema = z
  .object({
    optimizer: referenceSchema,
    digest: digestSchema.optional().meta({ description: 'digest the state was made under, or a pin' }),
    hyperparameters: hyperparametersSchema.optional(),
    grads: z.array(z.number()).min(1),
    state: z.array(z.number()).optional(),
    stateDtype: stateDtypeSchema.optional().meta({ description: 'precision the state is rounded to (F32)' }),
  })
  .meta({ id: 'StepRequest' })

export const jsonStepResponseSchema = z
  .object({
    optimizer: z.string(),
    digest: digestSchema,
    numParams: z.number().int(),
    stateSize: z.number().int(),
    updates: z.array(z.number()),
    state: z.array(z.number()),
  })
  .meta({ id: 'StepResponse' })

export const createSessionRequestSchema = z
  .object({
    optimizer: referenceSchema,
    digest: digestSchema.optional(),
    hyperparameters: hyperparametersSchema.optional(),
    numParams: z.number().int().min(1).max(1_000_000_000),
    stateDtype: stateDtypeSchema.default('F32'),
  })
  .meta({ id: 'CreateSession' })

/** Shards `first` to `last` (inclusive), each having applied `step` steps (the next to send is step + 1). */
export const stepRunSchema = z.object({
  first: z.number().int(),
  last: z.number().int(),
  step: z.number().int(),
})

export const sessionSchema = z
  .object({
    id: z.string(),
    optimizer: z.string(),
    digest: digestSchema,
    numParams: z.number().int(),
    stateDtype: stateDtypeSchema,
    stateSize: z.number().int(),
    /** Coordinates per shard: shard k holds [k·shardSize, min((k + 1)·shardSize, numParams)). */
    shardSize: z.number().int(),
    shardCount: z.number().int(),
    /**
     * Every shard's step count, as runs of consecutive shards in order (one run for a new session),
     * so the answer does not grow with the number of shards.
     */
    steps: z.array(stepRunSchema),
    createdAt: z.string(),
  })
  .meta({
    id: 'Session',
    description:
      'A session and its shard layout: shard k covers [k·shardSize, min((k + 1)·shardSize, numParams)), and `steps` gives each shard its step count as runs.',
  })

export const jsonSessionStepRequestSchema = z
  .object({ grads: z.array(z.number()).min(1) })
  .meta({ id: 'SessionStepRequest' })
export const jsonSessionStepResponseSchema = z
  .object({ step: z.number().int(), digest: digestSchema, updates: z.array(z.number()) })
  .meta({ id: 'SessionStepResponse' })

export const publishVersionResponseSchema = z
  .object({
    name: nameSchema,
    version: semverSchema,
    digest: digestSchema,
    created: z.boolean(),
    /** Names of the version's files. */
    files: z.array(z.string()).optional(),
  })
  .meta({ id: 'Published' })
export const moveAliasRequestSchema = z.object({ version: semverSchema })
export const createClientRequestSchema = z.object({ name: z.string().min(1).max(100) })
export const apiKeySchema = z.object({
  id: z.string(),
  clientId: z.string(),
  prefix: z.string(),
  createdAt: z.string(),
  revokedAt: z.string().nullable(),
})
export const createClientResponseSchema = z
  .object({
    client: z.object({ id: z.string(), name: z.string(), createdAt: z.string() }),
    key: apiKeySchema,
    /** The key itself: shown once, stored only as its SHA-256. */
    secret: z.string(),
  })
  .meta({ id: 'CreatedClient' })
export const createKeyResponseSchema = z.object({ key: apiKeySchema, secret: z.string() })
/** Per-client limits (issue 11); every client has each, from its own setting or the defaults. */
export const clientQuotaFields = {
  /** Sessions the client may hold at once. */
  maxSessions: z.int().min(0).max(1_000_000_000),
  /** Coordinates (numParams) summed over the client's sessions. */
  maxSessionCoordinates: z.int().min(0).max(1_000_000_000_000),
  /** Authenticated requests per minute (a fixed window); beyond it 429 with Retry-After. */
  requestsPerMinute: z.int().min(1).max(1_000_000_000),
}
/** Server-wide: failed key checks per minute from one address, after which it gets 429. */
export const failedAuthPerMinuteSchema = z.int().min(1).max(1_000_000_000)

export const quotasSchema = z
  .object({ ...clientQuotaFields, failedAuthPerMinute: failedAuthPerMinuteSchema })
  .meta({
    id: 'Quotas',
    description: 'The default quotas of every client, and the failed-auth limit per address',
  })
export const setQuotasRequestSchema = z
  .strictObject({
    maxSessions: clientQuotaFields.maxSessions.nullable().optional(),
    maxSessionCoordinates: clientQuotaFields.maxSessionCoordinates.nullable().optional(),
    requestsPerMinute: clientQuotaFields.requestsPerMinute.nullable().optional(),
    failedAuthPerMinute: failedAuthPerMinuteSchema.nullable().optional(),
  })
  .meta({ id: 'SetQuotas', description: 'Fields to change; null returns a field to its default' })
export const clientQuotasSchema = z
  .object({
    clientId: z.string(),
    /** What applies to this client now. */
    quotas: z.object(clientQuotaFields),
    /** The fields set for this client alone (the rest follow the defaults). */
    overrides: z.object(clientQuotaFields).partial(),
    usage: z.object({ sessions: z.int(), sessionCoordinates: z.int() }),
  })
  .meta({ id: 'ClientQuotas' })
export const setClientQuotasRequestSchema = z
  .strictObject({
    maxSessions: clientQuotaFields.maxSessions.nullable().optional(),
    maxSessionCoordinates: clientQuotaFields.maxSessionCoordinates.nullable().optional(),
    requestsPerMinute: clientQuotaFields.requestsPerMinute.nullable().optional(),
  })
  .meta({
    id: 'SetClientQuotas',
    description: "Fields to change; null returns a field to the server's default",
  })

export const healthSchema = z.object({
  status: z.literal('ok'),
  runtime: z.string(),
  backend: z.string(),
  /** What learned optimizers run on: `fused-wasm`, or `tfjs-<backend>` (the reference path). */
  kernel: z.string(),
})

export type VersionInfo = z.infer<typeof versionSchema>
export type VersionFile = z.infer<typeof versionFileSchema>
export type AliasInfo = z.infer<typeof aliasSchema>
export type OptimizerSummary = z.infer<typeof optimizerSummarySchema>
export type OptimizerDetail = z.infer<typeof optimizerDetailSchema>
export type Resolved = z.infer<typeof resolveResponseSchema>
export type JsonStepRequest = z.infer<typeof jsonStepRequestSchema>
export type JsonStepResponse = z.infer<typeof jsonStepResponseSchema>
export type CreateSessionRequest = z.input<typeof createSessionRequestSchema>
export type Session = z.infer<typeof sessionSchema>
export type StepRun = z.infer<typeof stepRunSchema>
export type JsonSessionStepResponse = z.infer<typeof jsonSessionStepResponseSchema>
export type PublishVersionResponse = z.infer<typeof publishVersionResponseSchema>
export type CreateClientResponse = z.infer<typeof createClientResponseSchema>
export type Quotas = z.infer<typeof quotasSchema>
export type ClientQuotas = z.infer<typeof clientQuotasSchema>
