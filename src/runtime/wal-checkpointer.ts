/**
 * SQLite's WAL checkpoints off the event loop. In WAL mode every commit appends to the -wal file and
 * SQLite's automatic checkpoint copies those pages back into the database inside the commit that
 * crosses its threshold: with session shards of ~2 MB that is a synchronous copy of tens of MB on
 * the server's only JavaScript thread (measured: 21 MB of blobs a commit took 57 ms with it, 20 ms
 * without). Here a worker thread, with its own connection to the same file, runs a PASSIVE
 * checkpoint every `intervalMs` instead: it never blocks the server's readers or writers, and the
 * server's own automatic checkpoint stays on at a high threshold as a bound on the -wal file should
 * the worker fall behind or stop.
 */
import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'

/** The server connection's automatic checkpoint with the worker running: 8,192 pages (256 MiB of 32 KiB pages). */
export const fallbackAutocheckpointPages = 8192

export interface WalCheckpointer {
  /** Resolves after the worker has run at least one more checkpoint (for tests). */
  settled(): Promise<void>
  /** Stops the worker and closes its connection; resolves when it has exited (idempotent). */
  stop(): Promise<void>
}

// CommonJS, evaluated in the worker: better-sqlite3 is loaded from the path the server resolved.
const workerSource = `
const { parentPort, workerData } = require('node:worker_threads')
const Database = require(workerData.module)
const db = new Database(workerData.file, { fileMustExist: true })
let waiting = []
const run = () => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)')
  } catch {
    // SQLITE_BUSY or a closing database: the next tick tries again.
  }
  for (const id of waiting) parentPort.postMessage(id)
  waiting = []
}
const timer = setInterval(run, workerData.intervalMs)
parentPort.on('message', (message) => {
  if (message === 'stop') {
    clearInterval(timer)
    db.close()
    parentPort.close()
  } else {
    waiting.push(message)
  }
})
`

/** Starts the checkpoint worker for the WAL database at `file` (which must exist). */
export function startWalCheckpointer(file: string, intervalMs = 25): WalCheckpointer {
  const module = createRequire(import.meta.url).resolve('better-sqlite3')
  const worker = new Worker(workerSource, { eval: true, workerData: { file, module, intervalMs } })
  // It never keeps the process alive by itself, and an error in it only loses its checkpoints:
  // the server's fallback threshold still bounds the -wal file.
  worker.unref()
  worker.on('error', (error) => console.warn(`wal checkpointer stopped: ${error.message}`))
  let nextId = 0
  const pending = new Map<number, () => void>()
  worker.on('message', (id: number) => {
    pending.get(id)?.()
    pending.delete(id)
  })
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()))
  let stopped = false
  return {
    settled: () =>
      new Promise<void>((resolve) => {
        const id = nextId++
        pending.set(id, resolve)
        worker.postMessage(id)
      }),
    stop: () => {
      if (!stopped) worker.postMessage('stop')
      stopped = true
      return exited
    },
  }
}
