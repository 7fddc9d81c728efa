/**
 * The SDK's one way to talk HTTP: fetch (injectable), a per-attempt timeout, retries with backoff,
 * one Idempotency-Key per POST reused across its retries, and error bodies mapped to typed errors.
 * Web APIs only, so it runs in Node, browsers and Workers alike.
 */
import { headerNames, problemMediaType } from '../contract'
import { type ApiError, apiErrorFrom, ConnectionError, ProtocolError, SdkError, TimeoutError } from './errors'
import { backoffMs, isRetryableStatus, parseRetryAfter, type RetryPolicy } from './retry'

/** The fetch signature the SDK needs (the global fetch satisfies it). */
export type FetchLike = (input: string, init: RequestInit) => Promise<Response>

/** Connection settings shared by every request of one client. */
export interface TransportOptions {
  baseUrl: string
  apiKey?: string
  timeoutMs: number
  fetch: FetchLike
  retry: RetryPolicy
  /** Extra headers on every request, e.g. a User-Agent. */
  headers?: Record<string, string>
  /** Makes an Idempotency-Key (default: crypto.randomUUID). */
  idempotencyKey?: () => string
  /** Called with every answer (any status) and the URL it came from, e.g. to watch Deprecation. */
  onResponse?: (response: Response, url: string) => void
}

/** One logical request; the transport may send it several times. */
export interface RequestSpec {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE'
  path: string
  query?: Record<string, string | undefined>
  /** A JSON body (sent as application/json). */
  json?: unknown
  /** A binary body and its media type. */
  body?: Uint8Array
  contentType?: string
  accept?: string
  signal?: AbortSignal
  /**
   * Whether an error answer is worth another attempt beyond the default (408, 429, 5xx). `attempt`
   * is the index of the attempt that got `error`: 0 for the first, 1 for the first retry.
   */
  retryIf?: (error: ApiError, attempt: number) => boolean
}

/** A successful answer with its body read. */
export interface RawResponse {
  status: number
  headers: Headers
  body: Uint8Array
  url: string
}

const textDecoder = new TextDecoder()

/** Sends requests for one client. */
export class Transport {
  readonly options: TransportOptions

  constructor(options: TransportOptions) {
    this.options = { ...options, baseUrl: options.baseUrl.replace(/\/+$/, '') }
  }

  /** Sends `spec`, retrying what is safe to retry; resolves to a 2xx answer or throws an SdkError. */
  async request(spec: RequestSpec): Promise<RawResponse> {
    const { retry } = this.options
    const url = this.url(spec)
    const headers = this.headers(spec)
    // One key for all attempts: the server can tell a retry from a new request.
    if (spec.method === 'POST') {
      headers.set(headerNames.idempotencyKey, (this.options.idempotencyKey ?? randomKey)())
    }
    const body = spec.body ?? (spec.json === undefined ? undefined : JSON.stringify(spec.json))
    for (let attempt = 0; ; attempt++) {
      let failure: SdkError
      let waitMs: number | undefined
      try {
        const response = await this.attempt(url, { method: spec.method, headers, body }, spec.signal)
        if (response.status >= 200 && response.status < 300) return response
        const error = toApiError(response, spec.method, url)
        const retryable = isRetryableStatus(response.status) || (spec.retryIf?.(error, attempt) ?? false)
        if (!retryable) throw error
        failure = error
        waitMs = error.retryAfterMs
        if (waitMs !== undefined && waitMs > retry.maxRetryAfterMs) throw error
      } catch (error) {
        if (!(error instanceof ConnectionError) || spec.signal?.aborted) throw error
        failure = error
      }
      if (attempt >= retry.maxRetries) throw failure
      await retry.sleep(waitMs ?? backoffMs(retry, attempt), spec.signal)
    }
  }

  /** GETs or sends JSON and parses the JSON answer. */
  async json(spec: RequestSpec): Promise<{ data: unknown; response: RawResponse }> {
    const response = await this.request({ accept: 'application/json', ...spec })
    if (response.status === 204 || response.body.length === 0) return { data: undefined, response }
    try {
      return { data: JSON.parse(textDecoder.decode(response.body)), response }
    } catch {
      throw new ProtocolError(`${spec.method} ${response.url}: the answer is not JSON`)
    }
  }

