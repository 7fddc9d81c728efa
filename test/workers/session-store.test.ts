import { env } from 'cloudflare:workers'
import { drizzle } from 'drizzle-orm/d1'
import * as schema from '../../src/db/schema'
import { sessionStoreContract } from '../support/session-store-contract'

// The same suite runs on SQLite in Node: src/server/sessions/sql-store.test.ts.
sessionStoreContract('the SQL session store on D1 inside workerd', async () => drizzle(env.DB, { schema }))
