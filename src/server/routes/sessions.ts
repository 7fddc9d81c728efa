/**
 * Sessions (DESIGN §6): server-held state, sharded so one shard (state + last updates) fits
 * maxRowBytes, kept by the deps' SessionStore. Step t of a shard is applied once (the store's
 * stepShard): t = current + 1 applies, t = current replays the stored updates byte for byte,
 * anything else is 409 step_conflict.
 */
import type { OpenAPIHono } from '@hono/zod-openapi'
import type { Context } from 'hono'
import {
  clip,
  createSessionRequestSchema,
  evenShardSize,
  headerNames,
  honoPath,
  paths,
  routes,
} from '../../contract'
import { requireKey } from '../auth'
import { bodyKindOf, parseJson, readBody } from '../body'
import { assertFinite, computeOf } from '../compute'
import { admitCompute } from '../compute-queue'
import type { AppEnv } from '../env'
import { ApiError } from '../errors'
import { randomId } from '../ids'
import { quotaExceeded } from '../quotas'
import { resolveBound, resolvePinned } from '../registry/resolve'
import { shardCompute } from '../sessions/shard-step'
import { describeSession, shardCount, shardRange, shardSizeFor } from '../sessions/shards'
import { sessionStepAnswer, sessionStepGrads } from '../sessions/step-body'
import type { SessionRecord } from '../sessions/store'

// biome-ignore lint/suspicious/noExplicitAny: routes are independent of the runtime's bindings.
export function registerSessions(app: OpenAPIHono<AppEnv<any>>): void {
  app.post(routes.sessions, requireKey(), async (c) => {
    const deps = c.get('deps')
    bodyKindOf(c.req.raw, ['json'])
    const idempotencyKey = idempotencyKeyOf(c.req.header(headerNames.idempotencyKey))
    const request = parseJson(await readBody(c, 64 * 1024), createSessionRequestSchema)
    const target = await resolveBound(deps.db, request.optimizer, request.hyperparameters, request.digest)
    const session: SessionRecord = {
      id: randomId(deps.randomBytes, 'ses', 16),
      clientId: c.get('caller').clientId,
      optimizer: target.label,
      digest: target.digest,
      hyperparameters: target.kind === 'baseline' ? JSON.stringify(target.hyperparameters) : null,
      numParams: request.numParams,
      stateDtype: request.stateDtype,
      stateSize: target.stateSize,
      shardSize: evenShardSize(
        request.numParams,
        shardSizeFor(target.stateSize, request.stateDtype, deps.maxCoordinatesPerRequest),
      ),
      createdAt: deps.now().toISOString(),
      idempotencyKey,
    }
    const stored = await deps.sessions.create(session)
    if (stored.created) {
      await withinSessionQuotas(c, session)
      return c.json(describeSession(session, new Map()), 201, { Location: routes.session(session.id) })
    }
    // A retried create (same Idempotency-Key): the same session, so a retry never makes a second one.
    const { earlier } = stored
    const same =
      earlier.digest === session.digest &&
      earlier.numParams === session.numParams &&
      earlier.stateDtype === session.stateDtype &&
      earlier.hyperparameters === session.hyperparameters
    if (!same) {
      throw new ApiError(
        'idempotency_conflict',
        `${headerNames.idempotencyKey} '${clip(idempotencyKey ?? '')}' already created session ${earlier.id} from another request (${earlier.optimizer}, ${earlier.numParams} parameters, ${earlier.stateDtype}); send a new key for a new session`,
      )
    }
    const steps = await deps.sessions.shardSteps(earlier)
    return c.json(describeSession(earlier, steps), 200, { Location: routes.session(earlier.id) })
  })

  app.get(honoPath(paths.session), requireKey(), async (c) => {
    const session = await ownSession(c)
    return c.json(describeSession(session, await c.get('deps').sessions.shardSteps(session)))
  })

  app.delete(honoPath(paths.session), requireKey(), async (c) => {
    await c.get('deps').sessions.delete(await ownSession(c))
    return c.body(null, 204)
  })

  app.post(honoPath(paths.sessionStep), requireKey(), admitCompute(), sessionStep)
}

