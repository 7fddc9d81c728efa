import { describe, expect, it } from 'vitest'
import type { Fault } from '../../test/sdk/fake-server'
import { fakeSetup, iota } from '../../test/sdk/setup'
import { ConnectionError, RateLimitError, ServerError, TimeoutError, ValidationError } from './errors'
import { backoffMs, parseRetryAfter, retryPolicy } from './retry'

const stepFault = (kind: Fault['kind'], times = 1): Fault => ({
  when: (r) => r.path === '/v1/step',
  times,
  kind,
})

describe('retries', () => {
  it('retries 5xx with jittered exponential backoff, then succeeds', async () => {
    const { server, client, sleeps } = fakeSetup()
    const opt = await client.remoteOptimizer({ optimizer: 'toy@1.0.0' })
    server.faults.push(stepFault({ status: 503 }, 3))
    await opt.step(iota(2))
    expect(server.count('POST', '/v1/step')).toBe(4)
    // random() = 0.5 puts each delay at 3/4 of its ceiling: 250·2^k·0.75.
    expect(sleeps).toEqual([187.5, 375, 750])
  })

  it('caps the backoff at maxDelayMs and spreads it over [d/2, d)', () => {
    const policy = retryPolicy({ initialDelayMs: 100, maxDelayMs: 1000, random: () => 0 })
    expect([0, 1, 2, 3, 4, 5].map((k) => backoffMs(policy, k))).toEqual([50, 100, 200, 400, 500, 500])
    const high = retryPolicy({ initialDelayMs: 100, maxDelayMs: 1000, random: () => 0.999 })
    expect(backoffMs(high, 10)).toBeCloseTo(999.5)
  })

  it('retries network errors and 408, and gives up after maxRetries with the last error', async () => {
    const { server, client, sleeps } = fakeSetup({ retry: { maxRetries: 2 } })
    const opt = await client.remoteOptimizer({ optimizer: 'toy@1.0.0' })
    server.faults.push(stepFault('network', 1), stepFault({ status: 408, code: 'invalid_request' }, 1))
    await opt.step(iota(2))
    expect(server.count('POST', '/v1/step')).toBe(3)
    server.faults.push(stepFault('network', 3))
    await expect(opt.step(iota(2))).rejects.toBeInstanceOf(ConnectionError)
    expect(server.count('POST', '/v1/step')).toBe(6)
    expect(sleeps).toHaveLength(4)
  })

  it('honours Retry-After in seconds on 429', async () => {
    const { server, client, sleeps } = fakeSetup()
    const opt = await client.remoteOptimizer({ optimizer: 'toy@1.0.0' })
    server.faults.push(stepFault({ status: 429, code: 'rate_limited', headers: { 'Retry-After': '2' } }, 1))
    await opt.step(iota(2))
    expect(sleeps).toEqual([2000])
  })

  it('honours Retry-After as an HTTP date', () => {
    const now = Date.parse('2026-01-01T00:00:00Z')
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now)).toBe(5000)
    expect(parseRetryAfter('Wed, 31 Dec 2025 00:00:00 GMT', now)).toBe(0)
    expect(parseRetryAfter('soon', now)).toBeUndefined()
    expect(parseRetryAfter(null, now)).toBeUndefined()
  })

  it('fails fast with RateLimitError when Retry-After exceeds maxRetryAfterMs', async () => {
    const { server, client, sleeps } = fakeSetup({ retry: { maxRetryAfterMs: 1000 } })
    const opt = await client.remoteOptimizer({ optimizer: 'toy@1.0.0' })
    server.faults.push(stepFault({ status: 429, code: 'rate_limited', headers: { 'Retry-After': '30' } }, 1))
    const error = await opt.step(iota(2)).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(RateLimitError)
    expect((error as RateLimitError).retryAfterMs).toBe(30_000)
    expect(sleeps).toEqual([])
  })

  it('does not retry a 4xx such as 400', async () => {
    const { server, client, sleeps } = fakeSetup()
    const opt = await client.remoteOptimizer({ optimizer: 'toy@1.0.0' })
    server.faults.push(stepFault({ status: 400, code: 'shape_mismatch' }, 1))
    await expect(opt.step(iota(2))).rejects.toBeInstanceOf(ValidationError)
    expect(server.count('POST', '/v1/step')).toBe(1)
    expect(sleeps).toEqual([])
  })

  it('reuses one Idempotency-Key across the retries of a POST, and a new one per POST', async () => {
    const { server, client } = fakeSetup()
    const opt = await client.remoteOptimizer({ optimizer: 'toy@1.0.0' })
    server.faults.push(stepFault({ status: 502 }, 2))
    await opt.step(iota(2))
    await opt.step(iota(2))
    const keys = server.requests
      .filter((r) => r.path === '/v1/step')
      .map((r) => r.headers.get('Idempotency-Key'))
    expect(keys).toHaveLength(4)
    expect(new Set(keys.slice(0, 3)).size).toBe(1)
    expect(keys[3]).not.toBe(keys[0])
    expect(server.requests.find((r) => r.method === 'GET')!.headers.has('Idempotency-Key')).toBe(false)
  })

  it('times out a request that never answers, and retries it', async () => {
    const { server, client } = fakeSetup({ timeoutMs: 20, retry: { maxRetries: 1 } })
    const opt = await client.remoteOptimizer({ optimizer: 'toy@1.0.0' })
    server.faults.push(stepFault('hang', 2))
    await expect(opt.step(iota(2))).rejects.toBeInstanceOf(TimeoutError)
    expect(server.count('POST', '/v1/step')).toBe(2)
  })

  it('stops retrying when the caller aborts', async () => {
    const { server, client } = fakeSetup({
      retry: {
        sleep: (ms, signal) => new Promise((r) => setTimeout(r, ms)).then(() => signal?.throwIfAborted()),
      },
    })
    const opt = await client.remoteOptimizer({ optimizer: 'toy@1.0.0' })
    server.faults.push(stepFault({ status: 503 }, 10))
    const controller = new AbortController()
    setTimeout(() => controller.abort(new Error('stop')), 30)
    await expect(opt.step(iota(2), controller.signal)).rejects.toThrow('stop')
    expect(server.count('POST', '/v1/step')).toBeLessThan(10)
  })

  it('sends the API key as a bearer token and maps a 401 to AuthError', async () => {
    const { server, client } = fakeSetup({ apiKey: 'wrong' })
    await expect(client.resolve('toy')).rejects.toMatchObject({
      name: 'AuthError',
      status: 401,
      code: 'unauthorized',
    })
    expect(server.requests[0].headers.get('Authorization')).toBe('Bearer wrong')
  })

  it('reports a 5xx that never recovers as ServerError after maxRetries + 1 attempts', async () => {
    const { server, client } = fakeSetup()
    server.faults.push({ when: () => true, times: 99, kind: { status: 500 } })
    await expect(client.resolve('toy')).rejects.toBeInstanceOf(ServerError)
    expect(server.requests).toHaveLength(5)
  })
})
