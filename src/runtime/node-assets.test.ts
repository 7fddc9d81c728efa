import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createApp } from '../server/app'
import { createNodeDeps } from './node'
import { consoleBuilt, folderAssets } from './node-assets'

const parent = mkdtempSync(path.join(tmpdir(), 'l2o-assets-'))
const dir = path.join(parent, 'dist')
mkdirSync(path.join(dir, 'assets'), { recursive: true })
writeFileSync(path.join(dir, 'index.html'), '<main id="app"></main>')
writeFileSync(path.join(dir, 'assets', 'app.js'), 'console.log(1)')
writeFileSync(path.join(parent, 'secret.txt'), 'not served')
afterAll(() => rmSync(parent, { recursive: true, force: true }))

const assets = folderAssets(dir)
const get = (url: string, method = 'GET') => assets(new Request(`http://x${url}`, { method }))

describe('folderAssets', () => {
  it('serves / as index.html and files by their path, with their types', async () => {
    const index = await get('/')
    expect(index?.headers.get('content-type')).toBe('text/html; charset=utf-8')
    expect(await index?.text()).toBe('<main id="app"></main>')
    const script = await get('/assets/app.js')
    expect(script?.headers.get('content-type')).toBe('text/javascript; charset=utf-8')
    expect(script?.headers.get('x-content-type-options')).toBe('nosniff')
    const head = await get('/assets/app.js', 'HEAD')
    expect(head?.headers.get('content-length')).toBe('14')
    expect(await head?.text()).toBe('')
    expect(consoleBuilt(dir)).toBe(true)
  })

  it('leaves missing files, folders and paths outside the folder to the app', async () => {
    expect(await get('/nothing.js')).toBeUndefined()
    expect(await get('/assets')).toBeUndefined()
    expect(await get('/%2e%2e/secret.txt')).toBeUndefined()
    expect(await get('/assets/%2e%2e/%2e%2e/secret.txt')).toBeUndefined()
  })

  it('is asked only for GET and HEAD paths no route takes', async () => {
    const node = createNodeDeps({ dataDir: ':memory:' })
    const app = createApp(() => ({ ...node, assets }))
    expect(await (await app.request('/')).text()).toBe('<main id="app"></main>')
    expect((await app.request('/healthz')).headers.get('content-type')).toContain('application/json')
    const post = await app.request('/assets/app.js', { method: 'POST' })
    expect(post.status).toBe(404)
    expect(post.headers.get('content-type')).toBe('application/problem+json')
    const missing = await app.request('/missing')
    expect(missing.headers.get('content-type')).toBe('application/problem+json')
    expect(missing.headers.get('x-request-id')).toMatch(/^req_/)
    node.close()
  })
})
