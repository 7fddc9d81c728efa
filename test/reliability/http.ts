/** A small HTTP/1.1 client for the suite: keep-alive agents, raw bodies, every answer read whole. */
import http from 'node:http'

export interface Answer {
  status: number
  headers: http.IncomingHttpHeaders
  body: Buffer
  ms: number
}

export interface Request {
  method: string
  path: string
  headers?: Record<string, string>
  body?: Uint8Array | string
}

/** Sends one request; rejects on a connection error or after `timeoutMs`. */
export function send(
  base: string,
  request: Request,
  agent?: http.Agent,
  timeoutMs = 30_000,
): Promise<Answer> {
  const url = new URL(base)
  const start = performance.now()
  return new Promise((resolve, reject) => {
    const body = typeof request.body === 'string' ? Buffer.from(request.body) : request.body
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        method: request.method,
        path: request.path,
        headers: {
          ...(body === undefined ? {} : { 'content-length': String(body.byteLength) }),
          ...request.headers,
        },
        agent,
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
            ms: performance.now() - start,
          }),
        )
        res.on('error', reject)
      },
    )
    req.on('timeout', () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)))
    req.on('error', reject)
    req.end(body)
  })
}

/** JSON in, JSON out, for setting the server up. */
export async function json(
  base: string,
  method: string,
  path: string,
  key: string,
  body?: unknown,
): Promise<unknown> {
  const answer = await send(base, {
    method,
    path,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  if (answer.status >= 300)
    throw new Error(`${method} ${path}: ${answer.status} ${answer.body.toString().slice(0, 300)}`)
  return answer.body.length === 0 ? undefined : JSON.parse(answer.body.toString())
}

/** The value at quantile q (0..1) of some numbers. */
export function quantile(values: number[], q: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
}
