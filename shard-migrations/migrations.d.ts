// Types migrations.js, which drizzle-kit writes (driver durable-sqlite) and wrangler bundles, its .sql
// files as text (wrangler's default rule for *.sql).
import type { migrate } from 'drizzle-orm/durable-sqlite/migrator'

declare const config: Parameters<typeof migrate>[1]
export default config
