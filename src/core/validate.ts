import { NonFiniteGradientError, StateLengthError } from './errors'
import type { CallPool, Optimizer, StepResult } from './optimizer'

/** Throws NonFiniteGradientError naming the first NaN or ±Infinity gradient. */
export function assertFiniteGradients(grads: Float32Array): void {
  const i = firstNonFinite(grads)
  if (i >= 0) throw new NonFiniteGradientError(i, grads[i])
}

/** Index of the first NaN or ±Infinity, or -1: an all-ones exponent, tested on the bits (fast). */
export function firstNonFinite(values: Float32Array): number {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length)
  for (let i = 0; i < bits.length; i++) {
    if ((bits[i] & 0x7f800000) === 0x7f800000) return i
  }
  return -1
}

/** Throws StateLengthError unless `state` holds exactly numParams · stateSize floats. */
export function assertStateLength(numParams: number, stateSize: number, state: Float32Array): void {
  const expected = numParams * stateSize
  if (state.length !== expected) {
    throw new StateLengthError(
      expected,
      state.length,
      `${numParams} coordinates × ${stateSize} floats of state per coordinate`,
    )
  }
}

/** Throws a RangeError unless `out` has room for numParams updates and numParams · stateSize floats. */
function assertOutput(numParams: number, stateSize: number, out: StepResult): void {
  if (out.updates.length !== numParams || out.state.length !== numParams * stateSize) {
    throw new RangeError(
      `output buffers hold ${out.updates.length} updates and ${out.state.length} state floats; ` +
        `${numParams} coordinates need ${numParams} and ${numParams * stateSize}`,
    )
  }
}

/**
 * Builds an Optimizer from its step function, with the input checks every optimizer shares:
 * finite gradients and a state of numParams · stateSize floats. `step` may assume both.
 * `stepInto`, when given, is the same step writing into caller buffers (`out.state` may be
 * `state`); without it, `updateInto` runs `step` and copies its results.
 */
export function defineOptimizer(
  stateSize: number,
  step: (grads: Float32Array, state: Float32Array, pool?: CallPool) => StepResult,
  extra: Pick<Optimizer, 'dispose'> & {
    /** The step into caller-owned buffers; may return whether it checked its outputs finite (see Optimizer). */
    stepInto?: (
      grads: Float32Array,
      state: Float32Array,
      out: StepResult,
      pool?: CallPool,
    ) => boolean | undefined
    /**
     * For a step that is not coordinatewise: adds the call's terms to a pool (see Optimizer.pool).
     * `step` and `stepInto` then get the caller's pool, or undefined (pool the call itself).
     */
    pool?: (grads: Float32Array, state: Float32Array, into?: CallPool) => CallPool
  } = {},
): Optimizer {
  const { stepInto, pool, ...rest } = extra
  return {
    stateSize,
    init: (numParams) => {
      if (!Number.isSafeInteger(numParams) || numParams < 0) {
        throw new RangeError(`numParams must be a non-negative integer, got ${numParams}`)
      }
      return new Float32Array(numParams * stateSize)
    },
    update: (grads, state, callPool) => {
      assertFiniteGradients(grads)
      assertStateLength(grads.length, stateSize, state)
      return step(grads, state, pool === undefined ? undefined : callPool)
    },
    updateInto: (grads, state, out, callPool) => {
      assertFiniteGradients(grads)
      assertStateLength(grads.length, stateSize, state)
      assertOutput(grads.length, stateSize, out)
      const given = pool === undefined ? undefined : callPool
      if (stepInto !== undefined) return stepInto(grads, state, out, given)
      const result = step(grads, state, given)
      out.updates.set(result.updates)
      out.state.set(result.state)
      return undefined
    },
    ...(pool === undefined
      ? {}
      : {
          pool: (grads: Float32Array, state: Float32Array, into?: CallPool) => {
            assertFiniteGradients(grads)
            assertStateLength(grads.length, stateSize, state)
            return pool(grads, state, into)
          },
        }),
    ...rest,
  }
}
