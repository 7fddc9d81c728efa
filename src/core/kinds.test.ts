import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { extendedArchitecture, randomLstmWeights } from '../../test/support/random'
import { type ExtendedArchitecture, type LatchGain, lstmSpec, type MomentsFeatures } from '../contract'
import {
  cellInputsInto,
  gainOf,
  gainPass,
  gainTerm,
  inputLayerInto,
  maskUnseen,
  momentsInto,
  outputOf,
  stepFactorReader,
} from './kinds'

const f32 = Math.fround

/** One coordinate's moments step: features, new slots and seen, from its slots [m…, r, z]. */
function momentsStep(f: MomentsFeatures, g: number, slots: number[]) {
  const k = f.beta1.length
  const x = new Array<number>(k + 1)
  const next = new Array<number>(k + 2)
  const seen = new Uint8Array(1)
  momentsInto(f, [g], slots, k + 2, 0, x, k + 1, next, seen)
  return { x, next, seen: seen[0] }
}

/** A history of gradients through momentsStep from fresh slots: the last step's result. */
function momentsRun(f: MomentsFeatures, grads: number[]) {
  let slots = new Array<number>(f.beta1.length + 2).fill(0)
  let last = momentsStep(f, 0, slots)
  for (const g of grads) {
    last = momentsStep(f, g, slots)
    slots = last.next
  }
  return last
}

const moments: MomentsFeatures = { kind: 'moments', beta1: [0.5, 0.9], beta2: 0.99, eps: 1e-8 }

