/**
 * The Workers runtime's deps: D1 through drizzle and tfjs on the wasm backend inside workerd.
 * API keys live in D1 as SHA-256 hashes only, written by scripts/seed-d1.ts; the Worker reads no
 * secrets.
 */
import { drizzle } from 'drizzle-orm/d1'
import kernel from '../core/fused/lstm.wasm'
import * as schema from '../db/schema'
import { createApp } from '../server/app'
import { batchedRateCounter } from '../server/quotas'
import { durableSessionStore } from '../server/sessions/durable-store'
import type { SessionShards } from './session-shards'
import { initTf } from './tf-workers'

export { SessionShards } from './session-shards'

/** The Worker's bindings (wrangler.toml). */
export interface Bindings {
  DB: D1Database
  /** Shard states of sessions, each in the object that steps it (session-shards.ts). */
  SESSION_SHARDS: DurableObjectNamespace<SessionShards>
  /** The console's files (wrangler.toml [assets]); absent when the Worker runs without them. */
  ASSETS?: Fetcher
}

/**
 * Step bodies a Worker takes, so that a step fits its 128 MB isolate with room for another request:
 * inside workerd a step's peak memory grew by about 4.4 bytes per binary body byte and 10 per JSON
 * byte over ~40 MB (tfjs, weights), e.g. +120 MB at 65,536 coordinates of S = 80 (bench:edge-memory,
 * docs/capacity.md). 4 MiB allows 12,743 coordinates of the paper's optimizer per request.
 */
const stepBudget = { maxBinaryStepBytes: 4 * 1024 * 1024, maxJsonBodyBytes: 2 * 1024 * 1024 }

/**
 * The isolate's request counter for the requestsPerMinute quota: a client's requests reach D1 at
 * most once a second (its first of each minute at once), so session steps make no D1 write.
 */
const rateCounter = batchedRateCounter()

/** The app on Workers: wrangler's `main` (functions/worker.ts) exports it as is. */
export const app = createApp((env: Bindings) => {
  const db = drizzle(env.DB, { schema })
  const objects = (name: string) => env.SESSION_SHARDS.getByName(name)
  const sessions = durableSessionStore(db, objects, () => new Date())
  const assets = env.ASSETS && assetsOf(env.ASSETS)
  // Set by Cloudflare's edge; the failed-auth quota counts per address.
  const clientAddress = (request: Request) => request.headers.get('cf-connecting-ip') ?? undefined
  return {
    db,
    initTf,
    runtime: 'workers',
    kernel,
    sessions,
    assets,
    clientAddress,
    rateCounter,
    ...stepBudget,
  }
})

// Workers serve the console's files before the Worker runs; this serves them when it is called
// directly (tests, service bindings). A copy, since the answer's headers are changed afterwards.
const assetsOf =
  (assets: Fetcher) =>
  async (request: Request): Promise<Response | undefined> => {
    const response = await assets.fetch(request)
    return response.status === 404 ? undefined : new Response(response.body, response)
  }
