import { env, exports } from 'cloudflare:workers'
import { beforeAll, describe, expect, it } from 'vitest'
import { auth, seed } from './seed'

// Quotas live in D1, so they hold across every isolate that serves a client.
const call = (method: string, path: string, headers: Record<string, string>, body?: unknown) =>
  exports.default.fetch(
    new Request(`http://l2o.test${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    }),
  )

let clientId: string

beforeAll(async () => {
  await seed()
  const row = await env.DB.prepare(
    "SELECT clients.id AS id FROM clients JOIN api_keys ON api_keys.client_id = clients.id WHERE clients.role = 'client'",
  ).first<{ id: string }>()
  clientId = row!.id
})

describe('quotas on D1', () => {
  it('refuse a session past the client maxSessions with 403 quota_exceeded', async () => {
    const set = await call('PUT', `/v1/admin/clients/${clientId}/quotas`, auth('admin'), { maxSessions: 1 })
    expect(set.status).toBe(200)
    const create = () =>
      call('POST', '/v1/sessions', auth('client'), {
        optimizer: 'sgd',
        hyperparameters: { learningRate: 0.1 },
        numParams: 10,
      })
    expect((await create()).status).toBe(201)
    const refused = await create()
    expect(refused.status).toBe(403)
    expect(await refused.json()).toMatchObject({ code: 'quota_exceeded', quota: 'maxSessions', limit: 1 })
    expect(await env.DB.prepare('SELECT count(*) AS n FROM sessions').first('n')).toBe(1)
  })

  it('count requests per minute in D1 and answer 429 with Retry-After past the limit', async () => {
    await call('PUT', `/v1/admin/clients/${clientId}/quotas`, auth('admin'), { requestsPerMinute: 2 })
    const statuses: number[] = []
    let retryAfter: string | null = null
    for (let i = 0; i < 4; i++) {
      const res = await call('GET', '/v1/sessions/ses_none', auth('client'))
      statuses.push(res.status)
      if (res.status === 429) retryAfter = res.headers.get('retry-after')
    }
    // A minute boundary between two requests restarts the count: at most one 404 more then.
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(1)
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1)
    expect(Number(retryAfter)).toBeLessThanOrEqual(60)
    await call('PUT', `/v1/admin/clients/${clientId}/quotas`, auth('admin'), { requestsPerMinute: null })
  })

  it('block key checks from an address after failedAuthPerMinute failures', async () => {
    await call('PUT', '/v1/admin/quotas', auth('admin'), { failedAuthPerMinute: 2 })
    const statuses: number[] = []
    for (let i = 0; i < 3; i++)
      statuses.push(
        (
          await call('GET', '/v1/sessions/x', {
            authorization: `Bearer l2o_${'9'.repeat(40)}`,
            'cf-connecting-ip': '192.0.2.7',
          })
        ).status,
      )
    expect(statuses.slice(0, 2)).toEqual([401, 401])
    expect(statuses[2]).toBe(429)
    // The valid key is refused too from that address, not from another one.
    const valid = (address: string) =>
      call('GET', '/v1/sessions/x', { ...auth('client'), 'cf-connecting-ip': address })
    expect((await valid('192.0.2.7')).status).toBe(429)
    expect((await valid('192.0.2.8')).status).not.toBe(429)
    await call('PUT', '/v1/admin/quotas', auth('admin'), { failedAuthPerMinute: null })
  })

  it('never revoke the last active admin key', async () => {
    const row = await env.DB.prepare(
      "SELECT api_keys.id AS id FROM api_keys JOIN clients ON clients.id = api_keys.client_id WHERE clients.role = 'admin'",
    ).first<{ id: string }>()
    const res = await call('DELETE', `/v1/admin/keys/${row!.id}`, auth('admin'))
    expect(res.status).toBe(409)
    expect(await res.json()).toMatchObject({ code: 'last_admin_key' })
  })
})
