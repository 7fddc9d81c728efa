/**
 * The storage of one session-shards Durable Object (DESIGN §6: on Workers a session's shard states
 * live in SQLite-backed objects): the shards it holds, and the sessions deleted from it. The
 * source of truth for shard-migrations/ (`npm run db:generate:shards`), which each object applies
 * to its own SQLite when it starts. Rows stay ≤ maxRowBytes (the objects' row limit, as D1's).
 */
import { integer, primaryKey, sqliteTable, text } from 'drizzle-orm/sqlite-core'
import { shardColumns } from './schema'

/**
 * One shard's state after `step` steps and the updates of that step (so a retry gets the same
 * bytes), as the registry's session_shards holds them on Node. Created by the shard's first step.
 */
export const shards = sqliteTable(
  'shards',
  { sessionId: text('session_id').notNull(), ...shardColumns() },
  (t) => [primaryKey({ columns: [t.sessionId, t.shard] })],
)

/**
 * Sessions deleted from this object, so that a step already on its way when the session was
 * deleted stores nothing. Kept for an hour (object-shards.ts), far longer than a step can take.
 */
export const droppedSessions = sqliteTable('dropped_sessions', {
  sessionId: text('session_id').primaryKey(),
  /** Milliseconds since the epoch. */
  droppedAt: integer('dropped_at').notNull(),
})
