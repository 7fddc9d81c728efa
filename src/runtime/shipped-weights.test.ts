import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { seedStatements } from '../../scripts/seed-d1'
import { weightFile } from '../../test/support/server'
import { seedVersions } from '../server/bootstrap'
import type { Db } from '../server/deps'
import { filesByVersion } from '../server/registry/files'
import { resolveReference } from '../server/registry/resolve'
import { createNodeDeps } from './node'
import { readShippedVersions } from './shipped-weights'

const now = new Date('2026-01-01T00:00:00Z')
let weightsDir: string

// A weights folder shipping demo@1.0.0 and demo@1.1.0 (and, with `aliases`, demo/aliases.json).
function ship(aliases?: string): void {
  for (const [version, seed] of [
    ['1.0.0', 1],
    ['1.1.0', 2],
  ] as const) {
    const dir = path.join(weightsDir, 'demo', version)
    mkdirSync(dir, { recursive: true })
    writeFileSync(path.join(dir, 'model.safetensors'), weightFile(seed))
  }
  if (aliases !== undefined) writeFileSync(path.join(weightsDir, 'demo', 'aliases.json'), aliases)
}

async function versionOf(db: Db, reference: string): Promise<string | undefined> {
  const target = await resolveReference(db, reference)
  return target.kind === 'learned' ? target.version : undefined
}

beforeEach(() => {
  weightsDir = mkdtempSync(path.join(os.tmpdir(), 'l2o-weights-'))
})
afterEach(() => rmSync(weightsDir, { recursive: true, force: true }))

describe('readShippedVersions', () => {
  it('attaches the aliases of aliases.json to the versions they name', async () => {
    ship('{ "stable": "1.1.0", "paper": "1.0.0" }')
    const shipped = await readShippedVersions(weightsDir)
    expect(shipped.map((v) => [v.version, v.aliases])).toEqual([
      ['1.0.0', ['paper']],
      ['1.1.0', ['stable']],
    ])
  })

  it("reads each version's plots and analyses, but not its card or golden vectors", async () => {
    ship()
    const dir = path.join(weightsDir, 'demo', '1.1.0')
    writeFileSync(path.join(dir, 'loss.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))
    writeFileSync(path.join(dir, 'analysis.json'), '{"fits":{}}')
    writeFileSync(path.join(dir, 'card.json'), '{"plots":{"loss":"loss.png"}}')
    writeFileSync(path.join(dir, 'golden.safetensors'), 'x')
    const shipped = await readShippedVersions(weightsDir)
    expect(shipped.map((v) => v.files?.map((f) => f.name))).toEqual([[], ['analysis.json', 'loss.png']])
  })

  it('gives the shipped plots to versions a database registered before it kept files', async () => {
    ship()
    const { db, close } = createNodeDeps({ dataDir: ':memory:' })
    try {
      await seedVersions(db, await readShippedVersions(weightsDir), now)
      writeFileSync(
        path.join(weightsDir, 'demo', '1.0.0', 'loss.png'),
        Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      )
      const results = await seedVersions(db, await readShippedVersions(weightsDir), now)
      expect(results.map((r) => r.outcome)).toEqual(['present', 'present'])
      expect((await filesByVersion(db, 'demo')).get('1.0.0')?.map((f) => f.name)).toEqual(['loss.png'])
    } finally {
      close()
    }
  })

  it('puts stable on the version aliases.json names when a fresh database is seeded', async () => {
    ship('{ "stable": "1.1.0" }')
    const { db, close } = createNodeDeps({ dataDir: ':memory:' })
    try {
      await seedVersions(db, await readShippedVersions(weightsDir), now)
      expect(await versionOf(db, 'demo@stable')).toBe('1.1.0')
      expect(await versionOf(db, 'demo')).toBe('1.1.0')
    } finally {
      close()
    }
  })

  it('leaves stable on the first version without aliases.json', async () => {
    ship()
    const shipped = await readShippedVersions(weightsDir)
    expect(shipped.map((v) => v.aliases)).toEqual([undefined, undefined])
    const { db, close } = createNodeDeps({ dataDir: ':memory:' })
    try {
      await seedVersions(db, shipped, now)
      expect(await versionOf(db, 'demo@stable')).toBe('1.0.0')
      expect(await versionOf(db, 'demo@latest')).toBe('1.1.0')
    } finally {
      close()
    }
  })

  it('feeds the D1 seed: its SQL puts stable on the version aliases.json names', async () => {
    ship('{ "stable": "1.1.0" }')
    const statements = await seedStatements(await readShippedVersions(weightsDir), [])
    const { db, sqlite, close } = createNodeDeps({ dataDir: ':memory:' })
    try {
      for (const statement of statements) sqlite.exec(statement)
      expect(await versionOf(db, 'demo@stable')).toBe('1.1.0')
    } finally {
      close()
    }
  })

  it.each([
    ['not JSON', '{ stable: 1.1.0 }', /is not valid JSON/],
    ['a list', '["stable"]', /must map aliases to versions/],
    ['not a version', '{ "stable": "newest" }', /must map aliases to versions/],
    ['an invalid alias', '{ "Stable!": "1.1.0" }', /an alias is lowercase letters/],
    ["'latest'", '{ "latest": "1.0.0" }', /'latest' always names the newest version/],
    [
      'a version that is not shipped',
      '{ "stable": "1.2.0" }',
      /'stable' names 1\.2\.0, which is not shipped/,
    ],
  ])('refuses an aliases.json with %s, naming the file', async (_what, text, message) => {
    ship(text)
    const file = path.join(weightsDir, 'demo', 'aliases.json')
    const reading = readShippedVersions(weightsDir)
    await expect(reading).rejects.toThrow(message)
    await expect(reading).rejects.toThrow(file)
  })
})
