/** Read-only catalogue calls: list optimizers, describe one, resolve a reference to a digest. */
import {
  headerNames,
  type OptimizerDetail,
  type OptimizerSummary,
  optimizerDetailSchema,
  optimizerListSchema,
  type Resolved,
  resolveResponseSchema,
  routes,
} from '../../contract'
import type { Transport } from '../http'
import { parseBody } from './parse'

/** A resolved reference, plus what the answer's headers said. */
export interface ResolvedOptimizer extends Resolved {
  /** `name@sha256:<hex>`: the reference that names exactly this digest (the pin). */
  pinned: string
}

/** Options of a resolve call. */
export interface ResolveOptions {
  /** Baselines only: hyper-parameters, part of what the digest identifies. */
  hyperparameters?: Record<string, number>
  signal?: AbortSignal
}

/** `/v1/optimizers` and `/v1/resolve`. */
export class OptimizersResource {
  constructor(private readonly transport: Transport) {}

  /** Lists every optimizer with its versions and aliases. */
  async list(signal?: AbortSignal): Promise<OptimizerSummary[]> {
    const { data, response } = await this.transport.json({ method: 'GET', path: routes.optimizers, signal })
    return parseBody(optimizerListSchema, data, response).optimizers
  }

  /** Describes one optimizer: its versions (with digests), aliases and their history. */
  async get(name: string, signal?: AbortSignal): Promise<OptimizerDetail> {
    const { data, response } = await this.transport.json({
      method: 'GET',
      path: routes.optimizer(name),
      signal,
    })
    return parseBody(optimizerDetailSchema, data, response)
  }

  /**
   * Resolves a reference (`name`, `name@1.2.0`, `name@alias`, `name@sha256:<hex>`) to the digest it
   * names now, with the state size and the per-request coordinate limit.
   *
   * @example const { pinned } = await client.optimizers.resolve('l2o-mnist@stable')
   */
  async resolve(reference: string, options: ResolveOptions = {}): Promise<ResolvedOptimizer> {
    const { data, response } = await this.transport.json({
      method: 'GET',
      path: routes.resolve,
      query: {
        ref: reference,
        hyperparameters: options.hyperparameters ? JSON.stringify(options.hyperparameters) : undefined,
      },
      signal: options.signal,
    })
    const resolved = parseBody(resolveResponseSchema, data, response)
    const deprecated = resolved.deprecated || response.headers.has(headerNames.deprecation)
    return { ...resolved, deprecated, pinned: `${resolved.name}@${resolved.digest}` }
  }
}
