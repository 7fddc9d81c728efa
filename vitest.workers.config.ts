import { cloudflareTest } from '@cloudflare/vitest-pool-workers'
import { tsImport } from 'tsx/esm/api'
import { defineConfig } from 'vitest/config'

// Tests inside workerd: the real Worker (wrangler.toml `main`) on D1 with migrations/ applied and
// tfjs on the wasm backend. Storage is isolated per test file. The bindings are made on Node first
// (loaded through tsx, so Vite does not bundle the app's sources into this config).
export default defineConfig(async () => {
  const { testBindings } = (await tsImport(
    './test/workers/bindings.ts',
    import.meta.url,
  )) as typeof import('./test/workers/bindings')
  // wrangler.toml [assets] serves the built console: build it when this run would find none.
  const { ensureConsole } = (await tsImport(
    './console/build.ts',
    import.meta.url,
  )) as typeof import('./console/build')
  await ensureConsole()
  return {
    plugins: [
      cloudflareTest({ wrangler: { configPath: './wrangler.toml' }, miniflare: await testBindings() }),
    ],
    test: {
      name: 'workers',
      include: ['test/workers/**/*.test.ts'],
      setupFiles: ['./test/workers/apply-migrations.ts'],
      testTimeout: 60_000,
    },
  }
})
