import { sessionStoreContract } from '../../../test/support/session-store-contract'
import { createNodeDeps } from '../../runtime/node'

// The same suite runs on D1 inside workerd: test/workers/session-store.test.ts.
sessionStoreContract(
  'the SQL session store on SQLite',
  async () => createNodeDeps({ dataDir: ':memory:' }).db,
)
