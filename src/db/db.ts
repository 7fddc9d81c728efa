import type { BaseSQLiteDatabase } from 'drizzle-orm/sqlite-core'
import type * as schema from './schema'

/**
 * A drizzle database over the registry schema that works with both drivers: better-sqlite3 (sync)
 * on Node and D1 (async) on Workers. Always `await` queries; never use sync-only APIs.
 */
// biome-ignore lint/suspicious/noExplicitAny: the driver's run-result type differs between drivers.
export type Db = BaseSQLiteDatabase<'sync' | 'async', any, typeof schema>
