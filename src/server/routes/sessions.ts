/**
 * Sessions (DESIGN §6): server-held state, sharded so one shard row (state + last updates) fits
 * maxRowBytes. Shard rows are created by their first step, so creating any session is O(1) writes.
 * Step t of a shard is applied once: t = current + 1 applies, t = current replays the stored
 * updates byte for byte, anything else is 409 step_conflict.
 */
import type { OpenAPIHono } from '@hono/zod-openapi'
import { and, eq } from 'drizzle-orm'
import type { Context } from 'hono'
import {
  createSessionRequestSchema,
  headerNames,
  type JsonSessionStepResponse,
  jsonSessionStepRequestSchema,
  maxRowBytes,
  metadataKeys,
  routes,
  type Session,
  type StateDtype,
  safetensorsMediaType,
  tensorNames,
} from '../../contract'
import { isBaseline } from '../../core'
import { type Db, isForeignKeyViolation } from '../../db/db'
import { sessionShards, sessions } from '../../db/schema'
import { bytesOf, encode, type FloatData, ITEMSIZE, type Tensor } from '../../safetensors'
import { requireKey } from '../auth'
import { bodyKindOf, decodeSafetensors, jsonNumbers, parseJson, parseJsonWithArrays, readBody } from '../body'
import { assertFinite, maxJsonBodyBytes, newStepOutput, runStep, stepHeaders } from '../compute'
import type { AppEnv } from '../env'
import { ApiError } from '../errors'
import { randomId } from '../ids'
import { baselineConfig } from '../registry/baselines'
import { resolveReference, type Target } from '../registry/resolve'
import { checkDigest } from './step'

/** Bytes of a shard row kept free for everything but its two blobs. */
const shardRowMarginBytes = 4096

/**
 * Coordinates per shard: at most the per-request limit, and few enough that the shard's state and
 * its last updates fit one row: length·(S·bytes(dtype) + 4) ≤ maxRowBytes − margin.
 */
export function shardSizeFor(stateSize: number, dtype: StateDtype, maxCoordinatesPerRequest: number): number {
  const perCoordinate = stateSize * ITEMSIZE[dtype] + 4
  return Math.max(
    1,
    Math.min(maxCoordinatesPerRequest, Math.floor((maxRowBytes - shardRowMarginBytes) / perCoordinate)),
  )
}

type SessionRow = typeof sessions.$inferSelect

// biome-ignore lint/suspicious/noExplicitAny: routes are independent of the runtime's bindings.
export function registerSessions(app: OpenAPIHono<AppEnv<any>>): void {
  app.post(routes.sessions, requireKey(), async (c) => {
    const deps = c.get('deps')
    bodyKindOf(c.req.raw, ['json'])
    const idempotencyKey = idempotencyKeyOf(c.req.header(headerNames.idempotencyKey))
    const request = parseJson(await readBody(c, 64 * 1024), createSessionRequestSchema)
    const target = await resolveReference(deps.db, request.optimizer, request.hyperparameters)
    checkDigest(target, request.digest)
    const row: SessionRow = {
      id: randomId(deps.randomBytes, 'ses', 16),
      clientId: c.get('caller').clientId,
      optimizer: target.label,
      digest: target.digest,
      hyperparameters: target.kind === 'baseline' ? JSON.stringify(target.hyperparameters) : null,
      numParams: request.numParams,
      stateDtype: request.stateDtype,
      stateSize: target.stateSize,
      shardSize: shardSizeFor(target.stateSize, request.stateDtype, deps.maxCoordinatesPerRequest),
      createdAt: deps.now().toISOString(),
      idempotencyKey,
    }
    const earlier = await sessionCreatedWith(c, row)
    if (earlier !== undefined) return earlier
    try {
      await deps.db.insert(sessions).values(row)
    } catch (error) {
      // A concurrent retry with the same key won the unique index: answer with its session.
      const raced = await sessionCreatedWith(c, row)
      if (raced !== undefined) return raced
      throw error
    }
    return c.json(describe(row, new Map()), 201, { Location: routes.session(row.id) })
  })

  app.get('/v1/sessions/:id', requireKey(), async (c) => {
    const session = await ownSession(c, c.req.param('id') ?? '')
    return c.json(describe(session, await shardSteps(c.get('deps').db, session.id)))
  })

  app.delete('/v1/sessions/:id', requireKey(), async (c) => {
    const session = await ownSession(c, c.req.param('id') ?? '')
    const { db } = c.get('deps')
    // A first step of a shard may insert its row between the two deletes (the step route runs
    // outside any transaction, and D1 has none across statements): delete the shards again then.
    for (let attempt = 1; ; attempt++) {
      await db.delete(sessionShards).where(eq(sessionShards.sessionId, session.id))
      try {
        await db.delete(sessions).where(eq(sessions.id, session.id))
        return c.body(null, 204)
      } catch (error) {
        if (!isForeignKeyViolation(error) || attempt === 3) throw error
      }
    }
  })

  app.post('/v1/sessions/:id/shards/:shard/steps/:step', requireKey(), sessionStep)
}

