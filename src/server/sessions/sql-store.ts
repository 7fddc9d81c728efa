/**
 * The session store on the registry's database (drizzle; better-sqlite3 on Node, D1 on Workers).
 * Shard rows are created by their first step, so creating any session is O(1) writes. Neither
 * driver gives a transaction across statements here (D1 has none), so every write that races is
 * conditional: a shard moves by `UPDATE … WHERE step = from`, or by an insert that yields to a row
 * stored first.
 */
import { and, count, eq, sql } from 'drizzle-orm'
import { type Db, isForeignKeyViolation } from '../../db/db'
import { sessionShards, sessions } from '../../db/schema'
import { bytesOf, type FloatData, ITEMSIZE } from '../../safetensors'
import { shardRange } from './shards'
import type { SessionRecord, SessionStore, ShardState } from './store'

/** A SessionStore on `db`; `now` stamps the shard rows. */
export function sqlSessionStore(db: Db, now: () => Date): SessionStore {
  const byKey = (clientId: string, key: string) =>
    db
      .select()
      .from(sessions)
      .where(and(eq(sessions.clientId, clientId), eq(sessions.idempotencyKey, key)))
      .get()
  const shardWhere = (id: string, shard: number) =>
    and(eq(sessionShards.sessionId, id), eq(sessionShards.shard, shard))

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
      return db
        .select()
        .from(sessions)
        .where(and(eq(sessions.id, id), eq(sessions.clientId, clientId)))
        .get()
    },

    async exists(id) {
      const row = await db.select({ id: sessions.id }).from(sessions).where(eq(sessions.id, id)).get()
      return row !== undefined
    },

    async shardSteps(id) {
      const rows = await db
        .select({ shard: sessionShards.shard, step: sessionShards.step })
        .from(sessionShards)
        .where(eq(sessionShards.sessionId, id))
      return new Map(rows.map((r) => [r.shard, r.step]))
    },

    async readShard(session, shard) {
      const row = await db
        .select({
          step: sessionShards.step,
          state: sessionShards.state,
          updates: sessionShards.updates,
          gradsHash: sessionShards.gradsHash,
        })
        .from(sessionShards)
        .where(shardWhere(session.id, shard))
        .get()
      if (row === undefined) return undefined
      const elements = shardRange(session, shard).length * session.stateSize
      return {
        step: row.step,
        state: stateFrom(row.state, session, elements),
        updates: f32View(row.updates),
        gradsHash: row.gradsHash,
      }
    },

    async advanceShard(session, shard, from, next: ShardState) {
      const values = {
        step: next.step,
        state: bytesOf(next.state),
        updates: bytesOf(next.updates),
        gradsHash: next.gradsHash,
        updatedAt: now().toISOString(),
      }
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
          : await db
              .update(sessionShards)
              .set(values)
              .where(and(shardWhere(session.id, shard), eq(sessionShards.step, from)))
              .returning({ step: sessionShards.step })
      return written.length === 1 ? 'applied' : 'conflict'
    },

    async usage(clientId) {
      const row = await db
        .select({ sessions: count(), coordinates: sql<number>`coalesce(sum(${sessions.numParams}), 0)` })
        .from(sessions)
        .where(eq(sessions.clientId, clientId))
        .get()
      return { sessions: row?.sessions ?? 0, coordinates: Number(row?.coordinates ?? 0) }
    },

    async delete(id) {
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

/** A stored F32 blob as a Float32Array (a view when aligned). */
function f32View(bytes: Uint8Array): Float32Array {
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice()
  return new Float32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4)
}

function stateFrom(bytes: Uint8Array, session: SessionRecord, elements: number): FloatData {
  const dtype = session.stateDtype
  if (bytes.byteLength !== elements * ITEMSIZE[dtype]) {
    throw new Error(
      `stored shard state has ${bytes.byteLength} bytes, expected ${elements * ITEMSIZE[dtype]}`,
    )
  }
  if (dtype === 'F32') return { dtype, data: f32View(bytes) }
  const aligned = bytes.byteOffset % 2 === 0 ? bytes : bytes.slice()
  return { dtype, data: new Uint16Array(aligned.buffer, aligned.byteOffset, elements) }
}
