/**
 * An optimizer of the extended architecture (docs/optimizer-math.md: moments features, ELU input
 * layer, tanh output) through the whole service: published with the admin API from the fixture
 * train/ wrote, resolved, stepped stateless (binary, JSON, 16-bit states) and in sharded sessions.
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { architectureJson, extendedArchitectureSchema, type Resolved, type Session } from '../../src/contract'
import { decode, encode, type Tensor, tensorOf, toFloat32 } from '../../src/safetensors'
import { digestOf } from '../../src/weights'
import { expectProblem, itRefusesAndChangesNothing, type Refusal } from '../support/problem'
import {
  binaryBody,
  binaryType,
  expectF16SessionFinite,
  f32,
  jsonType,
  servedOptimizer,
  useTestServer,
} from '../support/server'

const fixture = path.join(import.meta.dirname, '../fixtures/extended/moments-elu-tanh')
const weights = new Uint8Array(readFileSync(path.join(fixture, 'model.safetensors')))
const golden = decode(new Uint8Array(readFileSync(path.join(fixture, 'golden.safetensors'))))
const goldenGrads = golden.tensors.get('grads')!.data as Float32Array
const n = golden.tensors.get('grads')!.shape[1]
/** The golden's gradients of step t: 384 coordinates, the last 6 always ±0. */
const gradsAt = (t: number) => goldenGrads.subarray(t * n, (t + 1) * n)
const S = 37

const s = useTestServer({ maxCoordinatesPerRequest: 1000 }, { tf: true })

function publish(name: string, version: string, file: Uint8Array) {
  const form = new FormData()
  form.append('version', version)
  form.append('weights', new File([file], 'model.safetensors'))
  return s.app.request(`/v1/admin/optimizers/${name}/versions`, {
    method: 'POST',
    body: form,
    headers: s.adminAuth,
  })
}

const post = (body: BodyInit, headers: Record<string, string>) =>
  s.app.request('/v1/step', { method: 'POST', body, headers: { ...s.clientAuth, ...headers } })

/** The same step in process, on the same kernel as the server's: the server must answer these bits. */
const core = servedOptimizer(weights)

let digest = ''
beforeAll(async () => {
  const res = await publish('mlp-fixture', '1.0.0', weights)
  expect(res.status).toBe(201)
  digest = ((await res.json()) as { digest: string }).digest
})

