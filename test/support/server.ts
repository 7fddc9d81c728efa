/** Test helpers for the server: an app on in-memory SQLite with keys, weight files and body builders. */

import { afterAll, beforeAll, expect } from 'vitest'
import type { Architecture, Session } from '../../src/contract'
import { fusedLstmOptimizer, type Optimizer } from '../../src/core'
import { fusedKernel } from '../../src/runtime/kernel-node'
import { createNodeDeps } from '../../src/runtime/node'
import { initTf } from '../../src/runtime/tf-node'
import { decode, encode, type Tensor } from '../../src/safetensors'
import { createApp } from '../../src/server/app'
import { createClient } from '../../src/server/auth'
import type { AppDeps } from '../../src/server/deps'
import { publishVersion } from '../../src/server/registry/publish'
import { decodeLstmWeights, encodeLstmWeights } from '../../src/weights'
import { paperArchitecture, randomLstmWeights } from './random'

export { paperArchitecture }

/** A small architecture, so tests run fast: S = 2·1·4 = 8. */
export const tinyArchitecture: Architecture = {
  kind: 'lstm-cw',
  layers: 1,
  hidden: 4,
  preprocessing: 'none',
  outputScale: 0.1,
}

/** A weight file of random weights (deterministic in `seed`). */
export function weightFile(seed: number, architecture: Architecture = tinyArchitecture): Uint8Array {
  return encodeLstmWeights(randomLstmWeights(architecture, seed))
}

/** The learned optimizer of a weight file as the test servers step it (on the fused kernel). */
export function servedOptimizer(weights: Uint8Array): Optimizer {
  return fusedLstmOptimizer(decodeLstmWeights(weights), fusedKernel())
}

/** A fixed clock that moves one second per call, so timestamps differ and are predictable. */
export function steppingClock(start = Date.parse('2026-01-01T00:00:00Z')): () => Date {
  let t = start
  return () => {
    t += 1000
    return new Date(t)
  }
}

/** An app on in-memory SQLite with an admin, two clients, and `tiny@1.0.0` published. */
export async function testServer(options: Partial<AppDeps> = {}) {
  const node = createNodeDeps({ dataDir: ':memory:' })
  const deps: AppDeps = { ...node, now: steppingClock(), ...options }
  const app = createApp(() => deps)
  const random = (n: number) => crypto.getRandomValues(new Uint8Array(n))
  const now = new Date('2026-01-01T00:00:00Z')
  const admin = await createClient(deps.db, { name: 'admin', role: 'admin' }, now, random)
  const client = await createClient(deps.db, { name: 'alice', role: 'client' }, now, random)
  const other = await createClient(deps.db, { name: 'bob', role: 'client' }, now, random)
  const tiny = weightFile(1)
  const published = await publishVersion(deps.db, { name: 'tiny', version: '1.0.0', weights: tiny }, now)

  /**
   * Every row of every table, BLOBs as hex: equal snapshots mean nothing stored changed. The request
   * counters of the rate quotas (rate_windows) are left out: every request moves them.
   */
  const snapshot = (): string => {
    const tables = node.sqlite
      .prepare(
        "select name from sqlite_master where type = 'table' and name not like 'sqlite_%' and name <> 'rate_windows' order by name",
      )
      .all() as { name: string }[]
    const dump: Record<string, unknown[]> = {}
    for (const { name } of tables) dump[name] = node.sqlite.prepare(`select * from "${name}"`).all()
    return JSON.stringify(dump, (_k, v) =>
      v && typeof v === 'object' && v.type === 'Buffer' ? Buffer.from(v.data).toString('hex') : v,
    )
  }
  const auth = (secret: string) => ({ authorization: `Bearer ${secret}` })
  return {
    app,
    deps,
    sqlite: node.sqlite,
    close: node.close,
    snapshot,
    adminKey: admin.secret,
    clientKey: client.secret,
    otherKey: other.secret,
    clientId: client.client.id,
    adminAuth: auth(admin.secret),
    clientAuth: auth(client.secret),
    otherAuth: auth(other.secret),
    tiny: { bytes: tiny, digest: published.digest },
  }
}

/** What testServer resolves to. */
export type TestServer = Awaited<ReturnType<typeof testServer>>

/**
 * A testServer for one test file: made before its tests (with tfjs on wasm when `tf`), closed after
 * them. The object returned reads through to it, so tests write `s.app`, `s.clientAuth`, ….
 */
export function useTestServer(options: Partial<AppDeps> = {}, { tf = false } = {}): TestServer {
  let server: TestServer | undefined
  beforeAll(async () => {
    server = await testServer(options)
    if (tf) await initTf('wasm')
  })
  afterAll(() => server?.close())
  return new Proxy({} as TestServer, { get: (_target, key) => Reflect.get(server as TestServer, key) })
}

/** A binary step body. */
export function binaryBody(tensors: Record<string, Tensor>, metadata?: Record<string, string>): Uint8Array {
  return encode(tensors, metadata)
}

/** F32 tensor helper. */
export function f32(shape: number[], data: Float32Array | number[]): Tensor {
  return { dtype: 'F32', shape, data: data instanceof Float32Array ? data : Float32Array.from(data) }
}

/** The media type of binary bodies, as a header. */
export const binaryType = { 'content-type': 'application/vnd.l2o.safetensors' }
export const jsonType = { 'content-type': 'application/json' }

/**
 * Creates a 3-coordinate session of `optimizer` with an F16 state and steps it `steps` times on
 * gradients of 1e6, −1e20 and 0.5 (an F16 state saturates at ±65504): every step must answer 200
 * with finite updates.
 */
export async function expectF16SessionFinite(s: TestServer, optimizer: string, steps: number): Promise<void> {
  const created = await s.app.request('/v1/sessions', {
    method: 'POST',
    body: JSON.stringify({ optimizer, numParams: 3, stateDtype: 'F16' }),
    headers: { ...s.clientAuth, ...jsonType },
  })
  const session = (await created.json()) as Session
  for (let t = 1; t <= steps; t++) {
    const res = await s.app.request(`/v1/sessions/${session.id}/shards/0/steps/${t}`, {
      method: 'POST',
      body: binaryBody({ grads: f32([3], [1e6, -1e20, 0.5]) }),
      headers: { ...s.clientAuth, ...binaryType },
    })
    expect(res.status).toBe(200)
    const updates = decode(new Uint8Array(await res.arrayBuffer())).tensors.get('updates')!
      .data as Float32Array
    expect(Array.from(updates).every(Number.isFinite), `step ${t}: ${updates}`).toBe(true)
  }
}
