import { describe, expect, it } from 'vitest'
import { type Architecture, inputSize } from '../contract'
import { preprocessInto } from './preprocess'

const logSign = (p: number): Architecture => ({
  kind: 'lstm-cw',
  layers: 1,
  hidden: 1,
  preprocessing: 'log-sign',
  p,
  outputScale: 1,
})

/** The float32 next to x towards +∞ (direction 1) or −∞ (direction −1), for positive x. */
function float32Neighbour(x: number, direction: 1 | -1): number {
  const bits = new Uint32Array(new Float32Array([x]).buffer)
  bits[0] += direction
  return new Float32Array(bits.buffer)[0]
}

function features(architecture: Architecture, grads: number[]): number[][] {
  const width = inputSize(architecture)
  const out = new Float64Array(grads.length * width)
  preprocessInto(architecture, Float32Array.from(grads), out, width)
  return grads.map((_, i) => Array.from(out.subarray(i * width, (i + 1) * width)))
}

describe('log-sign preprocessing', () => {
  for (const p of [10, 5]) {
    const a = logSign(p)
    const threshold = Math.exp(-p)
    // float32 gradients straddling exp(-p): the largest one below it and the smallest one at or above it.
    const nearest = Math.fround(threshold)
    const above = nearest >= threshold ? nearest : float32Neighbour(nearest, 1)
    const below = nearest < threshold ? nearest : float32Neighbour(nearest, -1)

    it(`maps 0 and ±1e-30 to (-1, e^p·g) with p = ${p}`, () => {
      const [zero, tiny, minusTiny] = features(a, [0, 1e-30, -1e-30])
      expect(zero).toEqual([-1, 0])
      expect(tiny[0]).toBe(-1)
      expect(tiny[1]).toBeCloseTo(Math.exp(p) * Math.fround(1e-30), 40)
      expect(minusTiny[1]).toBe(-tiny[1])
    })

    it(`switches branch exactly at exp(-p) with p = ${p}, continuously`, () => {
      expect(below).toBeLessThan(threshold)
      expect(above).toBeGreaterThanOrEqual(threshold)
      const [b, aPlus, bMinus, aMinus] = features(a, [below, above, -below, -above])
      expect(b).toEqual([-1, Math.exp(p) * below])
      expect(aPlus).toEqual([Math.log(above) / p, 1])
      expect(bMinus).toEqual([-1, -Math.exp(p) * below])
      expect(aMinus).toEqual([Math.log(above) / p, -1])
      // Both sides of the threshold land near (-1, ±1): the features are continuous there.
      for (const f of [b, aPlus]) {
        expect(f[0]).toBeCloseTo(-1, 5)
        expect(f[1]).toBeCloseTo(1, 5)
      }
    })

    it(`keeps ±1e30 finite with p = ${p}`, () => {
      const [big, minusBig] = features(a, [1e30, -1e30])
      expect(big).toEqual([Math.log(Math.fround(1e30)) / p, 1])
      expect(minusBig).toEqual([Math.log(Math.fround(1e30)) / p, -1])
      expect(big[0]).toBeCloseTo(69.0775527898 / p, 6)
    })
  }
})

describe('no preprocessing', () => {
  it('passes gradients through as the single feature', () => {
    const a: Architecture = {
      kind: 'lstm-cw',
      layers: 1,
      hidden: 1,
      preprocessing: 'none',
      outputScale: 1,
    }
    const grads = [0, 1e-30, -1e-30, 1e30, -1e30, 0.5]
    expect(features(a, grads).map((f) => f[0])).toEqual(Array.from(Float32Array.from(grads)))
  })
})
