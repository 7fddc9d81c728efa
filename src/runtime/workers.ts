/**
 * The Workers runtime's deps: D1 through drizzle and tfjs on the wasm backend inside workerd.
 * API keys live in D1 as SHA-256 hashes only, written by scripts/seed-d1.ts; the Worker reads no
 * secrets.
 */
import { drizzle } from 'drizzle-orm/d1'
import kernel from '../core/fused/lstm.wasm'
import * as schema from '../db/schema'
import { createApp } from '../server/app'
import { initTf } from './tf-workers'

/** The Worker's bindings (wrangler.toml). */
export interface Bindings {
  DB: D1Database
}

/** The app on Workers: wrangler's `main` (functions/worker.ts) exports it as is. */
export const app = createApp((env: Bindings) => ({
  db: drizzle(env.DB, { schema }),
  initTf,
  runtime: 'workers',
  kernel,
}))
