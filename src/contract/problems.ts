/**
 * RFC 9457 problem types: the stable error vocabulary shared by the server and the SDKs.
 * A problem's `type` is `/problems/<code>`; the body also carries `code` so clients can switch on it.
 */
export const problemCodes = {
  invalid_request: 400,
  invalid_reference: 400,
  invalid_safetensors: 400,
  shape_mismatch: 400,
  non_finite_gradient: 422,
  non_finite_result: 422,
  invalid_hyperparameters: 400,
  invalid_weights: 400,
  unauthorized: 401,
  forbidden: 403,
  optimizer_not_found: 404,
  version_not_found: 404,
  session_not_found: 404,
  key_not_found: 404,
  not_found: 404,
  method_not_allowed: 405,
  request_timeout: 408,
  not_acceptable: 406,
  digest_mismatch: 409,
  step_conflict: 409,
  replay_mismatch: 409,
  version_conflict: 409,
  idempotency_conflict: 409,
  last_admin_key: 409,
  payload_too_large: 413,
  too_many_coordinates: 413,
  unsupported_media_type: 415,
  headers_too_large: 431,
  rate_limited: 429,
  quota_exceeded: 429,
  internal_error: 500,
  overloaded: 503,
} as const

/** A stable, snake_case problem code. */
export type ProblemCode = keyof typeof problemCodes

/** The media type of every error body. */
export const problemMediaType = 'application/problem+json'

/** The `type` URI reference of a problem code. */
export function problemType(code: ProblemCode): string {
  return `/problems/${code}`
}

/** The body of an error response (RFC 9457 plus `code` and `requestId`). */
export interface Problem {
  type: string
  title: string
  status: number
  detail: string
  code: ProblemCode
  instance?: string
  requestId?: string
  /** Extra machine-readable facts, e.g. `{ index: 17 }` for a non-finite gradient. */
  [extension: string]: unknown
}

/** Longest echo of a client's value in a problem's `detail`, in characters. */
export const maxEchoLength = 64

/**
 * A client's value as a problem's `detail` may quote it: at most `max` characters, with '…' and
 * the full length marking a cut, so a 60 KB field never comes back as a 60 KB answer.
 */
export function clip(text: string, max = maxEchoLength): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters)`
}

/** True when `code` is one of the known problem codes. */
export function isProblemCode(code: unknown): code is ProblemCode {
  return typeof code === 'string' && Object.hasOwn(problemCodes, code)
}
