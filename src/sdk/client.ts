/** The l2o client: connection settings, the API's resources, and factories for remote optimizers. */
import { headerNames } from '../contract'
import { type FetchLike, Transport } from './http'
import { type LoadOptions, RemoteOptimizer, type RemoteOptimizerOptions } from './remote-optimizer'
import { OptimizersResource, type ResolvedOptimizer } from './resources/optimizers'
import { SessionsResource } from './resources/sessions'
import { type StepRequest, type StepResult, statelessStep } from './resources/steps'
import { type RetryOptions, retryPolicy } from './retry'

/** Client settings; only `baseUrl` is required. */
export interface ClientOptions {
  /** The server's origin, e.g. `http://127.0.0.1:8787`. */
  baseUrl: string
  /** An API key, sent as `Authorization: Bearer <key>`. */
  apiKey?: string
  /** Per-attempt timeout, body included (default 30 s). */
  timeoutMs?: number
  /** A fetch implementation (default: the global fetch). */
  fetch?: FetchLike
  /** Retry policy (default: 4 retries, 250 ms doubling to 8 s, jittered). */
  retry?: RetryOptions
  /** Requests in flight at once for one sharded step (default 4). */
  concurrency?: number
  /** Extra headers on every request. */
  headers?: Record<string, string>
  /** Makes Idempotency-Keys (default: crypto.randomUUID); injectable for tests. */
  idempotencyKey?: () => string
  /**
   * Called when an answer carries a Deprecation header: the pinned version still serves this run,
   * but the next run should move to a newer one. Default: ignored.
   */
  onDeprecation?: (notice: { url: string; deprecation: string }) => void
}

/**
 * A client for one l2o server.
 *
 * @example
 * const l2o = new L2oClient({ baseUrl: 'http://127.0.0.1:8787', apiKey: process.env.L2O_KEY })
 * const opt = await l2o.remoteOptimizer({ optimizer: 'l2o-mnist@1.1.0' })
 */
export class L2oClient {
  /** Catalogue and resolve calls. */
  readonly optimizers: OptimizersResource
  /** Session calls (server-held state). */
  readonly sessions: SessionsResource
  /** Requests in flight at once for one sharded step. */
  readonly concurrency: number
  private readonly transport: Transport

  constructor(options: ClientOptions) {
    if (!options.baseUrl) throw new TypeError('baseUrl is required, e.g. http://127.0.0.1:8787')
    this.transport = new Transport({
      baseUrl: options.baseUrl,
      apiKey: options.apiKey,
      timeoutMs: options.timeoutMs ?? 30_000,
      // Late-bound: browsers refuse a fetch called with another `this`.
      fetch: options.fetch ?? ((input, init) => globalThis.fetch(input, init)),
      retry: retryPolicy(options.retry),
      headers: options.headers,
      idempotencyKey: options.idempotencyKey,
      onResponse: (response, url) => {
        const deprecation = response.headers.get(headerNames.deprecation)
        if (deprecation !== null) options.onDeprecation?.({ url, deprecation })
      },
    })
    this.optimizers = new OptimizersResource(this.transport)
    this.sessions = new SessionsResource(this.transport)
    this.concurrency = Math.max(1, Math.floor(options.concurrency ?? 4))
  }

  /** Resolves a reference to its current digest; shorthand for `optimizers.resolve`. */
  resolve(reference: string, hyperparameters?: Record<string, number>): Promise<ResolvedOptimizer> {
    return this.optimizers.resolve(reference, { hyperparameters })
  }

  /** One stateless step request (no sharding; at most maxCoordinatesPerRequest coordinates). */
  step(request: StepRequest): Promise<StepResult> {
    return statelessStep(this.transport, request)
  }

  /** Starts a run: resolves the reference once and returns an optimizer pinned to that digest. */
  remoteOptimizer(options: RemoteOptimizerOptions): Promise<RemoteOptimizer> {
    return RemoteOptimizer.create(this, options)
  }

  /** Resumes a run from `RemoteOptimizer.save()` bytes. */
  loadOptimizer(checkpoint: Uint8Array, options?: LoadOptions): Promise<RemoteOptimizer> {
    return RemoteOptimizer.load(this, checkpoint, options)
  }
}
