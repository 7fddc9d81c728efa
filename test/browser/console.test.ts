/**
 * The console and /docs in a real browser: Debian's chromium (never a downloaded one) driven by
 * playwright-core, against the real Node server (`npm start`'s entry). Screenshots go to
 * test-output/browser/ (git-ignored).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { type Browser, chromium, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureConsole } from '../../console/build'
import { type ServerProcess, startServer } from '../sdk/server-process'
import { chromiumPath, launchArgs } from './chromium'
import { richCard } from './rich-card'

const root = path.resolve(import.meta.dirname, '../..')
const shots = path.join(root, 'test-output/browser')
let server: ServerProcess
let browser: Browser

beforeAll(async () => {
  if (!existsSync(chromiumPath)) {
    throw new Error(`no browser at ${chromiumPath}: run bash scripts/test-deps.sh (it says what to install)`)
  }
  await ensureConsole()
  mkdirSync(shots, { recursive: true })
  server = await startServer()
  browser = await chromium.launch({ executablePath: chromiumPath, args: launchArgs(), headless: true })
}, 180_000)

afterAll(async () => {
  await browser?.close()
  await server?.stop()
})

/** A page that records console errors, uncaught exceptions and failed requests. */
async function open(url: string): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } })
  const page = await context.newPage()
  const errors: string[] = []
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`)
  })
  page.on('pageerror', (e) => errors.push(`page: ${e.message}`))
  page.on('requestfailed', (r) => errors.push(`request: ${r.url()} ${r.failure()?.errorText}`))
  await page.goto(`${server.url}${url}`)
  return { page, errors }
}

// What the functions run in the page use, typed here: this file is compiled without the DOM library.
interface PageCanvas {
  width: number
  height: number
  getContext(kind: '2d'): {
    getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray }
  }
}
interface PageImage {
  complete: boolean
  naturalWidth: number
  naturalHeight: number
}

/** Pixels of the canvas whose color is near `rgb` (the curves' and paths' own colors). */
const pixelsOf = (page: Page, selector: string, rgb: [number, number, number]) =>
  page.$eval(
    selector,
    (canvas, [r, g, b]) => {
      const c = canvas as unknown as PageCanvas
      const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data
      let n = 0
      for (let i = 0; i < data.length; i += 4) {
        if (Math.abs(data[i] - r) + Math.abs(data[i + 1] - g) + Math.abs(data[i + 2] - b) < 40) n++
      }
      return n
    },
    rgb,
  )
/** Saves a screenshot of the whole page as `name`.png, requires that nothing went wrong, and closes it. */
async function finish(page: Page, errors: string[], name: string): Promise<void> {
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true })
  expect(errors).toEqual([])
  await page.context().close()
}

/** Opens the playground at `url` (its query picks the optimizer, task and steps) and runs it with `key`. */
async function startRun(url: string, key: string): Promise<{ page: Page; errors: string[] }> {
  const opened = await open(url)
  await opened.page.waitForSelector('#pg-form')
  await opened.page.fill('#pg-key', key)
  await opened.page.click('#pg-run')
  return opened
}

/** Waits until the playground says its run of `steps` steps is done. */
const done = (page: Page, steps: number) =>
  page
    .locator('#pg-status')
    .filter({ hasText: new RegExp(`^Done: ${steps} steps`) })
    .waitFor({ timeout: 150_000 })

const learnedColor: [number, number, number] = [0xd9, 0x48, 0x0f]
const adamColor: [number, number, number] = [0x1c, 0x7e, 0xd6]

describe('the console in chromium', { timeout: 180_000 }, () => {
  it('loads with no console errors and lists the shipped versions and the baselines', async () => {
    const { page, errors } = await open('/')
    await page.waitForSelector('[data-optimizer]')
    for (const reference of ['l2o-mnist@1.1.0', 'l2o-mnist@1.0.0', 'l2o-quadratic@1.0.0']) {
      expect(await page.locator(`[data-version="${reference}"]`).count(), reference).toBe(1)
    }
    const stable = page.locator('[data-version="l2o-mnist@1.1.0"] .badge.alias')
    expect(await stable.allTextContents()).toContain('stable')
    expect(await page.locator('[data-baseline="adam"]').textContent()).toContain('learningRate')
    await finish(page, errors, 'optimizers')
  })

  it("shows a version's evaluation table, its plots as loaded images, and the reference to pin", async () => {
    const { page, errors } = await open('/#/optimizers/l2o-mnist/1.1.0')
    await page.waitForSelector('table.results')
    const rows = await page.locator('[data-test="mnist"] table.results tbody tr').count()
    expect(rows).toBe(2)
    expect(await page.locator('[data-test="mnist"] td.best').first().textContent()).toMatch(/^0\.08/)
    const images = page.locator('.plots img')
    expect(await images.count()).toBeGreaterThanOrEqual(1)
    await images.first().scrollIntoViewIfNeeded()
    await page.waitForFunction("[...document.querySelectorAll('.plots img')].every((i) => i.complete)")
    const sizes = await images.evaluateAll((list) =>
      (list as unknown as PageImage[]).map((i) => [i.naturalWidth, i.naturalHeight]),
    )
    expect(sizes.every(([w, h]) => w > 0 && h > 0)).toBe(true)
    const reference = await page.locator('.pin .reference').textContent()
    expect(reference).toMatch(/^l2o-mnist@sha256:[0-9a-f]{64}$/)
    await page.locator('.pin .pinned button').click()
    await expect.poll(() => page.locator('.pin .pinned button').getAttribute('data-copied')).toBe(reference)
    await finish(page, errors, 'version')
  })

  it("shows each training stage's objective (l2o-mlp@1.2.0: imitation, then PES)", async () => {
    const { page, errors } = await open('/#/optimizers/l2o-mlp/1.2.0')
    await page.waitForSelector('table.results')
    const training = page.locator('section', { has: page.locator('h2', { hasText: 'Training' }) })
    const objectives = await training.locator('p.muted').allTextContents()
    expect(objectives[0]).toMatch(/^imitation of snr-pnag lr 0\.02/)
    expect(objectives[1]).toMatch(/^antithetic persistent evolution strategies.*\(2t \/ horizon\)/)
    await finish(page, errors, 'version-stages')
  })

  it('says a derived version (l2o-mlp@1.5.0) is its parent with other output fields, linking the parent', async () => {
    const { page, errors } = await open('/#/optimizers/l2o-mlp/1.5.0')
    await page.waitForSelector('table.results')
    const derived = page.locator('section p.derived')
    expect(await derived.textContent()).toMatch(
      /^Derived from l2o-mlp@1\.4\.0 \(sha256:[0-9a-f]{64}\): the same network with the output's power 0\.4, scale 1\.5\./,
    )
    await derived.locator('a').click()
    await page.waitForFunction("location.hash === '#/optimizers/l2o-mlp/1.4.0'")
    await page.waitForSelector('table.results')
    expect(await page.locator('section p.derived').count()).toBe(0)
    await finish(page, errors, 'version-derived')
  })

  it('shows a card of the richer shape: 1,000 steps, diverged runs, ratios, defaults, analysis', async () => {
    const weights = readFileSync(path.join(root, 'weights/l2o-mnist/1.1.0/model.safetensors'))
    const plot = readFileSync(path.join(root, 'weights/l2o-mnist/1.1.0/training.png'))
    const form = new FormData()
    form.append('version', '1.0.0')
    form.append('weights', new File([weights], 'model.safetensors'))
    form.append('card', JSON.stringify(richCard))
    for (const file of ['loss.png', 'loss-1000.png', 'analysis-update.png'])
      form.append('files', new File([plot], file))
    form.append('files', new File([JSON.stringify(richCard.analysis)], 'analysis.json'))
    const published = await fetch(`${server.url}/v1/admin/optimizers/demo-rich/versions`, {
      method: 'POST',
      body: form,
      headers: { authorization: `Bearer ${server.adminKey}` },
    })
    expect(published.status).toBe(201)

    const { page, errors } = await open('/#/optimizers/demo-rich/1.0.0')
    await page.waitForSelector('table.results')
    const relu = page.locator('[data-test="mnist-3x32-relu"]')
    expect(await relu.locator('table.results tbody tr').count()).toBe(3)
    expect(await relu.locator('td.diverged').allTextContents()).toEqual(['diverged'])
    expect(await relu.locator('table.results thead').textContent()).toContain('learned ÷ best')
    expect(await relu.locator('table.lrs thead').textContent()).toContain('default')
    expect(await page.locator('.evaluation .summary').textContent()).toContain('1000 steps 1.05')
    expect(await page.locator('.analysis').textContent()).toContain('0.93')
    expect(await page.locator('.analysis a').allTextContents()).toEqual(['analysis.json'])
    await page.waitForFunction("[...document.querySelectorAll('.plots img')].every((i) => i.complete)")
    const sizes = await page
      .locator('.plots img')
      .evaluateAll((list) => (list as unknown as PageImage[]).map((i) => i.naturalWidth))
    expect(sizes).toHaveLength(3)
    expect(sizes.every((w) => w > 0)).toBe(true)
    await finish(page, errors, 'version-rich')
  })

  it('trains 20 steps against the server next to Adam and draws both curves and both paths', async () => {
    const { page, errors } = await startRun(
      '/#/playground?optimizer=l2o-quadratic@1.0.0&task=quadratic&steps=20',
      server.clientKey,
    )
    await done(page, 20)
    expect(await page.getAttribute('#pg-loss', 'data-points')).toBe(
      'learned l2o-quadratic@1.0.0:20,Adam, lr 0.3:20',
    )
    expect(await page.getAttribute('#pg-paths', 'data-points')).toBe('learned:21,Adam:21')
    for (const canvas of ['#pg-loss', '#pg-paths']) {
      expect(await pixelsOf(page, canvas, learnedColor), `${canvas} learned`).toBeGreaterThan(100)
      expect(await pixelsOf(page, canvas, adamColor), `${canvas} Adam`).toBeGreaterThan(100)
    }
    expect(await page.locator('[data-stat="step latency (median)"]').textContent()).toMatch(/^\d+(\.\d)? ms$/)
    await finish(page, errors, 'playground')
  })

  it('trains the MLP on the bundled digits', async () => {
    const { page, errors } = await startRun(
      '/#/playground?optimizer=l2o-mnist@1.1.0&task=mlp&steps=5',
      server.clientKey,
    )
    await done(page, 5)
    expect(await page.getAttribute('#pg-loss', 'data-points')).toBe(
      'learned l2o-mnist@1.1.0:5,Adam, lr 0.03:5',
    )
    expect(await page.isHidden('#pg-paths')).toBe(true)
    await finish(page, errors, 'playground-mlp')
  })

  it("stops a run with a bad key and shows the server's 401 detail", async () => {
    const { page } = await startRun(
      '/#/playground?optimizer=l2o-quadratic@1.0.0&task=rosenbrock&steps=20',
      'l2o_not_a_real_key_0123456789',
    )
    await page.waitForSelector('#pg-error:not([hidden])')
    const message = await page.locator('#pg-error').textContent()
    expect(message).toContain('401')
    expect(message).toContain('invalid API key; ask an admin for a key')
    expect(await page.locator('#pg-run').isEnabled()).toBe(true)
    await page.screenshot({ path: path.join(shots, 'playground-401.png'), fullPage: true })
    await page.context().close()
  })
})

describe('/docs in chromium', { timeout: 120_000 }, () => {
  it('renders /openapi.json in Swagger UI and tries an operation against this server', async () => {
    const { page, errors } = await open('/docs')
    await page.waitForSelector('.swagger-ui .opblock')
    const operations = await page.locator('.opblock-summary-path').allTextContents()
    expect(operations.map((p) => p.replace(/\u200b/g, ''))).toEqual(
      expect.arrayContaining(['/v1/step', '/v1/optimizers/{name}/versions/{version}/files/{file}']),
    )
    const health = page.locator('#operations-meta-get_healthz')
    await health.locator('.opblock-summary').click()
    await health.locator('.opblock-body').waitFor()
    // tryItOutEnabled opens every operation ready to execute; without it, "Try it out" first.
    const execute = health.locator('button.execute')
    if (!(await execute.isVisible())) await health.locator('button.try-out__btn').click()
    await execute.click()
    await health.locator('.live-responses-table tbody .response-col_status').first().waitFor()
    expect(
      await health.locator('.live-responses-table tbody .response-col_status').first().textContent(),
    ).toContain('200')
    expect(await health.locator('.live-responses-table .microlight').first().textContent()).toContain(
      '"status"',
    )

    // A keyed operation: authorize with the client key, then send the step's own JSON example.
    await page.locator('.auth-wrapper button.authorize').click()
    const scheme = page.locator('.auth-container', { hasText: 'clientKey' })
    await scheme.locator('input').fill(server.clientKey)
    await scheme.locator('button.authorize').click()
    await page.locator('.dialog-ux button.btn-done').first().click()
    const step = page.locator('#operations-steps-post_v1_step')
    await step.locator('.opblock-summary').click()
    await step.locator('.opblock-section-request-body select').selectOption('application/json')
    expect(await step.locator('.opblock-section-request-body textarea').inputValue()).toContain('"grads"')
    await step.locator('button.execute').click()
    await step.locator('.live-responses-table tbody .response-col_status').first().waitFor()
    expect(
      await step.locator('.live-responses-table tbody .response-col_status').first().textContent(),
    ).toContain('200')
    expect(await step.locator('.live-responses-table .microlight').first().textContent()).toContain(
      '"updates"',
    )
    await step.scrollIntoViewIfNeeded()
    await page.screenshot({ path: path.join(shots, 'docs.png'), fullPage: false })
    expect(errors).toEqual([])
    await page.context().close()
  })
})
