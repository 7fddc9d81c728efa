import { env } from 'cloudflare:workers'
import { drizzle } from 'drizzle-orm/d1'
import * as schema from '../../src/db/schema'
import { durableSessionStore } from '../../src/server/sessions/durable-store'
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

sessionStoreContract('the Durable Object session store inside workerd (index in D1)', async () => {
  const db = await d1()
  return { db, store: durableSessionStore(db, (name) => env.SESSION_SHARDS.getByName(name), now) }
})
