import { exports } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'

const get = (path: string) => exports.default.fetch(new Request(`http://l2o.test${path}`))

// wrangler.toml [assets] serves console/dist (npm run build:console) beside the Worker.
describe('the console on Workers Static Assets', () => {
  it('serves the console at / and its bundle, and leaves API paths to the app', async () => {
    const page = await get('/')
    expect(page.status).toBe(200)
    expect(page.headers.get('content-type')).toContain('text/html')
    const html = await page.text()
    expect(html).toContain('<main id="app">')
    const script = /src="(\/assets\/console\.js)"/.exec(html)?.[1]
    const bundle = await get(script!)
    expect(bundle.status).toBe(200)
    expect((await bundle.arrayBuffer()).byteLength).toBeGreaterThan(100_000)
    expect((await get('/assets/digits.bin')).status).toBe(200)

    const missing = await get('/no-such-page')
    expect(missing.status).toBe(404)
    expect(missing.headers.get('content-type')).toBe('application/problem+json')
  })

  it('serves /docs and the Swagger UI it loads', async () => {
    const docs = await (await get('/docs')).text()
    for (const asset of [...docs.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1])) {
      expect((await get(asset)).status, asset).toBe(200)
    }
    expect(docs).toContain('/assets/swagger/swagger-ui-bundle.js')
  })
})
