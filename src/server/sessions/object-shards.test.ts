import path from 'node:path'
import Database from 'better-sqlite3'
import { eq } from 'drizzle-orm'
import { drizzle } from 'drizzle-orm/better-sqlite3'
import { migrate } from 'drizzle-orm/better-sqlite3/migrator'
import { describe, expect, it } from 'vitest'
import * as shardSchema from '../../db/shard-schema'
import { droppedKeepMs, objectShards } from './object-shards'
import type { SessionRecord, ShardCompute } from './store'

// The object's logic on better-sqlite3 with shard-migrations/ applied, as each object's own SQLite
// (the same logic runs in the Durable Object: test/workers/durable-sessions.test.ts).
function storage(clock: { ms: number }) {
  const db = drizzle(new Database(':memory:'), { schema: shardSchema })
  migrate(db, { migrationsFolder: path.resolve(import.meta.dirname, '../../../shard-migrations') })
  return { db, shards: objectShards(db, () => new Date(clock.ms)) }
}

const session = (id: string): SessionRecord => ({
  id,
  clientId: 'cli_a',
  optimizer: 'sgd',
  digest: `sha256:${'0'.repeat(64)}`,
  hyperparameters: '{"learningRate":0.5}',
  numParams: 4,
  stateDtype: 'F32',
  stateSize: 1,
  shardSize: 2,
  createdAt: '2026-01-01T00:00:00.000Z',
  idempotencyKey: null,
})

// A step's math: updates = -grads, state = its old value + 1 (so the step count shows in it).
const counting = (gate: Promise<void> = Promise.resolve()): ShardCompute => ({
  async step(state, grads) {
    await gate
    const old = (state?.data as Float32Array | undefined) ?? new Float32Array(grads.length)
    return { updates: grads.map((g) => -g), state: { dtype: 'F32', data: old.map((v) => v + 1) } }
  },
  exclusive: (task) => task(),
})

const request = (id: string, shard: number, t: number) => ({
  session: session(id),
  shard,
  t,
  grads: Float32Array.of(1, 2),
})

describe('the shards an object holds', () => {
  it('steps each shard of each session on its own, and lists the steps of one session', async () => {
    const { shards } = storage({ ms: 0 })
    await shards.step(request('ses_a', 0, 1), counting())
    await shards.step(request('ses_a', 0, 2), counting())
    await shards.step(request('ses_a', 1, 1), counting())
    await shards.step(request('ses_b', 0, 1), counting())
    expect(shards.steps('ses_a')).toEqual(
      new Map([
        [0, 2],
        [1, 1],
      ]),
    )
    expect(shards.steps('ses_b')).toEqual(new Map([[0, 1]]))
    expect((await shards.cells(session('ses_a')).read(0))?.state.data).toEqual(Float32Array.of(2, 2))
  })

  it('stores nothing for a step whose session is dropped while its math runs, and answers gone', async () => {
    const { db, shards } = storage({ ms: 0 })
    let release = () => {}
    const gate = new Promise<void>((resolve) => {
      release = resolve
    })
    const stepping = shards.step(request('ses_a', 0, 1), counting(gate))
    shards.drop('ses_a')
    release()
    expect(await stepping).toEqual({ outcome: 'gone' })
    expect(db.select().from(shardSchema.shards).all()).toEqual([])
    expect(await shards.step(request('ses_a', 1, 1), counting())).toEqual({ outcome: 'gone' })
  })

  it('drops every shard of a session and no other', async () => {
    const { shards } = storage({ ms: 0 })
    await shards.step(request('ses_a', 0, 1), counting())
    await shards.step(request('ses_b', 0, 1), counting())
    shards.drop('ses_a')
    expect(shards.steps('ses_a')).toEqual(new Map())
    expect(shards.steps('ses_b')).toEqual(new Map([[0, 1]]))
  })

  it('forgets a dropped session after droppedKeepMs, when it drops another', () => {
    const clock = { ms: 1_000_000 }
    const { db, shards } = storage(clock)
    shards.drop('ses_old')
    clock.ms += droppedKeepMs
    shards.drop('ses_new')
    const marks = () =>
      db
        .select({ id: shardSchema.droppedSessions.sessionId })
        .from(shardSchema.droppedSessions)
        .all()
        .map((r) => r.id)
    expect(marks().sort()).toEqual(['ses_new', 'ses_old'])
    clock.ms += 1
    shards.drop('ses_new')
    expect(marks()).toEqual(['ses_new'])
    expect(
      db
        .select()
        .from(shardSchema.droppedSessions)
        .where(eq(shardSchema.droppedSessions.sessionId, 'ses_new'))
        .get()?.droppedAt,
    ).toBe(clock.ms)
  })
})
