import type { BaseSQLiteDatabase } from 'drizzle-orm/sqlite-core'
import type * as schema from './schema'
import type * as shardSchema from './shard-schema'

/**
 * A drizzle database over the registry schema that works with both drivers: better-sqlite3 (sync)
 * on Node and D1 (async) on Workers. Always `await` queries; never use sync-only APIs.
 */
// biome-ignore lint/suspicious/noExplicitAny: the driver's run-result type differs between drivers.
export type Db = BaseSQLiteDatabase<'sync' | 'async', any, typeof schema>

/** SQLite's and D1's error for a write that breaks a foreign key (their messages share this text). */
export function isForeignKeyViolation(error: unknown): boolean {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    if (e.message.includes('FOREIGN KEY constraint failed')) return true
  }
  return false
}

/**
 * A drizzle database over one session-shards Durable Object's storage (shard-schema.ts): the
 * object's own SQLite (drizzle-orm/durable-sqlite), or better-sqlite3 in Node tests. Synchronous.
 */
// biome-ignore lint/suspicious/noExplicitAny: the driver's run-result type differs between drivers.
export type ShardDb = BaseSQLiteDatabase<'sync', any, typeof shardSchema>
