/**
 * The Node runtime's deps: SQLite in a file (better-sqlite3 + drizzle, migrations applied), tfjs on
 * the wasm backend (cpu as a fallback), and the shipped weights/ folder read from disk.
 */

import { mkdirSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import type { IncomingMessage } from 'node:http'
import path from 'node:path'
import v8 from 'node:v8'
import type { HttpBindings } from '@hono/node-server'
import Database from 'better-sqlite3'
import { drizzle } from 'drizzle-orm/better-sqlite3'
import { migrate } from 'drizzle-orm/better-sqlite3/migrator'
import * as schema from '../db/schema'
import { type App, createApp } from '../server/app'
import { bodyTooLarge } from '../server/body'
import type { AppDeps, BodyReader } from '../server/deps'
import { ApiError } from '../server/errors'
import type { PublishInput } from '../server/registry/publish'
import { compareSemver } from '../server/registry/semver'
import { allocateBytes } from './large-buffer'
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

/**
 * The app for @hono/node-server: request bodies are read from the socket into one reused buffer
 * that routes can use while it fills, and the garbage of large steps is collected as it is made.
 * Together these keep the server's resident memory near its live data at the per-request limit
 * (issue target: < 256 MB): V8 would otherwise collect big typed arrays only after their total
 * grows by ~64 MB, and a 65,536-coordinate step makes about 100 MB of them.
 */
export function createNodeApp(deps: AppDeps): App<HttpBindings> {
  const gc = exposeGc()
  const buffers = new BodyBuffers()
  const reclaimMemory =
    gc === undefined
      ? undefined
      : () => {
          gc({ type: 'minor', execution: 'sync' })
          // Freed typed arrays are released by a background sweeper: give it a turn.
          return new Promise<void>((resolve) => setImmediate(resolve))
        }
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
          return lease.bytes
        }),
      reclaimMemory,
    }
  })
}

const largeJsonBytes = 256 * 1024
const largeHeapBytes = 48 * 1024 * 1024

/**
 * Buffers for large request bodies, reused from one request to the next: one WebAssembly.Memory
 * (its own mmap'd pages, grown when needed) instead of a fresh 21 MB allocation per step, which
 * would cost page faults, fragment malloc's heap and wait for a full GC to be freed.
 */
export class BodyBuffers {
  private spare: WebAssembly.Memory | undefined

  /** A buffer of `length` bytes (contents undefined) and the function that gives it back. */
  acquire(length: number): { bytes: Uint8Array; release: () => void } {
    if (length < 1 << 20) return { bytes: new Uint8Array(length), release: () => {} }
    const pages = Math.ceil(length / 65_536)
    let memory = this.spare
    this.spare = undefined
    if (memory === undefined) memory = new WebAssembly.Memory({ initial: pages })
    else if (memory.buffer.byteLength < length) memory.grow(pages - memory.buffer.byteLength / 65_536)
    let released = false
    const leased = memory
    return {
      bytes: new Uint8Array(leased.buffer, 0, length),
      release: () => {
        if (released) return
        released = true
        this.spare = leased
      },
    }
  }
}

type Gc = (options?: { type: 'minor' | 'major'; execution: 'sync' }) => void

/**
 * V8's gc(), when node runs with --expose-gc (as `npm start` does); without it the server still
 * works, with more resident memory at the per-request limit. Not switched on with
 * v8.setFlagsFromString at run time: Node documents flag changes after start-up as unpredictable.
 */
function exposeGc(): Gc | undefined {
  const gc: unknown = (globalThis as { gc?: unknown }).gc
  return typeof gc === 'function' ? (gc as Gc) : undefined
}

/**
 * A request body read from the socket into one fresh buffer of its Content-Length (one copy per
 * chunk, no concatenation), usable while it arrives. Refuses more than `limit` bytes: from
 * Content-Length before reading, or while reading a body without one (which is read whole first).
 */
export async function openIncoming(
  incoming: IncomingMessage,
  limit: number,
  allocate: (length: number) => Uint8Array = allocateBytes,
): Promise<BodyReader> {
  const header = incoming.headers['content-length']
  const declared = header === undefined ? Number.NaN : Number(header)
  if (!Number.isSafeInteger(declared) || declared < 0) {
    const bytes = await readUnsized(incoming, limit)
    return { bytes, ready: () => Promise.resolve() }
  }
  if (declared > limit) throw bodyTooLarge(String(declared), limit)
  const bytes = allocate(declared)
  let received = 0
  let failure: Error | undefined
  const waiting: { n: number; resolve: () => void; reject: (e: Error) => void }[] = []
  const settle = () => {
    for (let i = waiting.length - 1; i >= 0; i--) {
      const w = waiting[i]
      if (w.n <= received) w.resolve()
      else if (failure !== undefined) w.reject(failure)
      else continue
      waiting.splice(i, 1)
    }
  }
  const fail = (error: Error) => {
    failure ??= error
    incoming.off('data', onData)
    settle()
  }
  const onData = (chunk: Buffer) => {
    if (received + chunk.length > declared)
      return fail(new ApiError('invalid_request', 'the body is longer than its Content-Length'))
    bytes.set(chunk, received)
    received += chunk.length
    settle()
  }
  incoming.on('data', onData)
  incoming.once('error', () =>
    fail(new ApiError('invalid_request', 'the connection failed before the whole body arrived')),
  )
  incoming.once('end', () => {
    if (received < declared)
      fail(new ApiError('invalid_request', 'the body is shorter than its Content-Length'))
  })
  incoming.once('close', () => {
    if (received < declared)
      fail(new ApiError('invalid_request', 'the connection closed before the whole body arrived'))
  })
  return {
    bytes,
    ready: (n) => {
      const needed = Math.min(n, declared)
      if (needed <= received) return Promise.resolve()
      if (failure !== undefined) return Promise.reject(failure)
      return new Promise<void>((resolve, reject) => waiting.push({ n: needed, resolve, reject }))
    },
  }
}

function readUnsized(incoming: IncomingMessage, limit: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let received = 0
    const onData = (chunk: Buffer) => {
      received += chunk.length
      if (received > limit) {
        incoming.off('data', onData)
        reject(bodyTooLarge(`more than ${limit}`, limit))
        return
      }
      chunks.push(chunk)
    }
    incoming.on('data', onData)
    incoming.once('error', reject)
    incoming.once('end', () => {
      const bytes = allocateBytes(received)
      let at = 0
      for (const chunk of chunks) {
        bytes.set(chunk, at)
        at += chunk.length
      }
      resolve(bytes)
    })
  })
}