describe('moments features (docs/optimizer-math.md §3)', () => {
  it('start the averages at the first nonzero gradient: m = g, r = |g|, x = g/(|g|+ε)', () => {
    const g = f32(-0.3)
    const { x, next, seen } = momentsStep(moments, g, [0, 0, 0, 0])
    expect(next).toEqual([g, g, f32(0.3), 1])
    const x0 = f32(g / (f32(0.3) + 1e-8))
    expect(x).toEqual([x0, x0, x0])
    expect(seen).toBe(1)
  })

  it('then follow the doc step by step, in float64 rounded once per stored value', () => {
    const [m1, m2, r, g] = [f32(0.2), f32(-0.1), f32(0.25), f32(0.7)]
    const { x, next } = momentsStep(moments, g, [m1, m2, r, 1])
    const m1New = f32(0.5 * m1 + (1 - 0.5) * g)
    const m2New = f32(0.9 * m2 + (1 - 0.9) * g)
    const rNew = f32(Math.sqrt(0.99 * r * r + (1 - 0.99) * g * g))
    expect(next).toEqual([m1New, m2New, rNew, 1])
    const d = rNew + 1e-8
    expect(x).toEqual([f32(m1New / d), f32(m2New / d), f32(g / d)])
  })

  it('keep decaying after a zero gradient once a nonzero one was seen', () => {
    const [m1, m2, r] = [f32(0.2), f32(-0.1), f32(0.25)]
    const { x, next, seen } = momentsStep(moments, -0, [m1, m2, r, 1])
    expect(next).toEqual([f32(0.5 * m1), f32(0.9 * m2), f32(Math.sqrt(0.99 * r * r)), 1])
    expect(seen).toBe(1)
    expect(Object.is(x[2], 0) || Object.is(x[2], -0)).toBe(true)
  })

  it('leave a coordinate whose gradients were all ±0 exactly at zero, and unseen', () => {
    const { x, next, seen } = momentsRun(moments, [0, -0, 0, -0])
    expect(next.every((v) => v === 0)).toBe(true)
    expect(seen).toBe(0)
    expect(x.every((v) => v === 0)).toBe(true)
  })

  it('read float32 operands: a float64 state gives the same bits as its float32 rounding', () => {
    const slots = [0.2, -0.1, 0.25, 1]
    expect(momentsStep(moments, 0.7, slots)).toEqual(momentsStep(moments, 0.7, slots.map(f32)))
  })

  it('compute in place: next state may be the state', () => {
    const n = 3
    const state = Float32Array.from([0.1, 0.2, 0.3, 1, 0, 0, 0, 0, -1, 2, 3, 1])
    const grads = Float32Array.from([0.5, -2, 0])
    const apart = new Float32Array(state.length)
    const xApart = new Float32Array(n * 3)
    const xInPlace = new Float32Array(n * 3)
    momentsInto(moments, grads, state, 4, 0, xApart, 3, apart, new Uint8Array(n))
    const inPlace = state.slice()
    momentsInto(moments, grads, inPlace, 4, 0, xInPlace, 3, inPlace, new Uint8Array(n))
    expect(inPlace).toEqual(apart)
    expect(xInPlace).toEqual(xApart)
  })

  // Scaling every gradient by 2^k scales m and r by 2^k exactly (float64 products and the float32
  // rounding commute with powers of two in float32's normal range), so m/r is unchanged. Only ε
  // breaks the invariance: exact when ε is negligible against r, within ε/r otherwise. The draws
  // keep m and r normal floats (|g| in [2^-40, 2^41), at most 12 steps, β's 0 or at least 0.1) and
  // β₂ > 0, so a coordinate that saw a gradient keeps r > 0.
  const histories = fc.array(
    fc.oneof(
      fc.constantFrom(0, -0),
      fc.tuple(fc.double({ min: 1, max: 2, noNaN: true }), fc.integer({ min: -40, max: 40 }), fc.boolean()),
    ),
    { minLength: 1, maxLength: 12 },
  )
  const toGrads = (h: (number | [number, number, boolean])[]) =>
    h.map((v) => (typeof v === 'number' ? v : f32((v[2] ? -1 : 1) * v[0] * 2 ** v[1])))
  const beta = fc.double({ min: 0.1, max: 0.999, noNaN: true })
  const betas = fc.record({
    beta1: fc.array(fc.oneof(fc.constant(0), beta), { minLength: 1, maxLength: 8 }),
    beta2: beta,
  })

  it('are invariant to scaling all gradients by a power of two (exactly, with ε negligible)', () => {
    fc.assert(
      fc.property(histories, betas, fc.integer({ min: -40, max: 40 }), (h, b, k) => {
        const f: MomentsFeatures = { kind: 'moments', ...b, eps: Number.MIN_VALUE }
        const grads = toGrads(h)
        const base = momentsRun(f, grads)
        const scaled = momentsRun(
          f,
          grads.map((g) => g * 2 ** k),
        )
        expect(scaled.x).toEqual(base.x)
        expect(scaled.next).toEqual(base.next.map((v, i) => (i === b.beta1.length + 1 ? v : v * 2 ** k)))
        expect(scaled.seen).toBe(base.seen)
      }),
    )
  })

  it('depart from that invariance only through ε: x(2^k·g) = x(g)·(r + ε)/(r + ε·2^-k)', () => {
    fc.assert(
      fc.property(histories, betas, fc.integer({ min: -20, max: 20 }), (h, b, k) => {
        const f: MomentsFeatures = { kind: 'moments', ...b, eps: 1e-8 }
        const grads = toGrads(h)
        const base = momentsRun(f, grads)
        const scaled = momentsRun(
          f,
          grads.map((g) => g * 2 ** k),
        )
        const r = base.next[b.beta1.length]
        const factor = (r + f.eps) / (r + f.eps * 2 ** -k)
        base.x.forEach((x, j) => {
          // Each side is rounded to float32 once: 2^-23 relative each, and the factor in float64.
          expect(Math.abs(scaled.x[j] - x * factor)).toBeLessThanOrEqual(2 ** -22 * Math.abs(x * factor))
        })
      }),
    )
  })
})

describe('the ELU input layer (docs/optimizer-math.md §4)', () => {
  it('is e = ELU(W·x + b): the identity above 0, expm1 below, exact near 0', () => {
    const layer = { weight: Float32Array.from([1, 0, 0, 1, 1, -1]), bias: Float32Array.from([0, 0, 0]) }
    const out = new Float64Array(6)
    inputLayerInto(layer, [2, -1e-10, 0.5, -3], 2, out, 3, 2)
    expect(Array.from(out)).toEqual([2, Math.expm1(-1e-10), 2 + 1e-10, 0.5, Math.expm1(-3), 3.5])
    expect(out[1]).not.toBe(Math.exp(-1e-10) - 1)
  })
})

