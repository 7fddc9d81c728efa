import { describe, expect, it } from 'vitest'
import { expectProblem } from '../../test/support/problem'
import { jsonType, useTestServer } from '../../test/support/server'
import { type ClientQuotas, type Quotas, quotasSchema } from '../contract'
import { batchedRateCounter, builtInQuotas, secondsLeftInWindow } from './quotas'

// A clock the tests move by hand, and an address each request names in a header of the test's own.
let nowMs = Date.parse('2026-01-01T00:00:10Z')
const s = useTestServer({
  now: () => new Date(nowMs),
  clientAddress: (request) => request.headers.get('x-test-address') ?? undefined,
})

const admin = (method: string, path: string, body?: unknown) =>
  s.app.request(path, {
    method,
    body: body === undefined ? undefined : JSON.stringify(body),
    headers: { ...s.adminAuth, ...jsonType },
  })
const createSession = (numParams: number, headers: Record<string, string> = s.clientAuth) =>
  s.app.request('/v1/sessions', {
    method: 'POST',
    body: JSON.stringify({ optimizer: 'tiny', numParams }),
    headers: { ...headers, ...jsonType },
  })
const sessionCount = () =>
  (
    s.sqlite.prepare('select count(*) as n from sessions where client_id = ?').get(s.clientId) as {
      n: number
    }
  ).n

describe('quotas set through the admin API', () => {
  it('start at the built-in defaults, and PUT changes them (null restores one)', async () => {
    expect(quotasSchema.parse(await (await admin('GET', '/v1/admin/quotas')).json())).toEqual(builtInQuotas)
    const changed = (await (
      await admin('PUT', '/v1/admin/quotas', { requestsPerMinute: 500 })
    ).json()) as Quotas
    expect(changed).toEqual({ ...builtInQuotas, requestsPerMinute: 500 })
    const restored = (await (
      await admin('PUT', '/v1/admin/quotas', { requestsPerMinute: null })
    ).json()) as Quotas
    expect(restored).toEqual(builtInQuotas)
    await expectProblem(
      await admin('PUT', '/v1/admin/quotas', { requestsPerMinute: 0 }),
      400,
      'invalid_request',
    )
    await expectProblem(await admin('PUT', '/v1/admin/quotas', { sessions: 3 }), 400, 'invalid_request')
  })

  it("show a client's own settings over the defaults, and what it holds", async () => {
    const res = await admin('PUT', `/v1/admin/clients/${s.clientId}/quotas`, { maxSessions: 5 })
    const body = (await res.json()) as ClientQuotas
    expect(body).toEqual({
      clientId: s.clientId,
      quotas: { ...builtInQuotas, failedAuthPerMinute: undefined, maxSessions: 5 },
      overrides: { maxSessions: 5 },
      usage: { sessions: 0, sessionCoordinates: 0 },
    })
    await expectProblem(await admin('GET', '/v1/admin/clients/cl_nope/quotas'), 404, 'not_found')
    const asClient = await s.app.request('/v1/admin/quotas', { headers: s.clientAuth })
    await expectProblem(asClient, 403, 'forbidden')
  })
})

describe('session quotas', () => {
  it('refuse a session past maxSessions with 403 quota_exceeded, storing nothing', async () => {
    await admin('PUT', `/v1/admin/clients/${s.clientId}/quotas`, {
      maxSessions: 2,
      maxSessionCoordinates: null,
    })
    const first = (await (await createSession(10)).json()) as { id: string }
    expect((await createSession(10)).status).toBe(201)
    const before = s.snapshot()
    const refused = await expectProblem(await createSession(10), 403, 'quota_exceeded')
    expect(refused).toMatchObject({ quota: 'maxSessions', limit: 2 })
    expect(refused.detail).toMatch(/maxSessions/)
    expect(s.snapshot()).toBe(before)
    // Deleting one makes room again; other clients have quotas of their own.
    await s.app.request(`/v1/sessions/${first.id}`, { method: 'DELETE', headers: s.clientAuth })
    expect((await createSession(10)).status).toBe(201)
    expect((await createSession(10, s.otherAuth)).status).toBe(201)
  })

  it('refuse coordinates past maxSessionCoordinates, counting every session of the client', async () => {
    await admin('PUT', `/v1/admin/clients/${s.clientId}/quotas`, {
      maxSessions: 100,
      maxSessionCoordinates: 1000,
    })
    const held = sessionCount()
    const usage = (await (
      await admin('GET', `/v1/admin/clients/${s.clientId}/quotas`)
    ).json()) as ClientQuotas
    expect(usage.usage.sessions).toBe(held)
    const room = 1000 - usage.usage.sessionCoordinates
    const refused = await expectProblem(await createSession(room + 1), 403, 'quota_exceeded')
    expect(refused).toMatchObject({ quota: 'maxSessionCoordinates', limit: 1000 })
    expect(sessionCount()).toBe(held)
    expect((await createSession(room)).status).toBe(201)
  })
})

