/**
 * The hand-designed baselines (src/core) as registry entries: no versions, and a "digest" that is a
 * hash of their name and full hyper-parameters, so a state stays bound to what made it.
 */

import type { Optimizer } from '../../core'
import {
  type BaselineName,
  baselineHyperparameters,
  baselineOptimizer,
  OptimizerConfigError,
} from '../../core'
import { ApiError } from '../errors'
import { toHex } from '../ids'

/** Default values of the optional hyper-parameters (torch.optim's, as src/core uses them). */
export const baselineDefaults: Record<BaselineName, Record<string, number>> = {
  sgd: {},
  momentum: {},
  nag: {},
  rmsprop: { alpha: 0.99, eps: 1e-8 },
  adam: { beta1: 0.9, beta2: 0.999, eps: 1e-8 },
}

/** One-line descriptions for listings. */
export const baselineDescriptions: Record<BaselineName, string> = {
  sgd: 'Plain SGD: update = -learningRate * g (torch.optim.SGD).',
  momentum: 'SGD with heavy-ball momentum (torch.optim.SGD, momentum).',
  nag: 'SGD with Nesterov momentum (torch.optim.SGD, nesterov=True).',
  rmsprop: 'RMSprop (torch.optim.RMSprop).',
  adam: 'Adam with bias correction (torch.optim.Adam).',
}

/** Baseline names, in listing order. */
export const baselineNames = Object.keys(baselineHyperparameters) as BaselineName[]

/** True when `name` is a built-in baseline. */
export function isBaseline(name: string): name is BaselineName {
  return Object.hasOwn(baselineHyperparameters, name)
}

/** A baseline with validated hyper-parameters, defaults filled, and its digest. */
export interface BaselineConfig {
  name: BaselineName
  hyperparameters: Record<string, number>
  digest: string
  optimizer: Optimizer
}

/**
 * Validates a baseline's hyper-parameters and computes its digest: "sha256:" + SHA-256 of
 * `{"hyperparameters":{…all, defaults filled, keys sorted},"kind":"baseline","name":…}`.
 *
 * @throws ApiError invalid_hyperparameters with what the baseline accepts.
 */
export async function baselineConfig(name: BaselineName, given: unknown): Promise<BaselineConfig> {
  if (given !== undefined && (typeof given !== 'object' || given === null || Array.isArray(given))) {
    throw new ApiError(
      'invalid_hyperparameters',
      `hyperparameters must be a JSON object, e.g. {"learningRate":0.01}`,
    )
  }
  const hp = { ...baselineDefaults[name], ...((given as Record<string, unknown> | undefined) ?? {}) }
  let optimizer: Optimizer
  try {
    optimizer = baselineOptimizer(name, hp)
  } catch (error) {
    if (error instanceof OptimizerConfigError) {
      const { required, optional } = baselineHyperparameters[name]
      throw new ApiError('invalid_hyperparameters', error.message, { required, optional })
    }
    throw error
  }
  const hyperparameters = Object.fromEntries(
    Object.entries(hp as Record<string, number>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  )
  const canonical = JSON.stringify({ hyperparameters, kind: 'baseline', name })
  const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(canonical)))
  return { name, hyperparameters, digest: `sha256:${toHex(hash)}`, optimizer }
}
