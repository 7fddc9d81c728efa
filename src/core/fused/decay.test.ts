import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { bits, expectSameBitsForAnySplit } from '../../../test/support/bits'
import { firstMismatch, maxScaledError, RTOL, STATE_FLOOR } from '../../../test/support/close'
import { midRunState, randomGradients, randomLstmWeights, randomUniform } from '../../../test/support/random'
import { type ExtendedArchitecture, lstmSpec, MAX_STEP_COUNT } from '../../contract'
import { fusedKernel } from '../../runtime/kernel-node'
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../../safetensors'
import { lstmPlainOptimizer } from '../lstm-plain'
import { lstmReferenceStep } from '../lstm-reference'
import type { LstmWeights } from '../lstm-weights'
import { kernelInstance } from './kernel'
import { fusedLstmOptimizer, kernelModel } from './lstm-fused'

// `tanh-rms`'s `decay` on the fused kernel (docs/optimizer-math.md §6): the step count t' in two
// base-256 digits [c_lo, c_hi] after the `moments` slots, and the factor min(1, (T/t')^d). Checked
// against the float64 oracle and the plain TypeScript path, and against a float64 re-statement of
// §6 here (the undecayed step times the factor, the count rule digit by digit), so that the test
// stands on the math document rather than on kinds.ts.

/** L = 2, H = 4, `moments` K = 2 with logRms, ELU E = 4, `tanh-rms` with decay {after, power}. */
function decayArchitecture(after: number, power: number): ExtendedArchitecture {
  return {
    kind: 'lstm-cw',
    layers: 2,
    hidden: 4,
    features: { kind: 'moments', beta1: [0.5, 0.9], beta2: 0.99, eps: 1e-8, logRms: 10 },
    inputLayer: { size: 4, activation: 'elu' },
    output: { kind: 'tanh-rms', scale: 0.5, power: 0.3, decay: { after, power } },
  }
}

/** The same architecture and weights without `decay` (its state lacks the two count slots). */
function undecayed(weights: LstmWeights): LstmWeights {
  const a = weights.architecture as ExtendedArchitecture
  if (a.output.kind !== 'tanh-rms') throw new Error('not tanh-rms')
  const { decay: _, ...output } = a.output
  return { ...weights, architecture: { ...a, output } }
}

// §6 step 1: a slot reads as the integer clamp(floor(x), 0, 255) of its float32 value.
const digit = (x: number) => Math.min(Math.max(Math.floor(Math.fround(x)), 0), 255)
/** §6 step 2: t' from the old digits and `seen`. */
const nextCount = (lo: number, hi: number, seen: boolean) =>
  seen ? Math.min(256 * digit(hi) + digit(lo) + 1, MAX_STEP_COUNT) : 0
/** §6 step 4, in float64. */
const factorOf = (after: number, power: number, count: number) =>
  count <= after ? 1 : (after / count) ** power

/** The count t' that a state row's digits hold (both must be integers in [0, 255]). */
function countsOf(a: ExtendedArchitecture, state: ArrayLike<number>): number[] {
  const { stateSize, state: slots } = lstmSpec(a)
  const out: number[] = []
  const isDigit = (x: number) => Number.isInteger(x) && x >= 0 && x <= 255 && !Object.is(x, -0)
  for (let at = slots.output.offset; at < state.length; at += stateSize) {
    const [lo, hi] = [state[at], state[at + 1]]
    out.push(isDigit(lo) && isDigit(hi) ? 256 * hi + lo : Number.NaN)
  }
  return out
}

/** A state [N, S] without its count slots: the undecayed architecture's. */
function withoutCounts(a: ExtendedArchitecture, state: Float32Array): Float32Array {
  const { stateSize, state: slots } = lstmSpec(a)
  const n = state.length / stateSize
  const out = new Float32Array(n * (stateSize - 2))
  for (let i = 0; i < n; i++) {
    out.set(state.subarray(i * stateSize, i * stateSize + slots.output.offset), i * (stateSize - 2))
  }
  return out
}

