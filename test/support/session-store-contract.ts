/**
 * What every SessionStore must do, as one suite: the SQL store runs it on SQLite (Node) and on D1
 * (inside workerd). `setup` gives a drizzle database with migrations applied.
 */
import { eq } from 'drizzle-orm'
import { beforeAll, describe, expect, it } from 'vitest'
import type { Db } from '../../src/db/db'
import { clients, sessionShards, sessions } from '../../src/db/schema'
import { fromFloat32, toFloat32 } from '../../src/safetensors'
import { sqlSessionStore } from '../../src/server/sessions/sql-store'
import type { SessionRecord, SessionStore, ShardState } from '../../src/server/sessions/store'
import { racingDb } from './racing-db'

export function sessionStoreContract(name: string, setup: () => Promise<Db>): void {
  describe(name, () => {
    let db: Db
    let store: SessionStore
    const clock = () => new Date('2026-01-01T00:00:00Z')
    const clientId = 'cli_store_contract'
    let count = 0
    // Five coordinates, S = 2, shards of 3: shard 0 holds 3 coordinates, shard 1 holds 2.
    const record = (over: Partial<SessionRecord> = {}): SessionRecord => ({
      id: `ses_contract_${++count}`,
      clientId,
      optimizer: 'sgd',
      digest: `sha256:${'0'.repeat(64)}`,
      hyperparameters: '{"learningRate":0.1}',
      numParams: 5,
      stateDtype: 'F32',
      stateSize: 2,
      shardSize: 3,
      createdAt: '2026-01-01T00:00:00.000Z',
      idempotencyKey: null,
      ...over,
    })
    const shardState = (session: SessionRecord, step: number, length: number, base: number): ShardState => ({
      step,
      state: fromFloat32(
        session.stateDtype,
        Float32Array.from({ length: length * session.stateSize }, (_, i) => base + i / 4),
      ),
      updates: Float32Array.from({ length }, (_, i) => base - i),
      gradsHash: `${step}`.padStart(64, 'a'),
    })

    beforeAll(async () => {
      db = await setup()
      await db
        .insert(clients)
        .values({ id: clientId, name: 'store', role: 'client', createdAt: '2026-01-01' })
      store = sqlSessionStore(db, clock)
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
      const first = record({ idempotencyKey: 'key-1' })
      expect(await store.create(first)).toEqual({ created: true })
      const again = record({ idempotencyKey: 'key-1', numParams: 7 })
      expect(await store.create(again)).toEqual({ created: false, earlier: first })
      expect(await store.exists(again.id)).toBe(false)
    })

    it('reads a shard as absent until its first step, then moves it by compare-and-set only', async () => {
      const session = record()
      await store.create(session)
      expect(await store.readShard(session, 0)).toBeUndefined()
      const one = shardState(session, 1, 3, 1)
      expect(await store.advanceShard(session, 0, 0, one)).toBe('applied')
      expect(await store.advanceShard(session, 0, 0, shardState(session, 1, 3, 9))).toBe('conflict')
      expect(await store.readShard(session, 0)).toEqual(one)
      const two = shardState(session, 2, 3, 2)
      expect(await store.advanceShard(session, 0, 2, two)).toBe('conflict')
      expect(await store.advanceShard(session, 0, 1, two)).toBe('applied')
      expect(await store.readShard(session, 0)).toEqual(two)
      expect(await store.shardSteps(session.id)).toEqual(new Map([[0, 2]]))
    })

    it('keeps F16 and BF16 states bit for bit, also on a shorter last shard', async () => {
      for (const stateDtype of ['F16', 'BF16'] as const) {
        const session = record({ stateDtype })
        await store.create(session)
        const last = shardState(session, 1, 2, 3)
        expect(await store.advanceShard(session, 1, 0, last)).toBe('applied')
        const read = await store.readShard(session, 1)
        expect(read?.state.dtype).toBe(stateDtype)
        expect(toFloat32(read!.state)).toEqual(toFloat32(last.state))
        expect(await store.shardSteps(session.id)).toEqual(new Map([[1, 1]]))
      }
    })

    it('answers conflict, not an error, for a first step of a session that is gone', async () => {
      const session = record()
      expect(await store.advanceShard(session, 0, 0, shardState(session, 1, 3, 1))).toBe('conflict')
    })

    it('deletes a session and every shard of it', async () => {
      const session = record()
      await store.create(session)
      await store.advanceShard(session, 0, 0, shardState(session, 1, 3, 1))
      await store.advanceShard(session, 1, 0, shardState(session, 1, 2, 1))
      await store.delete(session.id)
      expect(await store.get(clientId, session.id)).toBeUndefined()
      expect(await store.shardSteps(session.id)).toEqual(new Map())
    })

    it("counts a client's sessions and their coordinates, and nobody else's", async () => {
      const owner = 'cli_usage'
      await db.insert(clients).values({ id: owner, name: 'usage', role: 'client', createdAt: '2026-01-01' })
      expect(await store.usage(owner)).toEqual({ sessions: 0, coordinates: 0 })
      const a = record({ clientId: owner, numParams: 5 })
      const b = record({ clientId: owner, numParams: 1_000_000_000 })
      await store.create(a)
      await store.create(b)
      expect(await store.usage(owner)).toEqual({ sessions: 2, coordinates: 1_000_000_005 })
      await store.delete(a.id)
      expect(await store.usage(owner)).toEqual({ sessions: 1, coordinates: 1_000_000_000 })
    })

    it('keeps the hash of the gradients with each step, or null when it is not known', async () => {
      const session = record()
      await store.create(session)
      const unknown = { ...shardState(session, 1, 3, 1), gradsHash: null }
      expect(await store.advanceShard(session, 0, 0, unknown)).toBe('applied')
      expect((await store.readShard(session, 0))?.gradsHash).toBeNull()
      const known = { ...shardState(session, 2, 3, 2), gradsHash: 'f'.repeat(64) }
      expect(await store.advanceShard(session, 0, 1, known)).toBe('applied')
      expect((await store.readShard(session, 0))?.gradsHash).toBe('f'.repeat(64))
    })

    it('deletes a session even when a first step stores a shard between its two deletes', async () => {
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
          state: new Uint8Array(24),
          updates: new Uint8Array(12),
          updatedAt: '2026-01-01',
        })
      })
      await sqlSessionStore(racing, clock).delete(session.id)
      expect(raced).toBe(true)
      expect(await store.exists(session.id)).toBe(false)
      const left = await db.select().from(sessionShards).where(eq(sessionShards.sessionId, session.id))
      expect(left).toEqual([])
    })
  })
}
