/**
 * The Workers runtime's deps: D1 through drizzle and tfjs on the wasm backend inside workerd.
 * API keys live in D1 as SHA-256 hashes only, written by scripts/seed-d1.ts; the Worker reads no
 * secrets.
 */
import { drizzle } from 'drizzle-orm/d1'
import * as schema from '../db/schema'
import { createApp } from '../server/app'
import { durableSessionStore } from '../server/sessions/durable-store'
import type { SessionShards } from './session-shards'
import { initTf } from './tf-workers'

export { SessionShards } from './session-shards'

/** The Worker's bindings (wrangler.toml). */
export interface Bindings {
  DB: D1Database
  /** Shard states of sessions, each in the object that steps it (session-shards.ts). */
  SESSION_SHARDS: DurableObjectNamespace<SessionShards>
}

/** The app on Workers: wrangler's `main` (functions/worker.ts) exports it as is. */
export const app = createApp((env: Bindings) => {
  const db = drizzle(env.DB, { schema })
  const objects = (name: string) => env.SESSION_SHARDS.getByName(name)
  return { db, initTf, runtime: 'workers', sessions: durableSessionStore(db, objects, () => new Date()) }
})
