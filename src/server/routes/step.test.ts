import { describe, expect, it } from 'vitest'
import { randomGradients } from '../../../test/support/random'
import {
  binaryBody,
  binaryType,
  f32,
  jsonType,
  paperArchitecture,
  servedOptimizer,
  useTestServer,
  weightFile,
} from '../../../test/support/server'
import { publishVersion } from '../registry/publish'

const bytesOf = (a: Float32Array | Uint16Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength)

import { expectProblem, itRefusesAndChangesNothing, type Refusal } from '../../../test/support/problem'
import { baselineOptimizer, lstmOptimizer } from '../../core'
import { decode, f16ToF32, f32ToBf16, f32ToF16 } from '../../safetensors'
import { decodeLstmWeights } from '../../weights'

const s = useTestServer({}, { tf: true })

const post = (body: BodyInit, headers: Record<string, string>) =>
  s.app.request('/v1/step', { method: 'POST', body, headers: { ...s.clientAuth, ...headers } })

describe('echoed values', () => {
  it('quotes at most a clipped optimizer reference, from JSON and from binary metadata', async () => {
    const reference = `A${'a'.repeat(60_000)}`
    const fromJson = await post(JSON.stringify({ optimizer: reference.slice(0, 200), grads: [1] }), jsonType)
    const fromBinary = await post(binaryBody({ grads: f32([1], [1]) }, { optimizer: reference }), binaryType)
    for (const res of [fromJson, fromBinary]) {
      const text = await res.text()
      expect(res.status).toBe(400)
      expect(text.length).toBeLessThan(1000)
    }
  })

  it('quotes at most a clipped path', async () => {
    const res = await s.app.request(`/v1/${'p'.repeat(8000)}`)
    expect(res.status).toBe(404)
    expect((await res.text()).length).toBeLessThan(1000)
  })
})

