/**
 * What every SessionStore must do, as one suite: the SQL store runs it on SQLite (Node) and on D1,
 * the Durable Object store on D1 and its objects (both inside workerd). `setup` gives the registry
 * database, migrations applied, and the store on it. Sessions run the momentum baseline, so that a
 * step applied twice would show in the next step's updates.
 */
import { eq } from 'drizzle-orm'
import { beforeAll, describe, expect, it } from 'vitest'
import type { Db } from '../../src/db/db'
import { clients, sessionShards, sessions } from '../../src/db/schema'
import type { FloatData } from '../../src/safetensors'
import type { Compute } from '../../src/server/compute'
import { Lane } from '../../src/server/lane'
import { OptimizerCache } from '../../src/server/optimizer-cache'
import { resolvePinned } from '../../src/server/registry/resolve'
import { shardCompute } from '../../src/server/sessions/shard-step'
import { sqlSessionStore } from '../../src/server/sessions/sql-store'
import type { SessionRecord, SessionStore, ShardCompute } from '../../src/server/sessions/store'
import { racingDb } from './racing-db'

const clientId = 'cli_store_contract'
const clock = () => new Date('2026-01-01T00:00:00Z')
let count = 0

// Five coordinates, S = 1 (momentum), shards of 3: shard 0 holds 3 coordinates, shard 1 holds 2.
const record = (over: Partial<SessionRecord> = {}): SessionRecord => ({
  id: `ses_contract_${++count}`,
  clientId,
  optimizer: 'momentum',
  digest: `sha256:${'0'.repeat(64)}`,
  hyperparameters: '{"learningRate":0.1,"momentum":0.9}',
  numParams: 5,
  stateDtype: 'F32',
  stateSize: 1,
  shardSize: 3,
  createdAt: '2026-01-01T00:00:00.000Z',
  idempotencyKey: null,
  ...over,
})

const gradsOf = (length: number, base: number) =>
  Float32Array.from({ length }, (_, i) => (i % 2 === 0 ? 1 : -1) * (base + i / 8))

/** Registers the suite's client, so that sessions may name it. */
async function addClient(db: Db): Promise<void> {
  await db
    .insert(clients)
    .values({ id: clientId, name: 'store', role: 'client', createdAt: '2026-01-01' })
    .onConflictDoNothing()
}

