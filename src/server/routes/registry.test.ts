import { describe, expect, it } from 'vitest'
import { useTestServer } from '../../../test/support/server'
import {
  optimizerDetailSchema,
  optimizerListSchema,
  problemMediaType,
  resolveResponseSchema,
} from '../../contract'
import { docsAssets } from './docs'

const s = useTestServer()

const get = async (url: string) => {
  const res = await s.app.request(url)
  return { res, body: (await res.json()) as Record<string, unknown> }
}

describe('registry reads (public)', () => {
  it('lists learned optimizers and the baselines', async () => {
    const { res, body } = await get('/v1/optimizers')
    expect(res.status).toBe(200)
    const list = optimizerListSchema.parse(body)
    expect(list.optimizers.map((o) => [o.name, o.kind])).toEqual([
      ['tiny', 'learned'],
      ['sgd', 'baseline'],
      ['momentum', 'baseline'],
      ['nag', 'baseline'],
      ['rmsprop', 'baseline'],
      ['adam', 'baseline'],
    ])
    expect(list.optimizers[0]).toMatchObject({
      versions: ['1.0.0'],
      aliases: { latest: '1.0.0', stable: '1.0.0' },
    })
  })

  it('shows one optimizer with its versions and aliases', async () => {
    const { body } = await get('/v1/optimizers/tiny')
    const detail = optimizerDetailSchema.parse(body)
    expect(detail.versions).toMatchObject([
      { version: '1.0.0', digest: s.tiny.digest, status: 'active', sizeBytes: s.tiny.bytes.length },
    ])
    expect(detail.versions[0].architecture).toMatchObject({ layers: 1, hidden: 4 })
    const adam = optimizerDetailSchema.parse((await get('/v1/optimizers/adam')).body)
    expect(adam).toMatchObject({ kind: 'baseline', hyperparameters: { beta1: 0.9, beta2: 0.999, eps: 1e-8 } })
    expect(adam.hyperparameterSpecs).toEqual({
      learningRate: { range: 'in (0, 100]' },
      beta1: { range: 'in [0, 1)', default: 0.9 },
      beta2: { range: 'in [0, 1)', default: 0.999 },
      eps: { range: 'in (0, 1]', default: 1e-8 },
    })
  })

  it('resolves names, versions, aliases and digests to the same digest', async () => {
    for (const ref of ['tiny', 'tiny@stable', 'tiny@latest', 'tiny@1.0.0', `tiny@${s.tiny.digest}`]) {
      const { res, body } = await get(`/v1/resolve?ref=${encodeURIComponent(ref)}`)
      expect(res.status).toBe(200)
      expect(resolveResponseSchema.parse(body)).toMatchObject({
        reference: ref,
        name: 'tiny',
        kind: 'learned',
        version: '1.0.0',
        digest: s.tiny.digest,
        deprecated: false,
        stateSize: 8,
        maxCoordinatesPerRequest: 65_536,
        stateDtypes: ['F32', 'F16', 'BF16'],
      })
      expect(res.headers.get('l2o-digest')).toBe(s.tiny.digest)
    }
  })

  it('gives baselines a digest of their name and full hyper-parameters', async () => {
    const hp = encodeURIComponent(JSON.stringify({ learningRate: 0.001 }))
    const a = (await get(`/v1/resolve?ref=adam&hyperparameters=${hp}`)).body
    const full = encodeURIComponent(
      JSON.stringify({ eps: 1e-8, learningRate: 0.001, beta2: 0.999, beta1: 0.9 }),
    )
    const b = (await get(`/v1/resolve?ref=adam&hyperparameters=${full}`)).body
    expect(a).toMatchObject({ kind: 'baseline', version: null, stateSize: 3 })
    expect(a.hyperparameters).toEqual({ beta1: 0.9, beta2: 0.999, eps: 1e-8, learningRate: 0.001 })
    expect(a.digest).toBe(b.digest)
    const canonical = JSON.stringify({
      hyperparameters: { beta1: 0.9, beta2: 0.999, eps: 1e-8, learningRate: 0.001 },
      kind: 'baseline',
      name: 'adam',
    })
    const hash = Buffer.from(
      await crypto.subtle.digest('SHA-256', new TextEncoder().encode(canonical)),
    ).toString('hex')
    expect(a.digest).toBe(`sha256:${hash}`)
    expect((await get(`/v1/resolve?ref=adam@${a.digest}&hyperparameters=${hp}`)).res.status).toBe(200)
  })

  const bad: [string, string, number, string][] = [
    ['no ref', '/v1/resolve', 400, 'invalid_request'],
    ['a malformed ref', '/v1/resolve?ref=UPPER', 400, 'invalid_reference'],
    ['a malformed digest', '/v1/resolve?ref=tiny@sha256:abc', 400, 'invalid_reference'],
    ['an unknown optimizer', '/v1/resolve?ref=nope', 404, 'optimizer_not_found'],
    ['an unknown version', '/v1/resolve?ref=tiny@2.0.0', 404, 'version_not_found'],
    ['an unknown alias', '/v1/resolve?ref=tiny@beta', 404, 'version_not_found'],
    [
      'hyper-parameters that are not JSON',
      '/v1/resolve?ref=adam&hyperparameters=%7B',
      400,
      'invalid_hyperparameters',
    ],
    [
      'null hyper-parameters for a learned optimizer',
      '/v1/resolve?ref=tiny&hyperparameters=null',
      400,
      'invalid_hyperparameters',
    ],
    [
      'null hyper-parameters for a baseline',
      '/v1/resolve?ref=sgd&hyperparameters=null',
      400,
      'invalid_hyperparameters',
    ],
    [
      'hyper-parameters that are an array',
      '/v1/resolve?ref=tiny&hyperparameters=%5B%5D',
      400,
      'invalid_hyperparameters',
    ],
    [
      'a baseline digest of other hyper-parameters',
      `/v1/resolve?ref=sgd@sha256:${'0'.repeat(64)}&hyperparameters=%7B%22learningRate%22%3A1%7D`,
      409,
      'digest_mismatch',
    ],
    ['an unknown optimizer detail', '/v1/optimizers/nope', 404, 'optimizer_not_found'],
    ['an unknown route', '/v2/nothing', 404, 'not_found'],
  ]
  it('answers a known path with another method with 405 and Allow', async () => {
    const res = await s.app.request('/v1/step')
    expect(res.status).toBe(405)
    expect(res.headers.get('allow')).toBe('POST')
    expect(await res.json()).toMatchObject({
      code: 'method_not_allowed',
      type: '/problems/method_not_allowed',
    })
    const put = await s.app.request('/v1/sessions/abc', { method: 'PUT' })
    expect(put.status).toBe(405)
    expect(put.headers.get('allow')).toBe('GET, DELETE')
  })

  for (const [what, url, status, code] of bad) {
    it(`refuses ${what}: ${status} ${code}`, async () => {
      const before = s.snapshot()
      const { res, body } = await get(url)
      expect(res.headers.get('content-type')).toBe(problemMediaType)
      expect({ status: res.status, code: body.code, type: body.type }).toEqual({
        status,
        code,
        type: `/problems/${code}`,
      })
      expect(s.snapshot()).toBe(before)
    })
  }
})

