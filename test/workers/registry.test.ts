import { env, exports } from 'cloudflare:workers'
import { and, eq } from 'drizzle-orm'
import { drizzle } from 'drizzle-orm/d1'
import { beforeAll, describe, expect, it } from 'vitest'
import * as schema from '../../src/db/schema'
import { digestOf } from '../../src/weights'
import { auth, seed } from './seed'

const get = (path: string, headers: Record<string, string> = {}) =>
  exports.default.fetch(new Request(`http://l2o.test${path}`, { headers }))

beforeAll(seed)

describe('a D1 seeded by scripts/seed-d1.ts', () => {
  it('lists the seeded optimizers next to the baselines', async () => {
    const response = await get('/v1/optimizers')
    expect(response.status).toBe(200)
    const { optimizers } = (await response.json()) as { optimizers: { name: string; versions: string[] }[] }
    expect(optimizers.find((o) => o.name === 'seed-big')?.versions).toEqual(['1.0.0'])
    expect(optimizers.map((o) => o.name)).toEqual(expect.arrayContaining(['sgd', 'adam']))
  })

  it('holds a weight file split over several statements byte for byte', async () => {
    const db = drizzle(env.DB, { schema })
    const row = await db
      .select({ weights: schema.versions.weights, digest: schema.versions.digest })
      .from(schema.versions)
      .where(and(eq(schema.versions.name, 'seed-big'), eq(schema.versions.version, '1.0.0')))
      .get()
    const expected = new Uint8Array(env.TEST_BIG_WEIGHTS)
    expect(expected.length).toBeGreaterThan(150_000)
    expect(row?.weights).toEqual(expected)
    expect(row?.digest).toBe(await digestOf(expected))
  })

  it('changes nothing when seeded again', async () => {
    const count = async () => {
      const tables = ['optimizers', 'versions', 'aliases', 'alias_history', 'clients', 'api_keys']
      return Promise.all(tables.map((t) => env.DB.prepare(`SELECT count(*) AS n FROM ${t}`).first('n')))
    }
    const before = await count()
    await seed()
    expect(await count()).toEqual(before)
    const sizes = await env.DB.prepare('SELECT length(weights) AS n FROM versions').all()
    expect(sizes.results.map((r) => r.n)).toContain(new Uint8Array(env.TEST_BIG_WEIGHTS).length)
  })

  it('resolves name@stable to the seeded version', async () => {
    const response = await get('/v1/resolve?ref=seed-big@stable')
    expect(response.status).toBe(200)
    expect(await response.json()).toMatchObject({
      name: 'seed-big',
      version: '1.0.0',
      digest: await digestOf(new Uint8Array(env.TEST_BIG_WEIGHTS)),
      stateSize: 256,
    })
  })

  it('authenticates the seeded keys, stored only as SHA-256', async () => {
    const stored = await env.DB.prepare('SELECT hash, prefix FROM api_keys').all()
    expect(JSON.stringify(stored.results)).not.toContain(env.TEST_KEYS.client)
    const response = await get('/v1/admin/clients', auth('client'))
    expect(response.status).toBe(403)
  })

  it('serves every plot and analysis shipped under weights/, byte for byte', async () => {
    expect(env.TEST_SHIPPED_FILES.length).toBeGreaterThan(0)
    for (const file of env.TEST_SHIPPED_FILES) {
      const response = await get(file.path)
      expect(response.status, file.path).toBe(200)
      expect(await digestOf(new Uint8Array(await response.arrayBuffer())), file.path).toBe(file.digest)
    }
  })

  it('keeps a published file larger than one D1 row in chunks and serves it whole', async () => {
    const plot = new Uint8Array(1_500_000).map((_, i) => (i * 7) % 256)
    plot.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
    const form = new FormData()
    form.append('version', '2.0.0')
    form.append('weights', new File([new Uint8Array(env.TEST_BIG_WEIGHTS)], 'model.safetensors'))
    form.append('files', new File([plot], 'big.png'))
    const published = await exports.default.fetch(
      new Request('http://l2o.test/v1/admin/optimizers/seed-plotted/versions', {
        method: 'POST',
        body: form,
        headers: auth('admin'),
      }),
    )
    expect(published.status).toBe(201)
    const chunks = await env.DB.prepare(
      "SELECT length(bytes) AS n FROM version_file_chunks WHERE name = 'seed-plotted' ORDER BY chunk",
    ).all()
    expect(chunks.results.map((r) => r.n)).toEqual([1_000_000, 500_000])
    const response = await get('/v1/optimizers/seed-plotted/versions/2.0.0/files/big.png')
    expect(response.headers.get('content-type')).toBe('image/png')
    expect(await digestOf(new Uint8Array(await response.arrayBuffer()))).toBe(await digestOf(plot))
  })

  it('serves every optimizer shipped under weights/', async () => {
    for (const reference of env.TEST_SHIPPED) {
      const response = await get(`/v1/resolve?ref=${reference}`)
      expect(response.status, reference).toBe(200)
      expect(await response.json()).toMatchObject({ kind: 'learned', deprecated: false })
    }
  })
})
