/**
 * The Node server's HTTP edges over real sockets (node-server.ts): refusals a client that writes
 * its whole body first still reads, half-closed clients, body deadlines, the body budget and the
 * admission of steps before their bodies are read.
 */
import type { Server } from 'node:http'
import net from 'node:net'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { createNodeApp } from '../../src/runtime/node'
import { defaultNodeLimits, type NodeLimits, serveNode } from '../../src/runtime/node-server'
import { encode } from '../../src/safetensors'
import { testServer } from '../support/server'

type TestServer = Awaited<ReturnType<typeof testServer>>
let s: TestServer
const servers: Server[] = []

beforeAll(async () => {
  s = await testServer()
})
afterAll(() => {
  for (const server of servers) server.close()
  s.close()
})

async function listen(limits: Partial<NodeLimits> = {}): Promise<number> {
  const all = { ...defaultNodeLimits, ...limits }
  const server = serveNode(createNodeApp(s.deps, all).fetch, { port: 0, hostname: '127.0.0.1', limits: all })
  servers.push(server)
  await new Promise<void>((resolve) => server.once('listening', () => resolve()))
  return (server.address() as net.AddressInfo).port
}

/** Sends raw bytes (and half-closes when asked), then reads until the server closes or `untilMs`. */
function exchange(
  port: number,
  chunks: (string | Uint8Array)[],
  options: { halfClose?: boolean; untilMs?: number } = {},
): Promise<{ text: string; closed: boolean; error?: string; ms: number }> {
  return new Promise((resolve) => {
    const start = Date.now()
    const socket = net.connect(port, '127.0.0.1')
    let text = ''
    let error: string | undefined
    const finish = (closed: boolean) => {
      clearTimeout(timer)
      socket.destroy()
      resolve({ text, closed, error, ms: Date.now() - start })
    }
    const timer = setTimeout(() => finish(false), options.untilMs ?? 10_000)
    socket.on('data', (d) => {
      text += d.toString('latin1')
    })
    socket.on('error', (e) => {
      error = (e as NodeJS.ErrnoException).code ?? e.message
    })
    socket.on('close', () => finish(true))
    socket.on('connect', () => {
      for (const chunk of chunks) socket.write(chunk)
      if (options.halfClose) socket.end()
    })
  })
}

const head = (method: string, path: string, headers: Record<string, string | number>) =>
  `${method} ${path} HTTP/1.1\r\nHost: l2o\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`

describe('the Node server at its HTTP edges', () => {
  let port: number
  beforeAll(async () => {
    port = await listen()
  })

  it('lets a client that writes its whole body before reading see an early refusal', async () => {
    const body = new Uint8Array(4 << 20)
    for (const [headers, status] of [
      [
        {
          authorization: 'Bearer l2o_not_a_key_at_all_000',
          'content-type': 'application/vnd.l2o.safetensors',
        },
        401,
      ],
      [{ ...s.clientAuth, 'content-type': 'text/plain' }, 415],
    ] as const) {
      const request = head('POST', '/v1/step', {
        ...headers,
        'content-length': body.length,
        connection: 'close',
      })
      const answer = await exchange(port, [request, body])
      expect(answer.error).toBeUndefined()
      expect(answer.text.startsWith(`HTTP/1.1 ${status}`)).toBe(true)
    }
  })

  it('answers a client that half-closes after a complete request', async () => {
    const json = JSON.stringify({ optimizer: 'sgd', hyperparameters: { learningRate: 1 }, grads: [1] })
    const request = head('POST', '/v1/step', {
      ...s.clientAuth,
      'content-type': 'application/json',
      'content-length': json.length,
    })
    const errors = vi.spyOn(console, 'error')
    const answer = await exchange(port, [request, json], { halfClose: true })
    expect(answer.text.startsWith('HTTP/1.1 200')).toBe(true)
    expect(answer.text).toContain('"updates":[-1]')
    // A binary step, streamed, to a half-closed client: answered, and nothing logged as an error.
    const body = encode(
      { grads: { dtype: 'F32', shape: [3000], data: new Float32Array(3000).fill(0.1) } },
      { optimizer: 'tiny' },
    )
    const binary = head('POST', '/v1/step', {
      ...s.clientAuth,
      'content-type': 'application/vnd.l2o.safetensors',
      'content-length': body.length,
    })
    const streamed = await exchange(port, [binary, body], { halfClose: true })
    expect(streamed.text.startsWith('HTTP/1.1 200')).toBe(true)
    expect(streamed.text.length).toBeGreaterThan(3000 * 8 * 4)
    expect(errors).not.toHaveBeenCalled()
    errors.mockRestore()
  })
})

