import type { D1Migration } from 'cloudflare:test'
import type { Bindings } from '../../src/runtime/workers'

// What the tests see through `env` from 'cloudflare:workers': the Worker's bindings plus
// vitest.workers.config.ts's.
declare global {
  namespace Cloudflare {
    interface Env extends Bindings {
      TEST_MIGRATIONS: D1Migration[]
      /** scripts/seed-d1.ts's statements for weights/, seed-big@1.0.0 and TEST_KEYS. */
      TEST_SEED_SQL: string[]
      TEST_KEYS: { admin: string; client: string }
      /** name@version of every optimizer under weights/. */
      TEST_SHIPPED: string[]
      /** Every plot and analysis shipped under weights/: where the API serves it, and its digest. */
      TEST_SHIPPED_FILES: { path: string; digest: string }[]
      TEST_BIG_WEIGHTS: ArrayBuffer
      TEST_PARITY_WEIGHTS: ArrayBuffer
      TEST_PARITY_CASE: ArrayBuffer
      /** An extended-architecture weight file (train/'s fixture) and the Node runtime's steps of it. */
      TEST_EXTENDED_WEIGHTS: ArrayBuffer
      TEST_EXTENDED_CASE: ArrayBuffer
    }
    // Types `exports.default` (the Worker's own fetch) from wrangler's main module.
    interface GlobalProps {
      mainModule: typeof import('../../functions/worker')
    }
  }
}
