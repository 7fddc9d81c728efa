import { env, exports } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'

describe('the Worker inside workerd', () => {
  it('answers /healthz on the wasm backend', async () => {
    const response = await exports.default.fetch(new Request('http://l2o.test/healthz'))
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ status: 'ok', runtime: 'workers', backend: 'wasm' })
  })

  it('has the migrated registry tables in D1', async () => {
    const { results } = await env.DB.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all()
    expect(results.map((r) => r.name)).toEqual(expect.arrayContaining(['versions', 'aliases', 'sessions']))
  })
})
