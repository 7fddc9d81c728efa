import { describe, expect, it } from 'vitest'
import { expectProblem } from '../../test/support/problem'
import { binaryBody, binaryType, f32, jsonType, useTestServer } from '../../test/support/server'
import { accepts, answerType } from './accept'

describe('accepts', () => {
  it('admits what a matching range with q > 0 admits, the most specific range deciding', () => {
    const json = 'application/json'
    expect(accepts(undefined, json)).toBe(true)
    expect(accepts('', json)).toBe(true)
    expect(accepts('*/*', json)).toBe(true)
    expect(accepts('application/*', json)).toBe(true)
    expect(accepts('Application/JSON; charset=utf-8', json)).toBe(true)
    expect(accepts('text/html, application/json;q=0.1', json)).toBe(true)
    expect(accepts('text/html', json)).toBe(false)
    expect(accepts('application/problem+json', json)).toBe(false)
    expect(accepts('application/json;q=0', json)).toBe(false)
    expect(accepts('*/*, application/json;q=0', json)).toBe(false)
    expect(accepts('application/json;q=0, */*', json)).toBe(false)
    expect(accepts('application/*;q=0, application/json', json)).toBe(true)
  })

  it('knows what each API route answers with', () => {
    expect(answerType('GET', '/v1/optimizers', '')).toBe('application/json')
    expect(answerType('GET', '/docs', '')).toBe('text/html')
    expect(answerType('POST', '/v1/step', 'application/vnd.l2o.safetensors')).toBe(
      'application/vnd.l2o.safetensors',
    )
    expect(answerType('POST', '/v1/step', 'application/json')).toBe('application/json')
    expect(answerType('DELETE', '/v1/sessions/:id', '')).toBeUndefined()
    expect(answerType('GET', '/somewhere-else', '')).toBeUndefined()
  })
})

describe('406 not_acceptable', () => {
  const s = useTestServer({}, { tf: true })

  it('refuses a read whose Accept admits no JSON, and serves one that does', async () => {
    const refused = await s.app.request('/v1/optimizers', { headers: { accept: 'text/html' } })
    const body = await expectProblem(refused, 406, 'not_acceptable')
    expect(body.available).toEqual(['application/json'])
    expect((await s.app.request('/v1/optimizers', { headers: { accept: 'application/json' } })).status).toBe(
      200,
    )
    expect((await s.app.request('/docs', { headers: { accept: 'text/html' } })).status).toBe(200)
    expect((await s.app.request('/docs', { headers: { accept: 'application/json' } })).status).toBe(406)
  })

  it('refuses a step before computing it when Accept admits not its format', async () => {
    const binary = await s.app.request('/v1/step', {
      method: 'POST',
      body: binaryBody({ grads: f32([2], [1, 2]) }, { optimizer: 'tiny' }),
      headers: { ...s.clientAuth, ...binaryType, accept: 'application/json' },
    })
    await expectProblem(binary, 406, 'not_acceptable')
    const json = await s.app.request('/v1/step', {
      method: 'POST',
      body: JSON.stringify({ optimizer: 'tiny', grads: [1] }),
      headers: { ...s.clientAuth, ...jsonType, accept: 'application/vnd.l2o.safetensors' },
    })
    await expectProblem(json, 406, 'not_acceptable')

    const created = await s.app.request('/v1/sessions', {
      method: 'POST',
      body: JSON.stringify({ optimizer: 'tiny', numParams: 2 }),
      headers: { ...s.clientAuth, ...jsonType },
    })
    const { id } = (await created.json()) as { id: string }
    const before = s.snapshot()
    const step = await s.app.request(`/v1/sessions/${id}/shards/0/steps/1`, {
      method: 'POST',
      body: binaryBody({ grads: f32([2], [1, 2]) }),
      headers: { ...s.clientAuth, ...binaryType, accept: 'text/plain' },
    })
    await expectProblem(step, 406, 'not_acceptable')
    expect(s.snapshot()).toBe(before)
  })

  it('leaves unknown routes to 404', async () => {
    expect((await s.app.request('/v2/x', { headers: { accept: 'text/html' } })).status).toBe(404)
  })
})
