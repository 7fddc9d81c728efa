/**
 * An optimizer whose `tanh-rms` output has a `gain` (docs/optimizer-math.md §6) through the whole
 * service: its multiplier pools over one call of the update, that is one stateless request or one
 * session shard, whatever the calls the server computes it in (chunkCoordinates(S) coordinates
 * each). Published from the fixture train/ wrote (a decay after 3 steps, the gain after 3), resolved,
 * stepped stateless (binary, JSON, 16-bit states) and in sharded sessions.
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { architectureJson, extendedArchitectureSchema, type Resolved, type Session } from '../../src/contract'
import { decode, encode, type Tensor, tensorOf, toFloat32 } from '../../src/safetensors'
import { chunkCoordinates } from '../../src/server/compute'
import { bits } from '../support/bits'
import { expectProblem } from '../support/problem'
import {
  binaryBody,
  binaryType,
  expectF16SessionFinite,
  f32,
  jsonType,
  servedOptimizer,
  useTestServer,
} from '../support/server'

const fixture = path.join(import.meta.dirname, '../fixtures/extended/moments-logrms-elu-tanhrms-decay-gain')
const weights = new Uint8Array(readFileSync(path.join(fixture, 'model.safetensors')))
const golden = decode(new Uint8Array(readFileSync(path.join(fixture, 'golden.safetensors'))))
const goldenGrads = golden.tensors.get('grads')!.data as Float32Array
const goldenN = golden.tensors.get('grads')!.shape[1]
/** S = 2·L·H + (K + 2) + 4: the LSTM's 32, the moments' 5, the count [c_lo, c_hi] and [p, a]. */
const S = 41
/** More coordinates than one server call takes: every step below is computed in two calls. */
const n = 4000
/**
 * Step t's gradients for `count` coordinates: the golden's, tiled, with every seventh one given its
 * absolute value (a model whose gradients keep their sign: a mean autocorrelation clearly above 0).
 */
const gradsAt = (t: number, count = n) =>
  Float32Array.from({ length: count }, (_, i) => {
    const g = goldenGrads[t * goldenN + (i % goldenN)]
    return i % 7 === 0 ? Math.abs(g) : g
  })

const s = useTestServer({ maxCoordinatesPerRequest: n }, { tf: true })

const post = (body: BodyInit, headers: Record<string, string>) =>
  s.app.request('/v1/step', { method: 'POST', body, headers: { ...s.clientAuth, ...headers } })

/** The same step in process, on the same kernel as the server's: one call over the request. */
const core = servedOptimizer(weights)

/** The results of stepping [0, n) as separate calls of `size` coordinates (what pooling per chunk would give). */
function perCall(grads: Float32Array, state: Float32Array, size: number) {
  const updates = new Float32Array(grads.length)
  const next = new Float32Array(state.length)
  for (let begin = 0; begin < grads.length; begin += size) {
    const end = Math.min(grads.length, begin + size)
    const out = core.update(grads.subarray(begin, end), state.subarray(begin * S, end * S))
    updates.set(out.updates, begin)
    next.set(out.state, begin * S)
  }
  return { updates, state: next }
}

async function publish(name: string, file: Uint8Array) {
  const form = new FormData()
  form.append('version', '1.0.0')
  form.append('weights', new File([file], 'model.safetensors'))
  return s.app.request(`/v1/admin/optimizers/${name}/versions`, {
    method: 'POST',
    body: form,
    headers: s.adminAuth,
  })
}

let digest = ''
beforeAll(async () => {
  const res = await publish('gain-fixture', weights)
  expect(res.status).toBe(201)
  digest = ((await res.json()) as { digest: string }).digest
})

