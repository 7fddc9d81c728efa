import { beforeAll, describe, expect, it } from 'vitest'
import { expectProblem, itRefusesAndChangesNothing, type Refusal } from '../../../test/support/problem'
import { racingDb } from '../../../test/support/racing-db'
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
import type { Session } from '../../contract'
import { sessionShards, sessions } from '../../db/schema'
import { decode } from '../../safetensors'
import { createApp } from '../app'
import { publishVersion } from '../registry/publish'

const s = useTestServer({ maxCoordinatesPerRequest: 1000 }, { tf: true })

beforeAll(async () => {
  await publishVersion(
    s.deps.db,
    { name: 'paper', version: '1.0.0', weights: weightFile(2, paperArchitecture) },
    new Date(),
  )
})

async function create(body: Record<string, unknown>, auth = s.clientAuth): Promise<Session> {
  const res = await s.app.request('/v1/sessions', {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { ...auth, ...jsonType },
  })
  expect(res.status).toBe(201)
  return (await res.json()) as Session
}

const stepUrl = (id: string, shard: number, step: number) =>
  `/v1/sessions/${id}/shards/${shard}/steps/${step}`
const step = (id: string, shard: number, t: number, grads: Float32Array, auth = s.clientAuth) =>
  s.app.request(stepUrl(id, shard, t), {
    method: 'POST',
    body: binaryBody({ grads: f32([grads.length], grads) }),
    headers: { ...auth, ...binaryType },
  })