describe('limits of the Node server', () => {
  it('answers 408 and closes the connection when a body does not arrive by its deadline', async () => {
    const port = await listen({ bodyTimeoutMs: 1000 })
    const request = head('POST', '/v1/step', {
      ...s.clientAuth,
      'content-type': 'application/json',
      'content-length': 1000,
    })
    const answer = await exchange(port, [request, '{"optimizer":'])
    expect(answer.text.startsWith('HTTP/1.1 408')).toBe(true)
    expect(answer.text).toContain('request_timeout')
    expect(answer.closed).toBe(true)
    expect(answer.ms).toBeLessThan(5000)
  })

  it('refuses a body that would take the bodies in flight past their budget: 503 with Retry-After', async () => {
    const port = await listen({ bodyBudgetBytes: 1 << 20, bodyTimeoutMs: 3000 })
    const big = (n: number) =>
      head('POST', '/v1/step', { ...s.clientAuth, 'content-type': 'application/json', 'content-length': n })
    const holding = exchange(port, [big(800_000), '{'], { untilMs: 8000 })
    await new Promise((resolve) => setTimeout(resolve, 300))
    const refused = await exchange(port, [big(800_000), '{'], { untilMs: 8000 })
    expect(refused.text.startsWith('HTTP/1.1 503')).toBe(true)
    expect(refused.text).toMatch(/retry-after: \d+/i)
    expect(refused.text).toContain('overloaded')
    expect((await holding).text.startsWith('HTTP/1.1 408')).toBe(true)
  })

  it("admits a client's steps before reading their bodies: past its share, 429 with Retry-After", async () => {
    const port = await listen({ queuePerClient: 1, bodyTimeoutMs: 3000 })
    const step = (more: Record<string, string> = {}) =>
      head('POST', '/v1/step', {
        ...s.clientAuth,
        'content-type': 'application/json',
        'content-length': 100,
        ...more,
      })
    const holding = exchange(port, [step(), '{'], { untilMs: 8000 })
    await new Promise((resolve) => setTimeout(resolve, 300))
    const second = await exchange(port, [step({ connection: 'close' }), ' '.repeat(100)])
    expect(second.text.startsWith('HTTP/1.1 429')).toBe(true)
    expect(second.text).toMatch(/retry-after: \d+/i)
    expect(second.text).toContain('rate_limited')
    // Another client is not affected.
    const other = head('POST', '/v1/step', {
      ...s.otherAuth,
      'content-type': 'application/json',
      'content-length': 2,
      connection: 'close',
    })
    expect((await exchange(port, [other, '{}'])).text.startsWith('HTTP/1.1 400')).toBe(true)
    await holding
  })
})

describe("refusals of Node's HTTP parser", () => {
  it('are problem+json too: headers over 16 KB get 431, malformed HTTP 400', async () => {
    const port = await listen()
    const long = await exchange(port, [head('GET', '/healthz', { 'x-long': 'x'.repeat(20_000) })])
    expect(long.text.startsWith('HTTP/1.1 431')).toBe(true)
    expect(long.text).toContain('application/problem+json')
    expect(long.text).toContain('"code":"headers_too_large"')
    const malformed = await exchange(port, ['GET /healthz HTTP/9\r\n\r\n'])
    expect(malformed.text.startsWith('HTTP/1.1 400')).toBe(true)
    expect(malformed.text).toContain('"code":"invalid_request"')
  })
})

describe('HEAD refused by the parser', () => {
  it('gets the status without a body', async () => {
    const port = await listen()
    const answer = await exchange(port, [`HEAD /healthz?${'q'.repeat(20_000)} HTTP/1.1\r\nHost: l2o\r\n\r\n`])
    expect(answer.text.startsWith('HTTP/1.1 431')).toBe(true)
    expect(answer.text.endsWith('\r\n\r\n')).toBe(true)
  })
})

describe('the memory budget of the bodies in flight', () => {
  it('counts an answer that needs a state of its own (no state sent), and refuses it past the budget', async () => {
    const port = await listen({ bodyBudgetBytes: 512 * 1024 })
    const n = 20_000
    const body = encode(
      { grads: { dtype: 'F32', shape: [n], data: new Float32Array(n).fill(0.01) } },
      { optimizer: 'tiny' },
    )
    const request = head('POST', '/v1/step', {
      ...s.clientAuth,
      'content-type': 'application/vnd.l2o.safetensors',
      'content-length': body.length,
      connection: 'close',
    })
    // The body is 80 KB; the answer's state, 20,000 × 8 floats, is 640 KB.
    const answer = await exchange(port, [request, body])
    expect(answer.text.startsWith('HTTP/1.1 503')).toBe(true)
    expect(answer.text).toContain('overloaded')
  })
})
