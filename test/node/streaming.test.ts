/** The Node runtime's pipelined binary step over real HTTP: bodies used while they arrive, answers streamed. */

import { readFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import net from 'node:net'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createNodeApp } from '../../src/runtime/node'
import { defaultNodeLimits, serveNode } from '../../src/runtime/node-server'
import { initTf } from '../../src/runtime/tf-node'
import { decode, encode, f32ToBf16 } from '../../src/safetensors'
import { chunkCoordinates } from '../../src/server/compute'
import { publishVersion } from '../../src/server/registry/publish'
import { randomGradients } from '../support/random'
import { paperArchitecture, servedOptimizer, testServer, weightFile } from '../support/server'

type Server = Awaited<ReturnType<typeof testServer>>
let s: Server
let url: string
let close: () => void
const weights = weightFile(5, paperArchitecture)
let digest: string
/** A `tanh-rms` output with a `gain` (S = 41), whose step pools over the whole request. */
const gainWeights = new Uint8Array(
  readFileSync(
    path.join(
      import.meta.dirname,
      '../fixtures/extended/moments-logrms-elu-tanhrms-decay-gain/model.safetensors',
    ),
  ),
)
let gainDigest: string

beforeAll(async () => {
  s = await testServer()
  await initTf('wasm')
  digest = (await publishVersion(s.deps.db, { name: 'paper', version: '1.0.0', weights }, new Date())).digest
  gainDigest = (
    await publishVersion(s.deps.db, { name: 'gain', version: '1.0.0', weights: gainWeights }, new Date())
  ).digest
  const server = serveNode(createNodeApp(s.deps).fetch, {
    port: 0,
    hostname: '127.0.0.1',
    limits: defaultNodeLimits,
  })
  await new Promise<void>((resolve) => server.once('listening', () => resolve()))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  close = () => server.close()
})
afterAll(() => {
  close()
  s.close()
})

const bytesOf = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength)
const post = (path: string, body: BodyInit, headers: Record<string, string> = {}) =>
  fetch(`${url}${path}`, {
    method: 'POST',
    body,
    headers: { ...s.clientAuth, 'content-type': 'application/vnd.l2o.safetensors', ...headers },
    duplex: 'half',
  } as RequestInit)