describe('POST /v1/step (binary)', () => {
  it('returns the updates and state the core computes, naming the digest', async () => {
    const grads = randomGradients(100, 7)
    const res = await post(binaryBody({ grads: f32([100], grads) }, { optimizer: 'tiny' }), binaryType)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('application/vnd.l2o.safetensors')
    expect(res.headers.get('l2o-digest')).toBe(s.tiny.digest)
    expect(res.headers.get('deprecation')).toBeNull()
    const file = decode(new Uint8Array(await res.arrayBuffer()))
    expect(file.metadata).toEqual({ optimizer: 'tiny@1.0.0', digest: s.tiny.digest })
    const opt = servedOptimizer(s.tiny.bytes)
    const expected = opt.update(grads, opt.init(100))
    expect(file.tensors.get('updates')).toEqual({ dtype: 'F32', shape: [100], data: expected.updates })
    expect(file.tensors.get('state')).toEqual({ dtype: 'F32', shape: [100, 8], data: expected.state })

    // The returned state continues the run.
    const grads2 = randomGradients(100, 8)
    const res2 = await post(
      binaryBody(
        { grads: f32([100], grads2), state: f32([100, 8], expected.state) },
        { optimizer: 'tiny@1.0.0', digest: s.tiny.digest },
      ),
      binaryType,
    )
    const file2 = decode(new Uint8Array(await res2.arrayBuffer()))
    const expected2 = opt.update(grads2, expected.state)
    expect(file2.tensors.get('updates')?.data).toEqual(expected2.updates)
  })

  it('keeps the state in F16 or BF16 when the request does', async () => {
    const grads = randomGradients(10, 1)
    const opt = servedOptimizer(s.tiny.bytes)
    const first = opt.update(grads, opt.init(10))
    for (const [dtype, narrow] of [
      ['F16', f32ToF16],
      ['BF16', f32ToBf16],
    ] as const) {
      const fresh = await post(
        binaryBody({ grads: f32([10], grads) }, { optimizer: 'tiny', state_dtype: dtype }),
        binaryType,
      )
      const state = decode(new Uint8Array(await fresh.arrayBuffer())).tensors.get('state')!
      expect(state).toEqual({ dtype, shape: [10, 8], data: narrow(first.state) })
      const res = await post(
        binaryBody(
          { grads: f32([10], grads), state: { dtype, shape: [10, 8], data: state.data as Uint16Array } },
          { optimizer: 'tiny', digest: s.tiny.digest },
        ),
        binaryType,
      )
      expect(res.status).toBe(200)
      const next = decode(new Uint8Array(await res.arrayBuffer())).tensors.get('state')!
      expect(next.dtype).toBe(dtype)
      expect(next.shape).toEqual([10, 8])
    }
  })

  it('runs the baselines with their hyper-parameters, binding the state to them', async () => {
    const grads = Float32Array.from([1, -2, 0.5])
    const body = binaryBody(
      { grads: f32([3], grads) },
      { optimizer: 'adam', hyperparameters: JSON.stringify({ learningRate: 0.1 }) },
    )
    const res = await post(body, binaryType)
    expect(res.status).toBe(200)
    const file = decode(new Uint8Array(await res.arrayBuffer()))
    const adam = baselineOptimizer('adam', { learningRate: 0.1 })
    expect(file.tensors.get('updates')!.data).toEqual(adam.update(grads, adam.init(3)).updates)
    expect(file.tensors.get('state')!.shape).toEqual([3, 3])
    const digest = file.metadata!.digest
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/)
    // Another learning rate is another digest: the state is refused.
    const res2 = await post(
      binaryBody(
        { grads: f32([3], grads), state: file.tensors.get('state')! },
        { optimizer: 'adam', digest, hyperparameters: JSON.stringify({ learningRate: 0.2 }) },
      ),
      binaryType,
    )
    await expectProblem(res2, 409, 'digest_mismatch')
  })

  it('splits a large request into optimizer calls without changing a number', async () => {
    const weights = weightFile(3, paperArchitecture)
    const { digest } = await publishVersion(
      s.deps.db,
      { name: 'paper', version: '1.0.0', weights },
      new Date(),
    )
    const n = 30_000
    const grads = randomGradients(n, 11)
    const opt = servedOptimizer(weights)
    const first = opt.update(grads, opt.init(n))
    const second = opt.update(grads, first.state)
    const res = await post(
      binaryBody(
        { grads: f32([n], grads), state: f32([n, 80], first.state) },
        { optimizer: 'paper', digest },
      ),
      binaryType,
    )
    const file = decode(new Uint8Array(await res.arrayBuffer()))
    expect(Buffer.compare(bytesOf(file.tensors.get('updates')!.data), bytesOf(second.updates))).toBe(0)
    expect(Buffer.compare(bytesOf(file.tensors.get('state')!.data), bytesOf(second.state))).toBe(0)
  })

  it('answers a sgd step with an empty [N, 0] state', async () => {
    const res = await post(
      binaryBody({ grads: f32([2], [1, 2]) }, { optimizer: 'sgd', hyperparameters: '{"learningRate":0.5}' }),
      binaryType,
    )
    const file = decode(new Uint8Array(await res.arrayBuffer()))
    expect(Array.from(file.tensors.get('updates')!.data)).toEqual([-0.5, -1])
    expect(file.tensors.get('state')!.shape).toEqual([2, 0])
  })
})

describe('POST /v1/step on tfjs, for a runtime without the fused kernel', () => {
  const t = useTestServer({ kernel: undefined }, { tf: true })

  it('steps learned optimizers on tfjs, the reference path, and /healthz says so', async () => {
    const health = (await (await t.app.request('/healthz')).json()) as { kernel: string }
    expect(health.kernel).toBe('tfjs-wasm')
    const grads = randomGradients(100, 7)
    const res = await t.app.request('/v1/step', {
      method: 'POST',
      body: binaryBody({ grads: f32([100], grads) }, { optimizer: 'tiny' }),
      headers: { ...t.clientAuth, ...binaryType },
    })
    const file = decode(new Uint8Array(await res.arrayBuffer()))
    const opt = lstmOptimizer(decodeLstmWeights(t.tiny.bytes))
    const expected = opt.update(grads, opt.init(100))
    expect(file.tensors.get('updates')?.data).toEqual(expected.updates)
    expect(file.tensors.get('state')?.data).toEqual(expected.state)
    opt.dispose?.()
  })
})