describe('an optimizer with a gain in the service', () => {
  it('publishes its architecture as train/ wrote it and reports S = 41 from /v1/resolve', async () => {
    expect(digest).toBe(golden.metadata?.digest)
    const resolved = (await (await s.app.request('/v1/resolve?ref=gain-fixture')).json()) as Resolved
    expect(resolved).toMatchObject({ digest, stateSize: S })
    const architecture = extendedArchitectureSchema.parse(resolved.architecture)
    expect(architecture.output).toMatchObject({ kind: 'tanh-rms', gain: { kind: 'latch', after: 3 } })
    expect(architectureJson(architecture)).toBe(decode(weights).metadata?.architecture)
    expect(chunkCoordinates(S)).toBeLessThan(n)
  })

  it('steps a stateless request of several server calls as one call: one pool over the request', async () => {
    let state = core.init(n)
    let pooledApart = 0
    for (let t = 0; t < 5; t++) {
      const tensors: Record<string, Tensor> = { grads: f32([n], gradsAt(t)) }
      if (t > 0) tensors.state = f32([n, S], state)
      const res = await post(
        binaryBody(tensors, { optimizer: 'gain-fixture', ...(t > 0 ? { digest } : {}) }),
        binaryType,
      )
      expect(res.status).toBe(200)
      const file = decode(new Uint8Array(await res.arrayBuffer()))
      const want = core.update(gradsAt(t), state)
      expect(bits(file.tensors.get('updates')!.data as Float32Array), `step ${t} updates`).toEqual(
        bits(want.updates),
      )
      expect(bits(file.tensors.get('state')!.data as Float32Array), `step ${t} state`).toEqual(
        bits(want.state),
      )
      // Pooled per server call instead, the answer would differ (from the gain's window on).
      const apart = perCall(gradsAt(t), state, chunkCoordinates(S))
      if (bits(apart.state).join() !== bits(want.state).join()) pooledApart++
      state = want.state
    }
    expect(pooledApart).toBeGreaterThanOrEqual(3)
  })

  it('steps over JSON with the same numbers', async () => {
    const first = core.update(gradsAt(0, 300), core.init(300))
    const grads = Array.from(gradsAt(1, 300))
    const res = await post(
      JSON.stringify({ optimizer: 'gain-fixture', digest, grads, state: Array.from(first.state) }),
      jsonType,
    )
    expect(res.status).toBe(200)
    const body = (await res.json()) as { updates: number[]; state: number[]; stateSize: number }
    const want = core.update(Float32Array.from(grads), first.state)
    expect(body.stateSize).toBe(S)
    // JSON writes each float32 as its shortest decimal, and −0 (a p' = g of −0) as 0.
    const plusZero = (a: ArrayLike<number>) => Array.from(a, (v) => v + 0)
    expect(plusZero(Float32Array.from(body.updates))).toEqual(plusZero(want.updates))
    expect(plusZero(Float32Array.from(body.state))).toEqual(plusZero(want.state))
  })

  it('keeps F16 and BF16 states through the gain, pooling over the widened request', async () => {
    for (const dtype of ['F16', 'BF16'] as const) {
      const meta = { optimizer: 'gain-fixture', state_dtype: dtype }
      let sent: Tensor | undefined
      for (let t = 0; t < 4; t++) {
        const tensors: Record<string, Tensor> = { grads: f32([n], gradsAt(t)) }
        if (sent !== undefined) tensors.state = sent
        const res = await post(binaryBody(tensors, { ...meta, ...(t > 0 ? { digest } : {}) }), binaryType)
        expect(res.status, `${dtype} step ${t}`).toBe(200)
        const file = decode(new Uint8Array(await res.arrayBuffer()))
        const state = file.tensors.get('state')!
        expect(state.dtype).toBe(dtype)
        // The server widens the 16-bit state exactly and steps it as one call.
        const widened =
          sent === undefined ? core.init(n) : toFloat32({ dtype, data: sent.data as Uint16Array })
        const want = core.update(gradsAt(t), widened)
        expect(bits(file.tensors.get('updates')!.data as Float32Array), `${dtype} step ${t}`).toEqual(
          bits(want.updates),
        )
        expect(state).toEqual(tensorOf(dtype, [n, S], want.state))
        sent = { dtype, shape: [n, S], data: state.data as Uint16Array }
      }
    }
  })

  it('steps a session shard by shard, each shard its own pool (its own multiplier)', async () => {
    const numParams = 9000
    const created = await s.app.request('/v1/sessions', {
      method: 'POST',
      body: JSON.stringify({ optimizer: 'gain-fixture', numParams }),
      headers: { ...s.clientAuth, ...jsonType },
    })
    expect(created.status).toBe(201)
    const session = (await created.json()) as Session
    expect(session).toMatchObject({ digest, stateSize: S, shardSize: 3000, shardCount: 3 })
    // 9,000 coordinates in three even shards of at most n = 4,000
    let state = core.init(numParams)
    let differsFromWhole = 0
    for (let t = 1; t <= 4; t++) {
      const grads = gradsAt(t - 1, numParams)
      // Each shard is one call: stepped apart, shard by shard.
      const want = perCall(grads, state, session.shardSize)
      for (let index = 0; index < session.shardCount; index++) {
        const offset = index * session.shardSize
        const shard = grads.subarray(offset, Math.min(numParams, offset + session.shardSize))
        const res = await s.app.request(`/v1/sessions/${session.id}/shards/${index}/steps/${t}`, {
          method: 'POST',
          body: binaryBody({ grads: f32([shard.length], shard) }),
          headers: { ...s.clientAuth, ...binaryType },
        })
        expect(res.status, `shard ${index} step ${t}`).toBe(200)
        const updates = decode(new Uint8Array(await res.arrayBuffer())).tensors.get('updates')!.data
        expect(bits(updates as Float32Array), `shard ${index} step ${t}`).toEqual(
          bits(want.updates.subarray(offset, offset + shard.length)),
        )
      }
      if (bits(core.update(grads, state).updates).join() !== bits(want.updates).join()) differsFromWhole++
      state = want.state
    }
    expect(differsFromWhole).toBeGreaterThanOrEqual(2)
  })

  it('keeps a session with an F16 state finite through huge gradients', async () => {
    await expectF16SessionFinite(s, 'gain-fixture', 5)
  })

  it('refuses to publish a gain whose e^cap takes the update bound past 10^6', async () => {
    const file = decode(weights)
    const text = file.metadata?.architecture ?? ''
    // |scale| = 900,000 is within the bound without a gain; times e^0.4 it is 1.34·10^6.
    const edited = text.replace('"scale":1.0', '"scale":900000.0')
    expect(edited).not.toBe(text)
    const res = await publish('absurd-gain', encode(file.tensors, { ...file.metadata, architecture: edited }))
    const body = await expectProblem(res, 400, 'invalid_weights')
    expect(body.detail).toMatch(/e\^0\.4/)
    const ungained = edited.replace(/,"gain":\{[^}]*\}/, '')
    const fine = await publish('no-gain', encode(file.tensors, { ...file.metadata, architecture: ungained }))
    expect(fine.status).toBe(201)
  })
})
