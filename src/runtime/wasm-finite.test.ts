import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { seededRandom } from '../../test/support/random'
import { firstNonFinite } from '../core'
import { finiteScanModuleBytes, wasmFiniteScan } from './wasm-finite'

// Every bit pattern with an all-ones exponent: ±Infinity, quiet and signalling NaNs, negative NaNs.
const nonFiniteBits = [0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000, 0x7f800001, 0x7fffffff, 0xffffffff]
// Finite extremes next to them: ±max, ±smallest subnormal, ±0, ±1.
const finiteBits = [
  0x7f7fffff, 0xff7fffff, 0x00000001, 0x80000001, 0x00000000, 0x80000000, 0x3f800000, 0xbf800000,
]

function setup(pages = 4) {
  const memory = new WebAssembly.Memory({ initial: pages })
  const scan = wasmFiniteScan(memory)
  if (scan === undefined) throw new Error('Node 20 has wasm SIMD; the module should compile')
  return { memory, scan }
}

describe('wasmFiniteScan', () => {
  it('is a small valid module built from its source', () => {
    const bytes = finiteScanModuleBytes()
    expect(WebAssembly.validate(bytes)).toBe(true)
    expect(bytes.length).toBeLessThan(256)
  })

  it('finds nothing in finite values, extremes included, and nothing in no values', () => {
    const { memory, scan } = setup()
    const bits = new Uint32Array(memory.buffer, 0, 1000)
    for (let i = 0; i < bits.length; i++) bits[i] = finiteBits[i % finiteBits.length]
    const values = new Float32Array(memory.buffer, 0, 1000)
    expect(scan(values)).toBe(-1)
    expect(scan(values.subarray(3, 3))).toBe(-1)
  })

  it('agrees with core at every position of every length up to 80, at every alignment', () => {
    const { memory, scan } = setup()
    const bits = new Uint32Array(memory.buffer)
    const next = seededRandom(7)
    for (let offset = 0; offset < 4; offset++) {
      for (let length = 1; length <= 80; length++) {
        for (let at = 0; at < length; at++) {
          for (let i = 0; i < length + 8; i++) bits[offset + i] = finiteBits[Math.floor(next() * 8)]
          bits[offset + at] = nonFiniteBits[(length + at) % nonFiniteBits.length]
          const values = new Float32Array(memory.buffer, offset * 4, length)
          expect(scan(values)).toBe(at)
          expect(firstNonFinite(values)).toBe(at)
        }
      }
    }
  })

  it('agrees with core on random arrays with NaN and ±Infinity anywhere, once or many times', () => {
    const { memory, scan } = setup(16)
    const all = new Float32Array(memory.buffer)
    const bits = new Uint32Array(memory.buffer)
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 64 }), // offset in floats: views at every 16-byte alignment
        fc.integer({ min: 0, max: 40_000 }), // length
        fc.integer({ min: 0, max: 4 }), // how many non-finite values
        fc.integer(), // a seed for the values and their positions (fast-check's own favour the ends)
        (offset, length, count, seed) => {
          const next = seededRandom(seed)
          for (let i = 0; i < offset + length + 16; i++) all[i] = (next() - 0.5) * 10 ** (next() * 60 - 30)
          for (let k = 0; k < count && length > 0; k++) {
            bits[offset + Math.floor(next() * length)] =
              nonFiniteBits[Math.floor(next() * nonFiniteBits.length)]
          }
          const values = new Float32Array(memory.buffer, offset * 4, length)
          expect(scan(values)).toBe(firstNonFinite(values))
        },
      ),
      { numRuns: 300 },
    )
  })

  it('answers at the last value and in the last block', () => {
    const { memory, scan } = setup()
    const length = memory.buffer.byteLength / 4
    const values = new Float32Array(memory.buffer)
    values[length - 1] = Number.NaN
    expect(scan(values)).toBe(length - 1)
    values[length - 16] = Number.NEGATIVE_INFINITY
    expect(scan(values)).toBe(length - 16)
    values[length - 17] = Number.POSITIVE_INFINITY
    expect(scan(values)).toBe(length - 17)
    expect(scan(values.subarray(length - 1))).toBe(0)
  })

  it("uses core's scan for arrays outside its memory, and follows the memory when it grows", () => {
    const { memory, scan } = setup(1)
    expect(scan(Float32Array.from([1, 2, Number.NaN]))).toBe(2)
    const other = new WebAssembly.Memory({ initial: 1 })
    const foreign = new Float32Array(other.buffer, 0, 100)
    foreign[70] = Number.POSITIVE_INFINITY
    expect(scan(foreign)).toBe(70)
    memory.grow(1)
    const values = new Float32Array(memory.buffer, 65_536, 1000)
    values[999] = Number.NaN
    expect(scan(values)).toBe(999)
  })
})