async function sessionStep(c: Context<AppEnv>): Promise<Response> {
  const deps = c.get('deps')
  const session = await ownSession(c, c.req.param('id') ?? '')
  const shards = shardCount(session)
  const shard = parseIndex(c.req.param('shard') ?? '', 'shard')
  if (shard >= shards) {
    throw new ApiError(
      'invalid_request',
      `session ${session.id} has shards 0 to ${shards - 1}; shard ${shard} does not exist`,
    )
  }
  const t = parseIndex(c.req.param('step') ?? '', 'step')
  if (t < 1) throw new ApiError('invalid_request', 'steps count from 1: send step 1 first')
  const offset = shard * session.shardSize
  const length = Math.min(session.shardSize, session.numParams - offset)

  const kind = bodyKindOf(c.req.raw, ['binary', 'json'])
  const bytes = await readBody(c, kind === 'binary' ? 4 * length + 64 * 1024 : maxJsonBodyBytes)
  const grads = kind === 'binary' ? binaryGrads(bytes, session, t) : jsonGrads(bytes)
  if (grads.length !== length) {
    throw new ApiError(
      'shape_mismatch',
      `shard ${shard} holds coordinates ${offset} to ${offset + length - 1}: send ${length} gradients, not ${grads.length}`,
    )
  }
  assertFinite(grads)
  const target = await sessionTarget(c, session)

  return c.get('lane').run(async () => {
    const { db } = deps
    const where = and(eq(sessionShards.sessionId, session.id), eq(sessionShards.shard, shard))
    const row = await db
      .select({ step: sessionShards.step, state: sessionShards.state, updates: sessionShards.updates })
      .from(sessionShards)
      .where(where)
      .get()
    const current = row?.step ?? 0
    const reply = (updates: Float32Array) => stepReply(c, kind, target, t, updates)
    if (t === current && row !== undefined) return reply(f32View(row.updates))
    if (t !== current + 1) throw stepConflict(shard, current, t)

    const state =
      row === undefined ? undefined : stateFrom(row.state, session.stateDtype, length * session.stateSize)
    const out = newStepOutput(length, session.stateSize, session.stateDtype)
    await runStep(c, target, grads, state, out)
    const values = {
      step: t,
      state: bytesOf(out.state.data),
      updates: bytesOf(out.updates),
      updatedAt: deps.now().toISOString(),
    }
    // Conditional on the old step, so two concurrent requests for t cannot both apply it.
    const written =
      row === undefined
        ? await db
            .insert(sessionShards)
            .values({ sessionId: session.id, shard, ...values })
            .onConflictDoNothing()
            .returning({ step: sessionShards.step })
            .catch((error: unknown) => {
              // The session was deleted since ownSession read it: its shard cannot be stored.
              if (isForeignKeyViolation(error)) throw sessionNotFound(session.id)
              throw error
            })
        : await db
            .update(sessionShards)
            .set(values)
            .where(and(where, eq(sessionShards.step, current)))
            .returning({ step: sessionShards.step })
    if (written.length === 1) return reply(out.updates)

    // Another request applied a step in between: answer as a retry would be answered now.
    const now = await db
      .select({ step: sessionShards.step, updates: sessionShards.updates })
      .from(sessionShards)
      .where(where)
      .get()
    if (now !== undefined && now.step === t) return reply(f32View(now.updates))
    if (now === undefined) {
      // Its row is gone: the session was deleted since ownSession read it.
      const alive = await db
        .select({ id: sessions.id })
        .from(sessions)
        .where(eq(sessions.id, session.id))
        .get()
      if (alive === undefined) throw sessionNotFound(session.id)
    }
    throw stepConflict(shard, now?.step ?? 0, t)
  })
}

