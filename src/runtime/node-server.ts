/**
 * The Node server's limits under load and hostile clients (issue 11): how many steps the compute
 * queue admits, how long a body may take, how much memory the bodies in flight may hold; and the
 * HTTP edges: a refused request's body is read before the refusal goes out (a client that writes
 * its whole body before reading, such as Python's urllib with Connection: close, would otherwise
 * see a broken pipe instead of the answer), and clients that half-close after their request still
 * get it.
 */
import { type IncomingMessage, type Server, STATUS_CODES } from 'node:http'
import type { Duplex } from 'node:stream'
import { type HttpBindings, serve } from '@hono/node-server'
import { headerNames, problemMediaType } from '../contract'
import { ApiError, problemBody } from '../server/errors'

/** Limits of `npm start`; the README lists them with their flags and variables. */
export interface NodeLimits {
  /** Steps one client may have in flight (waiting or computing); past it 429. */
  queuePerClient: number
  /** Steps in flight over all clients; past it 503. */
  queueTotal: number
  /** Time from a request's headers to the last byte of its body; past it 408. */
  bodyTimeoutMs: number
  /** Bytes the bodies in flight may hold together; past it 503. */
  bodyBudgetBytes: number
}

/**
 * The defaults: the SDKs' 4 requests in flight per client fit twice; 128 MiB of bodies is 6 steps
 * at 65,536 coordinates (more would only wait for the one core that computes), and keeps the
 * server under 512 MB with 20-30 such bodies arriving at once. With 192 MiB the reliability
 * suite's large steps (20 clients at 65,536) peaked at 507-530 MB and answered as many (101-113
 * against 92-107 in 20 s, one run each); at 128 MiB 403-411 MB.
 */
export const defaultNodeLimits: NodeLimits = {
  queuePerClient: 8,
  queueTotal: 256,
  bodyTimeoutMs: 20_000,
  bodyBudgetBytes: 128 * 1024 * 1024,
}

/** Each limit's command-line flag and environment variable, and the unit its value is in. */
export const nodeLimitSettings: Record<keyof NodeLimits, { flag: string; variable: string; scale: number }> =
  {
    queuePerClient: { flag: 'queue-per-client', variable: 'L2O_QUEUE_PER_CLIENT', scale: 1 },
    queueTotal: { flag: 'queue-total', variable: 'L2O_QUEUE_TOTAL', scale: 1 },
    bodyTimeoutMs: { flag: 'body-timeout-ms', variable: 'L2O_BODY_TIMEOUT_MS', scale: 1 },
    bodyBudgetBytes: { flag: 'body-budget-mb', variable: 'L2O_BODY_BUDGET_MB', scale: 1024 * 1024 },
  }

/** The limits from flags (--queue-per-client 16), else variables (L2O_QUEUE_PER_CLIENT=16), else defaults. */
export function nodeLimitsFrom(
  flags: Record<string, string | undefined>,
  variables: Record<string, string | undefined>,
): NodeLimits {
  const limits = { ...defaultNodeLimits }
  for (const [key, { flag, variable, scale }] of Object.entries(nodeLimitSettings) as [
    keyof NodeLimits,
    (typeof nodeLimitSettings)[keyof NodeLimits],
  ][]) {
    const text = flags[flag] ?? variables[variable]
    if (text === undefined) continue
    const value = Number(text)
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new Error(`--${flag} (${variable}) must be a whole number ≥ 1, got '${text}'`)
    }
    limits[key] = value * scale
  }
  return limits
}

/** The memory budget of the bodies in flight. */
export class BodyBudget {
  private held = 0

  constructor(readonly bytes: number) {}

  /** Bytes held now. */
  get heldBytes(): number {
    return this.held
  }

  /** Holds `bytes` until the returned function is called, or throws 503 overloaded. */
  reserve(bytes: number): () => void {
    if (this.held + bytes > this.bytes) {
      throw new ApiError(
        'overloaded',
        `the server holds ${Math.round(this.held / 1048576)} MiB of request bodies, its budget; retry after the Retry-After seconds or send a smaller body`,
        { budgetBytes: this.bytes },
        { [headerNames.retryAfter]: '1' },
      )
    }
    this.held += bytes
    let released = false
    return () => {
      if (released) return
      released = true
      this.held -= bytes
    }
  }
}

const arrivals = new WeakMap<IncomingMessage, number>()

