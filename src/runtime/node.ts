/**
 * The Node runtime's deps: SQLite in a file (better-sqlite3 + drizzle, migrations applied), tfjs on
 * the wasm backend (cpu as a fallback), and the shipped weights/ folder read from disk.
 */

import { mkdirSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import Database from 'better-sqlite3'
import { drizzle } from 'drizzle-orm/better-sqlite3'
import { migrate } from 'drizzle-orm/better-sqlite3/migrator'
import * as schema from '../db/schema'
import type { AppDeps } from '../server/deps'
import type { PublishInput } from '../server/registry/publish'
import { compareSemver } from '../server/registry/semver'
import { initPreferredTf } from './tf-node'

const root = path.resolve(import.meta.dirname, '../..')

/** Where the Node runtime keeps its files; ':memory:' keeps the database in memory (tests). */
export interface NodeDepsOptions {
  dataDir: string | ':memory:'
  migrationsDir?: string
  maxCoordinatesPerRequest?: number
}

/** Opens (creating if needed) the SQLite database, applies migrations/ and returns the app's deps. */
export function createNodeDeps(
  options: NodeDepsOptions,
): AppDeps & { sqlite: Database.Database; close: () => void } {
  let file = ':memory:'
  if (options.dataDir !== ':memory:') {
    mkdirSync(options.dataDir, { recursive: true })
    file = path.join(options.dataDir, 'l2o.sqlite')
  }
  const sqlite = new Database(file)
  sqlite.pragma('journal_mode = WAL')
  sqlite.pragma('foreign_keys = ON')
  const db = drizzle(sqlite, { schema })
  migrate(db, { migrationsFolder: options.migrationsDir ?? path.join(root, 'migrations') })
  return {
    db,
    initTf: initPreferredTf,
    runtime: 'node',
    maxCoordinatesPerRequest: options.maxCoordinatesPerRequest,
    sqlite,
    close: () => sqlite.close(),
  }
}

/** Every weights/<name>/<version>/model.safetensors (with card.json when present), oldest version first. */
export async function readShippedVersions(weightsDir = path.join(root, 'weights')): Promise<PublishInput[]> {
  const inputs: PublishInput[] = []
  const names = await readdir(weightsDir, { withFileTypes: true }).catch(() => [])
  for (const name of names
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort()) {
    const versions = await readdir(path.join(weightsDir, name), { withFileTypes: true })
    for (const version of versions
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort(compareSemver)) {
      const dir = path.join(weightsDir, name, version)
      const weights = await readFile(path.join(dir, 'model.safetensors')).catch(() => undefined)
      if (weights === undefined) continue
      const card = await readFile(path.join(dir, 'card.json'), 'utf8').catch(() => undefined)
      inputs.push({ name, version, weights: new Uint8Array(weights), card })
    }
  }
  return inputs
}