  private url(spec: RequestSpec): string {
    const query = new URLSearchParams()
    for (const [k, v] of Object.entries(spec.query ?? {})) if (v !== undefined) query.set(k, v)
    const qs = query.toString()
    return `${this.options.baseUrl}${spec.path}${qs ? `?${qs}` : ''}`
  }

  private headers(spec: RequestSpec): Headers {
    const headers = new Headers(this.options.headers)
    if (this.options.apiKey) headers.set('Authorization', `Bearer ${this.options.apiKey}`)
    if (spec.accept) headers.set('Accept', spec.accept)
    if (spec.body !== undefined) headers.set('Content-Type', spec.contentType ?? 'application/octet-stream')
    else if (spec.json !== undefined) headers.set('Content-Type', 'application/json')
    return headers
  }

  // One attempt: fetch and read the whole body under one timeout, so a stalled body also times out.
  private async attempt(
    url: string,
    init: { method: string; headers: Headers; body: string | Uint8Array | undefined },
    signal: AbortSignal | undefined,
  ): Promise<RawResponse> {
    const controller = new AbortController()
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      controller.abort()
    }, this.options.timeoutMs)
    const onAbort = () => controller.abort(signal?.reason)
    if (signal?.aborted) onAbort()
    signal?.addEventListener('abort', onAbort, { once: true })
    try {
      const response = await this.options.fetch(url, {
        method: init.method,
        headers: init.headers,
        body: init.body as BodyInit | undefined,
        signal: controller.signal,
      })
      const body = new Uint8Array(await response.arrayBuffer())
      this.options.onResponse?.(response, url)
      return { status: response.status, headers: response.headers, body, url }
    } catch (error) {
      if (error instanceof SdkError) throw error
      if (signal?.aborted) throw signal.reason ?? error
      if (timedOut)
        throw new TimeoutError(`${init.method} ${url}: no answer within ${this.options.timeoutMs} ms`)
      const why = error instanceof Error ? error.message : String(error)
      throw new ConnectionError(`${init.method} ${url}: ${why}`, error)
    } finally {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
    }
  }
}

/**
 * A random UUID v4. crypto.randomUUID exists only in secure contexts (https, localhost) in
 * browsers; getRandomValues exists everywhere, so build one from it when needed.
 */
function randomKey(): string {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID()
  const b = crypto.getRandomValues(new Uint8Array(16))
  b[6] = (b[6] & 0x0f) | 0x40
  b[8] = (b[8] & 0x3f) | 0x80
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

/** Reads an error answer (problem+json, or anything else) into the typed error for it. */
function toApiError(response: RawResponse, method: string, url: string): ApiError {
  const retryAfterMs = parseRetryAfter(response.headers.get(headerNames.retryAfter), Date.now())
  const requestId = response.headers.get(headerNames.requestId) ?? undefined
  const text = textDecoder.decode(response.body)
  let problem: Record<string, unknown> | undefined
  const type = response.headers.get('Content-Type') ?? ''
  if (type.includes(problemMediaType) || type.includes('json')) {
    try {
      const parsed: unknown = JSON.parse(text)
      if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) {
        problem = parsed as Record<string, unknown>
      }
    } catch {
      problem = undefined
    }
  }
  // Tolerate the `{ error: { code, message } }` envelope too, in case a proxy or old server sends it.
  const inner =
    problem && typeof problem.error === 'object' && problem.error !== null
      ? (problem.error as Record<string, unknown>)
      : problem
  const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined)
  const code = str(inner?.code) ?? str(inner?.type)?.split('/').pop()
  const detail =
    str(inner?.detail) ??
    str(inner?.message) ??
    str(inner?.title) ??
    (text.slice(0, 500) || `HTTP ${response.status}`)
  return apiErrorFrom({
    status: response.status,
    code,
    detail,
    title: str(inner?.title),
    requestId: str(inner?.requestId) ?? requestId,
    problem: inner,
    retryAfterMs,
    method,
    url,
  })
}
