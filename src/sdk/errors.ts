/**
 * Typed SDK errors. Every failure the SDK reports is an `SdkError`: `ApiError` (and its subclasses,
 * picked from the problem `code`) when the server answered with an error, `ConnectionError` /
 * `TimeoutError` when no answer came back.
 */
import { isProblemCode, type Problem, type ProblemCode } from '../contract'

/** Base class of every error the SDK throws. */
export class SdkError extends Error {
  override name = 'SdkError'
}

/** Facts about an HTTP error answer, as the SDK read them. */
export interface ApiErrorInit {
  status: number
  /** The problem code, or `unknown` when the body carried none the SDK knows. */
  code: ProblemCode | 'unknown'
  detail: string
  title?: string
  requestId?: string
  /** The parsed problem+json body, when there was one. */
  problem?: Partial<Problem>
  /** Milliseconds the server asked the client to wait (Retry-After), when it said. */
  retryAfterMs?: number
  method?: string
  url?: string
}

/** The server answered with an error status (RFC 9457 problem+json). */
export class ApiError extends SdkError {
  override name = 'ApiError'
  readonly status: number
  readonly code: ProblemCode | 'unknown'
  readonly detail: string
  readonly title?: string
  readonly requestId?: string
  readonly problem?: Partial<Problem>
  readonly retryAfterMs?: number
  readonly method?: string
  readonly url?: string

  constructor(init: ApiErrorInit) {
    const where = init.method && init.url ? ` (${init.method} ${init.url})` : ''
    const id = init.requestId ? ` [request ${init.requestId}]` : ''
    super(`${init.status} ${init.code}: ${init.detail}${where}${id}`)
    this.status = init.status
    this.code = init.code
    this.detail = init.detail
    this.title = init.title
    this.requestId = init.requestId
    this.problem = init.problem
    this.retryAfterMs = init.retryAfterMs
    this.method = init.method
    this.url = init.url
  }
}

/** The request was malformed or refused as invalid (400, 405, 406, 413, 415, 422). */
export class ValidationError extends ApiError {
  override name = 'ValidationError'
}

/** The API key is missing, wrong or revoked (401), or may not do this (403). */
export class AuthError extends ApiError {
  override name = 'AuthError'
}

/** The optimizer, version, session or key does not exist (404). */
export class NotFoundError extends ApiError {
  override name = 'NotFoundError'
}

/** The request conflicts with the server's state (409). */
export class ConflictError extends ApiError {
  override name = 'ConflictError'
}

/**
 * A state or pin was made under another optimizer digest than the one that would be used (409
 * `digest_mismatch`), or the server answered with a digest other than the run's pin.
 */
export class DigestMismatchError extends ConflictError {
  override name = 'DigestMismatchError'
}

/** A session step was sent out of order (409 `step_conflict`): the shard expects another step. */
export class StepConflictError extends ConflictError {
  override name = 'StepConflictError'
}

/** Too many requests (429); `retryAfterMs` says how long the server asked to wait. */
export class RateLimitError extends ApiError {
  override name = 'RateLimitError'
}

/** The server failed (5xx). */
export class ServerError extends ApiError {
  override name = 'ServerError'
}

/** No HTTP answer: DNS, refused connection, reset, or a body that could not be read. */
export class ConnectionError extends SdkError {
  override name = 'ConnectionError'
  constructor(
    message: string,
    override readonly cause?: unknown,
  ) {
    super(message)
  }
}

/** No answer within `timeoutMs`. */
export class TimeoutError extends ConnectionError {
  override name = 'TimeoutError'
}

/** The server answered 2xx with a body the SDK cannot use (wrong shape, media type or size). */
export class ProtocolError extends SdkError {
  override name = 'ProtocolError'
}

type ApiErrorClass = new (init: ApiErrorInit) => ApiError

// Per code first, so two 409s become different classes; by status for codes this SDK does not know.
const byCode: Partial<Record<ProblemCode, ApiErrorClass>> = {
  digest_mismatch: DigestMismatchError,
  step_conflict: StepConflictError,
}

const byStatus = (status: number): ApiErrorClass => {
  if (status === 401 || status === 403) return AuthError
  if (status === 404) return NotFoundError
  if (status === 409) return ConflictError
  if (status === 429) return RateLimitError
  if (status >= 500) return ServerError
  if (
    status === 400 ||
    status === 405 ||
    status === 406 ||
    status === 413 ||
    status === 415 ||
    status === 422
  ) {
    return ValidationError
  }
  return ApiError
}

/**
 * The error class the SDK throws for a problem code, else for the HTTP status (a code may come
 * with more than one: quota_exceeded is 429 or 403).
 */
export function errorClassFor(code: string | undefined, status: number): ApiErrorClass {
  return (isProblemCode(code) ? byCode[code] : undefined) ?? byStatus(status)
}

/** Builds the typed error for an error answer. */
export function apiErrorFrom(init: Omit<ApiErrorInit, 'code'> & { code?: string }): ApiError {
  const code = isProblemCode(init.code) ? init.code : 'unknown'
  const Class = errorClassFor(init.code, init.status)
  return new Class({ ...init, code })
}
