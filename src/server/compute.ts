/**
 * The checks every step shares and the one place optimizer math runs. Everything here runs after
 * the body has been parsed and before anything is written.
 */
import type { Context } from 'hono'
import { headerNames, type StateDtype, stateDtypes } from '../contract'
import { OptimizerInputError, type StepResult } from '../core'
import { bf16ToF32, f16ToF32, type Tensor } from '../weights'
import type { AppEnv } from './env'
import { ApiError } from './errors'
import type { Target } from './registry/resolve'

/** Refuses (422) the first NaN or ±Infinity gradient, naming its index. */
export function assertFinite(grads: Float32Array, what = 'gradient'): void {
  for (let i = 0; i < grads.length; i++) {
    const g = grads[i]
    // g - g is 0 for finite g and NaN for NaN and ±Infinity.
    if (g - g !== 0) {
      throw new ApiError(
        'non_finite_gradient',
        `${what} at coordinate ${i} is ${g}; every gradient must be a finite float32 (clip or skip this step)`,
        { index: i },
      )
    }
  }
}

/** Largest binary step body, in bytes: the paper's model at 65,536 coordinates needs about 21 MB. */
export const maxBinaryStepBytes = 32 * 1024 * 1024

/** Largest JSON body, in bytes (JSON is for small N; binary is the fast path). */
export const maxJsonBodyBytes = 8 * 1024 * 1024

/**
 * Coordinates one request may carry for an optimizer with `stateSize` floats per coordinate: the
 * server's limit, lowered so grads and an F32 state fit one binary body.
 */
export function coordinateLimit(stateSize: number, serverLimit: number): number {
  return Math.max(1, Math.min(serverLimit, Math.floor((maxBinaryStepBytes - 65_536) / (4 + 4 * stateSize))))
}

/** Refuses (413) more coordinates than one request may carry. */
export function assertCoordinates(n: number, max: number): void {
  if (n > max) {
    throw new ApiError(
      'too_many_coordinates',
      `${n} coordinates in one request; the limit is ${max}: split the parameters into shards (or use a session)`,
      { limit: max },
    )
  }
}

/** Parses a state dtype name, or 400. */
export function parseStateDtype(text: string | undefined, fallback: StateDtype): StateDtype {
  if (text === undefined) return fallback
  if ((stateDtypes as readonly string[]).includes(text)) return text as StateDtype
  throw new ApiError('invalid_request', `state dtype '${text}' is not one of ${stateDtypes.join(', ')}`)
}

/** A state tensor's values as float32 (a view for F32; widened for F16 and BF16). */
export function stateToF32(state: Tensor): Float32Array {
  if (state.dtype === 'F32') return state.data
  return state.dtype === 'F16' ? f16ToF32(state.data) : bf16ToF32(state.data)
}

/** Refuses a state whose values are not all finite (a corrupted or foreign state). */
export function assertFiniteState(state: Float32Array, stateSize: number): void {
  for (let i = 0; i < state.length; i++) {
    const v = state[i]
    if (v - v !== 0) {
      const coordinate = Math.floor(i / stateSize)
      throw new ApiError(
        'invalid_request',
        `state value ${i} (coordinate ${coordinate}) is ${v}; send the state the last step returned, or none to start fresh`,
        { index: i },
      )
    }
  }
}

/** Runs one optimizer step for a resolved target; `state` undefined means a fresh state. */
export async function runStep(
  c: Context<AppEnv>,
  target: Target,
  grads: Float32Array,
  state: Float32Array | undefined,
): Promise<StepResult> {
  const deps = c.get('deps')
  let optimizer = target.kind === 'baseline' ? target.optimizer : undefined
  if (optimizer === undefined) {
    await deps.initTf()
    optimizer = await c.get('optimizers').get(deps.db, target.digest)
  }
  try {
    return optimizer.update(grads, state ?? optimizer.init(grads.length))
  } catch (error) {
    // The route checked everything the optimizer checks; this is a second line of defence.
    if (error instanceof OptimizerInputError) throw new ApiError('shape_mismatch', error.message)
    throw error
  }
}

/** Headers every step answer carries: the digest, and Deprecation for a deprecated version. */
export function stepHeaders(target: { digest: string }, deprecatedAt: string | null): Record<string, string> {
  const headers: Record<string, string> = { [headerNames.digest]: target.digest }
  if (deprecatedAt !== null)
    headers[headerNames.deprecation] = `@${Math.floor(Date.parse(deprecatedAt) / 1000)}`
  return headers
}