function stepReply(
  c: Context<AppEnv>,
  kind: 'binary' | 'json',
  target: Target,
  t: number,
  updates: Float32Array,
): Response {
  const headers = stepHeaders(target, target.kind === 'learned' ? target.deprecatedAt : null)
  if (kind === 'json') {
    // JsonSessionStepResponse, written without an array of boxed numbers.
    const head: Omit<JsonSessionStepResponse, 'updates'> = { step: t, digest: target.digest }
    const json = `${JSON.stringify(head).slice(0, -1)},"updates":${jsonNumbers(updates)}}`
    return c.body(json, 200, { 'content-type': 'application/json', ...headers })
  }
  const body = encode(
    { [tensorNames.updates]: { dtype: 'F32', shape: [updates.length], data: updates } },
    { [metadataKeys.digest]: target.digest, [metadataKeys.step]: String(t) },
  )
  return new Response(body, { headers: { 'content-type': safetensorsMediaType, ...headers } })
}

function stepConflict(shard: number, current: number, t: number): ApiError {
  return new ApiError(
    'step_conflict',
    `shard ${shard} has applied ${current} step${current === 1 ? '' : 's'}; send step ${current + 1} next${current > 0 ? ` (or step ${current} again to get its updates)` : ''}, not step ${t}`,
    { currentStep: current, expectedStep: current + 1 },
  )
}

function binaryGrads(bytes: Uint8Array, session: SessionRow, t: number): Float32Array {
  const file = decodeSafetensors(bytes, 1)
  const meta = file.metadata ?? {}
  const grads: Tensor | undefined = file.tensors.get(tensorNames.grads)
  if (grads === undefined) {
    const other = [...file.tensors.keys()][0]
    throw new ApiError(
      other === undefined ? 'shape_mismatch' : 'invalid_safetensors',
      other === undefined
        ? `the body has no tensor '${tensorNames.grads}': send grads as F32 [shard length]`
        : `unexpected tensor '${other.slice(0, 64)}': a session step sends only grads (the server holds the state)`,
    )
  }
  if (grads.dtype !== 'F32' || grads.shape.length !== 1) {
    throw new ApiError(
      'shape_mismatch',
      `grads is ${grads.dtype} [${grads.shape.join(', ')}]; send F32 [shard length]`,
    )
  }
  const step = meta[metadataKeys.step]
  if (step !== undefined && step !== String(t)) {
    throw new ApiError(
      'invalid_request',
      `metadata step '${step.slice(0, 20)}' disagrees with step ${t} in the path`,
    )
  }
  const digest = meta[metadataKeys.digest]
  if (digest !== undefined && digest !== session.digest) {
    throw new ApiError(
      'digest_mismatch',
      `this session runs under ${session.digest}, not ${digest.slice(0, 80)}; start a new session for another optimizer`,
      { expectedDigest: digest, resolvedDigest: session.digest },
    )
  }
  return grads.data
}

function jsonGrads(bytes: Uint8Array): Float32Array {
  const schema = jsonSessionStepRequestSchema.omit({ grads: true })
  return parseJsonWithArrays(bytes, schema, [{ name: 'grads', required: true }]).arrays.grads!
}

async function sessionTarget(c: Context<AppEnv>, session: SessionRow): Promise<Target> {
  const name = session.optimizer.split('@')[0]
  if (isBaseline(name)) {
    const config = await baselineConfig(name, JSON.parse(session.hyperparameters ?? '{}'))
    return { kind: 'baseline', ...config, stateSize: config.optimizer.stateSize, label: name }
  }
  return resolveReference(c.get('deps').db, `${name}@${session.digest}`)
}

/** The caller's own session, or 404 (also for sessions of other clients, which must stay invisible). */
async function ownSession(c: Context<AppEnv>, id: string): Promise<SessionRow> {
  const row = await c
    .get('deps')
    .db.select()
    .from(sessions)
    .where(and(eq(sessions.id, id), eq(sessions.clientId, c.get('caller').clientId)))
    .get()
  if (row === undefined) throw sessionNotFound(id)
  return row
}