describe('binary steps over HTTP (Node runtime)', () => {
  const n = 3 * chunkCoordinates(80) + 17
  const grads = randomGradients(n, 21)
  let opt: ReturnType<typeof servedOptimizer>
  let first: { updates: Float32Array; state: Float32Array }
  let second: { updates: Float32Array; state: Float32Array }
  beforeAll(() => {
    opt = servedOptimizer(weights)
    first = opt.update(grads, opt.init(n))
    second = opt.update(grads, first.state)
  })

  it('answers a multi-chunk step with exactly the in-process numbers', async () => {
    const res = await post(
      '/v1/step',
      encode(
        {
          grads: { dtype: 'F32', shape: [n], data: grads },
          state: { dtype: 'F32', shape: [n, 80], data: first.state },
        },
        {
          optimizer: 'paper',
          digest,
        },
      ),
    )
    expect(res.status).toBe(200)
    const body = new Uint8Array(await res.arrayBuffer())
    expect(Number(res.headers.get('content-length'))).toBe(body.length)
    const file = decode(body)
    expect(bytesOf(file.tensors.get('updates')!.data).equals(bytesOf(second.updates))).toBe(true)
    expect(bytesOf(file.tensors.get('state')!.data).equals(bytesOf(second.state))).toBe(true)
    expect(file.metadata).toEqual({ optimizer: 'paper@1.0.0', digest })
  })

  it('keeps a BF16 state in BF16', async () => {
    const state = f32ToBf16(first.state)
    const res = await post(
      '/v1/step',
      encode(
        {
          grads: { dtype: 'F32', shape: [n], data: grads },
          state: { dtype: 'BF16', shape: [n, 80], data: state },
        },
        {
          optimizer: 'paper',
          digest,
        },
      ),
    )
    const file = decode(new Uint8Array(await res.arrayBuffer()))
    expect(file.tensors.get('state')!.dtype).toBe('BF16')
    expect(file.tensors.get('state')!.shape).toEqual([n, 80])
  })

  it('reads a body sent without Content-Length (chunked)', async () => {
    const bytes = encode({ grads: { dtype: 'F32', shape: [n], data: grads } }, { optimizer: 'paper' })
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let at = 0; at < bytes.length; at += 100_000) controller.enqueue(bytes.slice(at, at + 100_000))
        controller.close()
      },
    })
    const res = await post('/v1/step', stream)
    expect(res.status).toBe(200)
    const file = decode(new Uint8Array(await res.arrayBuffer()))
    expect(bytesOf(file.tensors.get('updates')!.data).equals(bytesOf(first.updates))).toBe(true)
  })

  it.each([
    ['near its end', (length: number) => length - 3],
    // The first chunk's state is checked (and stepped in place) while the rest still arrives.
    ['in its first chunk', () => 5],
    ['in a middle chunk', (length: number) => Math.floor(length / 2) + 1],
  ])(
    'refuses a state that turns non-finite %s with a clean problem, before answering',
    async (_where, at) => {
      const state = first.state.slice()
      const bad = at(state.length)
      state[bad] = Number.POSITIVE_INFINITY
      const before = s.snapshot()
      const res = await post(
        '/v1/step',
        encode(
          {
            grads: { dtype: 'F32', shape: [n], data: grads },
            state: { dtype: 'F32', shape: [n, 80], data: state },
          },
          {
            optimizer: 'paper',
            digest,
          },
        ),
      )
      expect(res.status).toBe(400)
      expect(res.headers.get('content-type')).toBe('application/problem+json')
      expect(await res.json()).toMatchObject({ code: 'invalid_request', index: bad })
      expect(s.snapshot()).toBe(before)
    },
  )

  it.each([0, 4096, n - 1])(
    'refuses a large body with a non-finite gradient at %i, storing nothing',
    async (bad) => {
      const g = grads.slice()
      g[bad] = Number.NaN
      const before = s.snapshot()
      const res = await post(
        '/v1/step',
        encode(
          {
            grads: { dtype: 'F32', shape: [n], data: g },
            state: { dtype: 'F32', shape: [n, 80], data: first.state },
          },
          { optimizer: 'paper', digest },
        ),
      )
      expect(res.status).toBe(422)
      expect(res.headers.get('content-type')).toBe('application/problem+json')
      expect(await res.json()).toMatchObject({ code: 'non_finite_gradient', index: bad })
      expect(s.snapshot()).toBe(before)
    },
  )

  it('refuses a declared body over the limit without reading it', async () => {
    const status = await new Promise<string>((resolve, reject) => {
      const port = Number(new URL(url).port)
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.write(
          `POST /v1/step HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${s.clientKey}\r\nContent-Type: application/vnd.l2o.safetensors\r\nContent-Length: 999999999\r\n\r\n`,
        )
      })
      let answer = ''
      socket.on('data', (d) => {
        answer += d.toString()
        if (answer.includes('\r\n\r\n')) {
          socket.destroy()
          resolve(answer.split('\r\n')[0])
        }
      })
      socket.on('error', reject)
    })
    expect(status).toBe('HTTP/1.1 413 Payload Too Large')
  })

  it('survives a client that hangs up mid-body, and keeps serving', async () => {
    const bytes = encode({ grads: { dtype: 'F32', shape: [n], data: grads } }, { optimizer: 'paper' })
    await new Promise<void>((resolve) => {
      const port = Number(new URL(url).port)
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.write(
          `POST /v1/step HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${s.clientKey}\r\nContent-Type: application/vnd.l2o.safetensors\r\nContent-Length: ${bytes.length}\r\n\r\n`,
        )
        socket.write(bytes.subarray(0, 5000))
        setTimeout(() => {
          socket.destroy()
          resolve()
        }, 50)
      })
    })
    const res = await fetch(`${url}/healthz`)
    expect(res.status).toBe(200)
  })

  it('replays a session step byte for byte over HTTP', async () => {
    const created = await fetch(`${url}/v1/sessions`, {
      method: 'POST',
      body: JSON.stringify({ optimizer: 'paper', numParams: 100 }),
      headers: { ...s.clientAuth, 'content-type': 'application/json' },
    })
    const { id } = (await created.json()) as { id: string }
    const body = encode({ grads: { dtype: 'F32', shape: [100], data: grads.subarray(0, 100) } })
    const a = new Uint8Array(await (await post(`/v1/sessions/${id}/shards/0/steps/1`, body)).arrayBuffer())
    const b = new Uint8Array(await (await post(`/v1/sessions/${id}/shards/0/steps/1`, body)).arrayBuffer())
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true)
    expect(
      bytesOf(decode(a).tensors.get('updates')!.data).equals(
        bytesOf(opt.update(grads.subarray(0, 100), opt.init(100)).updates),
      ),
    ).toBe(true)
  })
})