describe('sessions', () => {
  it('creates a huge session without writing a shard, described in a few hundred bytes', async () => {
    // Past the default quota of coordinates: an admin lifts it for this client.
    const lifted = await s.app.request(`/v1/admin/clients/${s.clientId}/quotas`, {
      method: 'PUT',
      body: JSON.stringify({ maxSessionCoordinates: 2_000_000_000 }),
      headers: { ...s.adminAuth, ...jsonType },
    })
    expect(lifted.status).toBe(200)
    const res = await s.app.request('/v1/sessions', {
      method: 'POST',
      body: JSON.stringify({ optimizer: 'paper', numParams: 1_000_000_000, stateDtype: 'F16' }),
      headers: { ...s.clientAuth, ...jsonType },
    })
    const text = await res.text()
    expect(text.length).toBeLessThan(1000)
    const session = JSON.parse(text) as Session
    expect(session.shardSize).toBe(1000)
    expect(session.shardCount).toBe(1_000_000)
    expect(session.steps).toEqual([{ first: 0, last: 999_999, step: 0 }])
    expect(s.sqlite.prepare('select count(*) as n from session_shards').get()).toEqual({ n: 0 })
  })

  it('answers a retried create (same Idempotency-Key) with the same session, never a second one', async () => {
    const post = (body: Record<string, unknown>, key: string | undefined, auth = s.clientAuth) =>
      s.app.request('/v1/sessions', {
        method: 'POST',
        body: JSON.stringify(body),
        headers: { ...auth, ...jsonType, ...(key === undefined ? {} : { 'Idempotency-Key': key }) },
      })
    const count = () => (s.sqlite.prepare('select count(*) as n from sessions').get() as { n: number }).n
    const body = { optimizer: 'paper', numParams: 2000 } // two even shards of 1,000
    const before = count()

    const first = await post(body, 'retry-key-1')
    expect(first.status).toBe(201)
    const created = (await first.json()) as Session
    const again = await post(body, 'retry-key-1')
    expect(again.status).toBe(200)
    expect(again.headers.get('location')).toBe(`/v1/sessions/${created.id}`)
    expect(((await again.json()) as Session).id).toBe(created.id)
    expect(count()).toBe(before + 1)

    // After a step, the replayed answer shows the session as it is now.
    expect((await step(created.id, 0, 1, randomGradients(1000, 3))).status).toBe(200)
    const later = (await (await post(body, 'retry-key-1')).json()) as Session
    expect(later.steps).toEqual([
      { first: 0, last: 0, step: 1 },
      { first: 1, last: 1, step: 0 },
    ])

    // The same key with another request is a conflict and creates nothing.
    await expectProblem(await post({ ...body, numParams: 1501 }, 'retry-key-1'), 409, 'idempotency_conflict')
    await expectProblem(
      await post({ ...body, stateDtype: 'F16' }, 'retry-key-1'),
      409,
      'idempotency_conflict',
    )
    // Keys belong to a client; no key means a new session every time; a malformed key is refused.
    expect((await post(body, 'retry-key-1', s.otherAuth)).status).toBe(201)
    expect((await post(body, undefined)).status).toBe(201)
    expect((await post(body, undefined)).status).toBe(201)
    await expectProblem(await post(body, 'has space'), 400, 'invalid_request')
    expect(count()).toBe(before + 4)
  })

  it('applies each step once, replays a retry byte for byte, and matches the stateless math', async () => {
    const session = await create({ optimizer: 'tiny', numParams: 2500 })
    expect(session).toMatchObject({
      optimizer: 'tiny@1.0.0',
      digest: s.tiny.digest,
      stateSize: 8,
      shardSize: 834, // 2,500 in three even shards of at most 1,000: 834, 834, 832
    })
    expect(session).toMatchObject({ shardCount: 3, steps: [{ first: 0, last: 2, step: 0 }] })
    const opt = servedOptimizer(s.tiny.bytes)
    let state = opt.init(832)
    for (let t = 1; t <= 3; t++) {
      const grads = randomGradients(832, t)
      const res = await step(session.id, 2, t, grads)
      expect(res.status).toBe(200)
      expect(res.headers.get('l2o-digest')).toBe(s.tiny.digest)
      const bytes = new Uint8Array(await res.arrayBuffer())
      const file = decode(bytes)
      expect(file.metadata).toEqual({ digest: s.tiny.digest, step: String(t) })
      const expected = opt.update(grads, state)
      state = expected.state
      expect(file.tensors.get('updates')!.data).toEqual(expected.updates)
      // A retry of t returns the same bytes and applies nothing; t resent with other gradients is
      // a client bug, refused with its own code.
      const before = s.snapshot()
      const again = await step(session.id, 2, t, grads)
      expect(new Uint8Array(await again.arrayBuffer())).toEqual(bytes)
      const other = await expectProblem(
        await step(session.id, 2, t, randomGradients(832, 99)),
        409,
        'replay_mismatch',
      )
      expect(other.step).toBe(t)
      expect(s.snapshot()).toBe(before)
    }
    const before = s.snapshot()
    const back = await step(session.id, 2, 1, randomGradients(832, 1))
    expect(back.status).toBe(409)
    expect(((await back.json()) as { expectedStep: number }).expectedStep).toBe(4)
    expect(s.snapshot()).toBe(before)
    const read = await s.app.request(`/v1/sessions/${session.id}`, { headers: s.clientAuth })
    expect(((await read.json()) as Session).steps).toEqual([
      { first: 0, last: 1, step: 0 },
      { first: 2, last: 2, step: 3 },
    ])
  })

  it('steps over JSON too', async () => {
    const session = await create({ optimizer: 'sgd', hyperparameters: { learningRate: 0.5 }, numParams: 3 })
    const res = await s.app.request(stepUrl(session.id, 0, 1), {
      method: 'POST',
      body: JSON.stringify({ grads: [1, 2, -4] }),
      headers: { ...s.clientAuth, ...jsonType },
    })
    expect(await res.json()).toEqual({ step: 1, digest: session.digest, updates: [-0.5, -1, 2] })
  })

  it('applies one of concurrent requests for the same step, also across app instances', async () => {
    // Two apps on one database stand for two Workers isolates: only the conditional write separates them.
    const other = createApp(() => s.deps)
    const session = await create({ optimizer: 'tiny', numParams: 10 })
    const grads = randomGradients(10, 5)
    const body = binaryBody({ grads: f32([10], grads) })
    const init = { method: 'POST', body, headers: { ...s.clientAuth, ...binaryType } }
    const answers = await Promise.all(
      [s.app, other, s.app, other].map((app) => app.request(stepUrl(session.id, 0, 1), init)),
    )
    const bodies = await Promise.all(
      answers.map(async (r) => [r.status, Buffer.from(await r.arrayBuffer()).toString('hex')]),
    )
    for (const b of bodies) expect(b).toEqual(bodies[0])
    const row = s.sqlite.prepare('select step from session_shards where session_id = ?').get(session.id)
    expect(row).toEqual({ step: 1 })
  })

  it('refuses a step that overflows: 422, nothing stored, the shard still at its last step', async () => {
    const session = await create({
      optimizer: 'momentum',
      hyperparameters: { learningRate: 0.01, momentum: 0.9 },
      numParams: 1,
    })
    const huge = Float32Array.of(3e38)
    expect((await step(session.id, 0, 1, huge)).status).toBe(200)
    const before = s.snapshot()
    await expectProblem(await step(session.id, 0, 2, huge), 422, 'non_finite_result')
    expect(s.snapshot()).toBe(before)
    // The run goes on from step 1 with a gradient that does not overflow.
    expect((await step(session.id, 0, 2, Float32Array.of(-3e38))).status).toBe(200)

    // A row stored by an older server with an overflow in it is never replayed.
    const inf = new Uint8Array(Float32Array.of(Number.NEGATIVE_INFINITY).buffer)
    s.sqlite.prepare('update session_shards set updates = ? where session_id = ?').run(inf, session.id)
    await expectProblem(await step(session.id, 0, 2, Float32Array.of(-3e38)), 422, 'non_finite_result')
  })

  it('keeps sessions private to their client', async () => {
    const session = await create({ optimizer: 'tiny', numParams: 10 })
    const before = s.snapshot()
    await expectProblem(
      await s.app.request(`/v1/sessions/${session.id}`, { headers: s.otherAuth }),
      404,
      'session_not_found',
    )
    await expectProblem(
      await step(session.id, 0, 1, new Float32Array(10), s.otherAuth),
      404,
      'session_not_found',
    )
    const del = await s.app.request(`/v1/sessions/${session.id}`, { method: 'DELETE', headers: s.otherAuth })
    await expectProblem(del, 404, 'session_not_found')
    expect(s.snapshot()).toBe(before)
  })

  it('deletes a session and its shards', async () => {
    const session = await create({ optimizer: 'tiny', numParams: 10 })
    expect((await step(session.id, 0, 1, new Float32Array(10))).status).toBe(200)
    const del = await s.app.request(`/v1/sessions/${session.id}`, { method: 'DELETE', headers: s.clientAuth })
    expect(del.status).toBe(204)
    await expectProblem(
      await s.app.request(`/v1/sessions/${session.id}`, { headers: s.clientAuth }),
      404,
      'session_not_found',
    )
    expect(
      s.sqlite.prepare('select count(*) as n from session_shards where session_id = ?').get(session.id),
    ).toEqual({ n: 0 })
  })
})

