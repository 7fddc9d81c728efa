import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from './float16'

const fromBits = (bits: number[]): Float32Array => new Float32Array(new Uint32Array(bits).buffer)
const half = (values: number[]): number[] => [...f32ToF16(new Float32Array(values))]
const brain = (values: number[]): number[] => [...f32ToBf16(new Float32Array(values))]
const isF16NaN = (h: number) => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0
const isBf16NaN = (h: number) => (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0

// Reference F16 value of a bit pattern, straight from the IEEE definition, in float64.
function f16Value(h: number): number {
  const sign = h & 0x8000 ? -1 : 1
  const e = (h >> 10) & 0x1f
  const m = h & 0x3ff
  if (e === 0x1f) return m === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN
  return e === 0 ? sign * m * 2 ** -24 : sign * (1 + m / 1024) * 2 ** (e - 15)
}

/**
 * Reference round-to-nearest-even: the positive finite patterns 0..maxFinite are increasing in value,
 * so binary-search the neighbours of |x|. The pattern after maxFinite is +Inf and, for rounding,
 * stands for 2^emax+1 (IEEE 754 §4.3.1), which makes overflow fall out of the same rule.
 */
function referenceRound(x: number, value: (h: number) => number, maxFinite: number, overflowValue: number) {
  const v = (h: number) => (h > maxFinite ? overflowValue : value(h))
  const a = Math.abs(x)
  let lo = 0
  let hi = maxFinite + 1
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1
    if (v(mid) <= a) lo = mid
    else hi = mid
  }
  let h = lo
  if (a > v(lo)) {
    const down = a - v(lo)
    const up = v(lo + 1) - a
    if (up < down || (up === down && ((lo + 1) & 1) === 0)) h = lo + 1
  }
  return (x < 0 || Object.is(x, -0) ? 0x8000 : 0) | h
}

const refF16 = (x: number) => referenceRound(x, f16Value, 0x7bff, 2 ** 16)
const refBf16 = (x: number) => referenceRound(x, (h) => fromBits([h << 16])[0], 0x7f7f, 2 ** 128)

/** `convert` rounds every random float32 bit pattern as `reference` does (NaN to some NaN). */
function expectReferenceRoundingOnRandomBits(
  convert: (xs: Float32Array) => Uint16Array,
  isNaN16: (h: number) => boolean,
  reference: (x: number) => number,
): void {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 1, maxLength: 64 }),
      (bits) => {
        const xs = fromBits(bits)
        const got = convert(xs)
        xs.forEach((x, i) => {
          if (Number.isNaN(x)) expect(isNaN16(got[i])).toBe(true)
          else expect(got[i], `x=${x}`).toBe(reference(x))
        })
      },
    ),
    { numRuns: 300 },
  )
}

