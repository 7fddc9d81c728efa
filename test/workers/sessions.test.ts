import { env, exports } from 'cloudflare:workers'
import { drizzle } from 'drizzle-orm/d1'
import { beforeAll, describe, expect, it } from 'vitest'
import { isForeignKeyViolation } from '../../src/db/db'
import * as schema from '../../src/db/schema'
import { decode, encode } from '../../src/safetensors'
import { objectName } from '../../src/server/sessions/durable-store'
import {
  decodeParityCase,
  maxAbsDiff,
  parityName,
  parityTolerance,
  parityVersion,
} from '../fixtures/workers-step'
import { auth, seed } from './seed'

const fixture = decodeParityCase(new Uint8Array(env.TEST_PARITY_CASE))
const n = fixture.grads1.length
const binary = { 'content-type': 'application/vnd.l2o.safetensors' }
const json = { 'content-type': 'application/json' }

const call = (method: string, path: string, headers: Record<string, string>, body?: BodyInit) =>
  exports.default.fetch(new Request(`http://l2o.test${path}`, { method, headers, body }))

let sessionId: string

const stepBody = (grads: Float32Array, step: number) =>
  encode({ grads: { dtype: 'F32', shape: [grads.length], data: grads } }, { step: String(step) })
const sendStep = (step: number, grads: Float32Array, headers = auth('client')) =>
  call(
    'POST',
    `/v1/sessions/${sessionId}/shards/0/steps/${step}`,
    { ...headers, ...binary },
    stepBody(grads, step),
  )
const updatesOf = async (response: Response) =>
  decode(new Uint8Array(await response.arrayBuffer())).tensors.get('updates')!.data as Float32Array

beforeAll(async () => {
  await seed()
  const form = new FormData()
  form.set('version', parityVersion)
  form.set('weights', new Blob([env.TEST_PARITY_WEIGHTS]), 'model.safetensors')
  expect(
    (await call('POST', `/v1/admin/optimizers/${parityName}/versions`, auth('admin'), form)).status,
  ).toBe(201)
  const created = await call(
    'POST',
    '/v1/sessions',
    { ...auth('client'), ...json },
    JSON.stringify({ optimizer: `${parityName}@${parityVersion}`, numParams: n }),
  )
  expect(created.status).toBe(201)
  const session = (await created.json()) as { id: string; digest: string }
  expect(session).toMatchObject({
    digest: fixture.digest,
    shardCount: 1,
    steps: [{ first: 0, last: 0, step: 0 }],
  })
  sessionId = session.id
})

describe('a session inside workerd (its shards in Durable Objects)', () => {
  it('applies step 1 as the stateless step from a fresh state, and a retry returns the same bytes', async () => {
    const first = await sendStep(1, fixture.grads1)
    expect(first.status).toBe(200)
    const firstBytes = new Uint8Array(await first.arrayBuffer())
    const retry = await sendStep(1, fixture.grads1)
    expect(retry.status).toBe(200)
    expect(new Uint8Array(await retry.arrayBuffer())).toEqual(firstBytes)
    const updates = decode(firstBytes).tensors.get('updates')!.data as Float32Array
    expect(maxAbsDiff(updates, fixture.updates1)).toBeLessThanOrEqual(parityTolerance)
  })

  it('refuses a step out of order with 409 and changes nothing', async () => {
    const response = await sendStep(3, fixture.grads2)
    expect(response.status).toBe(409)
    expect(response.headers.get('content-type')).toBe('application/problem+json')
    expect(await response.json()).toMatchObject({ code: 'step_conflict', currentStep: 1, expectedStep: 2 })
    expect(await env.SESSION_SHARDS.getByName(objectName(sessionId, 0)).steps(sessionId)).toEqual(
      new Map([[0, 1]]),
    )
  })

  it('continues from the state its object stored (step 2 equals the Node runtime second step)', async () => {
    const response = await sendStep(2, fixture.grads2)
    expect(response.status).toBe(200)
    expect(maxAbsDiff(await updatesOf(response), fixture.updates2)).toBeLessThanOrEqual(parityTolerance)
    const read = await call('GET', `/v1/sessions/${sessionId}`, auth('client'))
    expect(await read.json()).toMatchObject({ steps: [{ first: 0, last: 0, step: 2 }] })
  })

  it('is invisible to another client', async () => {
    const made = await call(
      'POST',
      '/v1/admin/clients',
      { ...auth('admin'), ...json },
      JSON.stringify({ name: 'eve' }),
    )
    expect(made.status).toBe(201)
    const other = { authorization: `Bearer ${((await made.json()) as { secret: string }).secret}` }
    expect((await call('GET', `/v1/sessions/${sessionId}`, other)).status).toBe(404)
    expect((await sendStep(3, fixture.grads2, other)).status).toBe(404)
  })

  it('is gone once deleted', async () => {
    expect((await call('DELETE', `/v1/sessions/${sessionId}`, auth('client'))).status).toBe(204)
    expect((await call('GET', `/v1/sessions/${sessionId}`, auth('client'))).status).toBe(404)
    expect(await env.SESSION_SHARDS.getByName(objectName(sessionId, 0)).steps(sessionId)).toEqual(new Map())
    // Nothing of it ever went to D1's shard table.
    expect(await env.DB.prepare('SELECT count(*) AS n FROM session_shards').first('n')).toBe(0)
  })
})

describe('D1 foreign keys', () => {
  it('reports a shard without its session in the words isForeignKeyViolation looks for', async () => {
    const db = drizzle(env.DB, { schema })
    const values = {
      sessionId: 'no-such-session',
      shard: 0,
      step: 1,
      state: new Uint8Array(),
      updates: new Uint8Array(),
      updatedAt: '2026-01-01',
    }
    const error = await db
      .insert(schema.sessionShards)
      .values(values)
      .then(
        () => undefined,
        (e: unknown) => e,
      )
    expect(isForeignKeyViolation(error)).toBe(true)
    expect(isForeignKeyViolation(new Error('UNIQUE constraint failed'))).toBe(false)
  })
})
