/**
 * The Node runtime's deps: SQLite in a file (better-sqlite3 + drizzle, migrations applied), tfjs on
 * the wasm backend (cpu as a fallback), and the shipped weights/ folder read from disk.
 */

import { mkdirSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import v8 from 'node:v8'
import type { HttpBindings } from '@hono/node-server'
import Database from 'better-sqlite3'
import { drizzle } from 'drizzle-orm/better-sqlite3'
import { migrate } from 'drizzle-orm/better-sqlite3/migrator'
import { z } from 'zod'
import { semverSchema } from '../contract'
import * as schema from '../db/schema'
import { type App, createApp } from '../server/app'
import type { AppDeps } from '../server/deps'
import { isSettableAlias, type PublishInput } from '../server/registry/publish'
import { compareSemver } from '../server/registry/semver'
import { BodyBuffers, openIncoming } from './node-body'
import { exposeGc, memoryReclaimer } from './node-memory'
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
  // Session shards are ~2 MB BLOBs: 32 KiB pages hold one in ~60 overflow pages instead of ~500
  // (bench: a 65,536-coordinate session step ~25% faster). Takes effect when the file is created.
  sqlite.pragma('page_size = 32768')
  sqlite.pragma('journal_mode = WAL')
  sqlite.pragma('foreign_keys = ON')
  // WAL + NORMAL: a commit survives a crash of the process; only a power loss may drop the last steps.
  sqlite.pragma('synchronous = NORMAL')
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

/**
 * Every weights/<name>/<version>/model.safetensors (with card.json when present), oldest version
 * first; a weights/<name>/aliases.json such as {"stable": "1.1.0"} names the version each alias
 * moves to when that version is registered (PublishInput.aliases).
 *
 * @throws Error naming the file when an aliases.json is malformed or names a version not shipped.
 */
export async function readShippedVersions(weightsDir = path.join(root, 'weights')): Promise<PublishInput[]> {
  const inputs: PublishInput[] = []
  const names = await readdir(weightsDir, { withFileTypes: true }).catch(() => [])
  for (const name of names
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort()) {
    const shipped: PublishInput[] = []
    const versions = await readdir(path.join(weightsDir, name), { withFileTypes: true })
    for (const version of versions
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort(compareSemver)) {
      const dir = path.join(weightsDir, name, version)
      const weights = await readFile(path.join(dir, 'model.safetensors')).catch(() => undefined)
      if (weights === undefined) continue
      const card = await readFile(path.join(dir, 'card.json'), 'utf8').catch(() => undefined)
      shipped.push({ name, version, weights: new Uint8Array(weights), card })
    }
    const aliasFile = path.join(weightsDir, name, 'aliases.json')
    for (const [alias, version] of Object.entries(await readShippedAliases(aliasFile))) {
      const input = shipped.find((v) => v.version === version)
      if (input === undefined) {
        const have = shipped.map((v) => v.version).join(', ') || 'none'
        throw new Error(
          `${aliasFile}: alias '${alias}' names ${version}, which is not shipped (shipped: ${have})`,
        )
      }
      input.aliases = [...(input.aliases ?? []), alias]
    }
    inputs.push(...shipped)
  }
  return inputs
}

// weights/<name>/aliases.json: alias → version. `latest` is not set by hand: it follows registration.
const shippedAliasesSchema = z.record(z.string(), semverSchema).superRefine((aliases, ctx) => {
  for (const alias of Object.keys(aliases)) {
    if (!isSettableAlias(alias)) {
      ctx.addIssue({
        code: 'custom',
        path: [alias],
        message:
          alias === 'latest'
            ? "'latest' always names the newest version; it cannot be set here"
            : "an alias is lowercase letters, digits and '-', starting with a letter",
      })
    }
  }
})

/** The aliases a shipped aliases.json names ({} when there is no such file). */
async function readShippedAliases(file: string): Promise<Record<string, string>> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {}
    throw error
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (error) {
    throw new Error(`${file} is not valid JSON (${(error as Error).message})`)
  }
  const parsed = shippedAliasesSchema.safeParse(json)
  if (!parsed.success) {
    throw new Error(
      `${file} must map aliases to versions, e.g. {"stable": "1.1.0"}: ${z.prettifyError(parsed.error)}`,
    )
  }
  return parsed.data
}

/**
 * The app for @hono/node-server: request bodies are read from the socket into one reused buffer
 * that routes can use while it fills (node-body.ts), and the garbage of large steps is collected
 * as it is made (node-memory.ts). Together these keep the server's resident memory near its live
 * data at the per-request limit (issue target: < 256 MB).
 */
export function createNodeApp(deps: AppDeps): App<HttpBindings> {
  const gc = exposeGc()
  const buffers = new BodyBuffers()
  const reclaimMemory = gc === undefined ? undefined : memoryReclaimer(gc)
  return createApp((env: HttpBindings) => {
    const { headers } = env.incoming
    const json = headers['content-type']?.startsWith('application/json') === true
    if (gc !== undefined && json && Number(headers['content-length']) > largeJsonBytes) {
      // Large JSON bodies become many JS numbers that grow V8's heap: compact it once answered.
      // gc() with no options is V8's full collection ({ type: 'major' } leaves garbage behind);
      // only when the heap has grown past its ~28 MB at rest, since it takes tens of milliseconds.
      env.outgoing.once('finish', () => {
        if (v8.getHeapStatistics().used_heap_size > largeHeapBytes) gc()
      })
    }
    return {
      ...deps,
      openBody: (limit: number) =>
        openIncoming(env.incoming, limit, (length) => {
          const lease = buffers.acquire(length)
          // The body is used until the answer is done; then its pages serve the next request.
          env.outgoing.once('close', lease.release)
          return lease
        }),
      reclaimMemory,
    }
  })
}

const largeJsonBytes = 256 * 1024
const largeHeapBytes = 48 * 1024 * 1024
