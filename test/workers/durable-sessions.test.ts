import { abortAllDurableObjects, listDurableObjectIds } from 'cloudflare:test'
import { env, exports } from 'cloudflare:workers'
import { beforeAll, describe, expect, it } from 'vitest'
import type { StateDtype } from '../../src/contract'
import { decode, encode, type Tensor } from '../../src/safetensors'
import { objectCount, objectName } from '../../src/server/sessions/durable-store'
import { randomGradients } from '../support/random'
import { auth, seed } from './seed'

// Sessions through the real Worker, their shards in SessionShards Durable Objects (wrangler.toml),
// stepped with the shipped paper-size optimizer (S = 80): what only the objects can show. The
// semantics every store shares are in session-store.test.ts; the parity with Node in sessions.test.ts.
const optimizer = 'l2o-mnist@1.1.0'
const binary = { 'content-type': 'application/vnd.l2o.safetensors' }

const call = (method: string, path: string, body?: BodyInit, headers: Record<string, string> = {}) =>
  exports.default.fetch(
    new Request(`http://l2o.test${path}`, { method, body, headers: { ...auth('client'), ...headers } }),
  )

interface Session {
  id: string
  digest: string
  numParams: number
  shardSize: number
  stateSize: number
  /** Each shard's coordinates, from the compact layout the create answer gives (shardSize, shardCount). */
  shards: { index: number; offset: number; length: number }[]
}

async function createSession(numParams: number, stateDtype: StateDtype = 'F32'): Promise<Session> {
  const body = JSON.stringify({ optimizer, numParams, stateDtype })
  const response = await call('POST', '/v1/sessions', body, { 'content-type': 'application/json' })
  expect(response.status).toBe(201)
  const created = (await response.json()) as Omit<Session, 'shards'> & { shardCount: number }
  const shards = Array.from({ length: created.shardCount }, (_, index) => {
    const offset = index * created.shardSize
    return { index, offset, length: Math.min(created.shardSize, created.numParams - offset) }
  })
  return { ...created, shards }
}

const sessionStep = (id: string, shard: number, t: number, grads: Float32Array) =>
  call(
    'POST',
    `/v1/sessions/${id}/shards/${shard}/steps/${t}`,
    encode({ grads: { dtype: 'F32', shape: [grads.length], data: grads } }),
    binary,
  )

async function updatesOf(response: Response): Promise<Float32Array> {
  if (response.status !== 200) expect.fail(`${response.status}: ${await response.text()}`)
  return decode(new Uint8Array(await response.arrayBuffer())).tensors.get('updates')!.data as Float32Array
}

/** The stateless step of the same optimizer, the client holding the state in `dtype`. */
async function statelessStep(
  grads: Float32Array,
  state: Tensor | undefined,
  dtype: StateDtype,
  digest: string,
) {
  const tensors: Record<string, Tensor> = { grads: { dtype: 'F32', shape: [grads.length], data: grads } }
  if (state !== undefined) tensors.state = state
  const metadata = { optimizer, digest, state_dtype: dtype }
  const response = await call('POST', '/v1/step', encode(tensors, metadata), binary)
  if (response.status !== 200) expect.fail(`${response.status}: ${await response.text()}`)
  const file = decode(new Uint8Array(await response.arrayBuffer()))
  return { updates: file.tensors.get('updates')!.data as Float32Array, state: file.tensors.get('state')! }
}

/** What the objects of a session hold: each object's shard steps, by object, asked over RPC. */
const heldSteps = (session: Session) =>
  Promise.all(
    Array.from({ length: objectCount(session) }, (_, k) =>
      env.SESSION_SHARDS.getByName(objectName(session.id, k)).steps(session.id),
    ),
  )

beforeAll(seed)