describe('the fused kernel with tanh-rms decay', () => {
  it('lays out the two count slots after the moments slots, as lstmSpec does', () => {
    const a = decayArchitecture(2, 0.5)
    const opt = fusedLstmOptimizer(randomLstmWeights(a, 1), fusedKernel())
    const spec = lstmSpec(a)
    expect(opt.stateSize).toBe(spec.stateSize)
    expect(spec.state.output).toEqual({ offset: 2 * 2 * 4 + 2 + 2, size: 2 })
  })

  it('matches the float64 oracle, the plain path and §6 over 6 steps with T = 2, late and silent coordinates', () => {
    const a = decayArchitecture(2, 0.5)
    const weights = randomLstmWeights(a, 7, 0.6)
    const spec = lstmSpec(a)
    const { scale, power } = a.output as { scale: number; power: number }
    const rAt = spec.state.features.offset + 2
    const fused = fusedLstmOptimizer(weights, fusedKernel())
    const plain = lstmPlainOptimizer(weights)
    const n = 40
    const silent = new Set([0, 9, 39]) // only ±0: count 0 and an update of +0 throughout
    const late = new Set([3, 17, 20]) // ±0 for the first three steps
    let state = fused.init(n)
    let plainState = plain.init(n)
    let oracleState: ArrayLike<number> = new Float64Array(state.length)
    const counts = new Array<number>(n).fill(0)
    for (let step = 0; step < 6; step++) {
      const grads = randomGradients(n, 50 + step)
      for (let i = 0; i < n; i++) {
        if (silent.has(i) || (late.has(i) && step < 3)) grads[i] = i % 2 === 0 ? 0 : -0
        else if (!late.has(i) && (i * 7 + step) % 11 === 0) grads[i] = 0 // a zero after a nonzero one still counts
      }
      for (let i = 0; i < n; i++)
        if (counts[i] > 0 || grads[i] !== 0) counts[i] = Math.min(counts[i] + 1, 65535)
      const got = fused.update(grads, state)
      const want = lstmReferenceStep(weights, grads, oracleState)
      const byPlain = plain.update(grads, plainState)
      // §6 restated: the undecayed oracle's step times min(1, (T/t')^d).
      const restated = lstmReferenceStep(
        undecayed(weights),
        grads,
        withoutCounts(a, Float32Array.from(oracleState)),
      )
      const floors = counts.map(
        (t, i) =>
          0.1 *
          Math.abs(scale) *
          Math.fround(want.state[i * spec.stateSize + rAt]) ** power *
          factorOf(2, 0.5, t),
      )
      const expected = restated.updates.map((u, i) => u * factorOf(2, 0.5, counts[i]))
      expect(countsOf(a, got.state), `step ${step} counts`).toEqual(counts)
      expect(countsOf(a, want.state), `step ${step} oracle counts`).toEqual(counts)
      expect(countsOf(a, byPlain.state), `step ${step} plain counts`).toEqual(counts)
      for (const [name, reference] of [
        ['oracle', want.updates],
        ['§6', expected],
        ['plain', byPlain.updates],
      ] as const) {
        const u = firstMismatch(got.updates, reference, RTOL, floors)
        expect(
          u,
          `step ${step} vs ${name}: update ${u} is ${got.updates[u]}, want ${reference[u]} (worst ${maxScaledError(got.updates, reference, floors)})`,
        ).toBe(-1)
      }
      const s = firstMismatch(got.state, want.state, RTOL, STATE_FLOOR)
      expect(s, `step ${step} state ${s}: ${got.state[s]} vs ${want.state[s]}`).toBe(-1)
      for (const i of silent) expect(Object.is(got.updates[i], 0), `silent ${i}`).toBe(true)
      for (const i of late) if (step < 3) expect(Object.is(got.updates[i], 0), `late ${i}`).toBe(true)
      state = got.state
      plainState = byPlain.state
      oracleState = want.state
    }
    // The late coordinates counted from their first nonzero gradient (step 3): 3 steps.
    for (const i of late) expect(counts[i]).toBe(3)
  })

  it('matches the float64 oracle on random decay architectures, states and histories', () => {
    const architectures = fc.record({
      layers: fc.integer({ min: 1, max: 2 }),
      hidden: fc.integer({ min: 1, max: 8 }),
      k: fc.integer({ min: 1, max: 4 }),
      logRms: fc.boolean(),
      inputSize: fc.integer({ min: 0, max: 5 }),
      scale: fc.double({ min: 0.01, max: 1, noNaN: true }),
      power: fc.double({ min: 0.05, max: 1, noNaN: true }),
      after: fc.integer({ min: 1, max: 4 }),
      decayPower: fc.double({ min: 0.01, max: 1, noNaN: true }),
    })
    fc.assert(
      fc.property(architectures, fc.integer({ min: 1, max: 1 << 30 }), (r, seed) => {
        const a: ExtendedArchitecture = {
          kind: 'lstm-cw',
          layers: r.layers,
          hidden: r.hidden,
          features: {
            kind: 'moments',
            beta1: [0.5, 0.9, 0.3, 0.8].slice(0, r.k),
            beta2: 0.99,
            eps: 1e-8,
            ...(r.logRms ? { logRms: 10 } : {}),
          },
          ...(r.inputSize > 0 ? { inputLayer: { size: r.inputSize, activation: 'elu' as const } } : {}),
          output: {
            kind: 'tanh-rms',
            scale: r.scale,
            power: r.power,
            decay: { after: r.after, power: r.decayPower },
          },
        }
        const spec = lstmSpec(a)
        const weights = randomLstmWeights(a, seed, 0.5)
        const opt = fusedLstmOptimizer(weights, fusedKernel())
        const n = 21
        // Counts from 0 to a few hundred, some unseen (z = 0, count slots left at junk).
        let state = randomUniform(n * spec.stateSize, seed + 1, 1)
        for (let i = 0; i < n; i++) {
          const row = i * spec.stateSize + spec.state.features.offset
          state[row + r.k] = Math.abs(state[row + r.k])
          state[row + r.k + 1] = i % 4 === 0 ? 0 : 1
          state[row + r.k + 2] = (i * 97) % 256
          state[row + r.k + 3] = i % 3
        }
        let oracle: ArrayLike<number> = Float64Array.from(state)
        for (let step = 0; step < 5; step++) {
          const grads = randomGradients(n, seed + 10 + step)
          for (let i = 0; i < n; i += 5) grads[i] = 0
          const got = opt.update(grads, state)
          const want = lstmReferenceStep(weights, grads, oracle)
          const counts = countsOf(a, want.state)
          const floors = counts.map(
            (t, i) =>
              0.1 *
              r.scale *
              Math.fround(want.state[i * spec.stateSize + spec.state.features.offset + r.k]) ** r.power *
              factorOf(r.after, r.decayPower, t),
          )
          const u = firstMismatch(got.updates, want.updates, RTOL, floors)
          expect(u, `step ${step} update ${u}: ${got.updates[u]} vs ${want.updates[u]}`).toBe(-1)
          expect(firstMismatch(got.state, want.state, RTOL, STATE_FLOOR), `step ${step} state`).toBe(-1)
          expect(countsOf(a, got.state), `step ${step} counts`).toEqual(counts)
          state = got.state
          oracle = want.state
        }
      }),
      { numRuns: 60 },
    )
  })

  it('gives plain tanh-rms bit for bit for the first T steps, then that step times the factor', () => {
    const a = decayArchitecture(3, 0.7)
    const weights = randomLstmWeights(a, 8, 0.6)
    const decayed = fusedLstmOptimizer(weights, fusedKernel())
    const plainRms = fusedLstmOptimizer(undecayed(weights), fusedKernel())
    const n = 37
    let state = decayed.init(n)
    let plainState = plainRms.init(n)
    for (let step = 0; step < 6; step++) {
      const grads = randomGradients(n, 60 + step)
      const got = decayed.update(grads, state)
      const want = plainRms.update(grads, plainState)
      expect(bits(withoutCounts(a, got.state)), `step ${step} state`).toEqual(bits(want.state))
      const factor = factorOf(3, 0.7, step + 1)
      if (factor === 1) expect(bits(got.updates), `step ${step}`).toEqual(bits(want.updates))
      else {
        const scaled = want.updates.map((u) => u * factor)
        expect(firstMismatch(got.updates, scaled, 1e-6, 0), `step ${step}`).toBe(-1)
      }
      state = got.state
      plainState = want.state
    }
  })

  it('computes the factor within 5e-7 of float64 for every count from 0 to 65535', () => {
    const n = 65536
    const grads = randomGradients(n, 3)
    for (const [after, power] of [
      [1, 1],
      [2, 0.5],
      [100, 0.3],
      [1000, 0.05],
      [65534, 1],
    ]) {
      const a = decayArchitecture(after, power)
      const weights = randomLstmWeights(a, 4, 0.6)
      const state = midRunState(a, n, 5, (i) => i) // t = i, so t' = min(i + 1, 65535)
      const got = fusedLstmOptimizer(weights, fusedKernel()).update(grads, state)
      const want = fusedLstmOptimizer(undecayed(weights), fusedKernel()).update(
        grads,
        withoutCounts(a, state),
      )
      const counts = countsOf(a, got.state)
      expect(counts).toEqual(counts.map((_, i) => Math.min(i + 1, 65535)))
      let worst = 0
      for (let i = 0; i < n; i++) {
        const exact = want.updates[i] * factorOf(after, power, counts[i])
        if (exact !== 0) worst = Math.max(worst, Math.abs(got.updates[i] - exact) / Math.abs(exact))
      }
      expect(worst, `after ${after}, power ${power}`).toBeLessThan(5e-7)
    }
  })

  it('carries c_lo into c_hi and stops at 65535', () => {
    const a = decayArchitecture(2, 0.5)
    const cases: [number, number, number, number][] = [
      // lo, hi -> lo', hi'
      [0, 0, 1, 0],
      [254, 0, 255, 0],
      [255, 0, 0, 1],
      [255, 3, 0, 4],
      [255, 254, 0, 255],
      [253, 255, 254, 255],
      [254, 255, 255, 255],
      [255, 255, 255, 255],
    ]
    const { stateSize, state: slots } = lstmSpec(a)
    const state = midRunState(a, cases.length, 6, () => 0)
    cases.forEach(([lo, hi], i) => {
      state[i * stateSize + slots.output.offset] = lo
      state[i * stateSize + slots.output.offset + 1] = hi
    })
    const opt = fusedLstmOptimizer(randomLstmWeights(a, 6), fusedKernel())
    let got = opt.update(randomGradients(cases.length, 7), state)
    const digits = (s: Float32Array) =>
      cases.map((_, i) => [0, 1].map((j) => s[i * stateSize + slots.output.offset + j]))
    expect(digits(got.state)).toEqual(cases.map(([, , lo, hi]) => [lo, hi]))
    // Once saturated, it stays there, with a zero gradient too (the coordinate has been seen).
    for (let step = 0; step < 3; step++) got = opt.update(new Float32Array(cases.length), got.state)
    expect(countsOf(a, got.state).slice(-3)).toEqual([65535, 65535, 65535])
  })

  it('reads junk slot values (negative, above 255, fractional, huge) as the clamped count', () => {
    const a = decayArchitecture(5, 0.5)
    const junk = [-0, -1e-30, -0.5, -1, -3.4e38, 0.99, 2.5, 3.7, 254.99, 255.5, 256, 1e4, 3.4e38]
    const pairs = junk.flatMap((lo) => junk.map((hi) => [lo, hi]))
    const n = pairs.length
    const { stateSize, state: slots } = lstmSpec(a)
    const messy = midRunState(a, n, 8, () => 0)
    pairs.forEach(([lo, hi], i) => {
      messy[i * stateSize + slots.output.offset] = lo
      messy[i * stateSize + slots.output.offset + 1] = hi
    })
    const clean = messy.slice()
    pairs.forEach(([lo, hi], i) => {
      clean[i * stateSize + slots.output.offset] = digit(lo)
      clean[i * stateSize + slots.output.offset + 1] = digit(hi)
    })
    const opt = fusedLstmOptimizer(randomLstmWeights(a, 9, 0.6), fusedKernel())
    const grads = randomGradients(n, 10)
    const got = opt.update(grads, messy)
    const want = opt.update(grads, clean)
    expect(countsOf(a, got.state)).toEqual(pairs.map(([lo, hi]) => nextCount(lo, hi, true)))
    expect(bits(got.updates)).toEqual(bits(want.updates))
    expect(bits(got.state)).toEqual(bits(want.state))
  })

  it('keeps the count at 0 and the update at +0 while every gradient is ±0, whatever the count slots hold', () => {
    const a = decayArchitecture(1, 1)
    const { stateSize, state: slots } = lstmSpec(a)
    const n = 19
    const opt = fusedLstmOptimizer(randomLstmWeights(a, 11, 2), fusedKernel())
    // Unseen (z = 0, fresh moments) but with LSTM state and count slots left anyhow.
    const state = randomUniform(n * stateSize, 12, 2)
    for (let i = 0; i < n; i++) {
      const row = i * stateSize + slots.features.offset
      for (let j = 0; j < 4; j++) state[row + j] = 0
      state[i * stateSize + slots.output.offset] = 17 * i
      state[i * stateSize + slots.output.offset + 1] = 300 - 20 * i
    }
    let current = state
    for (let step = 0; step < 4; step++) {
      const grads = Float32Array.from({ length: n }, (_, i) => ((i + step) % 2 === 0 ? 0 : -0))
      const got = opt.update(grads, current)
      expect(countsOf(a, got.state)).toEqual(new Array(n).fill(0))
      for (let i = 0; i < n; i++) expect(Object.is(got.updates[i], 0), `coordinate ${i}`).toBe(true)
      current = got.state
    }
  })

  it('counts exactly through F16 and BF16 state round trips, at every count', () => {
    const a = decayArchitecture(100, 0.5)
    const n = 65536
    const opt = fusedLstmOptimizer(randomLstmWeights(a, 13, 0.6), fusedKernel())
    const state = midRunState(a, n, 14, (i) => i)
    const grads = randomGradients(n, 15)
    const f32 = opt.update(grads, state)
    const want = countsOf(a, f32.state)
    for (const [name, roundTrip] of [
      ['F16', (s: Float32Array) => f16ToF32(f32ToF16(s))],
      ['BF16', (s: Float32Array) => bf16ToF32(f32ToBf16(s))],
    ] as const) {
      // The digits survive a round trip of the state that holds them, before and after the step.
      expect(countsOf(a, roundTrip(state)), name).toEqual(countsOf(a, state))
      const stepped = opt.update(grads, roundTrip(state))
      expect(countsOf(a, stepped.state), name).toEqual(want)
      expect(countsOf(a, roundTrip(stepped.state)), name).toEqual(want)
    }
  })

  it('gives the same bits for any split into calls, partial blocks and in place', () => {
    const a = decayArchitecture(4, 0.5)
    const opt = fusedLstmOptimizer(randomLstmWeights(a, 16, 0.6), fusedKernel())
    const s = opt.stateSize
    const n = 2_500
    const grads = randomGradients(n, 17)
    for (let i = 0; i < n; i += 3) grads[i] = 0
    const state = midRunState(a, n, 18, (i) => (i * 37) % 9)
    for (let i = 0; i < n; i += 5) state[i * s + s - 3] = 0 // some unseen: z = 0
    expectSameBitsForAnySplit(opt, grads, state, [
      [0, 1],
      [1, 8],
      [8, 13],
      [13, 1024],
      [1024, 1025],
      [1025, 2500],
    ])
  })

  it('refuses a decay outside the contract instead of ignoring it, and tanh-rms without moments', () => {
    const model = kernelModel(randomLstmWeights(decayArchitecture(2, 0.5), 19))
    const withDecay = (decay: { after: number; power: number }) => ({
      ...model,
      output: { kind: 'tanh-rms' as const, scale: 0.5, power: 0.3, decay },
    })
    for (const decay of [
      { after: 0, power: 0.5 },
      { after: 1.5, power: 0.5 },
      { after: 65536, power: 0.5 },
      { after: 2, power: 0 },
      { after: 2, power: 1.5 },
      { after: 2, power: Number.NaN },
    ]) {
      expect(() => kernelInstance(fusedKernel(), withDecay(decay)), JSON.stringify(decay)).toThrow(RangeError)
    }
    expect(kernelInstance(fusedKernel(), withDecay({ after: 65535, power: 1 })).stateSize).toBe(
      lstmSpec(decayArchitecture(2, 0.5)).stateSize,
    )
    expect(() =>
      kernelInstance(fusedKernel(), { ...model, features: { kind: 'none' }, featureSize: 1 }),
    ).toThrow(RangeError)
  })
})
