import os from 'node:os'
import { cloudflareTest } from '@cloudflare/vitest-pool-workers'
import { tsImport } from 'tsx/esm/api'
import { defineConfig } from 'vitest/config'

// The session simulation inside workerd (bench/workerd/sessions.sim.ts; `npm run bench:sessions`): the
// Worker's app on D1 and on Durable Objects, as vitest.workers.config.ts runs the tests.
// SIM_SECONDS (default 8) bounds each run; SIM_SESSIONS (default 1,10,100) lists the concurrencies.
export default defineConfig(async () => {
  const { testBindings } = (await tsImport(
    './test/workers/bindings.ts',
    import.meta.url,
  )) as typeof import('./test/workers/bindings')
  const base = await testBindings()
  return {
    plugins: [
      cloudflareTest({
        wrangler: { configPath: './wrangler.toml' },
        miniflare: {
          ...base,
          bindings: {
            ...base.bindings,
            SIM_SECONDS: Number(process.env.SIM_SECONDS ?? 8),
            SIM_SESSIONS: (process.env.SIM_SESSIONS ?? '1,10,100').split(',').map(Number),
            SIM_HOST: `${os.cpus().length} CPUs, load average ${os
              .loadavg()
              .map((l) => l.toFixed(1))
              .join(' ')} at start`,
          },
        },
      }),
    ],
    test: {
      name: 'sim',
      include: ['bench/workerd/**/*.sim.ts'],
      setupFiles: ['./test/workers/apply-migrations.ts'],
      testTimeout: 1_800_000,
    },
  }
})