describe('a session deleted while a step runs', () => {
  // A database whose insert/update/delete on `table` first runs `before`: the race, made deterministic.
  const racing = (table: unknown, method: 'insert' | 'update' | 'delete', before: () => void) =>
    racingDb(s.deps.db, table, method, before)
  const shardRows = (id: string) =>
    s.sqlite.prepare('select count(*) as n from session_shards where session_id = ?').get(id)
  const gone = (id: string) => s.sqlite.prepare('delete from sessions where id = ?').run(id)

  it('answers a first step whose shard row can no longer be stored with 404, not 500', async () => {
    const session = await create({ optimizer: 'tiny', numParams: 10 })
    const app = createApp(() => ({
      ...s.deps,
      db: racing(sessionShards, 'insert', () => gone(session.id)),
    }))
    const res = await app.request(stepUrl(session.id, 0, 1), {
      method: 'POST',
      body: binaryBody({ grads: f32([10], randomGradients(10, 8)) }),
      headers: { ...s.clientAuth, ...binaryType },
    })
    await expectProblem(res, 404, 'session_not_found')
    expect(shardRows(session.id)).toEqual({ n: 0 })
  })

  it('answers a later step whose shard row was deleted with 404, not a step conflict', async () => {
    const session = await create({ optimizer: 'tiny', numParams: 10 })
    expect((await step(session.id, 0, 1, randomGradients(10, 9))).status).toBe(200)
    const db = racing(sessionShards, 'update', () => {
      s.sqlite.prepare('delete from session_shards where session_id = ?').run(session.id)
      gone(session.id)
    })
    const res = await createApp(() => ({ ...s.deps, db })).request(stepUrl(session.id, 0, 2), {
      method: 'POST',
      body: binaryBody({ grads: f32([10], randomGradients(10, 10)) }),
      headers: { ...s.clientAuth, ...binaryType },
    })
    await expectProblem(res, 404, 'session_not_found')
  })

  it('deletes a session even when a first step stores a shard between its two deletes', async () => {
    const session = await create({ optimizer: 'tiny', numParams: 10 })
    let raced = false
    const db = racing(sessions, 'delete', () => {
      if (raced) return
      raced = true
      s.sqlite
        .prepare(
          "insert into session_shards (session_id, shard, step, state, updates, updated_at) values (?, 0, 1, x'', x'', '2026-01-01')",
        )
        .run(session.id)
    })
    const app = createApp(() => ({ ...s.deps, db }))
    const res = await app.request(`/v1/sessions/${session.id}`, { method: 'DELETE', headers: s.clientAuth })
    expect(res.status).toBe(204)
    expect(raced).toBe(true)
    expect(shardRows(session.id)).toEqual({ n: 0 })
    expect((await s.app.request(`/v1/sessions/${session.id}`, { headers: s.clientAuth })).status).toBe(404)
  })
})