function sessionNotFound(id: string): ApiError {
  return new ApiError(
    'session_not_found',
    `no session '${id.slice(0, 80)}' for this key; POST /v1/sessions creates one`,
  )
}

function parseIndex(text: string, what: string): number {
  if (!/^\d{1,10}$/.test(text) || Number(text) > 2 ** 31) {
    throw new ApiError('invalid_request', `${what} '${text.slice(0, 20)}' is not a non-negative integer`)
  }
  return Number(text)
}

function shardCount(session: SessionRow): number {
  return Math.ceil(session.numParams / session.shardSize)
}

/** The Idempotency-Key header, if any: 1 to 200 visible ASCII characters. */
function idempotencyKeyOf(header: string | undefined): string | null {
  if (header === undefined) return null
  if (!/^[\x21-\x7e]{1,200}$/.test(header)) {
    throw new ApiError(
      'invalid_request',
      `${headerNames.idempotencyKey} must be 1 to 200 visible ASCII characters, e.g. a UUID`,
    )
  }
  return header
}

/**
 * The answer to a create whose Idempotency-Key this client already used: the same session (200),
 * so a retried create never makes a second one; 409 when the key came with another request.
 */
async function sessionCreatedWith(c: Context<AppEnv>, row: SessionRow): Promise<Response | undefined> {
  if (row.idempotencyKey === null) return undefined
  const { db } = c.get('deps')
  const earlier = await db
    .select()
    .from(sessions)
    .where(and(eq(sessions.clientId, row.clientId), eq(sessions.idempotencyKey, row.idempotencyKey)))
    .get()
  if (earlier === undefined) return undefined
  const same =
    earlier.digest === row.digest &&
    earlier.numParams === row.numParams &&
    earlier.stateDtype === row.stateDtype &&
    earlier.hyperparameters === row.hyperparameters
  if (!same) {
    throw new ApiError(
      'idempotency_conflict',
      `${headerNames.idempotencyKey} '${row.idempotencyKey}' already created session ${earlier.id} from another request (${earlier.optimizer}, ${earlier.numParams} parameters, ${earlier.stateDtype}); send a new key for a new session`,
    )
  }
  return c.json(describe(earlier, await shardSteps(db, earlier.id)), 200, {
    Location: routes.session(earlier.id),
  })
}

/** Steps applied so far, by shard index (shards with no row are at step 0). */
async function shardSteps(db: Db, sessionId: string): Promise<Map<number, number>> {
  const rows = await db
    .select({ shard: sessionShards.shard, step: sessionShards.step })
    .from(sessionShards)
    .where(eq(sessionShards.sessionId, sessionId))
  return new Map(rows.map((r) => [r.shard, r.step]))
}

function describe(session: SessionRow, steps: Map<number, number>): Session {
  const shards = Array.from({ length: shardCount(session) }, (_, index) => {
    const offset = index * session.shardSize
    return {
      index,
      offset,
      length: Math.min(session.shardSize, session.numParams - offset),
      step: steps.get(index) ?? 0,
    }
  })
  return {
    id: session.id,
    optimizer: session.optimizer,
    digest: session.digest,
    numParams: session.numParams,
    stateDtype: session.stateDtype,
    stateSize: session.stateSize,
    shardSize: session.shardSize,
    shards,
    createdAt: session.createdAt,
  }
}

/** A stored F32 blob as a Float32Array (a view when aligned). */
function f32View(bytes: Uint8Array): Float32Array {
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice()
  return new Float32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4)
}

function stateFrom(bytes: Uint8Array, dtype: StateDtype, elements: number): FloatData {
  if (bytes.byteLength !== elements * ITEMSIZE[dtype]) {
    throw new Error(
      `stored shard state has ${bytes.byteLength} bytes, expected ${elements * ITEMSIZE[dtype]}`,
    )
  }
  if (dtype === 'F32') return { dtype, data: f32View(bytes) }
  const aligned = bytes.byteOffset % 2 === 0 ? bytes : bytes.slice()
  return { dtype, data: new Uint16Array(aligned.buffer, aligned.byteOffset, elements) }
}
