/**
 * The Node runtime's deps: SQLite in a file (better-sqlite3 + drizzle, migrations applied), tfjs on
 * the wasm backend (cpu as a fallback), and the shipped weights/ folder read from disk.
 */

import { mkdirSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import type { IncomingMessage } from 'node:http'
import path from 'node:path'
import v8 from 'node:v8'
import vm from 'node:vm'
import type { HttpBindings } from '@hono/node-server'
import Database from 'better-sqlite3'
import { drizzle } from 'drizzle-orm/better-sqlite3'
import { migrate } from 'drizzle-orm/better-sqlite3/migrator'
import * as schema from '../db/schema'
import { type App, createApp } from '../server/app'
import { bodyTooLarge } from '../server/body'
import type { AppDeps } from '../server/deps'
import { allocateBytes } from '../server/large-buffer'
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

/** Bodies above this many bytes get a full GC once their answer is sent. */
const largeBodyBytes = 4 * 1024 * 1024

/**
 * The app for @hono/node-server: request bodies are read from the socket into one buffer, and the
 * garbage of large steps is collected promptly. V8 collects big typed arrays only when their total
 * grows by ~64 MB, and a 65,536-coordinate step makes about 100 MB of them; collecting right away
 * keeps the server's resident memory near its live data (issue target: < 256 MB at the limit).
 */
export function createNodeApp(deps: AppDeps): App<HttpBindings> {
  const gc = exposeGc()
  const reclaimMemory =
    gc === undefined
      ? undefined
      : () => {
          gc({ type: 'minor', execution: 'sync' })
          // Freed typed arrays are released by a background sweeper: give it a turn.
          return new Promise<void>((resolve) => setImmediate(resolve))
        }
  return createApp((env: HttpBindings) => {
    const large = gc !== undefined && Number(env.incoming.headers['content-length']) > largeBodyBytes
    if (large) env.outgoing.once('finish', () => gc({ type: 'major', execution: 'sync' }))
    const readBody = async (limit: number) => {
      const body = await readIncoming(env.incoming, limit)
      // The socket's chunks (as many bytes as the body) are garbage now.
      if (large) await reclaimMemory?.()
      return body
    }
    return { ...deps, readBody, reclaimMemory }
  })
}

type Gc = (options: { type: 'minor' | 'major'; execution: 'sync' }) => void

// global.gc without restarting node with --expose-gc (npm start runs plain tsx).
function exposeGc(): Gc | undefined {
  try {
    v8.setFlagsFromString('--expose-gc')
    return vm.runInNewContext('gc') as Gc
  } catch {
    return undefined
  }
}

/**
 * Reads a request body into one fresh, 8-aligned buffer (one copy per chunk, no concatenation),
 * refusing more than `limit` bytes: from Content-Length before reading, or while reading.
 */
export function readIncoming(incoming: IncomingMessage, limit: number): Promise<Uint8Array> {
  const header = incoming.headers['content-length']
  const declared = header === undefined ? Number.NaN : Number(header)
  if (Number.isSafeInteger(declared) && declared > limit)
    return Promise.reject(bodyTooLarge(String(declared), limit))
  return new Promise((resolve, reject) => {
    const known = Number.isSafeInteger(declared)
    let buffer = allocateBytes(known ? declared : 0)
    const chunks: Buffer[] = []
    let received = 0
    const fail = (error: unknown) => {
      incoming.off('data', onData)
      reject(error)
    }
    const onData = (chunk: Buffer) => {
      if (received + chunk.length > (known ? declared : limit)) {
        fail(
          known
            ? new Error('request body longer than its Content-Length')
            : bodyTooLarge(`more than ${limit}`, limit),
        )
        return
      }
      if (known) buffer.set(chunk, received)
      else chunks.push(chunk)
      received += chunk.length
    }
    incoming.on('data', onData)
    incoming.once('error', fail)
    incoming.once('end', () => {
      if (known && received !== declared)
        return fail(new Error('request body shorter than its Content-Length'))
      if (!known) {
        buffer = allocateBytes(received)
        let at = 0
        for (const chunk of chunks) {
          buffer.set(chunk, at)
          at += chunk.length
        }
      }
      resolve(buffer)
    })
  })
}