describe('F16', () => {
  it('converts edge cases: ±0, subnormals, max, overflow, Inf, NaN', () => {
    expect(half([0, -0])).toEqual([0x0000, 0x8000])
    expect(half([2 ** -24, -(2 ** -24), 2 ** -14 - 2 ** -24, 2 ** -14])).toEqual([
      0x0001, 0x8001, 0x03ff, 0x0400,
    ])
    expect(half([65504, -65504, 65519.99, 65520, 1e9, -1e9])).toEqual([
      0x7bff, 0xfbff, 0x7bff, 0x7c00, 0x7c00, 0xfc00,
    ])
    expect(half([Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY])).toEqual([0x7c00, 0xfc00])
    expect(half([1e-10, -1e-10, 2 ** -149])).toEqual([0x0000, 0x8000, 0x0000])
    const nans = f32ToF16(fromBits([0x7fc00000, 0xffc00000, 0x7f800001, 0x7fffffff]))
    for (const h of nans) expect(isF16NaN(h), h.toString(16)).toBe(true)
    expect(nans[1] & 0x8000).toBe(0x8000)
  })

  it('rounds ties to even, in normals and subnormals', () => {
    expect(half([1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -11 + 2 ** -20])).toEqual([0x3c00, 0x3c02, 0x3c01])
    expect(half([2 ** -25, 3 * 2 ** -25, 5 * 2 ** -25, 2 ** -25 * (1 + 2 ** -10)])).toEqual([0, 2, 2, 1])
    expect(half([2 ** -14 - 2 ** -25])).toEqual([0x0400]) // tie between 0x03ff and 0x0400 → even
    expect(half([65504 + 16])).toEqual([0x7c00]) // tie between max and "2^16" → even, i.e. Inf
  })

  it('widens all 65,536 patterns exactly, and narrowing them back is the identity (NaN stays NaN)', () => {
    const all = new Uint16Array(65536).map((_, i) => i)
    const wide = f16ToF32(all)
    const back = f32ToF16(wide)
    for (let h = 0; h < 65536; h++) {
      if (isF16NaN(h)) {
        expect(Number.isNaN(wide[h])).toBe(true)
        expect(isF16NaN(back[h])).toBe(true)
      } else {
        if (wide[h] !== f16Value(h) || back[h] !== h)
          expect([h, wide[h], back[h]]).toEqual([h, f16Value(h), h])
      }
    }
  })

  it('matches the reference rounding for random float32 bit patterns', () => {
    expectReferenceRoundingOnRandomBits(f32ToF16, isF16NaN, refF16)
  })

  it('matches the reference rounding on exact ties (random patterns whose dropped bits are 1000…0)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 0x7ffff }), { minLength: 1, maxLength: 64 }),
        (highs) => {
          const xs = fromBits(highs.map((hi) => ((hi << 13) | 0x1000) >>> 0))
          const got = f32ToF16(xs)
          xs.forEach((x, i) => {
            if (!Number.isNaN(x)) expect(got[i], `x=${x}`).toBe(refF16(x))
          })
        },
      ),
      { numRuns: 300 },
    )
  })

  it('matches the reference rounding near the F16 range (where the cases are)', () => {
    fc.assert(
      fc.property(fc.float({ min: -70000, max: 70000, noNaN: true }), (x) => {
        expect(f32ToF16(new Float32Array([x]))[0], `x=${x}`).toBe(refF16(Math.fround(x)))
      }),
      { numRuns: 3000 },
    )
    fc.assert(
      fc.property(fc.float({ min: -(2 ** -13), max: 2 ** -13, noNaN: true }), (x) => {
        expect(f32ToF16(new Float32Array([x]))[0], `x=${x}`).toBe(refF16(Math.fround(x)))
      }),
      { numRuns: 3000 },
    )
  })
})

describe('BF16', () => {
  it('converts edge cases: ±0, subnormals, max, overflow, Inf, NaN', () => {
    expect(brain([0, -0, 1, -2])).toEqual([0x0000, 0x8000, 0x3f80, 0xc000])
    expect(brain([2 ** -133, 2 ** -149])).toEqual([0x0001, 0x0000]) // smallest BF16 subnormal; 2^-149 ties to 0
    expect([...f32ToBf16(fromBits([0x7f7f0000, 0x7f7fffff, 0xff7fffff]))]).toEqual([0x7f7f, 0x7f80, 0xff80])
    expect(brain([Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY])).toEqual([0x7f80, 0xff80])
    const nans = f32ToBf16(fromBits([0x7fc00000, 0x7f800001, 0xff800001, 0x7fffffff]))
    for (const h of nans) expect(isBf16NaN(h), h.toString(16)).toBe(true)
    expect(nans[2] & 0x8000).toBe(0x8000)
  })

  it('rounds ties to even', () => {
    expect(brain([1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -20])).toEqual([0x3f80, 0x3f82, 0x3f81])
  })

  it('widens every pattern exactly and narrowing back is the identity', () => {
    const all = new Uint16Array(65536).map((_, i) => i)
    const wide = bf16ToF32(all)
    const back = f32ToBf16(wide)
    for (let h = 0; h < 65536; h++) {
      if (isBf16NaN(h)) expect(isBf16NaN(back[h])).toBe(true)
      else if (back[h] !== h) expect([h, back[h]]).toEqual([h, h])
    }
  })

  it('matches the reference rounding for random float32 bit patterns', () => {
    expectReferenceRoundingOnRandomBits(f32ToBf16, isBf16NaN, refBf16)
  })
  it('matches the reference rounding on exact ties', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 1, maxLength: 64 }), (highs) => {
        const xs = fromBits(highs.map((hi) => ((hi << 16) | 0x8000) >>> 0))
        const got = f32ToBf16(xs)
        xs.forEach((x, i) => {
          if (!Number.isNaN(x)) expect(got[i], `x=${x}`).toBe(refBf16(x))
        })
      }),
      { numRuns: 300 },
    )
  })
})
