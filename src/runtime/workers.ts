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
}

/** The app on Workers: wrangler's `main` (functions/worker.ts) exports it as is. */
export const app = createApp((env: Bindings) => ({
  db: drizzle(env.DB, { schema }),
  initTf,
  runtime: 'workers',
  // Set by Cloudflare's edge; the failed-auth quota counts per address.
  clientAddress: (request: Request) => request.headers.get('cf-connecting-ip') ?? undefined,
}))
