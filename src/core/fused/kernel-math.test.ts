import { describe, expect, it } from 'vitest'
import { fusedKernel } from '../../runtime/kernel-node'
import { type KernelMathFunction, kernelMath } from './kernel'

// The fused kernel's approximations of 2^x, expm1, sigmoid, tanh and log against float64 Math, over
// the whole float32 range: every 2039th bit pattern of each sign from the smallest subnormal to the
// largest finite float (about 2 million values per function), exhaustively where a function has
// an edge (tanh's clamp), and at ±0, ±Infinity and the tails.

const bits = new Uint32Array(1)
const float = new Float32Array(bits.buffer)

/** One ulp of float32 at |y| (the spacing of float32 numbers there). */
function ulp(y: number): number {
  float[0] = Math.abs(y)
  const exponent = bits[0] >>> 23
  return exponent === 0 ? 2 ** -149 : 2 ** (exponent - 150)
}

/** Positive float32 numbers from `lo` to `hi`, every `step`th bit pattern. */
function sweep(lo: number, hi: number, step = 2039): Float32Array {
  float[0] = lo
  const from = bits[0]
  float[0] = hi
  const to = bits[0]
  const out = new Float32Array(Math.floor((to - from) / step) + 1)
  for (let i = 0; i < out.length; i++) {
    bits[0] = from + i * step
    out[i] = float[0]
  }
  return out
}

/** xs and their negatives. */
function signed(xs: Float32Array): Float32Array {
  const out = new Float32Array(2 * xs.length)
  out.set(xs)
  for (let i = 0; i < xs.length; i++) out[xs.length + i] = -xs[i]
  return out
}

const smallest = 2 ** -149
const largest = 3.4028234663852886e38

/** The worst of `error(x, y)` over xs, with the x where it is reached. */
function worst(fn: KernelMathFunction, xs: Float32Array, error: (x: number, y: number) => number) {
  const ys = kernelMath(fusedKernel(), fn, xs)
  let value = 0
  let at = Number.NaN
  for (let i = 0; i < xs.length; i++) {
    const e = error(xs[i], ys[i])
    if (!(e <= value)) {
      value = e
      at = xs[i]
    }
  }
  return { value, at }
}

const at = (fn: KernelMathFunction, ...xs: number[]) => [
  ...kernelMath(fusedKernel(), fn, Float32Array.from(xs)),
]