describe('cellInputsInto', () => {
  it('feeds the features through the input layer, and writes the slots and the seen mask', () => {
    const weights = randomLstmWeights(extendedArchitecture, 9)
    const spec = lstmSpec(extendedArchitecture)
    const grads = Float32Array.from([0.5, 0, -3])
    const state = new Float32Array(3 * spec.stateSize)
    const next = new Float32Array(3 * spec.stateSize)
    const out = new Float64Array(3 * spec.inputSize)
    const seen = cellInputsInto(weights, spec, grads, state, next, out, spec.inputSize)
    expect(Array.from(seen ?? [])).toEqual([1, 0, 1])
    const x = new Float64Array(3 * spec.featureSize)
    momentsInto(
      extendedArchitecture.features,
      grads,
      state,
      spec.stateSize,
      32,
      x,
      spec.featureSize,
      new Float32Array(state.length),
      new Uint8Array(3),
    )
    const e = new Float64Array(3 * spec.inputSize)
    inputLayerInto(weights.input!, x, spec.featureSize, e, spec.inputSize, 3)
    expect(out).toEqual(e)
    expect(Array.from(next.subarray(32, 37))).toEqual([0.5, 0.5, 0.5, 0.5, 1])
  })
})

describe('output transforms and the zero-gradient rule (docs/optimizer-math.md §6)', () => {
  it('scale the head linearly or through tanh', () => {
    expect(outputOf({ kind: 'linear', scale: 0.5 }, 3, 7)).toBe(1.5)
    expect(outputOf({ kind: 'tanh', scale: 0.1 }, 3, 7)).toBe(0.1 * Math.tanh(3))
    expect(Math.abs(outputOf({ kind: 'tanh', scale: -0.1 }, 1e30, 7))).toBeLessThanOrEqual(0.1)
  })

  it("tanh-rms: multiply scale·tanh(y) by r'^power, so the step grows with the gradient's scale", () => {
    const output = { kind: 'tanh-rms', scale: 0.5, power: 0.3 } as const
    expect(outputOf(output, 2, 4)).toBeCloseTo(0.5 * Math.tanh(2) * 4 ** 0.3, 15)
    expect(outputOf(output, 2, 400) / outputOf(output, 2, 4)).toBeCloseTo(100 ** 0.3, 12)
    expect(Object.is(outputOf(output, -3, 0), -0)).toBe(true) // r' = 0: no step
    expect(Number.isFinite(outputOf(output, 1e30, 3.4028234663852886e38))).toBe(true)
  })

  it('make every unseen coordinate exactly +0 and leave the others', () => {
    const updates = Float32Array.from([-0.5, -0, 0.25, -1e-30])
    maskUnseen(updates, Uint8Array.from([1, 0, 1, 0]))
    expect(Object.is(updates[1], 0) && Object.is(updates[3], 0)).toBe(true)
    expect([updates[0], updates[2]]).toEqual([-0.5, 0.25])
    const untouched = Float32Array.from([-0])
    maskUnseen(untouched, undefined)
    expect(Object.is(untouched[0], -0)).toBe(true)
  })
})

// `tanh-rms`'s gain (docs/optimizer-math.md §6): one multiplier per call, restated here from the
// document (steps 1 to 6) on a small state, and its GainPass checked against that.
const latch: LatchGain = { kind: 'latch', after: 3, center: 0.05, strength: 6, cap: 0.5 }

/** L = 1, H = 1, `moments` K = 1 (slots [m, r, z] at 2), no input layer, a gain (slots at 5). */
function gainArchitecture(gain: LatchGain = latch, decay = false): ExtendedArchitecture {
  return {
    kind: 'lstm-cw',
    layers: 1,
    hidden: 1,
    features: { kind: 'moments', beta1: [0.5], beta2: 0.9, eps: 1e-8 },
    output: {
      kind: 'tanh-rms',
      scale: 0.5,
      power: 0.5,
      gain,
      ...(decay ? { decay: { after: 2, power: 1 } } : {}),
    },
  }
}

/** A state [n, 9] of rows [h, c, m, r, z, c_lo, c_hi, p, a]. */
function gainState(rows: number[][]): Float32Array {
  return Float32Array.from(rows.flat())
}

