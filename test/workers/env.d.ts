import type { D1Migration } from 'cloudflare:test'
import type { Bindings } from '../../src/runtime/workers'

// What the tests see through `env` from 'cloudflare:workers': the Worker's bindings plus the test config's.
declare global {
  namespace Cloudflare {
    interface Env extends Bindings {
      TEST_MIGRATIONS: D1Migration[]
    }
    // Types `exports.default` (the Worker's own fetch) from wrangler's main module.
    interface GlobalProps {
      mainModule: typeof import('../../functions/worker')
    }
  }
}
