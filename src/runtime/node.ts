/**
 * The Node runtime's deps: SQLite in a file (better-sqlite3 + drizzle, migrations applied) and tfjs
 * on the wasm backend (cpu as a fallback). The shipped weights/ folder is read by shipped-weights.ts.
 */

import { mkdirSync } from 'node:fs'
import path from 'node:path'
import v8 from 'node:v8'
import type { HttpBindings } from '@hono/node-server'
import Database from 'better-sqlite3'
import { drizzle } from 'drizzle-orm/better-sqlite3'
import { migrate } from 'drizzle-orm/better-sqlite3/migrator'
import * as schema from '../db/schema'
import { type App, createApp } from '../server/app'
import type { AppDeps } from '../server/deps'
import { nodeKernel } from './kernel-node'
import { loopPacer } from './loop-pace'
import { BodyBuffers, openIncoming } from './node-body'
import { exposeGc, memoryReclaimer } from './node-memory'
import { BodyBudget, deadlineOf, defaultNodeLimits, type NodeLimits, settleBody } from './node-server'
import { initPreferredTf } from './tf-node'
import { fallbackAutocheckpointPages, startWalCheckpointer, type WalCheckpointer } from './wal-checkpointer'

const root = path.resolve(import.meta.dirname, '../..')

/** Where the Node runtime keeps its files; ':memory:' keeps the database in memory (tests). */
export interface NodeDepsOptions {
  dataDir: string | ':memory:'
  migrationsDir?: string
  maxCoordinatesPerRequest?: number
  /** 'fused' (the default) or 'tfjs': what learned optimizers run on (env L2O_KERNEL). */
  kernel?: string
}

/** Opens (creating if needed) the SQLite database, applies migrations/ and returns the app's deps. */
export function createNodeDeps(
  options: NodeDepsOptions,
): AppDeps & { sqlite: Database.Database; checkpointer?: WalCheckpointer; close: () => void } {
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
  // Checkpoints run in a worker thread (wal-checkpointer.ts), not inside the server's commits.
  const checkpointer = file === ':memory:' ? undefined : startWalCheckpointer(file)
  if (checkpointer !== undefined) sqlite.pragma(`wal_autocheckpoint = ${fallbackAutocheckpointPages}`)
  return {
    db,
    initTf: initPreferredTf,
    runtime: 'node',
    kernel: nodeKernel(options.kernel, (reason) => console.warn(reason)),
    maxCoordinatesPerRequest: options.maxCoordinatesPerRequest,
    sqlite,
    checkpointer,
    close: () => {
      void checkpointer?.stop()
      sqlite.close()
    },
  }
}

/**
 * The app for @hono/node-server: request bodies are read from the socket into one reused buffer
 * that routes can use while it fills (node-body.ts), and the garbage of large steps is collected
 * as it is made (node-memory.ts). Together these keep the server's resident memory near its live
 * data at the per-request limit (issue target: < 256 MB). Under load, `limits` bound it: steps are
 * admitted through the fair compute queue, the bodies in flight share a memory budget, and each
 * body has a deadline. `fetch` is the entry for serve(): it also reads what is left of a refused
 * body (node-server.ts).
 */
export function createNodeApp(
  deps: AppDeps,
  limits: NodeLimits = defaultNodeLimits,
): { app: App<HttpBindings>; fetch: (request: Request, env: HttpBindings) => Promise<Response> } {
  const gc = exposeGc()
  const buffers = new BodyBuffers(limits.bodyBudgetBytes)
  const budget = new BodyBudget(limits.bodyBudgetBytes)
  const reclaimMemory = gc === undefined ? undefined : memoryReclaimer(gc)
  const pace = loopPacer()
  const app = createApp(
    (env: HttpBindings) => {
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
        clientAddress: () => env.incoming.socket.remoteAddress,
        openBody: async (limit: number) => {
          const reserve = (bytes: number) => env.outgoing.once('close', budget.reserve(bytes))
          const reader = await openIncoming(env.incoming, limit, {
            allocate: (length) => {
              const lease = buffers.acquire(length)
              // The body is used until the answer is done; then its pages serve the next request.
              env.outgoing.once('close', lease.release)
              return lease
            },
            reserve,
            deadline: deadlineOf(env.incoming, limits),
          })
          // A body's bytes arrive in the loop's I/O callbacks, many sockets' in one turn: what each
          // request does next (decoding, checks, the registry) is paced like its start.
          const ready = async (n: number) => {
            await reader.ready(n)
            await pace()
          }
          return { ...reader, ready, reserve }
        },
        reclaimMemory,
      }
    },
    {
      admission: { perClient: limits.queuePerClient, total: limits.queueTotal },
      yieldToEventLoop: () => new Promise((resolve) => setImmediate(resolve)),
    },
  )
  return {
    app,
    fetch: async (request, env) => {
      deadlineOf(env.incoming, limits)
      await pace()
      return settleBody(env.incoming, await app.fetch(request, env), limits)
    },
  }
}

const largeJsonBytes = 256 * 1024
const largeHeapBytes = 48 * 1024 * 1024
