/**
 * The Workers runtime's deps: D1 through drizzle and tfjs on the wasm backend inside workerd.
 * API keys live in D1 as SHA-256 hashes only, written by scripts/seed-d1.ts; the Worker reads no
 * secrets.
 */
import { drizzle } from 'drizzle-orm/d1'
import * as schema from '../db/schema'
import { createApp } from '../server/app'
import { initTf } from './tf-workers'

/** The Worker's bindings (wrangler.toml). */
export interface Bindings {
  DB: D1Database
  /** The console's files (wrangler.toml [assets]); absent when the Worker runs without them. */
  ASSETS?: Fetcher
}

/** The app on Workers: wrangler's `main` (functions/worker.ts) exports it as is. */
export const app = createApp((env: Bindings) => ({
  db: drizzle(env.DB, { schema }),
  initTf,
  runtime: 'workers',
  assets: env.ASSETS && assetsOf(env.ASSETS),
}))

// Workers serve the console's files before the Worker runs; this serves them when it is called
// directly (tests, service bindings). A copy, since the answer's headers are changed afterwards.
const assetsOf =
  (assets: Fetcher) =>
  async (request: Request): Promise<Response | undefined> => {
    const response = await assets.fetch(request)
    return response.status === 404 ? undefined : new Response(response.body, response)
  }
