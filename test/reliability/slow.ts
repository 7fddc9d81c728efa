/**
 * Slow bodies: connections (one client each) that send a whole binary step at the per-request limit
 * but its last byte, then stall. Each must get an answer and be closed by the body deadline, the
 * server's memory must stay bounded, and other clients must be served meanwhile.
 */
import net from 'node:net'
import { encode } from '../../src/safetensors'
import { json, send } from './http'
import { adminKey, type ServerProcess, watchMemory } from './server'

export interface SlowFigures {
  connections: number
  bodyMb: number
  answered: number
  statuses: Record<string, number>
  /** Longest time from sending a request to its answer, and to its connection being closed. */
  maxAnswerSeconds: number
  maxCloseSeconds: number
  peakRssMb: number
  /** A small step of another client while the slow bodies hang: its status and time. */
  otherStatus: number
  otherMs: number
}

export async function slowBodies(
  server: ServerProcess,
  options: { connections: number; numParams: number; waitSeconds: number },
): Promise<SlowFigures> {
  const base = server.url
  const n = options.numParams
  const { digest } = (await json(base, 'GET', '/v1/resolve?ref=l2o-mnist@1.1.0', adminKey)) as {
    digest: string
  }
  const body = encode(
    {
      grads: { dtype: 'F32', shape: [n], data: new Float32Array(n).fill(0.001) },
      state: { dtype: 'F32', shape: [n, 80], data: new Float32Array(n * 80) },
    },
    { optimizer: 'l2o-mnist@1.1.0', digest },
  )
  const keys: string[] = []
  for (let i = 0; i <= options.connections; i++) {
    const made = (await json(base, 'POST', '/v1/admin/clients', adminKey, { name: `slow-${i}` })) as {
      secret: string
    }
    keys.push(made.secret)
  }
  const memory = watchMemory(server)
  const started = performance.now()
  const port = Number(new URL(base).port)
  const outcomes = keys.slice(0, options.connections).map(
    (key) =>
      new Promise<{ status: number; answerMs: number; closeMs: number }>((resolve) => {
        const socket = net.connect(port, '127.0.0.1')
        let status = 0
        let answerMs = Number.POSITIVE_INFINITY
        let head = ''
        const timer = setTimeout(() => socket.destroy(), options.waitSeconds * 1000)
        socket.on('data', (chunk) => {
          if (status === 0) {
            head += chunk.toString('latin1')
            const m = /^HTTP\/1\.1 (\d{3})/.exec(head)
            if (m) {
              status = Number(m[1])
              answerMs = performance.now() - started
            }
          }
        })
        socket.on('error', () => {})
        socket.on('close', () => {
          clearTimeout(timer)
          resolve({ status, answerMs, closeMs: performance.now() - started })
        })
        socket.on('connect', () => {
          socket.write(
            `POST /v1/step HTTP/1.1\r\nHost: l2o\r\nAuthorization: Bearer ${key}\r\n` +
              `Content-Type: application/vnd.l2o.safetensors\r\nContent-Length: ${body.length}\r\n\r\n`,
          )
          socket.write(body.subarray(0, body.length - 1))
        })
      }),
  )
  // While they hang: another client's small step.
  await new Promise((resolve) => setTimeout(resolve, 2000))
  const small = encode(
    { grads: { dtype: 'F32', shape: [10], data: new Float32Array(10).fill(0.1) } },
    { optimizer: 'l2o-mnist@1.1.0' },
  )
  const other = await send(base, {
    method: 'POST',
    path: '/v1/step',
    headers: {
      authorization: `Bearer ${keys[options.connections]}`,
      'content-type': 'application/vnd.l2o.safetensors',
    },
    body: small,
  })
  const results = await Promise.all(outcomes)
  const statuses: Record<string, number> = {}
  for (const r of results) statuses[String(r.status)] = (statuses[String(r.status)] ?? 0) + 1
  return {
    connections: options.connections,
    bodyMb: body.length / 1048576,
    answered: results.filter((r) => r.status !== 0).length,
    statuses,
    maxAnswerSeconds: Math.max(...results.map((r) => r.answerMs)) / 1000,
    maxCloseSeconds: Math.max(...results.map((r) => r.closeMs)) / 1000,
    peakRssMb: memory.stop(),
    otherStatus: other.status,
    otherMs: other.ms,
  }
}