describe('an extended optimizer in the service', () => {
  it('publishes under the digest train/ recorded, and lists its architecture as the file has it', async () => {
    expect(digest).toBe(await digestOf(weights))
    expect(digest).toBe(golden.metadata?.digest)
    const detail = (await (await s.app.request('/v1/optimizers/mlp-fixture')).json()) as {
      versions: { architecture: unknown }[]
    }
    const architecture = extendedArchitectureSchema.parse(detail.versions[0].architecture)
    expect(architectureJson(architecture)).toBe(decode(weights).metadata?.architecture)
  })

  it('reports the state width S = 2·L·H + K + 2 from /v1/resolve', async () => {
    const resolved = (await (await s.app.request('/v1/resolve?ref=mlp-fixture')).json()) as Resolved
    expect(resolved).toMatchObject({ name: 'mlp-fixture', version: '1.0.0', digest, stateSize: S })
    expect(resolved.architecture).toMatchObject({ features: { kind: 'moments' }, output: { kind: 'tanh' } })
  })

  it('steps stateless in binary, chained, with exactly +0 for coordinates that saw only ±0', async () => {
    let state = core.init(n)
    for (let t = 0; t < 3; t++) {
      const tensors: Record<string, Tensor> = { grads: f32([n], gradsAt(t)) }
      if (t > 0) tensors.state = f32([n, S], state)
      const res = await post(
        binaryBody(tensors, { optimizer: 'mlp-fixture', ...(t > 0 ? { digest } : {}) }),
        binaryType,
      )
      expect(res.status).toBe(200)
      expect(res.headers.get('l2o-digest')).toBe(digest)
      const file = decode(new Uint8Array(await res.arrayBuffer()))
      const want = core.update(gradsAt(t), state)
      expect(file.tensors.get('updates')).toEqual({ dtype: 'F32', shape: [n], data: want.updates })
      expect(file.tensors.get('state')).toEqual({ dtype: 'F32', shape: [n, S], data: want.state })
      const updates = file.tensors.get('updates')!.data as Float32Array
      for (let i = n - 6; i < n; i++) expect(Object.is(updates[i], 0), `coordinate ${i}`).toBe(true)
      state = want.state
    }
  })

  it('steps over JSON with the same numbers', async () => {
    const grads = Array.from(gradsAt(0).subarray(0, 50))
    const res = await post(JSON.stringify({ optimizer: 'mlp-fixture', grads }), jsonType)
    expect(res.status).toBe(200)
    const body = (await res.json()) as { updates: number[]; state: number[]; stateSize: number }
    const want = core.update(Float32Array.from(grads), core.init(50))
    expect(body.stateSize).toBe(S)
    // JSON writes each float32 as its shortest decimal: read back as float32, the same values.
    expect(Float32Array.from(body.updates)).toEqual(want.updates)
    expect(Float32Array.from(body.state)).toEqual(want.state)
  })

  it('keeps F16 and BF16 states, F16 saturating the moments of huge gradients at ±65504', async () => {
    // The golden's gradients reach ±1e20: their moments exceed F16's range (BF16 has float32's).
    const first = core.update(gradsAt(0), core.init(n))
    for (const dtype of ['F16', 'BF16'] as const) {
      const meta = { optimizer: 'mlp-fixture', state_dtype: dtype }
      const fresh = await post(binaryBody({ grads: f32([n], gradsAt(0)) }, meta), binaryType)
      expect(fresh.status).toBe(200)
      const state = decode(new Uint8Array(await fresh.arrayBuffer())).tensors.get('state')!
      expect(state).toEqual(tensorOf(dtype, [n, S], first.state))
      const widened = toFloat32({ dtype, data: state.data as Uint16Array })
      expect(widened.every(Number.isFinite)).toBe(true)
      if (dtype === 'F16') expect(Math.max(...widened.map(Math.abs))).toBe(65504)

      const sent = { dtype, shape: [n, S], data: state.data as Uint16Array }
      const next = await post(
        binaryBody({ grads: f32([n], gradsAt(1)), state: sent }, { ...meta, digest }),
        binaryType,
      )
      expect(next.status).toBe(200)
      const file = decode(new Uint8Array(await next.arrayBuffer()))
      expect(file.tensors.get('state')?.dtype).toBe(dtype)
      // The server widens the 16-bit state exactly and steps it: the core's answer from that state.
      const want = core.update(gradsAt(1), widened)
      expect(file.tensors.get('updates')?.data).toEqual(want.updates)
      expect(Object.is((file.tensors.get('updates')!.data as Float32Array)[n - 1], 0)).toBe(true)
    }
  })

  it('keeps a session with an F16 state finite through huge gradients', async () => {
    await expectF16SessionFinite(s, 'mlp-fixture', 3)
  })

  it('steps a session of several shards as the stateless math does', async () => {
    const numParams = 2500
    const created = await s.app.request('/v1/sessions', {
      method: 'POST',
      body: JSON.stringify({ optimizer: 'mlp-fixture', numParams }),
      headers: { ...s.clientAuth, ...jsonType },
    })
    expect(created.status).toBe(201)
    const session = (await created.json()) as Session
    expect(session).toMatchObject({ digest, stateSize: S })
    expect(session.shardCount).toBeGreaterThan(1)
    // Every coordinate's gradient at step t: the golden's, tiled.
    const all = (t: number) => Float32Array.from({ length: numParams }, (_, i) => gradsAt(t)[i % n])
    let state = core.init(numParams)
    for (let t = 1; t <= 3; t++) {
      const want = core.update(all(t - 1), state)
      for (let index = 0; index < session.shardCount; index++) {
        const offset = index * session.shardSize
        const grads = all(t - 1).subarray(offset, Math.min(numParams, offset + session.shardSize))
        const res = await s.app.request(`/v1/sessions/${session.id}/shards/${index}/steps/${t}`, {
          method: 'POST',
          body: binaryBody({ grads: f32([grads.length], grads) }),
          headers: { ...s.clientAuth, ...binaryType },
        })
        expect(res.status, `shard ${index} step ${t}`).toBe(200)
        const updates = decode(new Uint8Array(await res.arrayBuffer())).tensors.get('updates')!.data
        expect(updates).toEqual(want.updates.subarray(offset, offset + grads.length))
      }
      state = want.state
    }
  })

  it('refuses a state made under another digest with 409', async () => {
    const grads = f32([4], gradsAt(0).subarray(0, 4))
    const foreign = await post(
      binaryBody(
        { grads, state: f32([4, S], new Float32Array(4 * S)) },
        { optimizer: 'mlp-fixture', digest: s.tiny.digest },
      ),
      binaryType,
    )
    await expectProblem(foreign, 409, 'digest_mismatch')
    const other = await post(
      binaryBody({ grads, state: f32([4, 8], new Float32Array(32)) }, { optimizer: 'tiny', digest }),
      binaryType,
    )
    await expectProblem(other, 409, 'digest_mismatch')
  })
})