describe('POST /v1/step (JSON)', () => {
  it('matches the binary step', async () => {
    const grads = Array.from(randomGradients(20, 3))
    const res = await post(JSON.stringify({ optimizer: 'tiny', grads }), jsonType)
    expect(res.status).toBe(200)
    const text = await res.text()
    const body = JSON.parse(text) as { updates: number[]; state: number[]; digest: string; stateSize: number }
    expect(body.digest).toBe(s.tiny.digest)
    expect(body.stateSize).toBe(8)
    const opt = servedOptimizer(s.tiny.bytes)
    const expected = opt.update(Float32Array.from(grads), opt.init(20))
    // The same float32 bits, each written with at most 9 significant digits.
    expect(Float32Array.from(body.updates)).toEqual(expected.updates)
    expect(Float32Array.from(body.state)).toEqual(expected.state)
    const numbers = text.slice(text.indexOf('"updates"')).match(/-?\d+(\.\d+)?(e[-+]\d+)?/g)!
    expect(numbers.length).toBe(20 + 20 * 8)
    const digits = (n: string) => n.replace(/e.*/, '').replace(/[-.]/g, '').replace(/^0+/, '').length
    expect(Math.max(...numbers.map(digits))).toBeLessThanOrEqual(9)
  })

  it('rounds the state to F16 when asked', async () => {
    const res = await post(
      JSON.stringify({ optimizer: 'tiny', grads: [0.1, 0.2], stateDtype: 'F16' }),
      jsonType,
    )
    const body = (await res.json()) as { state: number[] }
    const state = Float32Array.from(body.state)
    expect(f16ToF32(f32ToF16(state))).toEqual(state)
  })
})