describe('meta routes', () => {
  it('answers /healthz with the runtime, the backend and the kernel learned optimizers run on', async () => {
    const { body } = await get('/healthz')
    expect(body).toMatchObject({ status: 'ok', runtime: 'node', kernel: 'fused-wasm' })
    expect(['wasm', 'cpu']).toContain(body.backend)
  })

  it('describes every route of the app in /openapi.json, including the binary media type', async () => {
    const { res, body } = await get('/openapi.json')
    expect(res.status).toBe(200)
    expect(body.openapi).toBe('3.1.0')
    const paths = body.paths as Record<string, Record<string, unknown>>
    const described = new Set(
      Object.entries(paths).flatMap(([path, item]) =>
        Object.keys(item).map((m) => `${m.toUpperCase()} ${path}`),
      ),
    )
    const served = new Set(
      s.app.routes
        .filter((r) => r.method !== 'ALL')
        .map((r) => `${r.method} ${r.path.replace(/:(\w+)/g, '{$1}')}`),
    )
    expect([...described].sort()).toEqual([...served].sort())
    const step = paths['/v1/step'].post as { requestBody: { content: Record<string, unknown> } }
    expect(Object.keys(step.requestBody.content)).toEqual([
      'application/vnd.l2o.safetensors',
      'application/json',
    ])
    const schemas = (body.components as { schemas: Record<string, unknown> }).schemas
    expect(Object.keys(schemas)).toEqual(
      expect.arrayContaining(['StepRequest', 'Session', 'Problem', 'Resolved']),
    )
  })

  it("serves /docs as a Swagger UI page that loads only this server's own assets", async () => {
    const res = await s.app.request('/docs')
    expect(res.headers.get('content-type')).toContain('text/html')
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'")
    const html = await res.text()
    const loaded = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1])
    expect(loaded).toEqual(expect.arrayContaining(Object.values(docsAssets)))
    expect(loaded.every((url) => url.startsWith('/') || url.startsWith('data:'))).toBe(true)
    expect(html).toContain('data-openapi="/openapi.json"')
  })
})