async function sessionStep(c: Context<AppEnv>): Promise<Response> {
  const deps = c.get('deps')
  const session = await ownSession(c)
  const shards = shardCount(session)
  // The path's own text, not Hono's decoded params: '%32' and '02' are not the number 2.
  const [shardText = '', stepText = ''] =
    /\/shards\/([^/]*)\/steps\/([^/]*)$/.exec(new URL(c.req.url).pathname)?.slice(1) ?? []
  const shard = parseIndex(shardText, 'shard')
  if (shard >= shards) {
    throw new ApiError(
      'invalid_request',
      `session ${session.id} has shards 0 to ${shards - 1}; shard ${shard} does not exist`,
    )
  }
  const t = parseIndex(stepText, 'step')
  if (t < 1) throw new ApiError('invalid_request', 'steps count from 1: send step 1 first')
  const { offset, length } = shardRange(session, shard)

  const kind = bodyKindOf(c.req.raw, ['binary', 'json'])
  const bytes = await readBody(c, kind === 'binary' ? 4 * length + 64 * 1024 : deps.maxJsonBodyBytes)
  const grads = sessionStepGrads(kind, bytes, session, t)
  if (grads.length !== length) {
    throw new ApiError(
      'shape_mismatch',
      `shard ${shard} holds coordinates ${offset} to ${offset + length - 1}: send ${length} gradients, not ${grads.length}`,
    )
  }
  assertFinite(grads)
  const target = await resolvePinned(deps.db, session)

  // One turn of the compute queue from reading the shard to writing it back: shards stepped in
  // parallel never hold several shards' state and garbage at once.
  const here = shardCompute(computeOf(c), target, session, c.get('ticket'))
  const step = await deps.sessions.stepShard(session, shard, t, grads, here)
  if (step.outcome === 'gone') throw sessionNotFound(session.id)
  if (step.outcome === 'conflict') throw stepConflict(shard, step.current, t)
  if (step.outcome === 'replay_mismatch') throw replayMismatch(shard, t)
  if (step.outcome === 'non_finite') throw new ApiError('non_finite_result', step.detail, step.extensions)
  return sessionStepAnswer(c, kind, target, t, step.updates)
}

/**
 * Checks a session just created against its client's quotas, and deletes it (403 quota_exceeded)
 * when they are exceeded. Counted after the insert, so concurrent creates cannot all slip under a
 * quota (D1 has no transactions across statements): at worst both are refused and one retries.
 */
async function withinSessionQuotas(c: Context<AppEnv>, session: SessionRecord): Promise<void> {
  const { sessions: store } = c.get('deps')
  const { quotas } = c.get('caller')
  const usage = await store.usage(session.clientId)
  let refusal: ApiError | undefined
  if (usage.sessions > quotas.maxSessions) {
    refusal = quotaExceeded(
      'maxSessions',
      quotas.maxSessions,
      `this client holds ${usage.sessions - 1} sessions; delete one (DELETE /v1/sessions/{id}) or ask an admin for more`,
    )
  } else if (usage.coordinates > quotas.maxSessionCoordinates) {
    refusal = quotaExceeded(
      'maxSessionCoordinates',
      quotas.maxSessionCoordinates,
      `this client's sessions hold ${usage.coordinates - session.numParams} coordinates and this one would add ${session.numParams}; delete a session or ask an admin for more`,
    )
  }
  if (refusal === undefined) return
  await store.delete(session)
  throw refusal
}

function replayMismatch(shard: number, t: number): ApiError {
  return new ApiError(
    'replay_mismatch',
    `shard ${shard} already applied step ${t} with other gradients; a resent step must carry the same gradients (send step ${t + 1} for new ones)`,
    { step: t },
  )
}

function stepConflict(shard: number, current: number, t: number): ApiError {
  return new ApiError(
    'step_conflict',
    `shard ${shard} has applied ${current} step${current === 1 ? '' : 's'}; send step ${current + 1} next${current > 0 ? ` (or step ${current} again to get its updates)` : ''}, not step ${t}`,
    { currentStep: current, expectedStep: current + 1 },
  )
}

/** The caller's own session, or 404 (also for sessions of other clients, which must stay invisible). */
async function ownSession(c: Context<AppEnv>): Promise<SessionRecord> {
  const id = c.req.param('id') ?? ''
  const session = await c.get('deps').sessions.get(c.get('caller').clientId, id)
  if (session === undefined) throw sessionNotFound(id)
  return session
}

function sessionNotFound(id: string): ApiError {
  return new ApiError(
    'session_not_found',
    `no session '${id.slice(0, 80)}' for this key; POST /v1/sessions creates one`,
  )
}

/** A path number in canonical decimal: digits without leading zeros, at most 2^31. */
function parseIndex(text: string, what: string): number {
  if (!/^(0|[1-9]\d{0,9})$/.test(text) || Number(text) > 2 ** 31) {
    throw new ApiError(
      'invalid_request',
      `${what} '${text.slice(0, 20)}' is not a non-negative integer in plain decimal (no leading zeros, no escapes)`,
    )
  }
  return Number(text)
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
