import { describe, expect, it } from 'vitest'
import { seededRandom } from '../../test/support/random'
import { float32Decimal, float32JsonArray } from './float32-decimal'

/** Significant digits of a decimal text. */
const digitsOf = (text: string) =>
  text.replace(/^-/, '').replace(/e.*$/, '').replace('.', '').replace(/^0+/, '').replace(/0+$/, '').length

const readsBack = (text: string, value: number) => Object.is(Math.fround(Number(text)), value)

/**
 * An oracle independent of the method: the text reads back, has at most 9 digits, and no decimal
 * with one digit fewer reads back (the nearest such decimal, and its neighbours, are the only
 * candidates: a wider gap would hold two of them).
 */
function expectShortest(value: number): void {
  const text = float32Decimal(value)
  expect(readsBack(text, value), `${value} as ${text}`).toBe(true)
  const n = digitsOf(text)
  expect(n).toBeLessThanOrEqual(9)
  if (n === 1) return
  const nearest = Number(value.toPrecision(n - 1))
  const exponent = Math.floor(Math.log10(Math.abs(nearest))) - (n - 2)
  for (const k of [-1, 0, 1]) {
    const candidate = Number(`${Math.round(nearest / 10 ** exponent) + k}e${exponent}`)
    expect(readsBack(String(candidate), value), `${value}: ${candidate} is shorter than ${text}`).toBe(false)
  }
}

describe('float32Decimal', () => {
  it('writes the short decimals people expect', () => {
    expect(float32Decimal(Math.fround(0.1))).toBe('0.1')
    expect(float32Decimal(1)).toBe('1')
    expect(float32Decimal(-2.5)).toBe('-2.5')
    expect(float32Decimal(0)).toBe('0')
    expect(float32Decimal(-0)).toBe('-0')
    expect(float32Decimal(16_777_216)).toBe('16777216')
    expect(float32Decimal(Math.fround(3.4028234663852886e38))).toBe('3.4028235e+38')
    expect(float32Decimal(Math.fround(1e-45))).toBe('1e-45')
    expect(float32Decimal(Math.fround(1e-7))).toBe('1e-7')
    expect(float32Decimal(Math.fround(123456.789))).toBe('123456.79')
    expect(() => float32Decimal(Number.NaN)).toThrow(RangeError)
    expect(() => float32Decimal(Number.POSITIVE_INFINITY)).toThrow(RangeError)
  })

  it('is the shortest that reads back, for every power of two and random bit patterns', () => {
    for (let e = -149; e <= 127; e++) {
      expectShortest(Math.fround(2 ** e))
      expectShortest(-Math.fround(2 ** e))
    }
    const random = seededRandom(11)
    const bits = new Uint32Array(1)
    const float = new Float32Array(bits.buffer)
    for (let i = 0; i < 5_000; i++) {
      bits[0] = Math.floor(random() * 2 ** 32)
      if (Number.isFinite(float[0])) expectShortest(float[0])
    }
  })

  it('is the shortest for values the size of gradients, updates and states', () => {
    const random = seededRandom(12)
    for (let i = 0; i < 5_000; i++) {
      expectShortest(Math.fround((random() - 0.5) * 10 ** Math.floor(random() * 12 - 8)))
    }
  })

  it('writes arrays as JSON that parses back to the same float32s', () => {
    const values = Float32Array.from([0.1, -3, 1e-30, 65504, -0])
    const text = float32JsonArray(values)
    expect(text).toBe('[0.1,-3,1e-30,65504,-0]')
    expect(Float32Array.from(JSON.parse(text) as number[])).toEqual(values)
  })
})
