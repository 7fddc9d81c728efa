/**
 * The session store on the registry's database (drizzle; better-sqlite3 on Node, D1 on Workers).
 * Shard rows are created by their first step, so creating any session is O(1) writes. Neither
 * driver gives a transaction across statements here (D1 has none), so every write that races is
 * conditional: a shard moves by `UPDATE … WHERE step = from`, or by an insert that yields to a row
 * stored first.
 */
import { and, count, eq, type Placeholder, sql } from 'drizzle-orm'
import { type Db, isForeignKeyViolation, prepared } from '../../db/db'
import { sessionShards, sessions } from '../../db/schema'
import { shardBlobs, storedShard } from './shard-bytes'
import { type ShardCells, stepShardOn } from './shard-step'
import type { AdvanceOutcome, SessionRecord, SessionStore, ShardState } from './store'

/** A SessionStore on `db`; `now` stamps the shard rows. */
export function sqlSessionStore(db: Db, now: () => Date): SessionStore {
  const byKey = (clientId: string, key: string) =>
    db
      .select()
      .from(sessions)
      .where(and(eq(sessions.clientId, clientId), eq(sessions.idempotencyKey, key)))
      .get()
  const shardWhere = (id: string | Placeholder, shard: number | Placeholder) =>
    and(eq(sessionShards.sessionId, id), eq(sessionShards.shard, shard))

  // A session step's write: the shard moves from step `from` to the next, if no other write did.
  const advanceQuery = () =>
    prepared(db, 'shardAdvance', () => {
      const p = (name: string) => sql`${sql.placeholder(name)}`
      return db
        .update(sessionShards)
        .set({
          step: p('step'),
          state: p('state'),
          updates: p('updates'),
          gradsHash: p('gradsHash'),
          updatedAt: p('updatedAt'),
        })
        .where(
          and(
            shardWhere(sql.placeholder('id'), sql.placeholder('shard')),
            eq(sessionShards.step, sql.placeholder('from')),
          ),
        )
        .returning({ step: sessionShards.step })
        .prepare()
    })

  const exists = async (id: string) => {
    const row = await db.select({ id: sessions.id }).from(sessions).where(eq(sessions.id, id)).get()
    return row !== undefined
  }

  /** The shards of `session`, one row each. */
  const cells = (session: SessionRecord): ShardCells => ({
    async read(shard) {
      const query = prepared(db, 'shardRead', () =>
        db
          .select({
            step: sessionShards.step,
            state: sessionShards.state,
            updates: sessionShards.updates,
            gradsHash: sessionShards.gradsHash,
          })
          .from(sessionShards)
          .where(shardWhere(sql.placeholder('id'), sql.placeholder('shard')))
          .prepare(),
      )
      const row = await query.get({ id: session.id, shard })
      return row === undefined ? undefined : storedShard(session, shard, row)
    },

    async advance(shard, from, next: ShardState): Promise<AdvanceOutcome> {
      const values = { step: next.step, ...shardBlobs(next), updatedAt: now().toISOString() }
      const written =
        from === 0
          ? await db
              .insert(sessionShards)
              .values({ sessionId: session.id, shard, ...values })
              .onConflictDoNothing()
              .returning({ step: sessionShards.step })
              .catch((error: unknown) => {
                // The session is gone: its shard cannot be stored.
                if (isForeignKeyViolation(error)) return []
                throw error
              })
          : await advanceQuery().all({ ...values, id: session.id, shard, from })
      return written.length === 1 ? 'applied' : 'conflict'
    },
    exists: () => exists(session.id),
  })

  return {
    async create(session) {
      const key = session.idempotencyKey
      const earlier = key === null ? undefined : await byKey(session.clientId, key)
      if (earlier !== undefined) return { created: false, earlier }
      try {
        await db.insert(sessions).values(session)
      } catch (error) {
        // A concurrent retry with the same key won the unique index: answer with its session.
        const raced = key === null ? undefined : await byKey(session.clientId, key)
        if (raced !== undefined) return { created: false, earlier: raced }
        throw error
      }
      return { created: true }
    },

    async get(clientId, id) {
      const query = prepared(db, 'sessionOf', () =>
        db
          .select()
          .from(sessions)
          .where(
            and(eq(sessions.id, sql.placeholder('id')), eq(sessions.clientId, sql.placeholder('clientId'))),
          )
          .prepare(),
      )
      return query.get({ id, clientId })
    },

    exists,

    async shardSteps(session) {
      const rows = await db
        .select({ shard: sessionShards.shard, step: sessionShards.step })
        .from(sessionShards)
        .where(eq(sessionShards.sessionId, session.id))
      return new Map(rows.map((r) => [r.shard, r.step]))
    },

    stepShard(session, shard, t, grads, here) {
      return stepShardOn(cells(session), here, shard, t, grads)
    },

    async usage(clientId) {
      const row = await db
        .select({ sessions: count(), coordinates: sql<number>`coalesce(sum(${sessions.numParams}), 0)` })
        .from(sessions)
        .where(eq(sessions.clientId, clientId))
        .get()
      return { sessions: row?.sessions ?? 0, coordinates: Number(row?.coordinates ?? 0) }
    },

    async delete({ id }) {
      // A first step of a shard may insert its row between the two deletes (steps run outside any
      // transaction, and D1 has none across statements): delete the shards again then.
      for (let attempt = 1; ; attempt++) {
        await db.delete(sessionShards).where(eq(sessionShards.sessionId, id))
        try {
          await db.delete(sessions).where(eq(sessions.id, id))
          return
        } catch (error) {
          if (!isForeignKeyViolation(error) || attempt === 3) throw error
        }
      }
    },
  }
}