describe('POST /v1/step refuses bad input with problem+json and changes nothing', () => {
  const grads = f32([4], [0.1, -0.2, 0.3, 0.4])
  const meta = { optimizer: 'tiny' }
  const cases: Refusal[] = [
    [
      'no key',
      () =>
        s.app.request('/v1/step', { method: 'POST', body: binaryBody({ grads }, meta), headers: binaryType }),
      401,
      'unauthorized',
    ],
    [
      'an unknown key',
      () =>
        s.app.request('/v1/step', {
          method: 'POST',
          body: binaryBody({ grads }, meta),
          headers: { ...binaryType, authorization: 'Bearer l2o_nope_nope_nope_nope' },
        }),
      401,
      'unauthorized',
    ],
    [
      'a wrong content type',
      () => post(binaryBody({ grads }, meta), { 'content-type': 'text/plain' }),
      415,
      'unsupported_media_type',
    ],
    ['no content type', () => post(binaryBody({ grads }, meta), {}), 415, 'unsupported_media_type'],
    [
      'a truncated body',
      () => post(binaryBody({ grads }, meta).slice(0, 30), binaryType),
      400,
      'invalid_safetensors',
    ],
    [
      'garbage',
      () => post(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]), binaryType),
      400,
      'invalid_safetensors',
    ],
    [
      'a header that lies about sizes',
      () => {
        const b = binaryBody({ grads }, meta)
        return post(b.slice(0, b.length - 4), binaryType)
      },
      400,
      'invalid_safetensors',
    ],
    [
      'no grads',
      () => post(binaryBody({ state: f32([4, 8], new Float32Array(32)) }, meta), binaryType),
      400,
      'shape_mismatch',
    ],
    [
      'F16 grads',
      () =>
        post(binaryBody({ grads: { dtype: 'F16', shape: [4], data: new Uint16Array(4) } }, meta), binaryType),
      400,
      'shape_mismatch',
    ],
    [
      '2-D grads',
      () => post(binaryBody({ grads: f32([2, 2], [1, 2, 3, 4]) }, meta), binaryType),
      400,
      'shape_mismatch',
    ],
    ['empty grads', () => post(binaryBody({ grads: f32([0], []) }, meta), binaryType), 400, 'shape_mismatch'],
    [
      'an extra tensor',
      () => post(binaryBody({ grads, extra: f32([1], [1]) }, meta), binaryType),
      400,
      'invalid_safetensors',
    ],
    ['no optimizer', () => post(binaryBody({ grads }), binaryType), 400, 'invalid_request'],
    [
      'a malformed reference',
      () => post(binaryBody({ grads }, { optimizer: 'Tiny!' }), binaryType),
      400,
      'invalid_reference',
    ],
    [
      'an unknown optimizer',
      () => post(binaryBody({ grads }, { optimizer: 'nope' }), binaryType),
      404,
      'optimizer_not_found',
    ],
    [
      'an unknown version',
      () => post(binaryBody({ grads }, { optimizer: 'tiny@9.0.0' }), binaryType),
      404,
      'version_not_found',
    ],
    [
      'an unknown digest',
      () => post(binaryBody({ grads }, { optimizer: `tiny@sha256:${'0'.repeat(64)}` }), binaryType),
      404,
      'version_not_found',
    ],
    [
      'NaN',
      () => post(binaryBody({ grads: f32([4], [0, Number.NaN, 0, 0]) }, meta), binaryType),
      422,
      'non_finite_gradient',
    ],
    [
      'Infinity',
      () => post(binaryBody({ grads: f32([4], [0, 0, 0, Number.POSITIVE_INFINITY]) }, meta), binaryType),
      422,
      'non_finite_gradient',
    ],
    [
      'a state without a digest',
      () => post(binaryBody({ grads, state: f32([4, 8], new Float32Array(32)) }, meta), binaryType),
      400,
      'invalid_request',
    ],
    [
      'a state of another digest',
      () =>
        post(
          binaryBody(
            { grads, state: f32([4, 8], new Float32Array(32)) },
            { ...meta, digest: `sha256:${'1'.repeat(64)}` },
          ),
          binaryType,
        ),
      409,
      'digest_mismatch',
    ],
    [
      'a malformed digest',
      () => post(binaryBody({ grads }, { ...meta, digest: 'md5:x' }), binaryType),
      400,
      'invalid_request',
    ],
    [
      'a state of the wrong shape',
      () =>
        post(
          binaryBody({ grads, state: f32([4, 7], new Float32Array(28)) }, { ...meta, digest: s.tiny.digest }),
          binaryType,
        ),
      400,
      'shape_mismatch',
    ],
    [
      'a 1-D state',
      () =>
        post(
          binaryBody({ grads, state: f32([32], new Float32Array(32)) }, { ...meta, digest: s.tiny.digest }),
          binaryType,
        ),
      400,
      'shape_mismatch',
    ],
    [
      'a state with NaN',
      () =>
        post(
          binaryBody(
            { grads, state: f32([4, 8], new Float32Array(32).fill(Number.NaN)) },
            { ...meta, digest: s.tiny.digest },
          ),
          binaryType,
        ),
      400,
      'invalid_request',
    ],
    [
      'an unknown state dtype',
      () => post(binaryBody({ grads }, { ...meta, state_dtype: 'F64' }), binaryType),
      400,
      'invalid_request',
    ],
    [
      'hyper-parameters for a learned optimizer',
      () => post(binaryBody({ grads }, { ...meta, hyperparameters: '{"learningRate":1}' }), binaryType),
      400,
      'invalid_hyperparameters',
    ],
    [
      'null hyper-parameters for a learned optimizer',
      () => post(binaryBody({ grads }, { ...meta, hyperparameters: 'null' }), binaryType),
      400,
      'invalid_hyperparameters',
    ],
    [
      'null hyper-parameters in JSON',
      () => post(JSON.stringify({ optimizer: 'tiny', hyperparameters: null, grads: [1] }), jsonType),
      400,
      'invalid_request',
    ],
    [
      'hyper-parameters that are not JSON',
      () => post(binaryBody({ grads }, { optimizer: 'adam', hyperparameters: '{' }), binaryType),
      400,
      'invalid_hyperparameters',
    ],
    [
      'a baseline without its learning rate',
      () => post(binaryBody({ grads }, { optimizer: 'adam' }), binaryType),
      400,
      'invalid_hyperparameters',
    ],
    [
      'an unknown hyper-parameter',
      () =>
        post(
          binaryBody({ grads }, { optimizer: 'sgd', hyperparameters: '{"learningRate":1,"lr":2}' }),
          binaryType,
        ),
      400,
      'invalid_hyperparameters',
    ],
    [
      'a negative learning rate',
      () =>
        post(binaryBody({ grads }, { optimizer: 'sgd', hyperparameters: '{"learningRate":-1}' }), binaryType),
      400,
      'invalid_hyperparameters',
    ],
    [
      'a baseline version',
      () =>
        post(
          binaryBody({ grads }, { optimizer: 'sgd@1.0.0', hyperparameters: '{"learningRate":1}' }),
          binaryType,
        ),
      404,
      'version_not_found',
    ],
    [
      'too many coordinates',
      () => post(binaryBody({ grads: f32([65_537], new Float32Array(65_537)) }, meta), binaryType),
      413,
      'too_many_coordinates',
    ],
    [
      'a body over the byte limit',
      () => post(new Uint8Array(33 * 1024 * 1024), binaryType),
      413,
      'payload_too_large',
    ],
    ['JSON that does not parse', () => post('{"optimizer":', jsonType), 400, 'invalid_request'],
    [
      'JSON without grads',
      () => post(JSON.stringify({ optimizer: 'tiny' }), jsonType),
      400,
      'invalid_request',
    ],
    [
      'JSON with strings for numbers',
      () => post(JSON.stringify({ optimizer: 'tiny', grads: ['1'] }), jsonType),
      400,
      'invalid_request',
    ],
    [
      'JSON with a float32 overflow',
      () => post(JSON.stringify({ optimizer: 'tiny', grads: [1e39] }), jsonType),
      422,
      'non_finite_gradient',
    ],
    [
      'JSON with a state of the wrong length',
      () =>
        post(
          JSON.stringify({ optimizer: 'tiny', digest: s.tiny.digest, grads: [1], state: [1, 2] }),
          jsonType,
        ),
      400,
      'shape_mismatch',
    ],
    [
      'JSON with a state of another digest',
      () =>
        post(
          JSON.stringify({
            optimizer: 'tiny',
            digest: `sha256:${'2'.repeat(64)}`,
            grads: [1],
            state: new Array(8).fill(0),
          }),
          jsonType,
        ),
      409,
      'digest_mismatch',
    ],
    [
      'JSON with too many coordinates',
      () =>
        post(
          JSON.stringify({
            optimizer: 'sgd',
            hyperparameters: { learningRate: 1 },
            grads: new Array(65_537).fill(0),
          }),
          jsonType,
        ),
      413,
      'too_many_coordinates',
    ],
  ]
  itRefusesAndChangesNothing(cases, () => s.snapshot())

  it('reports the index of the first non-finite gradient', async () => {
    const res = await post(binaryBody({ grads: f32([4], [0, 0, Number.NaN, 0]) }, meta), binaryType)
    expect(await expectProblem(res, 422, 'non_finite_gradient')).toMatchObject({ index: 2 })
  })
})

