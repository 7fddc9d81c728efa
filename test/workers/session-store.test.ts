import { env } from 'cloudflare:workers'
import { drizzle } from 'drizzle-orm/d1'
import * as schema from '../../src/db/schema'
import { sqlSessionStore } from '../../src/server/sessions/sql-store'
import { sessionStoreContract, sqlStoreRaces } from '../support/session-store-contract'

// The SQL store's suites also run on SQLite in Node: src/server/sessions/sql-store.test.ts.
const d1 = async () => drizzle(env.DB, { schema })
const now = () => new Date()

sessionStoreContract('the SQL session store on D1 inside workerd', async () => {
  const db = await d1()
  return { db, store: sqlSessionStore(db, now) }
})
sqlStoreRaces('the SQL session store on D1 inside workerd', d1)
