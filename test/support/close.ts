import { type Architecture, lstmSpec } from '../../src/contract'
import { stepFactorReader } from '../../src/core/kinds'

/**
 * Agreement of a float32 LSTM path with the float64 oracle: |path − oracle| ≤ RTOL · max(|oracle|,
 * floor). The floor is a tenth of the quantity's natural scale: 1 for h and c (h ∈ (−1, 1), c of
 * order 1), |scale| for the updates; float32 kernels make absolute errors near 1e-7 of that scale
 * even where the exact value is near 0, where a purely relative test would be meaningless.
 */
export const RTOL = 1e-5
export const STATE_FLOOR = 0.1
export const updatesFloor = (a: Architecture) => 0.1 * Math.abs(lstmSpec(a).output.scale)

/**
 * Per-coordinate floors of the updates: updatesFloor, times r'^power for a `tanh-rms` output (its
 * update is scale·tanh(y)·r'^power, so that is its natural scale), r' read from the new state, and
 * times its `decay` factor and its `gain`'s multiplier, from the new state's step count and slot a'.
 */
export function updatesFloors(a: Architecture, nextState: ArrayLike<number>): Float64Array {
  const spec = lstmSpec(a)
  const { stateSize } = spec
  const n = nextState.length / stateSize
  const floors = new Float64Array(n).fill(updatesFloor(a))
  const factorAt = stepFactorReader(spec)
  for (let i = 0; i < n; i++) floors[i] *= factorAt(nextState, i * stateSize)
  return floors
}

const floorAt = (floor: number | ArrayLike<number>, i: number) =>
  typeof floor === 'number' ? floor : floor[i]

/**
 * Index of the first element where |actual − expected| > rtol · max(|expected|, floor), or −1.
 * The floor stands for the quantity's natural scale: float32 kernels make absolute errors of about
 * 1e-7 of that scale even where the exact value is near 0, so pure relative error is meaningless there.
 */
export function firstMismatch(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  rtol: number,
  floor: number | ArrayLike<number>,
): number {
  if (actual.length !== expected.length) return 0
  for (let i = 0; i < expected.length; i++) {
    const bound = rtol * Math.max(Math.abs(expected[i]), floorAt(floor, i))
    if (!(Math.abs(actual[i] - expected[i]) <= bound)) return i
  }
  return -1
}

/** Largest |actual − expected| / max(|expected|, floor): the figure firstMismatch compares with rtol. */
export function maxScaledError(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  floor: number | ArrayLike<number>,
): number {
  let worst = 0
  for (let i = 0; i < expected.length; i++) {
    worst = Math.max(
      worst,
      Math.abs(actual[i] - expected[i]) / Math.max(Math.abs(expected[i]), floorAt(floor, i)),
    )
  }
  return worst
}
