/**
 * Content negotiation (RFC 9110 §12.5.1): a request whose Accept admits none of the media types
 * its route answers with gets 406 before anything runs. Error answers are problem+json whatever
 * Accept says, as RFC 9110 allows.
 */
import type { MiddlewareHandler } from 'hono'
import { matchedRoutes } from 'hono/route'
import { clip, honoPath, jsonMediaType, paths, safetensorsMediaType } from '../contract'
import { mediaTypeOf } from './body'
import type { AppEnv } from './env'
import { ApiError } from './errors'

const apiRoutes = new Set<string>(Object.values(paths).map((template) => honoPath(template)))
const stepRoutes = new Set<string>([honoPath(paths.step), honoPath(paths.sessionStep)])

/**
 * The media type a route answers with on success: the steps answer in their request's format,
 * /docs in HTML, DELETE of a session with no body (undefined), every other API route in JSON.
 * Routes outside the contract's paths are not checked (undefined).
 */
export function answerType(method: string, route: string, requestType: string): string | undefined {
  if (!apiRoutes.has(route)) return undefined
  if (route === paths.docs) return 'text/html'
  if (method === 'DELETE' && route === honoPath(paths.session)) return undefined
  if (stepRoutes.has(route) && requestType === safetensorsMediaType) return safetensorsMediaType
  return jsonMediaType
}

/**
 * Whether an Accept header admits `type`: absent or empty admits everything; otherwise the most
 * specific range that matches it (type/subtype, then type/*, then *\/*) decides, and q=0 refuses.
 */
export function accepts(accept: string | undefined, type: string): boolean {
  if (accept === undefined || accept.trim() === '') return true
  const [major] = type.split('/')
  let best = -1
  let bestQ = 0
  for (const part of accept.split(',')) {
    const [range = '', ...params] = part.split(';').map((p) => p.trim().toLowerCase())
    const specificity = range === type ? 2 : range === `${major}/*` ? 1 : range === '*/*' ? 0 : -1
    if (specificity < best || specificity < 0) continue
    const qParam = params.find((p) => p.startsWith('q='))
    const q = qParam === undefined ? 1 : Number(qParam.slice(2))
    if (specificity > best || q > bestQ) {
      best = specificity
      bestQ = Number.isFinite(q) ? q : 0
    }
  }
  return best >= 0 && bestQ > 0
}

/** Middleware: 406 not_acceptable when Accept admits nothing the matched route answers with. */
export function negotiate(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const route = matchedRoutes(c).find((r) => r.method !== 'ALL')?.path
    const type = route === undefined ? undefined : answerType(c.req.method, route, mediaTypeOf(c.req.raw))
    const accept = c.req.header('accept')
    if (type !== undefined && !accepts(accept, type)) {
      throw new ApiError(
        'not_acceptable',
        `this route answers with ${type}, which Accept '${clip(accept ?? '')}' does not admit; accept ${type} (or */*)`,
        { available: [type] },
      )
    }
    await next()
  }
}