describe("tanh-rms's gain (docs/optimizer-math.md §6)", () => {
  it('lays out the count, then [p, a], after the moments slots, with or without a decay', () => {
    for (const decay of [false, true]) {
      const spec = lstmSpec(gainArchitecture(latch, decay))
      expect(spec.stateSize).toBe(9)
      expect(spec.state.output).toEqual({ offset: 5, size: 4 })
    }
  })

  it("takes x = clamp(g·p / (r'·r'), −1, 1) where r' > 0, else 0", () => {
    expect(gainTerm(f32(0.3), f32(0.2), f32(0.5))).toBe((f32(0.3) * f32(0.2)) / (f32(0.5) * f32(0.5)))
    expect(gainTerm(-0.3, 0.2, 0.5)).toBe((-0.3 * 0.2) / 0.25)
    expect(gainTerm(3, 2, 1)).toBe(1)
    expect(gainTerm(-3, 2, 1)).toBe(-1)
    expect(gainTerm(3, 2, 0)).toBe(0)
    expect(gainTerm(0, 2, 0)).toBe(0)
    // Tiny r': g·p and r'·r' are exact in float64, the quotient finite, then clamped.
    const least = f32(1e-45) // the least float32, 2^-149
    expect(gainTerm(least, least, least)).toBe(1)
    expect(gainTerm(least, -least, 2 * least)).toBe(-0.25)
    expect(gainTerm(f32(3.4e38), f32(-3.4e38), least)).toBe(-1)
  })

  it('multiplies by exp(clamp(A·(a/(T − 1) − C), −κ, κ)) from step T on, from the float32 a', () => {
    expect(gainOf(latch, 0, 5)).toBe(1)
    expect(gainOf(latch, 2, 5)).toBe(1)
    expect(gainOf(latch, 3, 0.2)).toBe(Math.exp(6 * (f32(0.2) / 2 - 0.05)))
    expect(gainOf(latch, 65535, -0.02)).toBe(Math.exp(6 * (f32(-0.02) / 2 - 0.05)))
    expect(gainOf(latch, 3, 2)).toBe(Math.exp(0.5))
    expect(gainOf(latch, 3, -2)).toBe(Math.exp(-0.5))
    expect(gainOf({ ...latch, strength: 0 }, 3, 1e30)).toBe(1)
  })

  // Rows [h, c, m, r, z, c_lo, c_hi, p, a]; steps 1–6 by hand for four coordinates.
  const rows = [
    [0.1, 0.2, 0.3, 0.4, 1, 1, 0, 0.25, 0], // t' = 2: a' = f32(0 + X), not latched yet (T = 3)
    [0.1, 0.2, -0.3, 0.5, 1, 2, 0, -0.5, 0.125], // t' = 3: a' = f32(a + X) and latched
    [0.1, 0.2, 0.3, 0.4, 1, 7, 0, 1.5, 0.75], // t' = 8: a' = a, latched on it
    [0.1, 0.2, 0, 0, 0, 4, 1, 9, -0.5], // unseen (z = 0, g = ±0): t' = 0, x = 0, a' = a, k = 1
  ]
  const grads = Float32Array.from([0.5, -0.75, 2, -0])

  /** §6 restated on `rows`: X, a', k and the new slots [c_lo, c_hi, p, a]. */
  function restated(updatesBefore: number[]) {
    const beta2 = 0.9
    const r = rows.map((row, i) =>
      row[4] > 0 ? f32(Math.sqrt(beta2 * row[3] ** 2 + 0.1 * grads[i] ** 2)) : 0,
    )
    const t = rows.map((row, i) => (row[4] > 0 || grads[i] !== 0 ? 256 * row[6] + row[5] + 1 : 0))
    const x = rows.map((row, i) =>
      r[i] > 0 ? Math.min(1, Math.max(-1, (grads[i] * row[7]) / (r[i] * r[i]))) : 0,
    )
    const mean = (x[0] + x[1] + x[2] + x[3]) / 4
    const a = rows.map((row, i) => (t[i] >= 2 && t[i] <= 3 ? f32(row[8] + mean) : row[8]))
    const k = a.map((ai, i) => (t[i] >= 3 ? Math.exp(Math.min(0.5, Math.max(-0.5, 6 * (ai / 2 - 0.05)))) : 1))
    return { mean, t, a, k, updates: updatesBefore.map((u, i) => f32(u * k[i])) }
  }

  it('pools x over the call from the old state, then sets a′, k and [p′, a′] by the window rules', () => {
    const spec = lstmSpec(gainArchitecture())
    const gain = gainPass(spec)!
    const state = gainState(rows)
    const pool = gain.pool(grads, state)
    const want = restated([0.25, -0.5, 0.125, 0])
    expect(pool.count).toBe(4)
    expect(pool.sum / pool.count).toBe(want.mean)
    expect(want.mean).not.toBe(0)
    // The count is the features' and decay's (cellInputsInto); here written as it would be.
    const next = state.slice()
    want.t.forEach((t, i) => {
      next[i * 9 + 5] = t % 256
      next[i * 9 + 6] = Math.floor(t / 256)
    })
    const updates = Float32Array.from([0.25, -0.5, 0.125, 0])
    expect(gain.apply(pool, grads, state, next, updates)).toBe(true)
    expect(Array.from(updates)).toEqual(want.updates)
    expect(want.k.slice(0, 3).map((k) => k !== 1)).toEqual([false, true, true])
    for (let i = 0; i < 4; i++) {
      expect(Object.is(next[i * 9 + 7], grads[i]), `p' of ${i}`).toBe(true) // −0 stays −0
      expect(next[i * 9 + 8], `a' of ${i}`).toBe(want.a[i])
    }
    expect(next[3 * 9 + 8]).toBe(-0.5) // unseen: a kept
    // The new state's a' gives the multiplier the update got (stepFactorReader's gain).
    const factorAt = stepFactorReader(spec)
    for (let i = 0; i < 3; i++) {
      const r = next[i * 9 + 3]
      expect(factorAt(next, i * 9) / f32(r) ** 0.5).toBeCloseTo(want.k[i], 14)
    }
  })

  it('runs in place (next = state) and on float64 arrays with the same bits', () => {
    const gain = gainPass(lstmSpec(gainArchitecture()))!
    const state = gainState(rows)
    const counted = state.slice()
    for (let i = 0; i < 4; i++) counted[i * 9 + 5] += i === 3 ? -4 : 1 // t' as the count pass writes it
    counted[3 * 9 + 6] = 0
    const apart = counted.slice()
    const updatesApart = Float32Array.from([0.25, -0.5, 0.125, 0])
    gain.apply(gain.pool(grads, state), grads, state, apart, updatesApart)
    // In place: the pool is taken before anything is written, then the pass reads a before it writes.
    const pool = gain.pool(grads, state)
    const inPlace = state.slice()
    inPlace.set(counted)
    const updatesInPlace = Float32Array.from([0.25, -0.5, 0.125, 0])
    // The old slots [p, a] are still in the state when the pass runs (nothing else writes them).
    gain.apply(pool, grads, inPlace, inPlace, updatesInPlace)
    expect(Array.from(inPlace)).toEqual(Array.from(apart))
    expect(Array.from(updatesInPlace)).toEqual(Array.from(updatesApart))
    const wide = Float64Array.from(counted)
    const updates64 = Float64Array.from([0.25, -0.5, 0.125, 0])
    gain.apply(gain.pool(grads, Float64Array.from(state)), grads, Float64Array.from(state), wide, updates64)
    expect(Array.from(Float32Array.from(wide))).toEqual(Array.from(apart))
    // float64 updates keep the product unrounded: within one float32 rounding of the float32 ones.
    for (const [i, u] of updates64.entries()) {
      expect(Math.abs(u - updatesApart[i])).toBeLessThanOrEqual(2 ** -24 * Math.abs(u))
    }
  })

  it('adds a call split into parts to one pool with the bits of one pass, for any split', () => {
    const gain = gainPass(lstmSpec(gainArchitecture()))!
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: -10, max: 10, noNaN: true }), { minLength: 1, maxLength: 60 }),
        fc.array(fc.integer({ min: 0, max: 60 }), { maxLength: 5 }),
        (values, cuts) => {
          const n = values.length
          const g = Float32Array.from(values)
          const state = new Float32Array(n * 9)
          for (let i = 0; i < n; i++) {
            state.set(
              [0, 0, 0, Math.abs(values[(i + 1) % n]), i % 3 === 0 ? 0 : 1, 3, 0, values[(i + 7) % n], 0],
              i * 9,
            )
          }
          const whole = gain.pool(g, state)
          const bounds = [0, ...cuts.map((c) => Math.min(c, n)).sort((x, y) => x - y), n]
          const parts = { sum: 0, count: 0 }
          for (let k = 0; k + 1 < bounds.length; k++) {
            gain.pool(
              g.subarray(bounds[k], bounds[k + 1]),
              state.subarray(bounds[k] * 9, bounds[k + 1] * 9),
              parts,
            )
          }
          expect(parts).toEqual(whole)
        },
      ),
    )
  })

  it('keeps the step count without a decay: cellInputsInto writes t′ for a gain alone', () => {
    const a = gainArchitecture()
    const spec = lstmSpec(a)
    const weights = randomLstmWeights(a, 5)
    const state = gainState(rows)
    const next = new Float32Array(state.length)
    cellInputsInto(weights, spec, grads, state, next, new Float64Array(4), 1)
    const counts = [0, 1, 2, 3].map((i) => 256 * next[i * 9 + 6] + next[i * 9 + 5])
    expect(counts).toEqual([2, 3, 8, 0])
  })
})