/** When a request's body must be in: its arrival (first seen here) plus the body timeout. */
export function deadlineOf(incoming: IncomingMessage, limits: NodeLimits): number {
  let arrival = arrivals.get(incoming)
  if (arrival === undefined) {
    arrival = Date.now()
    arrivals.set(incoming, arrival)
  }
  return arrival + limits.bodyTimeoutMs
}

/** Bodies of refused requests are read and dropped up to this many bytes (more than any accepted body). */
export const maxDrainBytes = 64 * 1024 * 1024

/**
 * Returns `response` once the request's body is all in: what is left of it is read and dropped, up
 * to maxDrainBytes and the body's deadline, so a client that sends its whole body before reading
 * sees the answer (an early refusal: 401, 409, 413 …). A body that cannot be read in time or is
 * too big gets `Connection: close` instead: the server stops reading it.
 */
export async function settleBody(
  incoming: IncomingMessage,
  response: Response,
  limits: NodeLimits,
): Promise<Response> {
  if (incoming.complete || incoming.destroyed) return response
  const declared = Number(incoming.headers['content-length'] ?? Number.NaN)
  const deadline = deadlineOf(incoming, limits)
  const drained =
    !(declared > maxDrainBytes) &&
    (await new Promise<boolean>((resolve) => {
      let seen = 0
      const done = (ended: boolean) => {
        clearTimeout(timer)
        incoming.off('data', onData)
        incoming.off('end', onEnd)
        incoming.off('close', onClose)
        resolve(ended)
      }
      const onData = (chunk: Buffer) => {
        seen += chunk.length
        if (seen > maxDrainBytes) done(false)
      }
      const onEnd = () => done(true)
      const onClose = () => done(incoming.complete)
      const timer = setTimeout(() => done(false), Math.max(0, deadline - Date.now()))
      incoming.on('data', onData)
      incoming.once('end', onEnd)
      incoming.once('close', onClose)
      incoming.resume()
    }))
  if (drained) return response
  const headers = new Headers(response.headers)
  headers.set('connection', 'close')
  return new Response(response.body, { status: response.status, headers })
}

/**
 * Serves `fetch` as `npm start` does: Node's own timeouts as a backstop behind the body deadline
 * (checked every second, not every 30), and answers for clients that half-close after a complete
 * request. Node ends such a socket unless `httpAllowHalfOpen` is set, a field of http.Server
 * that Node reads in its socket 'end' handler but does not document (test/node/hygiene.test.ts
 * checks it still works).
 */
export function serveNode(
  fetch: (request: Request, env: HttpBindings) => Promise<Response>,
  options: { port: number; hostname: string; limits: NodeLimits },
  onListening?: (port: number) => void,
): Server {
  const { limits } = options
  const server = serve(
    {
      fetch: fetch as never,
      port: options.port,
      hostname: options.hostname,
      serverOptions: {
        requestTimeout: limits.bodyTimeoutMs + 10_000,
        headersTimeout: Math.min(limits.bodyTimeoutMs + 5_000, 20_000),
        connectionsCheckingInterval: 1_000,
      },
    },
    (info) => onListening?.(info.port),
  ) as Server
  ;(server as Server & { httpAllowHalfOpen?: boolean }).httpAllowHalfOpen = true
  server.on('clientError', answerClientError)
  return server
}

/**
 * Requests Node's HTTP parser refuses before the app sees them (headers over 16 KB, malformed
 * HTTP, Node's own timeouts) get a problem+json answer like every other refusal; a client that is
 * gone (reset, closed) is dropped without logging anything.
 */
export function answerClientError(
  error: Error & { code?: string; rawPacket?: Buffer },
  socket: Duplex,
): void {
  if (error.code === 'ECONNRESET' || error.code === 'EPIPE' || !socket.writable) {
    socket.destroy()
    return
  }
  const refusal =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? new ApiError('headers_too_large', 'the request headers are over 16 KB; send a shorter request')
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' || error.code === 'HPE_HEADERS_TIMEOUT'
        ? new ApiError('request_timeout', 'the request did not arrive in time; send it without pausing')
        : new ApiError('invalid_request', 'the request is not valid HTTP/1.1')
  const body = JSON.stringify(problemBody(refusal, undefined))
  // An answer to HEAD has no body (its Content-Length still says how long it would be).
  const head = error.rawPacket?.subarray(0, 5).toString('latin1') === 'HEAD '
  socket.end(
    `HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status]}\r\nContent-Type: ${problemMediaType}\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${head ? '' : body}`,
  )
}
