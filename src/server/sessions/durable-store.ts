/**
 * The session store on Workers (DESIGN §6): the session index (owner, pin, N, layout) stays in the
 * registry's D1, as the SQL store keeps it; shard states live in session-shards Durable Objects
 * (object-shards.ts), each step applied inside the object that holds its shard. A session's
 * shards spread over several objects, so its shards step in parallel, and no step writes to D1
 * (the request-rate quota's counter reaches D1 at most once a second per client and isolate:
 * quotas.ts batchedRateCounter).
 */
import type { Db } from '../../db/db'
import type { ShardStepRequest } from './object-shards'
import { type ShardLayout, shardCount } from './shards'
import { sqlSessionStore } from './sql-store'
import type { SessionRecord, SessionStore, ShardStepOutcome } from './store'

/** One session-shards object as the store calls it (a Durable Object stub on Workers). */
export interface ShardObject {
  step(request: ShardStepRequest): Promise<ShardStepOutcome>
  steps(sessionId: string): Promise<Map<number, number>>
  drop(sessionId: string): Promise<void>
}

/** The object called `name`, made on first use. */
export type ShardObjects = (name: string) => ShardObject

/** A session spreads over at least this many objects (or one per shard, when it has fewer). */
const minObjectsPerSession = 16

/** Beyond minObjectsPerSession, an object holds at most this many shards (about 2 GB). */
const maxShardsPerObject = 1024

/**
 * How many objects a session's shards spread over: shard i lives in object i mod objectCount.
 * Part of the stored format: sessions already stored would lose their shards if this changed.
 */
export function objectCount(session: ShardLayout): number {
  const shards = shardCount(session)
  return Math.min(shards, Math.max(minObjectsPerSession, Math.ceil(shards / maxShardsPerObject)))
}

/** The name of object `k` of session `id`. */
export const objectName = (id: string, k: number): string => `${id}/${k}`

/** A SessionStore with its index on `db` and its shards in `objects`. */
export function durableSessionStore(db: Db, objects: ShardObjects, now: () => Date): SessionStore {
  // Sessions are written and found in D1 exactly as the SQL store does; shards never go there.
  const index = sqlSessionStore(db, now)
  const everyObject = (session: SessionRecord) =>
    Array.from({ length: objectCount(session) }, (_, k) => objects(objectName(session.id, k)))

  return {
    create: (session) => index.create(session),
    get: (clientId, id) => index.get(clientId, id),
    exists: (id) => index.exists(id),
    usage: (clientId) => index.usage(clientId),

    async shardSteps(session) {
      const held = await Promise.all(everyObject(session).map((o) => o.steps(session.id)))
      return new Map(held.flatMap((steps) => [...steps]))
    },

    stepShard(session, shard, t, grads) {
      const holder = objects(objectName(session.id, shard % objectCount(session)))
      return holder.step({ session, shard, t, grads })
    },

    async delete(session) {
      // Every object forgets the session before its index row goes: a step that found the row
      // and is still on its way then stores nothing (object-shards.ts drop).
      await Promise.all(everyObject(session).map((o) => o.drop(session.id)))
      await index.delete(session)
    },
  }
}
