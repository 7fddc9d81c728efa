import { getTableConfig, SQLiteTable } from 'drizzle-orm/sqlite-core'
import { describe, expect, it } from 'vitest'
import { createNodeDeps } from '../runtime/node'
import * as schema from './schema'

const tables = (Object.values(schema) as unknown[]).filter((v): v is SQLiteTable => v instanceof SQLiteTable)

describe('schema and migrations', () => {
  it('migrations/ create exactly the tables and columns of schema.ts', () => {
    const { sqlite, close } = createNodeDeps({ dataDir: ':memory:' })
    for (const table of tables) {
      const config = getTableConfig(table)
      const columns = (sqlite.prepare(`pragma table_info("${config.name}")`).all() as { name: string }[]).map(
        (c) => c.name,
      )
      expect(columns.sort(), config.name).toEqual(config.columns.map((c) => c.name).sort())
    }
    const names = (
      sqlite
        .prepare(
          "select name from sqlite_master where type='table' and name not like 'sqlite_%' and name not like '__drizzle%'",
        )
        .all() as { name: string }[]
    ).map((r) => r.name)
    expect(names.sort()).toEqual(tables.map((t) => getTableConfig(t).name).sort())
    close()
  })

  it('reads BLOBs the way each driver returns them (Uint8Array, ArrayBuffer, D1 number[])', () => {
    const column = schema.sessionShards.state
    const bytes = [0, 1, 254, 255]
    const fromDriver = (v: unknown) => column.mapFromDriverValue(v as Uint8Array)
    expect(fromDriver(Uint8Array.from(bytes))).toEqual(Uint8Array.from(bytes))
    expect(fromDriver(Buffer.from(bytes))).toEqual(Uint8Array.from(bytes))
    expect(fromDriver(Uint8Array.from(bytes).buffer)).toEqual(Uint8Array.from(bytes))
    expect(fromDriver(bytes)).toEqual(Uint8Array.from(bytes))
  })

  it('round-trips a 2,000,000-byte BLOB through SQLite', async () => {
    const { db, close } = createNodeDeps({ dataDir: ':memory:' })
    const state = new Uint8Array(2_000_000).map((_, i) => i % 251)
    await db.insert(schema.clients).values({ id: 'c', name: 'c', role: 'client', createdAt: '' })
    await db.insert(schema.sessions).values({
      id: 's',
      clientId: 'c',
      optimizer: 'x',
      digest: 'd',
      numParams: 1,
      stateDtype: 'F32',
      stateSize: 1,
      shardSize: 1,
      createdAt: '',
    })
    await db
      .insert(schema.sessionShards)
      .values({ sessionId: 's', shard: 0, step: 1, state, updates: new Uint8Array(4), updatedAt: '' })
    const row = await db.select().from(schema.sessionShards).get()
    expect(Buffer.compare(row!.state, state)).toBe(0)
    close()
  })
})
