import { env, exports } from 'cloudflare:workers'
import * as tf from '@tensorflow/tfjs-core'
import { eq } from 'drizzle-orm'
import { drizzle } from 'drizzle-orm/d1'
import { beforeAll, describe, expect, it } from 'vitest'
import * as schema from '../../src/db/schema'
import { digestOf } from '../../src/weights'
import {
  decodeParityCase,
  extendedParityName,
  maxAbsDiff,
  parityName,
  parityRequests,
  parityTolerance,
  parityVersion,
  stepResult,
} from '../fixtures/workers-step'
import { auth, seed } from './seed'

const fixture = decodeParityCase(new Uint8Array(env.TEST_PARITY_CASE))
const extended = decodeParityCase(new Uint8Array(env.TEST_EXTENDED_CASE))

const post = (path: string, body: BodyInit, headers: Record<string, string>) =>
  exports.default.fetch(new Request(`http://l2o.test${path}`, { method: 'POST', body, headers }))

async function binaryStep(body: Uint8Array) {
  const response = await post('/v1/step', body, {
    ...auth('client'),
    'content-type': 'application/vnd.l2o.safetensors',
  })
  if (response.status !== 200) expect.fail(`${response.status}: ${await response.text()}`)
  return stepResult(new Uint8Array(await response.arrayBuffer()))
}

beforeAll(async () => {
  await seed()
  const form = new FormData()
  form.set('version', parityVersion)
  form.set('weights', new Blob([env.TEST_PARITY_WEIGHTS]), 'model.safetensors')
  const published = await post(`/v1/admin/optimizers/${parityName}/versions`, form, auth('admin'))
  expect(published.status).toBe(201)
  expect(await published.json()).toMatchObject({ digest: fixture.digest, created: true })
  const extendedForm = new FormData()
  extendedForm.set('version', parityVersion)
  extendedForm.set('weights', new Blob([env.TEST_EXTENDED_WEIGHTS]), 'model.safetensors')
  const publishedExtended = await post(
    `/v1/admin/optimizers/${extendedParityName}/versions`,
    extendedForm,
    auth('admin'),
  )
  expect(publishedExtended.status).toBe(201)
})

describe('a weight file published through the Worker', () => {
  it('is stored in D1 byte for byte (drizzle BLOB round trip, no Buffer)', async () => {
    const row = await drizzle(env.DB, { schema })
      .select({ weights: schema.versions.weights, sizeBytes: schema.versions.sizeBytes })
      .from(schema.versions)
      .where(eq(schema.versions.digest, fixture.digest))
      .get()
    const expected = new Uint8Array(env.TEST_PARITY_WEIGHTS)
    expect(row?.sizeBytes).toBe(expected.length)
    expect(row?.weights).toEqual(expected)
    expect(await digestOf(row!.weights)).toBe(fixture.digest)
  })
})

describe('a learned binary step inside workerd', () => {
  it('runs on the wasm backend', async () => {
    const health = await exports.default.fetch(new Request('http://l2o.test/healthz'))
    expect(await health.json()).toMatchObject({ runtime: 'workers', backend: 'wasm' })
    expect(tf.getBackend()).toBe('wasm')
  })

  it('equals the Node runtime from a fresh state', async () => {
    const { first } = parityRequests(fixture)
    const result = await binaryStep(first)
    expect(result.digest).toBe(fixture.digest)
    expect(maxAbsDiff(result.updates, fixture.updates1)).toBeLessThanOrEqual(parityTolerance)
    expect(maxAbsDiff(result.state, fixture.state1)).toBeLessThanOrEqual(parityTolerance)
  })

  it('equals the Node runtime from the state the Node runtime returned', async () => {
    const { second } = parityRequests(fixture)
    const result = await binaryStep(second)
    expect(maxAbsDiff(result.updates, fixture.updates2)).toBeLessThanOrEqual(parityTolerance)
    expect(maxAbsDiff(result.state, fixture.state2)).toBeLessThanOrEqual(parityTolerance)
    // Not a vacuous match: the updates move, and the second step's differ from the first's.
    expect(maxAbsDiff(fixture.updates2, fixture.updates1)).toBeGreaterThan(1e-4)
  })
})

describe('an extended optimizer (moments, ELU input layer, tanh output) inside workerd', () => {
  it('reports its state width from /v1/resolve', async () => {
    const res = await exports.default.fetch(
      new Request(`http://l2o.test/v1/resolve?ref=${extendedParityName}`),
    )
    expect(await res.json()).toMatchObject({ digest: extended.digest, stateSize: 37 })
  })

  it('equals the Node runtime over two chained steps, unseen coordinates exactly +0', async () => {
    const { first, second } = parityRequests(extended, extendedParityName)
    for (const [body, updates, state] of [
      [first, extended.updates1, extended.state1],
      [second, extended.updates2, extended.state2],
    ] as const) {
      const result = await binaryStep(body)
      expect(result.digest).toBe(extended.digest)
      expect(maxAbsDiff(result.updates, updates)).toBeLessThanOrEqual(parityTolerance)
      expect(maxAbsDiff(result.state, state)).toBeLessThanOrEqual(parityTolerance)
      // The golden's last 6 coordinates only ever see ±0.
      for (let i = updates.length - 6; i < updates.length; i++)
        expect(Object.is(result.updates[i], 0)).toBe(true)
    }
    expect(maxAbsDiff(extended.updates2, extended.updates1)).toBeGreaterThan(1e-4)
  })
})