describe('a binary step that pools over the request (a gain) over HTTP', () => {
  const S = 41
  const n = 3 * chunkCoordinates(S) + 17
  const grads = randomGradients(n, 31)
  let opt: ReturnType<typeof servedOptimizer>
  let state: Float32Array
  beforeAll(() => {
    opt = servedOptimizer(gainWeights)
    // Two steps in: the next one is every coordinate's third, where the gain latches (T = 3).
    const [g1, g2] = [randomGradients(n, 32), randomGradients(n, 33).map(Math.abs)]
    state = opt.update(g2, opt.update(g1, opt.init(n)).state).state
  })

  /** A body streamed in pieces of 100 kB, so the state arrives after the first calls could start. */
  const streamed = (bytes: Uint8Array) =>
    new ReadableStream<Uint8Array>({
      async pull(controller) {
        for (let at = 0; at < bytes.length; at += 100_000) {
          controller.enqueue(bytes.slice(at, at + 100_000))
          await new Promise((resolve) => setTimeout(resolve, 1))
        }
        controller.close()
      },
    })
  const body = (s: Float32Array) =>
    encode(
      {
        grads: { dtype: 'F32', shape: [n], data: grads },
        state: { dtype: 'F32', shape: [n, S], data: s },
      },
      { optimizer: 'gain', digest: gainDigest },
    )

  it('answers a multi-chunk step streamed in pieces with the in-process numbers of one call', async () => {
    const want = opt.update(grads, state)
    const res = await post('/v1/step', streamed(body(state)))
    expect(res.status).toBe(200)
    const file = decode(new Uint8Array(await res.arrayBuffer()))
    expect(bytesOf(file.tensors.get('updates')!.data).equals(bytesOf(want.updates))).toBe(true)
    expect(bytesOf(file.tensors.get('state')!.data).equals(bytesOf(want.state))).toBe(true)
    // Stepped as separate calls of chunkCoordinates(S), the updates would differ.
    const first = opt.update(
      grads.subarray(0, chunkCoordinates(S)),
      state.subarray(0, chunkCoordinates(S) * S),
    )
    expect(bytesOf(first.updates).equals(bytesOf(want.updates.subarray(0, chunkCoordinates(S))))).toBe(false)
  })

  it('refuses a state that turns non-finite in its last chunk before any call, storing nothing', async () => {
    const bad = state.slice()
    const at = bad.length - 5
    bad[at] = Number.NaN
    const before = s.snapshot()
    const res = await post('/v1/step', streamed(body(bad)))
    expect(res.status).toBe(400)
    expect(await res.json()).toMatchObject({ code: 'invalid_request', index: at })
    expect(s.snapshot()).toBe(before)
  })
})
