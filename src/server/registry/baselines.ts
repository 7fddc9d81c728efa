/**
 * The hand-designed baselines (src/core's `baselines` table) as registry entries: no versions, and a
 * "digest" that is a hash of their name and full hyper-parameters, so a state stays bound to what
 * made it.
 */
import {
  type BaselineName,
  baselineHyperparameters,
  baselineWith,
  type Optimizer,
  OptimizerConfigError,
} from '../../core'
import { ApiError } from '../errors'
import { toHex } from '../ids'

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
  let baseline: ReturnType<typeof baselineWith>
  try {
    baseline = baselineWith(name, (given as Record<string, unknown> | undefined) ?? {})
  } catch (error) {
    if (error instanceof OptimizerConfigError) {
      throw new ApiError('invalid_hyperparameters', error.message, baselineHyperparameters(name))
    }
    throw error
  }
  const hyperparameters = Object.fromEntries(
    Object.entries(baseline.hyperparameters).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  )
  const canonical = JSON.stringify({ hyperparameters, kind: 'baseline', name })
  const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(canonical)))
  return { name, hyperparameters, digest: `sha256:${toHex(hash)}`, optimizer: baseline.optimizer }
}
