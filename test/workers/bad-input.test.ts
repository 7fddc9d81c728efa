import { env, exports } from 'cloudflare:workers'
import { beforeAll, describe, expect, it } from 'vitest'
import { encode } from '../../src/safetensors'
import { expectProblem } from '../support/problem'
import { auth, seed } from './seed'

const binary = { 'content-type': 'application/vnd.l2o.safetensors' }
const json = { 'content-type': 'application/json' }

const post = (path: string, headers: Record<string, string>, body: BodyInit) =>
  exports.default.fetch(new Request(`http://l2o.test${path}`, { method: 'POST', headers, body }))

const grads = (values: number[]) => ({
  dtype: 'F32' as const,
  shape: [values.length],
  data: Float32Array.from(values),
})

/** Every table's row count: a refused request must leave it as it was. */
async function counts(): Promise<unknown[]> {
  const tables = ['optimizers', 'versions', 'aliases', 'alias_history', 'clients', 'api_keys', 'sessions']
  return Promise.all(tables.map((t) => env.DB.prepare(`SELECT count(*) AS n FROM ${t}`).first('n')))
}

beforeAll(seed)

describe('bad input to the Worker', () => {
  it.each([
    ['malformed safetensors', binary, new Uint8Array([1, 2, 3]), 400, 'invalid_safetensors'],
    [
      'a NaN gradient',
      binary,
      encode({ grads: grads([0.1, Number.NaN]) }, { optimizer: 'seed-big' }),
      422,
      'non_finite_gradient',
    ],
    [
      'an unknown optimizer',
      json,
      JSON.stringify({ optimizer: 'no-such-optimizer', grads: [0.1] }),
      404,
      'optimizer_not_found',
    ],
    [
      'a state of another digest',
      json,
      JSON.stringify({
        optimizer: 'seed-big@1.0.0',
        digest: `sha256:${'0'.repeat(64)}`,
        grads: [0.1],
        state: Array(256).fill(0),
      }),
      409,
      'digest_mismatch',
    ],
    [
      'a form where a step is expected',
      { 'content-type': 'text/plain' },
      'grads=1',
      415,
      'unsupported_media_type',
    ],
  ])('refuses %s with problem+json and stores nothing', async (_, headers, body, status, code) => {
    const before = await counts()
    await expectProblem(await post('/v1/step', { ...auth('client'), ...headers }, body), status, code)
    expect(await counts()).toEqual(before)
  })

  it('refuses a step without a key, or with an unknown one, with 401', async () => {
    const body = JSON.stringify({ optimizer: 'seed-big', grads: [0.1] })
    await expectProblem(await post('/v1/step', json, body), 401, 'unauthorized')
    await expectProblem(
      await post('/v1/step', { ...json, authorization: 'Bearer l2o_not_a_key_0000' }, body),
      401,
      'unauthorized',
    )
  })

  it('refuses a weight file that is not one, and registers nothing', async () => {
    const before = await counts()
    const form = new FormData()
    form.set('version', '1.0.0')
    form.set('weights', new Blob([new Uint8Array(64)]), 'model.safetensors')
    await expectProblem(
      await post('/v1/admin/optimizers/broken/versions', auth('admin'), form),
      400,
      'invalid_weights',
    )
    expect(await counts()).toEqual(before)
  })
})
