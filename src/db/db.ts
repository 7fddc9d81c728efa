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

const preparedByDb = new WeakMap<object, Map<string, unknown>>()

/**
 * The query `build` makes, prepared once per database object and kept (its parameters as
 * `sql.placeholder`s): the queries every request runs skip drizzle's query building and SQLite's
 * statement compilation, ~a quarter of the Node server's CPU under load before. On Workers, where
 * a request brings its own `db`, it is prepared per request, as before.
 *
 * @example
 * const q = prepared(db, 'sessionById', () =>
 *   db.select().from(sessions).where(eq(sessions.id, sql.placeholder('id'))).prepare())
 * const row = await q.get({ id })
 */
export function prepared<T>(db: object, key: string, build: () => T): T {
  let queries = preparedByDb.get(db)
  if (queries === undefined) {
    queries = new Map()
    preparedByDb.set(db, queries)
  }
  let query = queries.get(key) as T | undefined
  if (query === undefined) {
    query = build()
    queries.set(key, query)
  }
  return query
}