describe('POST /v1/step refuses a result that is not finite, and answers no Infinity', () => {
  const huge = 3e38
  const overflowing: Refusal[] = [
    [
      'sgd at the largest learning rate on a huge gradient (binary)',
      () =>
        post(
          binaryBody(
            { grads: f32([2], [1, huge]) },
            { optimizer: 'sgd', hyperparameters: '{"learningRate":100}' },
          ),
          binaryType,
        ),
      422,
      'non_finite_result',
    ],
    [
      'sgd at the largest learning rate on a huge gradient (JSON)',
      () =>
        post(
          JSON.stringify({ optimizer: 'sgd', hyperparameters: { learningRate: 100 }, grads: [1, huge] }),
          jsonType,
        ),
      422,
      'non_finite_result',
    ],
    [
      'a momentum buffer that overflows',
      async () => {
        const hyperparameters = { learningRate: 0.01, momentum: 0.9 }
        const resolved = await s.app.request(
          `/v1/resolve?ref=momentum&hyperparameters=${encodeURIComponent(JSON.stringify(hyperparameters))}`,
        )
        const { digest } = (await resolved.json()) as { digest: string }
        return post(
          JSON.stringify({ optimizer: 'momentum', digest, hyperparameters, grads: [huge], state: [huge] }),
          jsonType,
        )
      },
      422,
      'non_finite_result',
    ],
    [
      'a learning rate out of its range',
      () =>
        post(
          JSON.stringify({ optimizer: 'sgd', hyperparameters: { learningRate: 1e38 }, grads: [1] }),
          jsonType,
        ),
      400,
      'invalid_hyperparameters',
    ],
  ]
  itRefusesAndChangesNothing(overflowing, () => s.snapshot())
})