describe('sessions in Durable Objects inside workerd', () => {
  it('spreads the shards of a big session over several objects, one shard in each', async () => {
    const before = (await listDurableObjectIds(env.SESSION_SHARDS)).length
    const session = await createSession(20_000)
    expect(session.shards.length).toBe(4)
    const results = await Promise.all(
      session.shards.map((s) => sessionStep(session.id, s.index, 1, randomGradients(s.length, s.index))),
    )
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200])
    expect((await listDurableObjectIds(env.SESSION_SHARDS)).length - before).toBe(4)
    // Shard i lives in object i mod 4: each object holds exactly its own shard.
    expect(await heldSteps(session)).toEqual([0, 1, 2, 3].map((i) => new Map([[i, 1]])))
  })

  it('writes nothing to D1 when shards step but the request-rate counter, at most once a second', async () => {
    const session = await createSession(7_000)
    await abortAllDurableObjects()
    // Every D1 statement of this isolate, the Worker's and the objects' (they share it here).
    const d1 = Object.getPrototypeOf(env.DB) as D1Database
    const { prepare, exec } = d1
    const statements: string[] = []
    Object.assign(d1, {
      prepare(this: D1Database, sql: string) {
        statements.push(sql)
        return prepare.call(this, sql)
      },
      exec(this: D1Database, sql: string) {
        statements.push(sql)
        return exec.call(this, sql)
      },
    })
    const started = Date.now()
    try {
      for (const t of [1, 2, 3]) {
        for (const s of session.shards) {
          await updatesOf(await sessionStep(session.id, s.index, t, randomGradients(s.length, t)))
        }
      }
    } finally {
      Object.assign(d1, { prepare, exec })
    }
    const writes = statements.filter((sql) => !/^\s*select\b/i.test(sql))
    // The counter's writes: its upsert, and (when a new minute's window starts during the test) the
    // deletion of the windows before it.
    const counter = /^(insert into|delete from) "rate_windows"/
    expect(writes.filter((sql) => !counter.test(sql))).toEqual([])
    // requestsPerMinute: the isolate adds its count to D1 at most once a second (batchedRateCounter),
    // not once a step.
    const seconds = (Date.now() - started) / 1000
    expect(writes.filter((sql) => sql.startsWith('insert')).length).toBeLessThanOrEqual(
      1 + Math.floor(seconds),
    )
    // Not vacuous: the watch sees the objects' reads too. Each step's Worker looks the pin up; each
    // of the two objects looks it up once more, on its first step after the restart.
    const pinLookups = statements.filter(
      (sql) => /from "versions" where .*"digest"/.test(sql) && !/"weights"/.test(sql),
    )
    expect(pinLookups.length).toBe(3 * session.shards.length + session.shards.length)
  })

  it('loses nothing when its objects are evicted mid-session: steps continue as the stateless step does', async () => {
    const session = await createSession(6_500)
    expect(session.shards.length).toBe(2)
    const states: (Tensor | undefined)[] = [undefined, undefined]
    for (const t of [1, 2, 3]) {
      for (const s of session.shards) {
        const grads = randomGradients(s.length, 10 * t + s.index)
        const want = await statelessStep(grads, states[s.index], 'F32', session.digest)
        states[s.index] = want.state
        const first = await updatesOf(await sessionStep(session.id, s.index, t, grads))
        expect(first).toEqual(want.updates)
        // Every object restarts from its storage: the retry gets the same bytes, the next step goes on.
        await abortAllDurableObjects()
        expect(await updatesOf(await sessionStep(session.id, s.index, t, grads))).toEqual(first)
      }
    }
    expect(await heldSteps(session)).toEqual([new Map([[0, 3]]), new Map([[1, 3]])])
  })

  it('keeps F16 and BF16 states as the stateless step keeps them, bit for bit', async () => {
    for (const dtype of ['F16', 'BF16'] as const) {
      const session = await createSession(1_000, dtype)
      let state: Tensor | undefined
      for (const t of [1, 2, 3]) {
        const grads = randomGradients(1_000, t)
        const want = await statelessStep(grads, state, dtype, session.digest)
        expect(want.state.dtype).toBe(dtype)
        state = want.state
        expect(await updatesOf(await sessionStep(session.id, 0, t, grads))).toEqual(want.updates)
      }
    }
  })

  it('answers steps racing the delete of their session with their updates or 404, and keeps nothing', async () => {
    const session = await createSession(6_500)
    const grads = session.shards.map((s) => randomGradients(s.length, s.index))
    for (const s of session.shards) await updatesOf(await sessionStep(session.id, s.index, 1, grads[s.index]))
    const [deleted, ...steps] = await Promise.all([
      call('DELETE', `/v1/sessions/${session.id}`),
      ...session.shards.map((s) => sessionStep(session.id, s.index, 2, grads[s.index])),
      ...session.shards.map((s) => sessionStep(session.id, s.index, 1, grads[s.index])),
    ])
    expect(deleted.status).toBe(204)
    for (const response of steps) expect([200, 404]).toContain(response.status)
    expect(await heldSteps(session)).toEqual([new Map(), new Map()])
    expect((await call('GET', `/v1/sessions/${session.id}`)).status).toBe(404)
    expect((await sessionStep(session.id, 0, 1, grads[0])).status).toBe(404)
  })
})
