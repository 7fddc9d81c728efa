import { mkdtempSync, rmSync, statSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createNodeDeps } from './node'
import { fallbackAutocheckpointPages } from './wal-checkpointer'

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

function fileDeps() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'l2o-wal-'))
  dirs.push(dir)
  return { dir, deps: createNodeDeps({ dataDir: dir }) }
}

describe('the WAL checkpointer', () => {
  it('copies committed pages into the database file from its worker, not in the commit', async () => {
    const { dir, deps } = fileDeps()
    const { sqlite, checkpointer } = deps
    expect(checkpointer).toBeDefined()
    expect(sqlite.pragma('wal_autocheckpoint', { simple: true })).toBe(fallbackAutocheckpointPages)
    sqlite.exec('create table scratch (id integer primary key, bytes blob)')
    await checkpointer!.settled()
    const before = statSync(path.join(dir, 'l2o.sqlite')).size
    const insert = sqlite.prepare('insert into scratch (id, bytes) values (?, ?)')
    const blob = Buffer.alloc(4 << 20, 7)
    for (let i = 0; i < 3; i++) insert.run(i, blob)
    // 12 MiB is below the commits' own threshold (256 MiB): only the worker, running alongside the
    // inserts, moves it into the database file.
    await checkpointer!.settled()
    await checkpointer!.settled()
    expect(statSync(path.join(dir, 'l2o.sqlite')).size).toBeGreaterThanOrEqual(before + 3 * blob.length)
    const row = sqlite.prepare('select length(bytes) as n from scratch where id = 2').get() as { n: number }
    expect(row.n).toBe(blob.length)
    deps.close()
    await checkpointer!.stop()
  })

  it('keeps what was committed across a reopen, and runs no worker for an in-memory database', async () => {
    const { dir, deps } = fileDeps()
    deps.sqlite.exec("create table kept (v text); insert into kept values ('yes')")
    deps.close()
    await deps.checkpointer!.stop()
    const again = createNodeDeps({ dataDir: dir })
    expect(again.sqlite.prepare('select v from kept').get()).toEqual({ v: 'yes' })
    again.close()
    await again.checkpointer!.stop()
    const memory = createNodeDeps({ dataDir: ':memory:' })
    expect(memory.checkpointer).toBeUndefined()
    memory.close()
  })
})