describe('the fused kernel’s approximations over the float32 range', () => {
  it('2^x is within 2.2 ulp on [-125, 118] and clamped (finite, positive) beyond', () => {
    const xs = signed(sweep(smallest, 125)).filter((x) => x >= -125 && x <= 118)
    const { value, at: x } = worst('exp2', xs, (x, y) => Math.abs(y - 2 ** x) / ulp(2 ** x))
    expect(value, `at ${x}`).toBeLessThanOrEqual(2.2)
    expect(at('exp2', 0, -0, 1, -1, 10, -100)).toEqual([1, 1, 2, 0.5, 1024, 2 ** -100])
    expect(at('exp2', Infinity, 1e30, 200)).toEqual(at('exp2', 118, 118, 118))
    expect(at('exp2', -Infinity, -1e30, -200)).toEqual([2 ** -125, 2 ** -125, 2 ** -125])
  })

  it('expm1(x) for x ≤ 0 is within 1 ulp (relative, so tiny x keep their digits) and -1 at -Infinity', () => {
    const xs = signed(sweep(smallest, largest)).filter((x) => x <= 0)
    const { value, at: x } = worst('expm1', xs, (x, y) => Math.abs(y - Math.expm1(x)) / ulp(Math.expm1(x)))
    expect(value, `at ${x}`).toBeLessThanOrEqual(1)
    expect(at('expm1', -Infinity, -largest, -100, 0)).toEqual([-1, -1, -1, 0])
    expect(at('expm1', -1e-30)).toEqual([Math.fround(-1e-30)])
  })

  it('sigmoid is within 3 ulp of sigmoid at an argument within 1 ulp of x, for every finite x', () => {
    // The cell gets t = -x·log2(e) straight from its (pre-scaled) weights, so the kernel's sigmoid
    // is exact up to one rounding of its argument: an error of σ'(x)·|x|·2^-23 at most.
    const sigmoid = (x: number) => 1 / (1 + Math.exp(-x))
    const xs = signed(sweep(smallest, largest)).filter((x) => x >= -81.79)
    const { value, at: x } = worst('sigmoid', xs, (x, y) => {
      const s = sigmoid(x)
      return Math.abs(y - s) / (3 * ulp(s) + s * (1 - s) * Math.abs(x) * 2 ** -23)
    })
    expect(value, `at ${x}`).toBeLessThanOrEqual(1)
  })

  it('sigmoid saturates to exactly 1, and below x = -81.79 (where it is < 3.1e-36) to 3.0e-36: no NaN at ±Infinity', () => {
    const tail = signed(sweep(81.7, largest)).filter((x) => x <= -81.791)
    const { value } = worst('sigmoid', tail, (x, y) => Math.abs(y - 1 / (1 + Math.exp(-x))))
    expect(value).toBeLessThan(3.1e-36)
    expect(at('sigmoid', Infinity, largest, 17, 0, -0)).toEqual([1, 1, 1, 0.5, 0.5])
    expect(at('sigmoid', -Infinity, -largest)).toEqual([3.009265538105056e-36, 3.009265538105056e-36])
  })

  it('tanh is within 6 ulp everywhere, odd, exact at ±0 and never beyond ±1', () => {
    const xs = signed(sweep(smallest, largest))
    const { value, at: x } = worst('tanh', xs, (x, y) => Math.abs(y - Math.tanh(x)) / ulp(Math.tanh(x)))
    expect(value, `at ${x}`).toBeLessThanOrEqual(6)
    // Around the clamp at 8.09, every float32.
    const edge = signed(sweep(7.5, 9, 1))
    expect(worst('tanh', edge, (_, y) => Math.abs(y)).value).toBeLessThanOrEqual(1)
    expect(
      worst('tanh', edge, (x, y) => Math.abs(y - Math.tanh(x)) / ulp(Math.tanh(x))).value,
    ).toBeLessThanOrEqual(6)
    const ys = kernelMath(fusedKernel(), 'tanh', xs)
    let odd = 0
    for (let i = 0; i < xs.length / 2; i++) if (ys[xs.length / 2 + i] === -ys[i]) odd++
    expect(odd).toBe(xs.length / 2)
    expect(at('tanh', 0, -0, Infinity, -Infinity, largest)).toEqual([
      0, -0, 0.9999998807907104, -0.9999998807907104, 0.9999998807907104,
    ])
    expect(Object.is(at('tanh', -0)[0], -0)).toBe(true)
  })

  it('the float64 log behind logRms rounds to what Math.log rounds to, for every positive finite float32', () => {
    const xs = sweep(smallest, largest, 1021)
    const ys = kernelMath(fusedKernel(), 'log64', xs)
    let differ = 0
    for (let i = 0; i < xs.length; i++) if (ys[i] !== Math.fround(Math.log(xs[i]))) differ++
    expect(differ).toBe(0)
    expect(at('log64', 1, 2, smallest)).toEqual([0, Math.fround(Math.LN2), Math.fround(Math.log(smallest))])
  })

  it("x^0.3 (tanh-rms's r'^power) is within 24 ulp for every finite x ≥ 0, exactly 0 at 0, finite at the largest", () => {
    // 2^(0.3·log2 x): the exponent t (|t| ≤ 45) is rounded to float32 once, an error of up to
    // |t|·2^-24·ln2 ≈ 1.9e-6 relative (16 ulp), plus exp2's 2.2 ulp: a relative error far below the
    // 1e-5 the parity test allows.
    const xs = sweep(smallest, largest)
    const { value, at: x } = worst('pow0.3', xs, (x, y) => Math.abs(y - x ** 0.3) / ulp(x ** 0.3))
    expect(value, `at ${x}`).toBeLessThanOrEqual(24)
    expect(at('pow0.3', 0, -0, 1)).toEqual([0, 0, 1])
    expect(at('pow0.3', largest)[0]).toBeCloseTo(largest ** 0.3, -6)
  })

  it('log(x) is within 1 ulp for every positive finite x, subnormals included', () => {
    const xs = sweep(smallest, largest)
    const { value, at: x } = worst('log', xs, (x, y) => Math.abs(y - Math.log(x)) / ulp(Math.log(x)))
    expect(value, `at ${x}`).toBeLessThanOrEqual(1)
    expect(at('log', 1, smallest, largest)).toEqual([
      0,
      Math.fround(Math.log(smallest)),
      Math.fround(Math.log(largest)),
    ])
  })
})