describe('rate quotas', () => {
  it('answer requests past requestsPerMinute with 429 and Retry-After until the minute ends', async () => {
    await admin('PUT', `/v1/admin/clients/${s.clientId}/quotas`, { requestsPerMinute: 3 })
    nowMs = Date.parse('2026-01-01T00:05:50Z')
    const read = () => s.app.request('/v1/sessions/ses_none', { headers: s.clientAuth })
    for (let i = 0; i < 3; i++) expect((await read()).status).toBe(404)
    const limited = await read()
    const body = await expectProblem(limited, 429, 'quota_exceeded')
    expect(body).toMatchObject({ quota: 'requestsPerMinute', limit: 3 })
    expect(limited.headers.get('retry-after')).toBe('10')
    expect((await s.app.request('/v1/sessions/ses_none', { headers: s.otherAuth })).status).toBe(404)
    nowMs = Date.parse('2026-01-01T00:06:00Z')
    expect((await read()).status).toBe(404)
    await admin('PUT', `/v1/admin/clients/${s.clientId}/quotas`, { requestsPerMinute: null })
  })

  it('stop key checks from an address after failedAuthPerMinute failures, valid keys included', async () => {
    await admin('PUT', '/v1/admin/quotas', { failedAuthPerMinute: 3 })
    nowMs = Date.parse('2026-01-01T00:10:30Z')
    const from = (address: string, key: string) =>
      s.app.request('/v1/sessions/ses_none', {
        headers: { authorization: `Bearer ${key}`, 'x-test-address': address },
      })
    const guess = `l2o_${'7'.repeat(64)}`
    for (let i = 0; i < 3; i++) await expectProblem(await from('10.0.0.1', guess), 401, 'unauthorized')
    const blocked = await from('10.0.0.1', s.clientKey)
    expect(await expectProblem(blocked, 429, 'quota_exceeded')).toMatchObject({
      quota: 'failedAuthPerMinute',
    })
    expect(blocked.headers.get('retry-after')).toBe('30')
    // Another address is not affected, and the next minute starts afresh.
    expect((await from('10.0.0.2', s.clientKey)).status).toBe(404)
    nowMs = Date.parse('2026-01-01T00:11:00Z')
    expect((await from('10.0.0.1', s.clientKey)).status).toBe(404)
    await admin('PUT', '/v1/admin/quotas', { failedAuthPerMinute: null })
  })

  it('batched (Workers): count every request, write a key at most once per interval, its first of a minute at once', async () => {
    const count = batchedRateCounter(1000)
    const stored = (key: string) =>
      (
        s.sqlite.prepare('select count from rate_windows where key = ?').get(key) as
          | { count: number }
          | undefined
      )?.count
    const at = (iso: string) => new Date(iso)
    const key = 'client:batched'
    // Another process already counted 5 in this minute.
    for (let i = 0; i < 5; i++) await count(s.deps.db, 'client:batched', at('2026-01-01T00:20:00.000Z'))
    expect(stored(key)).toBe(1)
    const other = batchedRateCounter(1000)
    expect(await other(s.deps.db, key, at('2026-01-01T00:20:00.100Z'))).toBe(2) // written at once
    expect(await count(s.deps.db, key, at('2026-01-01T00:20:00.900Z'))).toBe(6) // 1 seen + 5 of its own, not written
    expect(stored(key)).toBe(2)
    expect(await count(s.deps.db, key, at('2026-01-01T00:20:01.000Z'))).toBe(8) // a second on: its 6 written
    expect(stored(key)).toBe(8)
    // A new minute starts from its own first request, written at once.
    expect(await count(s.deps.db, key, at('2026-01-01T00:21:00.000Z'))).toBe(1)
    expect(stored(key)).toBe(1)
  })

  it('say how long is left in the window', () => {
    expect(secondsLeftInWindow(new Date('2026-01-01T00:00:00.000Z'))).toBe(60)
    expect(secondsLeftInWindow(new Date('2026-01-01T00:00:59.500Z'))).toBe(1)
  })
})