describe("a state's pin wins over the name's alias (DESIGN §4)", () => {
  it('serves name and name@alias under the digest the state was made with, also after stable moves and the version is deprecated', async () => {
    const now = new Date('2026-01-01T00:00:00Z')
    const v1 = await publishVersion(
      s.deps.db,
      { name: 'pinned', version: '1.0.0', weights: weightFile(70) },
      now,
    )
    const grads = randomGradients(4, 9)
    const first = await post(binaryBody({ grads: f32([4], grads) }, { optimizer: 'pinned' }), binaryType)
    const state = decode(new Uint8Array(await first.arrayBuffer())).tensors.get('state')!

    await publishVersion(s.deps.db, { name: 'pinned', version: '2.0.0', weights: weightFile(71) }, now)
    const admin = (path: string, method: string, body?: string) =>
      s.app.request(path, { method, body, headers: { ...s.adminAuth, ...jsonType } })
    expect(
      (await admin('/v1/admin/optimizers/pinned/aliases/stable', 'PUT', '{"version":"2.0.0"}')).status,
    ).toBe(200)
    expect((await admin('/v1/admin/optimizers/pinned/versions/1.0.0/deprecate', 'POST')).status).toBe(200)

    const opt = servedOptimizer(weightFile(70))
    const expected = opt.update(grads, state.data as Float32Array)
    for (const optimizer of ['pinned', 'pinned@stable', 'pinned@latest']) {
      const res = await post(
        binaryBody({ grads: f32([4], grads), state }, { optimizer, digest: v1.digest }),
        binaryType,
      )
      expect(res.status).toBe(200)
      expect(res.headers.get('l2o-digest')).toBe(v1.digest)
      expect(res.headers.get('deprecation')).toMatch(/^@\d+$/)
      const file = decode(new Uint8Array(await res.arrayBuffer()))
      expect(file.metadata).toMatchObject({ optimizer: 'pinned@1.0.0', digest: v1.digest })
      expect(file.tensors.get('updates')!.data).toEqual(expected.updates)
      const json = await post(
        JSON.stringify({
          optimizer,
          digest: v1.digest,
          grads: Array.from(grads),
          state: Array.from(state.data),
        }),
        jsonType,
      )
      expect(json.status).toBe(200)
      expect(((await json.json()) as { digest: string }).digest).toBe(v1.digest)
    }

    // A digest of another name, or one that contradicts an explicit version, is still refused.
    for (const [optimizer, digest] of [
      ['pinned', s.tiny.digest],
      ['pinned@2.0.0', v1.digest],
      ['tiny', v1.digest],
    ]) {
      const res = await post(binaryBody({ grads: f32([4], grads), state }, { optimizer, digest }), binaryType)
      await expectProblem(res, 409, 'digest_mismatch')
    }
  })
})
