/**
 * The Hono app: every route of the API, for both runtimes. Runtimes only build deps (DESIGN §1).
 *
 * @example
 * // Node
 * const app = createApp(() => deps)
 * // Workers
 * export default createApp((env: Bindings) => ({ db: drizzle(env.DB, { schema }), initTf, runtime: 'workers' }))
 */
import { OpenAPIHono } from '@hono/zod-openapi'
import { clip, defaultMaxCoordinatesPerRequest, headerNames } from '../contract'
import { negotiate } from './accept'
import { type AdmissionLimits, ComputeQueue, type YieldToEventLoop } from './compute-queue'
import { type MakeDeps, resolveDeps } from './deps'
import type { AppEnv } from './env'
import { ApiError, describeError, problemResponse } from './errors'
import { randomId } from './ids'
import { OptimizerCache } from './optimizer-cache'
import { registerRoutes } from './routes'

/** The app type, for runtimes that need to name it. */
export type App<E extends object = object> = OpenAPIHono<AppEnv<E>>

/** What the app keeps across requests, set by the runtime once. */
export interface AppOptions {
  /** Bounds of the compute queue (Node sets them); without them every step is admitted. */
  admission?: AdmissionLimits
  /** How the compute queue yields between turns (Node: setImmediate); default setTimeout(0). */
  yieldToEventLoop?: YieldToEventLoop
}

/** Builds the app; `makeDeps` runs once per request (it may return a cached object). */
export function createApp<E extends object = object>(
  makeDeps: MakeDeps<E>,
  options: AppOptions = {},
): App<E> {
  const app = new OpenAPIHono<AppEnv<E>>()
  const optimizers = new OptimizerCache()
  const compute = new ComputeQueue(options.admission, options.yieldToEventLoop)

  app.use('*', async (c, next) => {
    const deps = resolveDeps(await makeDeps(c.env), defaultMaxCoordinatesPerRequest)
    c.set('deps', deps)
    c.set('optimizers', optimizers)
    c.set('compute', compute)
    const given = c.req.header(headerNames.requestId)
    const requestId =
      given !== undefined && /^[\w.:-]{1,128}$/.test(given) ? given : randomId(deps.randomBytes, 'req', 8)
    c.set('requestId', requestId)
    await next()
    // Not c.header(): after the handler it rebuilds the response around a stream of its body.
    c.res.headers.set(headerNames.requestId, requestId)
  })

  app.use('*', negotiate())
  registerRoutes(app)

  let patterns: { method: string; pattern: RegExp }[] | undefined
  app.notFound(async (c) => {
    const assets = c.get('deps')?.assets
    if (assets !== undefined && (c.req.method === 'GET' || c.req.method === 'HEAD')) {
      const file = await assets(c.req.raw)
      if (file !== undefined) return file
    }
    patterns ??= app.routes
      .filter((r) => r.method !== 'ALL')
      .map((r) => ({ method: r.method, pattern: new RegExp(`^${r.path.replace(/:\w+/g, '[^/]+')}$`) }))
    const allowed = [...new Set(patterns.filter((r) => r.pattern.test(c.req.path)).map((r) => r.method))]
    const error =
      allowed.length > 0
        ? new ApiError(
            'method_not_allowed',
            `${clip(c.req.method, 16)} is not allowed on ${clip(c.req.path, 200)}; use ${allowed.join(' or ')} (GET /docs lists every route)`,
            { allowed },
            { Allow: allowed.join(', ') },
          )
        : new ApiError(
            'not_found',
            `no route ${clip(c.req.method, 16)} ${clip(c.req.path, 200)}; GET /docs lists every route`,
          )
    return problemResponse(error, c.get('requestId'))
  })

  app.onError((error, c) => {
    const requestId = c.get('requestId')
    if (error instanceof ApiError) return problemResponse(error, requestId)
    const deps = c.get('deps')
    const message = describeError(error)
    deps?.log({ level: 'error', message, requestId, method: c.req.method, path: c.req.path })
    return problemResponse(
      new ApiError(
        'internal_error',
        `the server failed; quote request id ${requestId ?? '?'} when reporting it`,
      ),
      requestId,
    )
  })

  return app
}
