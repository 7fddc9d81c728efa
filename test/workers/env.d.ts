import type { D1Migration } from 'cloudflare:test'

// Bindings the tests see through `env` from 'cloudflare:workers' (wrangler.toml plus the test config).
declare global {
  namespace Cloudflare {
    interface Env {
      DB: D1Database
      TEST_MIGRATIONS: D1Migration[]
    }
  }
}
