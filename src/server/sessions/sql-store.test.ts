import { sessionStoreContract, sqlStoreRaces } from '../../../test/support/session-store-contract'
import { createNodeDeps } from '../../runtime/node'
import { sqlSessionStore } from './sql-store'

// The same suites run on D1 inside workerd: test/workers/session-store.test.ts.
const sqlite = async () => createNodeDeps({ dataDir: ':memory:' }).db

sessionStoreContract('the SQL session store on SQLite', async () => {
  const db = await sqlite()
  return { db, store: sqlSessionStore(db, () => new Date()) }
})
sqlStoreRaces('the SQL session store on SQLite', sqlite)
