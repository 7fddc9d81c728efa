/**
 * What one session-shards Durable Object does with its storage (DESIGN §6): it holds some shards
 * of some sessions, steps them where they are stored, and forgets a session when it is deleted.
 * Its SQLite is synchronous and the object runs one event at a time, so each write below is atomic
 * with the check before it; between a step's read and its write the object awaits the math (and
 * the registry), so other requests may run there, and the write is a compare-and-set.
 */
import { and, eq, lt } from 'drizzle-orm'
import type { ShardDb } from '../../db/db'
import { droppedSessions, shards } from '../../db/shard-schema'
import type { Compute } from '../compute'
import type { Lane } from '../lane'
import { resolvePinned, type Target } from '../registry/resolve'
import { shardBlobs, storedShard } from './shard-bytes'
import { type ShardCells, shardCompute, stepShardOn } from './shard-step'
import type { SessionRecord, ShardCompute, ShardStepOutcome } from './store'

/** Step `t` of shard `shard` of `session`, with its gradients: what a store asks an object to apply. */
export interface ShardStepRequest {
  session: SessionRecord
  shard: number
  t: number
  grads: Float32Array
}

/** How long an object remembers a deleted session: far longer than any step can take to arrive. */
export const droppedKeepMs = 60 * 60 * 1000

/** The shards an object holds, on its storage `db`; `now` stamps rows and marks. */
export function objectShards(db: ShardDb, now: () => Date) {
  const shardWhere = (id: string, shard: number) => and(eq(shards.sessionId, id), eq(shards.shard, shard))
  const dropped = (id: string) =>
    db
      .select({ id: droppedSessions.sessionId })
      .from(droppedSessions)
      .where(eq(droppedSessions.sessionId, id))
      .get() !== undefined

  /** The shards of `session` held here. */
  const cells = (session: SessionRecord): ShardCells => ({
    read(shard) {
      const row = db
        .select({
          step: shards.step,
          state: shards.state,
          updates: shards.updates,
          gradsHash: shards.gradsHash,
        })
        .from(shards)
        .where(shardWhere(session.id, shard))
        .get()
      return row === undefined ? undefined : storedShard(session, shard, row)
    },
    advance(shard, from, next) {
      if (dropped(session.id)) return 'conflict'
      const values = { step: next.step, ...shardBlobs(next), updatedAt: now().toISOString() }
      const written =
        from === 0
          ? db
              .insert(shards)
              .values({ sessionId: session.id, shard, ...values })
              .onConflictDoNothing()
              .returning({ step: shards.step })
              .all()
          : db
              .update(shards)
              .set(values)
              .where(and(shardWhere(session.id, shard), eq(shards.step, from)))
              .returning({ step: shards.step })
              .all()
      return written.length === 1 ? 'applied' : 'conflict'
    },
    exists: () => !dropped(session.id),
  })

  return {
    cells,

    /** Applies a step to a shard held here, computing with `here` (see SessionStore.stepShard). */
    step(request: ShardStepRequest, here: ShardCompute): Promise<ShardStepOutcome> {
      return stepShardOn(cells(request.session), here, request.shard, request.t, request.grads)
    },

    /** Steps applied so far by the shards of session `id` held here. */
    steps(id: string): Map<number, number> {
      const rows = db
        .select({ shard: shards.shard, step: shards.step })
        .from(shards)
        .where(eq(shards.sessionId, id))
        .all()
      return new Map(rows.map((r) => [r.shard, r.step]))
    },

    /** Deletes the shards of session `id` held here, and refuses its steps from now on. */
    drop(id: string): void {
      const at = now().getTime()
      db.delete(shards).where(eq(shards.sessionId, id)).run()
      db.insert(droppedSessions)
        .values({ sessionId: id, droppedAt: at })
        .onConflictDoUpdate({ target: droppedSessions.sessionId, set: { droppedAt: at } })
        .run()
      db.delete(droppedSessions)
        .where(lt(droppedSessions.droppedAt, at - droppedKeepMs))
        .run()
    },
  }
}

/** The shards one object holds (objectShards). */
export type ObjectShards = ReturnType<typeof objectShards>

/**
 * How an object computes the steps of the sessions it holds: with `compute` (its own registry
 * connection and tfjs), one at a time in `lane`. A session's pinned target is looked up once per
 * object: the math of a digest never changes, and the caller has checked the session before.
 */
export function objectCompute(
  compute: Compute,
  lane: Lane,
): (session: SessionRecord) => Promise<ShardCompute> {
  // An object holds the shards of one session, so this holds one or two entries.
  const targets = new Map<string, Promise<Target>>()
  return async (session) => {
    const pin = `${session.optimizer}\n${session.digest}\n${session.hyperparameters}`
    let target = targets.get(pin)
    if (target === undefined) {
      target = resolvePinned(compute.db, session)
      targets.set(pin, target)
      target.catch(() => targets.delete(pin))
    }
    return shardCompute(compute, await target, session, lane)
  }
}
