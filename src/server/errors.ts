/**
 * RFC 9457 problem responses: every error the API returns is an ApiError rendered by one onError.
 */
import {
  clip,
  headerNames,
  type Problem,
  type ProblemCode,
  problemCodes,
  problemMediaType,
  problemType,
} from '../contract'

const titles: Record<ProblemCode, string> = {
  invalid_request: 'Invalid request',
  invalid_reference: 'Invalid optimizer reference',
  invalid_safetensors: 'Invalid safetensors body',
  shape_mismatch: 'Shape mismatch',
  non_finite_gradient: 'Non-finite gradient',
  non_finite_result: 'Non-finite result',
  invalid_hyperparameters: 'Invalid hyper-parameters',
  invalid_weights: 'Invalid weight file',
  unauthorized: 'Unauthorized',
  forbidden: 'Forbidden',
  optimizer_not_found: 'Optimizer not found',
  version_not_found: 'Version not found',
  session_not_found: 'Session not found',
  key_not_found: 'Key not found',
  not_found: 'Not found',
  method_not_allowed: 'Method not allowed',
  request_timeout: 'Request body timed out',
  not_acceptable: 'Not acceptable',
  digest_mismatch: 'Digest mismatch',
  step_conflict: 'Step conflict',
  replay_mismatch: 'Step resent with other gradients',
  version_conflict: 'Version conflict',
  idempotency_conflict: 'Idempotency-Key reused',
  last_admin_key: 'Last admin key',
  payload_too_large: 'Payload too large',
  too_many_coordinates: 'Too many coordinates',
  unsupported_media_type: 'Unsupported media type',
  headers_too_large: 'Request headers too large',
  rate_limited: 'Rate limited',
  quota_exceeded: 'Quota exceeded',
  internal_error: 'Internal error',
  overloaded: 'Server busy',
}

/** An error with a stable problem code; `detail` says what to do next. */
export class ApiError extends Error {
  override readonly name = 'ApiError'
  readonly status: number
  constructor(
    readonly code: ProblemCode,
    readonly detail: string,
    /** Extra machine-readable members of the problem body, e.g. `{ index: 17 }`. */
    readonly extensions: Record<string, unknown> = {},
    /** Extra response headers, e.g. WWW-Authenticate. */
    readonly headers: Record<string, string> = {},
    /**
     * The status, when not the code's own: quota_exceeded is 429 while waiting helps (a rate) and
     * 403 while it does not (sessions held).
     */
    status?: number,
  ) {
    super(detail)
    this.status = status ?? problemCodes[code]
  }
}

/** Longest `detail`, and longest string anywhere in the extensions, a problem body carries. */
const maxDetailLength = 1000
const maxExtensionStringLength = 200

/**
 * The problem+json body of an error. Every string in it is bounded (the last line of defence: the
 * sites that quote a client's value clip it themselves, with contract's clip).
 */
export function problemBody(error: ApiError, requestId: string | undefined): Problem {
  return {
    ...(clipStrings(error.extensions, maxExtensionStringLength) as Record<string, unknown>),
    type: problemType(error.code),
    title: titles[error.code],
    status: error.status,
    detail: clip(error.detail, maxDetailLength),
    code: error.code,
    ...(requestId === undefined ? {} : { requestId }),
  }
}

function clipStrings(value: unknown, max: number, depth = 0): unknown {
  if (typeof value === 'string') return clip(value, max)
  if (typeof value !== 'object' || value === null || depth > 4) return value
  if (Array.isArray(value)) return value.slice(0, 20).map((v) => clipStrings(v, max, depth + 1))
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [clip(k, 64), clipStrings(v, max, depth + 1)]),
  )
}

/** A problem+json Response for an error. */
export function problemResponse(error: ApiError, requestId: string | undefined): Response {
  const headers = new Headers({ 'content-type': problemMediaType, ...error.headers })
  if (requestId !== undefined) headers.set(headerNames.requestId, requestId)
  return new Response(JSON.stringify(problemBody(error, requestId)), { status: error.status, headers })
}

/**
 * A short description of an unexpected error that is safe to log: never the message of a drizzle
 * query error, which embeds every bound parameter (MBs of BLOB; notes/stack-recipes.md §3).
 */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return typeof error
  if (error.name === 'DrizzleQueryError' || /params:/i.test(error.message.slice(0, 4096))) {
    const cause = (error as { cause?: unknown }).cause
    const why = cause instanceof Error ? `${cause.name}: ${cause.message.slice(0, 300)}` : 'unknown cause'
    return `database query failed (${why})`
  }
  return `${error.name}: ${error.message.slice(0, 500)}`
}