/** The fixture with its architecture record replaced (as text: JSON cannot carry NaN or Infinity). */
function withArchitecture(edit: (text: string) => string): Uint8Array {
  const file = decode(weights)
  const architecture = edit(file.metadata?.architecture ?? '')
  return encode(file.tensors, { ...file.metadata, architecture })
}

describe('publishing refuses extended files with non-finite or absurd parameters', () => {
  const refuse = (what: string, edit: (text: string) => string): Refusal => [
    what,
    () => publish('bad-mlp', '1.0.0', withArchitecture(edit)),
    400,
    'invalid_weights',
  ]
  const cases: Refusal[] = [
    refuse('a NaN output scale', (t) => t.replace('"scale":0.1', '"scale":NaN')),
    refuse('an infinite output scale', (t) => t.replace('"scale":0.1', '"scale":Infinity')),
    refuse('an output scale beyond float32', (t) => t.replace('"scale":0.1', '"scale":1e+39')),
    // Finite, but the tanh output's updates could reach 10^7 (publish bounds them at 10^6).
    refuse('an absurd tanh output scale', (t) => t.replace('"scale":0.1', '"scale":10000000')),
    refuse('a zero eps', (t) => t.replace('"eps":1e-08', '"eps":0.0')),
    refuse('a negative eps', (t) => t.replace('"eps":1e-08', '"eps":-1e-08')),
    refuse('an infinite eps', (t) => t.replace('"eps":1e-08', '"eps":Infinity')),
    refuse('a beta1 of 1', (t) => t.replace('[0.5,0.9,0.99]', '[0.5,0.9,1.0]')),
    refuse('a negative beta1', (t) => t.replace('[0.5,0.9,0.99]', '[-0.5,0.9,0.99]')),
    refuse('a NaN beta2', (t) => t.replace('"beta2":0.99', '"beta2":NaN')),
    refuse('a beta2 above 1', (t) => t.replace('"beta2":0.99', '"beta2":1.5')),
    refuse('the paper form mixed in', (t) => t.replace('"layers":2', '"layers":2,"outputScale":0.1')),
  ]
  itRefusesAndChangesNothing(cases, () => s.snapshot(), 'publish refuses')

  it('says which field is wrong', async () => {
    const res = await publish(
      'bad-mlp',
      '1.0.0',
      withArchitecture((t) => t.replace('"eps":1e-08', '"eps":0.0')),
    )
    const body = await expectProblem(res, 400, 'invalid_weights')
    expect(body.detail).toMatch(/features\.eps/)
  })
})