export function sessionStoreContract(
  name: string,
  setup: () => Promise<{ db: Db; store: SessionStore }>,
): void {
  describe(name, () => {
    let db: Db
    let store: SessionStore
    // How the caller's isolate would compute a step: every store must give the same numbers.
    const here = async (session: SessionRecord): Promise<ShardCompute> => {
      const compute: Compute = { db, initTf: async () => 'none', optimizers: new OptimizerCache() }
      return shardCompute(compute, await resolvePinned(db, session), session, new Lane())
    }
    // The updates of steps 1, 2, … of one shard fed `grads` in turn, computed here from a fresh state.
    const expected = async (session: SessionRecord, grads: Float32Array[]) => {
      const compute = await here(session)
      const updates: Float32Array[] = []
      let state: FloatData | undefined
      for (const g of grads) {
        const next = await compute.step(state, g)
        updates.push(next.updates)
        state = next.state
      }
      return updates
    }
    const step = async (session: SessionRecord, shard: number, t: number, grads: Float32Array) =>
      store.stepShard(session, shard, t, grads, await here(session))

    beforeAll(async () => {
      ;({ db, store } = await setup())
      await addClient(db)
    })

    it('creates a session and reads it back for its own client only', async () => {
      const session = record()
      expect(await store.create(session)).toEqual({ created: true })
      expect(await store.get(clientId, session.id)).toEqual(session)
      expect(await store.get('cli_someone_else', session.id)).toBeUndefined()
      expect(await store.exists(session.id)).toBe(true)
      expect(await store.exists('ses_none')).toBe(false)
    })

    it('hands back the earlier session for a reused idempotency key, and stores nothing', async () => {
      const key = `key-${count}`
      const first = record({ idempotencyKey: key })
      expect(await store.create(first)).toEqual({ created: true })
      const again = record({ idempotencyKey: key, numParams: 7 })
      expect(await store.create(again)).toEqual({ created: false, earlier: first })
      expect(await store.exists(again.id)).toBe(false)
    })

    it('applies step t + 1, answers t again with the same updates, and refuses any other t', async () => {
      const session = record()
      await store.create(session)
      expect(await store.shardSteps(session)).toEqual(new Map())
      const [g1, g2] = [gradsOf(3, 1), gradsOf(3, 2)]
      const [u1, u2] = await expected(session, [g1, g2])
      expect(await step(session, 0, 1, g1)).toEqual({ outcome: 'updates', updates: u1 })
      // A retry (the same gradients) returns what step 1 stored.
      expect(await step(session, 0, 1, Float32Array.from(g1))).toEqual({ outcome: 'updates', updates: u1 })
      expect(await step(session, 0, 3, g2)).toEqual({ outcome: 'conflict', current: 1 })
      expect(await step(session, 0, 2, g2)).toEqual({ outcome: 'updates', updates: u2 })
      expect(await step(session, 0, 1, g1)).toEqual({ outcome: 'conflict', current: 2 })
      expect(await store.shardSteps(session)).toEqual(new Map([[0, 2]]))
    })

    it('refuses step t resent with other gradients (replay_mismatch), and changes nothing', async () => {
      const session = record()
      await store.create(session)
      const [g1, g2] = [gradsOf(3, 1), gradsOf(3, 2)]
      const [u1, u2] = await expected(session, [g1, g2])
      expect(await step(session, 0, 1, g1)).toEqual({ outcome: 'updates', updates: u1 })
      expect(await step(session, 0, 1, gradsOf(3, 9))).toEqual({ outcome: 'replay_mismatch' })
      // One bit of one gradient differs.
      const flipped = Float32Array.from(g1)
      new Uint32Array(flipped.buffer)[2]! ^= 1
      expect(await step(session, 0, 1, flipped)).toEqual({ outcome: 'replay_mismatch' })
      expect(await step(session, 0, 1, g1)).toEqual({ outcome: 'updates', updates: u1 })
      expect(await step(session, 0, 2, g2)).toEqual({ outcome: 'updates', updates: u2 })
      expect(await step(session, 0, 2, g1)).toEqual({ outcome: 'replay_mismatch' })
      expect(await store.shardSteps(session)).toEqual(new Map([[0, 2]]))
    })

    it('refuses a step whose result overflows (non_finite) and stores nothing', async () => {
      // Momentum at its largest learning rate on gradients near float32's largest: -lr·v overflows.
      const session = record({ hyperparameters: '{"learningRate":100,"momentum":0.9}' })
      await store.create(session)
      const huge = Float32Array.from([3e38, -3e38, 1])
      const refused = await step(session, 0, 1, huge)
      expect(refused).toMatchObject({
        outcome: 'non_finite',
        detail: expect.stringContaining('nothing was stored'),
      })
      expect(await store.shardSteps(session)).toEqual(new Map())
      // The shard is still at step 0: step 1 with finite results applies.
      const [u1] = await expected(session, [gradsOf(3, 1)])
      expect(await step(session, 0, 1, gradsOf(3, 1))).toEqual({ outcome: 'updates', updates: u1 })
    })

    it("counts a client's sessions and their coordinates, and nobody else's", async () => {
      const owner = `cli_usage_${++count}`
      await db.insert(clients).values({ id: owner, name: 'usage', role: 'client', createdAt: '2026-01-01' })
      expect(await store.usage(owner)).toEqual({ sessions: 0, coordinates: 0 })
      const a = record({ clientId: owner, numParams: 5 })
      const b = record({ clientId: owner, numParams: 1_000_000_000, shardSize: 65_536 })
      await store.create(a)
      await store.create(b)
      expect(await store.usage(owner)).toEqual({ sessions: 2, coordinates: 1_000_000_005 })
      await store.delete(a)
      expect(await store.usage(owner)).toEqual({ sessions: 1, coordinates: 1_000_000_000 })
    })

    it('applies a step once when two requests for it race', async () => {
      const session = record()
      await store.create(session)
      const [g1, g2] = [gradsOf(3, 1), gradsOf(3, 2)]
      const [u1, u2] = await expected(session, [g1, g2])
      const both = await Promise.all([step(session, 0, 1, g1), step(session, 0, 1, g1)])
      expect(both).toEqual([
        { outcome: 'updates', updates: u1 },
        { outcome: 'updates', updates: u1 },
      ])
      // Step 2 continues from a state that took step 1 once.
      expect(await step(session, 0, 2, g2)).toEqual({ outcome: 'updates', updates: u2 })
    })

    it('keeps F16 and BF16 states bit for bit, also on a shorter last shard', async () => {
      for (const stateDtype of ['F16', 'BF16'] as const) {
        const session = record({ stateDtype })
        await store.create(session)
        const grads = [gradsOf(2, 1), gradsOf(2, 3), gradsOf(2, 0.5)]
        const want = await expected(session, grads)
        for (const [i, g] of grads.entries()) {
          expect(await step(session, 1, i + 1, g)).toEqual({ outcome: 'updates', updates: want[i] })
        }
        expect(await store.shardSteps(session)).toEqual(new Map([[1, 3]]))
      }
    })

    it('keeps the shards of one session apart from those of another', async () => {
      const [a, b] = [record(), record()]
      await store.create(a)
      await store.create(b)
      const [g1, g2] = [gradsOf(3, 1), gradsOf(3, 2)]
      const [u1, u2] = await expected(a, [g1, g2])
      await step(a, 0, 1, g1)
      expect(await step(b, 0, 2, g2)).toEqual({ outcome: 'conflict', current: 0 })
      expect(await step(b, 0, 1, g1)).toEqual({ outcome: 'updates', updates: u1 })
      expect(await step(a, 0, 2, g2)).toEqual({ outcome: 'updates', updates: u2 })
      expect(await store.shardSteps(b)).toEqual(new Map([[0, 1]]))
    })

    it('deletes a session and every shard of it; its steps then find it gone', async () => {
      const session = record()
      await store.create(session)
      await step(session, 0, 1, gradsOf(3, 1))
      await step(session, 1, 1, gradsOf(2, 1))
      await store.delete(session)
      expect(await store.get(clientId, session.id)).toBeUndefined()
      expect(await store.exists(session.id)).toBe(false)
      expect(await store.shardSteps(session)).toEqual(new Map())
      expect(await step(session, 0, 1, gradsOf(3, 1))).toEqual({ outcome: 'gone' })
      expect(await step(session, 1, 2, gradsOf(2, 1))).toEqual({ outcome: 'gone' })
      expect(await store.shardSteps(session)).toEqual(new Map())
    })

    it('leaves nothing behind when a step races the delete of its session', async () => {
      const session = record()
      await store.create(session)
      let release = () => {}
      const gate = new Promise<void>((resolve) => {
        release = resolve
      })
      // The caller's math waits until the delete is done (a store stepping elsewhere races freely).
      const compute = await here(session)
      const held: ShardCompute = {
        ...compute,
        async step(state, grads) {
          await gate
          return compute.step(state, grads)
        },
      }
      const stepping = store.stepShard(session, 0, 1, gradsOf(3, 1), held)
      await store.delete(session)
      release()
      expect(['gone', 'updates']).toContain((await stepping).outcome)
      expect(await store.exists(session.id)).toBe(false)
      expect(await store.shardSteps(session)).toEqual(new Map())
    })
  })
}

/** The SQL store's own race: its delete is two statements, and a first step may land in between. */
export function sqlStoreRaces(name: string, setup: () => Promise<Db>): void {
  describe(name, () => {
    it('deletes a session even when a first step stores a shard between its two deletes', async () => {
      const db = await setup()
      await addClient(db)
      const store = sqlSessionStore(db, clock)
      const session = record()
      await store.create(session)
      let raced = false
      const racing = racingDb(db, sessions, 'delete', async () => {
        if (raced) return
        raced = true
        await db.insert(sessionShards).values({
          sessionId: session.id,
          shard: 0,
          step: 1,
          state: new Uint8Array(12),
          updates: new Uint8Array(12),
          gradsHash: null,
          updatedAt: '2026-01-01',
        })
      })
      await sqlSessionStore(racing, clock).delete(session)
      expect(raced).toBe(true)
      expect(await store.exists(session.id)).toBe(false)
      const left = await db.select().from(sessionShards).where(eq(sessionShards.sessionId, session.id))
      expect(left).toEqual([])
    })
  })
}
