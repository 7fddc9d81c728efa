/**
 * Builds the web console into console/dist: the app and the docs page bundled by esbuild (tf.js
 * and the SDK included), Swagger UI copied from swagger-ui-dist, and a few hundred MNIST digits
 * from the `mnist` package for the playground. Everything the pages load comes from this folder:
 * no CDN, no web fonts. Node serves it (src/runtime/node-assets.ts); Workers serve it as Static
 * Assets (wrangler.toml [assets]).
 *
 *   npm run build:console            (npm start, npm test and wrangler run it first)
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { build } from 'esbuild'

const here = import.meta.dirname
const require = createRequire(import.meta.url)

/** The build's output folder. */
export const distDir = path.join(here, 'dist')

/** Digits of each class in the playground's data (`digitsPerClass` × 10 images). */
export const digitsPerClass = 40
const imageSize = 784

/**
 * The first `perClass` images of each digit in the `mnist` package, interleaved by class, as bytes:
 * per image one label byte, then 784 pixels scaled to 0–255.
 */
export function digitsSubset(perClass = digitsPerClass): Uint8Array {
  const dir = path.join(path.dirname(require.resolve('mnist/package.json')), 'src', 'digits')
  const classes = Array.from({ length: 10 }, (_, d) => {
    const { data } = JSON.parse(readFileSync(path.join(dir, `${d}.json`), 'utf8')) as { data: number[] }
    return data
  })
  const out = new Uint8Array(10 * perClass * (1 + imageSize))
  let offset = 0
  for (let i = 0; i < perClass; i++) {
    for (const [label, data] of classes.entries()) {
      out[offset++] = label
      for (let p = 0; p < imageSize; p++) out[offset++] = Math.round(data[i * imageSize + p] * 255)
    }
  }
  return out
}

/** Builds everything into `dir` (replacing what was there). */
export async function buildConsole(dir = distDir): Promise<void> {
  rmSync(dir, { recursive: true, force: true })
  const assets = path.join(dir, 'assets')
  mkdirSync(path.join(assets, 'swagger'), { recursive: true })
  await build({
    entryPoints: { console: path.join(here, 'src/main.ts'), docs: path.join(here, 'src/docs.ts') },
    outdir: assets,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    sourcemap: 'linked',
    legalComments: 'linked',
    logLevel: 'warning',
  })
  copyFileSync(path.join(here, 'index.html'), path.join(dir, 'index.html'))
  copyFileSync(path.join(here, 'style.css'), path.join(assets, 'console.css'))
  const swagger = path.dirname(require.resolve('swagger-ui-dist/package.json'))
  for (const file of ['swagger-ui-bundle.js', 'swagger-ui.css', 'LICENSE']) {
    copyFileSync(path.join(swagger, file), path.join(assets, 'swagger', file))
  }
  writeFileSync(path.join(assets, 'digits.bin'), digitsSubset())
}

/** Builds the console unless `dir` already holds a build (for test runs that did not build first). */
export async function ensureConsole(dir = distDir): Promise<void> {
  if (!existsSync(path.join(dir, 'index.html'))) await buildConsole(dir)
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const t0 = performance.now()
  await buildConsole()
  console.log(
    `console built into ${path.relative(process.cwd(), distDir)} in ${Math.round(performance.now() - t0)} ms`,
  )
}
