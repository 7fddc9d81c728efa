/** Retry policy: which failures are retried, and how long to wait before the next attempt. */

/** How the SDK retries failed requests. Every field has a default. */
export interface RetryOptions {
  /** Retries after the first attempt (default 4, so at most 5 attempts). 0 disables retrying. */
  maxRetries?: number
  /** Backoff before the first retry, before jitter (default 250 ms); doubles on each retry. */
  initialDelayMs?: number
  /** Cap on the backoff before jitter (default 8 s). */
  maxDelayMs?: number
  /** Longest Retry-After the SDK will wait; a longer one fails the request instead (default 60 s). */
  maxRetryAfterMs?: number
  /** Waits `ms`; injectable for tests (default: setTimeout). */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>
  /** A number in [0, 1); injectable for tests (default: Math.random). */
  random?: () => number
}

/** RetryOptions with every default filled in. */
export type RetryPolicy = Required<RetryOptions>

/** Sleeps `ms` milliseconds, or rejects early with the signal's reason when it aborts. */
export function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    const onAbort = () => {
      clearTimeout(timer)
      reject(signal?.reason)
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** Fills in the defaults of a retry policy. */
export function retryPolicy(options: RetryOptions = {}): RetryPolicy {
  return {
    maxRetries: options.maxRetries ?? 4,
    initialDelayMs: options.initialDelayMs ?? 250,
    maxDelayMs: options.maxDelayMs ?? 8_000,
    maxRetryAfterMs: options.maxRetryAfterMs ?? 60_000,
    sleep: options.sleep ?? defaultSleep,
    random: options.random ?? Math.random,
  }
}

/**
 * Delay before retry number `retry` (0 for the first retry): exponential backoff with "equal
 * jitter", uniformly in [d/2, d) where d = min(maxDelayMs, initialDelayMs · 2^retry), so that
 * clients that failed together do not all come back together, yet none retries immediately.
 */
export function backoffMs(policy: RetryPolicy, retry: number): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** retry)
  return ceiling / 2 + (ceiling / 2) * policy.random()
}

/**
 * Parses a Retry-After header (RFC 9110: delay-seconds or an HTTP-date) into milliseconds from
 * `nowMs`; undefined when absent or unreadable. A date in the past means 0.
 */
export function parseRetryAfter(value: string | null | undefined, nowMs: number): number | undefined {
  if (value === null || value === undefined) return undefined
  const text = value.trim()
  if (/^\d+$/.test(text)) return Number(text) * 1000
  const date = Date.parse(text)
  if (Number.isNaN(date)) return undefined
  return Math.max(0, date - nowMs)
}

/** Statuses worth another attempt: request timeout, too many requests, and server errors. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status <= 599)
}
