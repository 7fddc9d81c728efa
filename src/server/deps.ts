/**
 * What the app needs from its runtime (DESIGN §1, STYLE "Thin adapters"): runtimes build an AppDeps,
 * the app only reads it. Node builds one per process; Workers may build one per request from `env`.
 */
import type { Db } from '../db/db'
import { maxBinaryStepBytes, maxJsonBodyBytes } from './compute'
import { directRateCounter, type RateCounter } from './quotas'
import { sqlSessionStore } from './sessions/sql-store'
import type { SessionStore } from './sessions/store'

export type { Db }

/** A request body that may still be arriving: `bytes` has its full length and fills up in order. */
export interface BodyReader {
  bytes: Uint8Array
  /** Resolves once the first `n` bytes are in; rejects if the body ends early or fails. */
  ready(n: number): Promise<void>
  /**
   * Optional fast finite check of float32 views into `bytes` (Node: wasm SIMD on the body's own
   * memory). Must answer exactly as core's firstNonFinite, which the server uses without it.
   */
  firstNonFinite?: (values: Float32Array) => number
  /**
   * Optional: holds `bytes` more of the runtime's memory budget for bodies until this request is
   * answered (Node: for an answer that cannot be written into the body's own buffer); throws 503
   * overloaded when the budget is spent.
   */
  reserve?: (bytes: number) => void
}

/** The runtimes this app runs on. */
export type RuntimeName = 'node' | 'workers'

/** One structured log line; never carries request bodies, state or key material. */
export interface LogEvent {
  level: 'info' | 'warn' | 'error'
  message: string
  requestId?: string
  [field: string]: unknown
}

/** Everything the app takes from its runtime. Only `db`, `initTf` and `runtime` are required. */
export interface AppDeps {
  db: Db
  /**
   * Selects the tfjs backend (memoised by the runtime; called before any optimizer math) and
   * resolves to its name, e.g. 'wasm'.
   */
  initTf: () => Promise<string>
  runtime: RuntimeName
  /**
   * The fused kernel (src/core/fused/lstm.wasm, compiled by the runtime): learned optimizers run on
   * it. Without it they run on tfjs, the reference path.
   */
  kernel?: WebAssembly.Module
  /** Where sessions live; defaults to the SQL store on `db`. */
  sessions?: SessionStore
  /** Coordinates one step request may carry; defaults to contract's defaultMaxCoordinatesPerRequest. */
  maxCoordinatesPerRequest?: number
  /**
   * Largest binary step body, in bytes (gradients and an F32 state), which also bounds the
   * coordinates a request may carry (compute's coordinateLimit); defaults to maxBinaryStepBytes.
   */
  maxBinaryStepBytes?: number
  /** Largest JSON body of a step, in bytes; defaults to compute's maxJsonBodyBytes. */
  maxJsonBodyBytes?: number
  /**
   * Counts each authenticated request for the requestsPerMinute quota; defaults to writing each one
   * through to `db` (quotas.ts directRateCounter). Workers batch them (batchedRateCounter), so that
   * a session step makes no D1 write.
   */
  rateCounter?: RateCounter
  /** The clock (tests pin it). Defaults to `() => new Date()`. */
  now?: () => Date
  /** Cryptographically random bytes for ids and keys (tests pin it). Defaults to crypto.getRandomValues. */
  randomBytes?: (length: number) => Uint8Array
  /** Where log lines go. Defaults to console.error for errors and nothing otherwise. */
  log?: (event: LogEvent) => void
  /**
   * Optional fast path for this request's body (Node: straight from the socket into one buffer,
   * usable while it still arrives). Must refuse more than `limit` bytes with ApiError
   * payload_too_large, as the default does.
   */
  openBody?: (limit: number) => Promise<BodyReader>
  /**
   * The address a request comes from, for the failed-auth quota (Node: the socket's peer; Workers:
   * CF-Connecting-IP). Requests whose address is unknown share one count.
   */
  clientAddress?: (request: Request) => string | undefined
  /**
   * Optional: called between the optimizer calls of a large step, whose garbage (tens of MB of
   * typed arrays) a runtime may collect at once to bound its memory (Node: a minor GC).
   */
  reclaimMemory?: () => void | Promise<void>
  /**
   * Optional: the console's static files (Node: the built console/dist folder; Workers: the ASSETS
   * binding). Asked for GET and HEAD requests that no route takes; undefined means no such file.
   */
  assets?: (request: Request) => Promise<Response | undefined>
}

/**
 * Builds the deps for a request from the runtime's environment (Workers bindings; whatever
 * @hono/node-server passes on Node). May return the same object every time.
 */
export type MakeDeps<E extends object = object> = (env: E) => AppDeps | Promise<AppDeps>

/** AppDeps with every optional field filled in. */
export interface ResolvedDeps
  extends Required<
    Omit<AppDeps, 'log' | 'openBody' | 'reclaimMemory' | 'clientAddress' | 'assets' | 'kernel'>
  > {
  kernel?: WebAssembly.Module
  log: (event: LogEvent) => void
  clientAddress?: (request: Request) => string | undefined
  openBody?: (limit: number) => Promise<BodyReader>
  reclaimMemory?: () => void | Promise<void>
  assets?: (request: Request) => Promise<Response | undefined>
}

const defaultRandomBytes = (length: number): Uint8Array => crypto.getRandomValues(new Uint8Array(length))

const defaultLog = (event: LogEvent): void => {
  if (event.level === 'error') console.error(JSON.stringify(event))
}

/** Fills AppDeps' defaults. */
export function resolveDeps(deps: AppDeps, defaultMaxCoordinates: number): ResolvedDeps {
  const now = deps.now ?? (() => new Date())
  return {
    db: deps.db,
    initTf: deps.initTf,
    runtime: deps.runtime,
    kernel: deps.kernel,
    sessions: deps.sessions ?? sqlSessionStore(deps.db, now),
    maxCoordinatesPerRequest: deps.maxCoordinatesPerRequest ?? defaultMaxCoordinates,
    maxBinaryStepBytes: deps.maxBinaryStepBytes ?? maxBinaryStepBytes,
    maxJsonBodyBytes: deps.maxJsonBodyBytes ?? maxJsonBodyBytes,
    now,
    randomBytes: deps.randomBytes ?? defaultRandomBytes,
    rateCounter: deps.rateCounter ?? directRateCounter,
    log: deps.log ?? defaultLog,
    clientAddress: deps.clientAddress,
    openBody: deps.openBody,
    reclaimMemory: deps.reclaimMemory,
    assets: deps.assets,
  }
}
