import { exports } from 'cloudflare:workers'
import { beforeAll, describe, expect, it } from 'vitest'
import { encode } from '../../src/safetensors'
import { randomGradients } from '../support/random'
import { auth, seed } from './seed'

// The Worker's step budget (src/runtime/workers.ts): 4 MiB binary, 2 MiB JSON, so a step at the
// limit fits a 128 MB isolate with room to spare (bench:edge-memory; docs/capacity.md).
const call = (path: string, init: RequestInit = {}) =>
  exports.default.fetch(
    new Request(`http://l2o.test${path}`, { ...init, headers: { ...auth('client'), ...init.headers } }),
  )

const limitFor = (stateSize: number) => Math.floor((4 * 1024 * 1024 - 65_536) / (4 + 4 * stateSize))

const binaryStep = (optimizer: string, n: number) =>
  call('/v1/step', {
    method: 'POST',
    headers: { 'content-type': 'application/vnd.l2o.safetensors' },
    body: encode({ grads: { dtype: 'F32', shape: [n], data: randomGradients(n, n) } }, { optimizer }),
  })

beforeAll(seed)

describe('the step budget of a Worker', () => {
  it('advertises per optimizer the coordinates whose grads and F32 state fit 4 MiB', async () => {
    for (const [ref, stateSize] of [
      ['l2o-mnist@1.1.0', 80],
      ['seed-big@1.0.0', 256],
    ] as const) {
      const resolved = (await (await call(`/v1/resolve?ref=${ref}`)).json()) as Record<string, number>
      expect(resolved).toMatchObject({ stateSize, maxCoordinatesPerRequest: limitFor(stateSize) })
    }
    expect(limitFor(80)).toBe(12_743)
  })

  it('steps at the limit and refuses one coordinate more', async () => {
    expect((await binaryStep('l2o-mnist@1.1.0', limitFor(80))).status).toBe(200)
    const over = await binaryStep('l2o-mnist@1.1.0', limitFor(80) + 1)
    expect(over.status).toBe(413)
    expect(await over.json()).toMatchObject({ code: 'too_many_coordinates', limit: limitFor(80) })
  })

  it('refuses a JSON body over 2 MiB', async () => {
    const grads = Array.from({ length: 150_000 }, (_, i) => i / 7)
    const body = JSON.stringify({ optimizer: 'sgd', hyperparameters: { learningRate: 0.1 }, grads })
    expect(body.length).toBeGreaterThan(2 * 1024 * 1024)
    const response = await call('/v1/step', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    })
    expect(response.status).toBe(413)
    expect(await response.json()).toMatchObject({ code: 'payload_too_large', limitBytes: 2 * 1024 * 1024 })
  })
})