describe('sessions refuse bad input with problem+json and change nothing', () => {
  let id: string
  beforeAll(async () => {
    id = (await create({ optimizer: 'tiny', numParams: 1600 })).id // two even shards of 800
    expect((await step(id, 0, 1, new Float32Array(800))).status).toBe(200)
  })
  const good = () => new Float32Array(800)
  const post = (url: string, body: BodyInit, headers: Record<string, string> = binaryType) =>
    s.app.request(url, { method: 'POST', body, headers: { ...s.clientAuth, ...headers } })
  const createRaw = (body: unknown, headers: Record<string, string> = jsonType) =>
    s.app.request('/v1/sessions', {
      method: 'POST',
      body: typeof body === 'string' ? body : JSON.stringify(body),
      headers: { ...s.clientAuth, ...headers },
    })
  const cases: Refusal[] = [
    [
      'create without a key',
      () => s.app.request('/v1/sessions', { method: 'POST', body: '{}', headers: jsonType }),
      401,
      'unauthorized',
    ],
    ['create with a binary body', () => createRaw('{}', binaryType), 415, 'unsupported_media_type'],
    ['create with bad JSON', () => createRaw('{'), 400, 'invalid_request'],
    ['create with numParams 0', () => createRaw({ optimizer: 'tiny', numParams: 0 }), 400, 'invalid_request'],
    [
      'create with a fractional numParams',
      () => createRaw({ optimizer: 'tiny', numParams: 1.5 }),
      400,
      'invalid_request',
    ],
    [
      'create with an unknown dtype',
      () => createRaw({ optimizer: 'tiny', numParams: 1, stateDtype: 'F8' }),
      400,
      'invalid_request',
    ],
    [
      'create for an unknown optimizer',
      () => createRaw({ optimizer: 'nope', numParams: 1 }),
      404,
      'optimizer_not_found',
    ],
    [
      'create pinned to another digest',
      () => createRaw({ optimizer: 'tiny', numParams: 1, digest: `sha256:${'3'.repeat(64)}` }),
      409,
      'digest_mismatch',
    ],
    [
      'create a baseline without hyper-parameters',
      () => createRaw({ optimizer: 'adam', numParams: 1 }),
      400,
      'invalid_hyperparameters',
    ],
    [
      'step without a key',
      () =>
        s.app.request(stepUrl(id, 0, 2), {
          method: 'POST',
          body: binaryBody({ grads: f32([800], good()) }),
          headers: binaryType,
        }),
      401,
      'unauthorized',
    ],
    [
      'step an unknown session',
      () => post(stepUrl('ses_nope', 0, 1), binaryBody({ grads: f32([800], good()) })),
      404,
      'session_not_found',
    ],
    [
      'step a shard out of range',
      () => post(stepUrl(id, 2, 1), binaryBody({ grads: f32([800], good()) })),
      400,
      'invalid_request',
    ],
    [
      'step a negative shard',
      () => post(stepUrl(id, -1, 1), binaryBody({ grads: f32([800], good()) })),
      400,
      'invalid_request',
    ],
    [
      'step 0',
      () => post(stepUrl(id, 1, 0), binaryBody({ grads: f32([800], good()) })),
      400,
      'invalid_request',
    ],
    [
      'step "x"',
      () => post(`/v1/sessions/${id}/shards/0/steps/x`, binaryBody({ grads: f32([800], good()) })),
      400,
      'invalid_request',
    ],
    [
      'step "02" (a leading zero)',
      () => post(`/v1/sessions/${id}/shards/0/steps/02`, binaryBody({ grads: f32([800], good()) })),
      400,
      'invalid_request',
    ],
    [
      'step "%32" (an escaped digit)',
      () => post(`/v1/sessions/${id}/shards/0/steps/%32`, binaryBody({ grads: f32([800], good()) })),
      400,
      'invalid_request',
    ],
    [
      'shard "00"',
      () => post(`/v1/sessions/${id}/shards/00/steps/2`, binaryBody({ grads: f32([800], good()) })),
      400,
      'invalid_request',
    ],
    [
      'a step out of order (skipping ahead)',
      () => post(stepUrl(id, 0, 3), binaryBody({ grads: f32([800], good()) })),
      409,
      'step_conflict',
    ],
    [
      'step 2 on a fresh shard',
      () => post(stepUrl(id, 1, 2), binaryBody({ grads: f32([800], new Float32Array(800)) })),
      409,
      'step_conflict',
    ],
    [
      'the wrong number of gradients',
      () => post(stepUrl(id, 0, 2), binaryBody({ grads: f32([799], new Float32Array(799)) })),
      400,
      'shape_mismatch',
    ],
    [
      'NaN',
      () => post(stepUrl(id, 0, 2), binaryBody({ grads: f32([800], good().fill(Number.NaN)) })),
      422,
      'non_finite_gradient',
    ],
    ['malformed safetensors', () => post(stepUrl(id, 0, 2), new Uint8Array(16)), 400, 'invalid_safetensors'],
    [
      'a state in a session step',
      () => post(stepUrl(id, 0, 2), binaryBody({ state: f32([800], good()) })),
      400,
      'invalid_safetensors',
    ],
    [
      'F16 grads',
      () =>
        post(
          stepUrl(id, 0, 2),
          binaryBody({ grads: { dtype: 'F16', shape: [800], data: new Uint16Array(800) } }),
        ),
      400,
      'shape_mismatch',
    ],
    [
      'a body too large for the shard',
      () => post(stepUrl(id, 0, 2), new Uint8Array(4 * 1000 + 70_000)),
      413,
      'payload_too_large',
    ],
    [
      'a metadata step that disagrees with the path',
      () => post(stepUrl(id, 0, 2), binaryBody({ grads: f32([800], good()) }, { step: '3' })),
      400,
      'invalid_request',
    ],
    [
      'a metadata digest of another optimizer',
      () =>
        post(
          stepUrl(id, 0, 2),
          binaryBody({ grads: f32([800], good()) }, { digest: `sha256:${'4'.repeat(64)}` }),
        ),
      409,
      'digest_mismatch',
    ],
    [
      'a wrong content type',
      () =>
        post(stepUrl(id, 0, 2), binaryBody({ grads: f32([800], good()) }), {
          'content-type': 'application/octet-stream',
        }),
      415,
      'unsupported_media_type',
    ],
    [
      'JSON with the wrong number of gradients',
      () => post(stepUrl(id, 0, 2), JSON.stringify({ grads: [1] }), jsonType),
      400,
      'shape_mismatch',
    ],
  ]
  itRefusesAndChangesNothing(cases, () => s.snapshot())

  it('says which step comes next', async () => {
    const body = await expectProblem(
      await post(stepUrl(id, 0, 5), binaryBody({ grads: f32([800], good()) })),
      409,
      'step_conflict',
    )
    expect(body).toMatchObject({ currentStep: 1, expectedStep: 2 })
    expect(body.detail).toContain('send step 2 next')
  })
})
