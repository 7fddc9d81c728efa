import { beforeAll, describe, expect, it } from 'vitest'
import { bits, expectSameBitsForAnySplit } from '../../../test/support/bits'
import { firstMismatch, maxScaledError, RTOL, STATE_FLOOR, updatesFloors } from '../../../test/support/close'
import { midRunState, randomGradients, randomLstmWeights } from '../../../test/support/random'
import { type ExtendedArchitecture, type LatchGain, lstmSpec } from '../../contract'
import { fusedKernel } from '../../runtime/kernel-node'
import { initTf } from '../../runtime/tf-node'
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../../safetensors'
import { lstmOptimizer } from '../lstm'
import { lstmPlainOptimizer } from '../lstm-plain'
import { lstmReferenceOptimizer, lstmReferenceStep } from '../lstm-reference'
import type { LstmWeights } from '../lstm-weights'
import type { Optimizer } from '../optimizer'
import { kernelInstance } from './kernel'
import { fusedLstmOptimizer, kernelModel } from './lstm-fused'

// `tanh-rms`'s `gain` (docs/optimizer-math.md §6), the one rule that pools over the coordinates of
// a call: the fused kernel keeps its step count and the gain's pass runs over the whole call around
// it. Checked against a re-statement of §6 here (the same weights without the gain, stepped by the
// kernel, times the multiplier computed from the document), against the float64 oracle and every
// other path, and for what makes a call one pool.

const f32 = Math.fround

/** l2o-mlp@1.6.0's gain, latched after `after` steps, with a strength that makes k visible. */
const latch = (after: number, strength = 8): LatchGain => ({
  kind: 'latch',
  after,
  center: 0.02,
  strength,
  cap: 0.5,
})

/** L = 2, H = 4, `moments` K = 2 with logRms, ELU E = 4, `tanh-rms` with a gain (and a decay). */
function gainArchitecture(gain: LatchGain, decay = true): ExtendedArchitecture {
  return {
    kind: 'lstm-cw',
    layers: 2,
    hidden: 4,
    features: { kind: 'moments', beta1: [0.5, 0.9], beta2: 0.99, eps: 1e-8, logRms: 10 },
    inputLayer: { size: 4, activation: 'elu' },
    output: {
      kind: 'tanh-rms',
      scale: 0.5,
      power: 0.3,
      gain,
      ...(decay ? { decay: { after: 4, power: 0.5 } } : {}),
    },
  }
}

/** The same weights without the gain (a decay kept): its state lacks the gain's slots (and the count, with no decay). */
function withoutGain(weights: LstmWeights): LstmWeights {
  const a = weights.architecture as ExtendedArchitecture
  if (a.output.kind !== 'tanh-rms') throw new Error('not tanh-rms')
  const { gain: _, ...output } = a.output
  return { ...weights, architecture: { ...a, output } }
}

/** A state [N, S] cut to the first `size` floats of each row (the layouts share their prefix). */
function prefixRows(state: Float32Array, stateSize: number, size: number): Float32Array {
  const n = state.length / stateSize
  const out = new Float32Array(n * size)
  for (let i = 0; i < n; i++) out.set(state.subarray(i * stateSize, i * stateSize + size), i * size)
  return out
}

/** Where a row keeps r', the count digits and [p, a]. */
function slotsOf(a: ExtendedArchitecture) {
  const spec = lstmSpec(a)
  const k = a.features.beta1.length
  const out = spec.state.output.offset
  return {
    spec,
    r: spec.state.features.offset + k,
    z: spec.state.features.offset + k + 1,
    lo: out,
    p: out + 2,
    a: out + 3,
  }
}

/**
 * §6 restated for one call, from the kernel's step without the gain (`plain`: updates and state of
 * the gainless layout) and this call's gradients and old state: X summed in coordinate order from
 * r' of the NEW state (the pass as the document words it), a', k and the gain's new slots.
 */
function restate(
  a: ExtendedArchitecture,
  grads: Float32Array,
  old: Float32Array,
  next: Float32Array,
  plainUpdates: Float32Array,
) {
  const { spec, r, lo, p, a: aAt } = slotsOf(a)
  const gain = (a.output as { gain: LatchGain }).gain
  const s = spec.stateSize
  const n = grads.length
  let sum = 0
  for (let i = 0; i < n; i++) {
    const rr = next[i * s + r]
    const x = rr > 0 ? (grads[i] * old[i * s + p]) / (rr * rr) : 0
    sum += Math.min(1, Math.max(-1, x))
  }
  const mean = sum / n
  const counts = Array.from({ length: n }, (_, i) => 256 * next[i * s + lo + 1] + next[i * s + lo])
  const aNew = counts.map((t, i) =>
    t >= 2 && t <= gain.after ? f32(old[i * s + aAt] + mean) : old[i * s + aAt],
  )
  const k = counts.map((t, i) =>
    t >= gain.after
      ? Math.exp(
          Math.min(gain.cap, Math.max(-gain.cap, gain.strength * (aNew[i] / (gain.after - 1) - gain.center))),
        )
      : 1,
  )
  return { mean, counts, aNew, k, updates: Float32Array.from(plainUpdates, (u, i) => u * k[i]) }
}

describe("the fused kernel with tanh-rms's gain", () => {
  beforeAll(async () => {
    await initTf('wasm')
  })

  it('lays out the count and [p, a] after the moments slots, with or without a decay, as lstmSpec does', () => {
    for (const decay of [true, false]) {
      const a = gainArchitecture(latch(3), decay)
      const opt = fusedLstmOptimizer(randomLstmWeights(a, 1), fusedKernel())
      expect(opt.stateSize).toBe(lstmSpec(a).stateSize)
      expect(lstmSpec(a).state.output).toEqual({ offset: 2 * 2 * 4 + 4, size: 4 })
      expect(opt.pool).toBeDefined()
    }
    expect(
      fusedLstmOptimizer(withoutGain(randomLstmWeights(gainArchitecture(latch(3)), 1)), fusedKernel()).pool,
    ).toBeUndefined()
  })

  for (const decay of [true, false]) {
    it(`is the kernel's step without the gain times §6's multiplier, bit for bit, over one call of 2,500 coordinates (kernel chunks of 1,024)${decay ? ' with a decay' : ''}`, () => {
      const a = gainArchitecture(latch(3), decay)
      const weights = randomLstmWeights(a, 2, 0.6)
      const gained = fusedLstmOptimizer(weights, fusedKernel())
      const plain = fusedLstmOptimizer(withoutGain(weights), fusedKernel())
      const s = gained.stateSize
      const n = 2_500
      const silent = new Set([0, 1023, 1024, 2499])
      // Counts 0 to 5 around T = 3; the silent coordinates fresh and given only ±0.
      let state = midRunState(a, n, 3, (i) => i % 6, silent)
      for (let step = 0; step < 3; step++) {
        const grads = randomGradients(n, 4 + step)
        for (const i of silent) grads[i] = i % 2 === 0 ? 0 : -0
        const got = gained.update(grads, state)
        const without = plain.update(grads, prefixRows(state, s, plain.stateSize))
        const want = restate(a, grads, state, got.state, without.updates)
        expect(want.k.filter((k) => k !== 1).length, `step ${step}: coordinates latched`).toBeGreaterThan(
          1000,
        )
        expect(bits(got.updates), `step ${step} updates`).toEqual(bits(want.updates))
        // The kernel's part of the state is the gainless kernel's; the gain's slots are §6's.
        expect(bits(prefixRows(got.state, s, plain.stateSize)), `step ${step} state`).toEqual(
          bits(without.state),
        )
        const { p, a: aAt } = slotsOf(a)
        expect(bits(Array.from({ length: n }, (_, i) => got.state[i * s + p])), `step ${step} p'`).toEqual(
          bits(grads),
        )
        expect(bits(Array.from({ length: n }, (_, i) => got.state[i * s + aAt])), `step ${step} a'`).toEqual(
          bits(want.aNew),
        )
        for (const i of silent) expect(Object.is(got.updates[i], 0), `silent ${i}`).toBe(true)
        state = got.state
      }
    })
  }

  it('matches the oracle, plain TypeScript, tfjs and §6 over 7 steps with T = 3, late and silent coordinates', () => {
    const a = gainArchitecture(latch(3, 20))
    const weights = randomLstmWeights(a, 7, 0.6)
    const { spec, p, a: aAt } = slotsOf(a)
    const s = spec.stateSize
    const paths: [string, Optimizer][] = [
      ['fused', fusedLstmOptimizer(weights, fusedKernel())],
      ['plain', lstmPlainOptimizer(weights)],
      ['tfjs-wasm', lstmOptimizer(weights)],
    ]
    const n = 40
    const silent = new Set([0, 9, 39]) // only ±0: never counted, update +0 throughout
    const late = new Set([3, 17, 20]) // ±0 for the first three steps
    const states = paths.map(([, opt]) => opt.init(n))
    let oracleState: ArrayLike<number> = new Float64Array(n * s)
    const means: number[] = []
    for (let step = 0; step < 7; step++) {
      const grads = randomGradients(n, 50 + step)
      for (let i = 0; i < n; i++) {
        if (silent.has(i) || (late.has(i) && step < 3)) grads[i] = i % 2 === 0 ? 0 : -0
        // same signs from step to step for half of them: a mean autocorrelation well above C
        else if (i < 20) grads[i] = Math.abs(grads[i])
      }
      const want = lstmReferenceStep(weights, grads, oracleState)
      const floors = updatesFloors(a, want.state)
      // §6's X of this call, from the oracle's r' (the same bits as every path's).
      let sum = 0
      for (let i = 0; i < n; i++) {
        const r = f32(want.state[i * s + slotsOf(a).r])
        sum += r > 0 ? Math.min(1, Math.max(-1, (grads[i] * f32(oracleState[i * s + p])) / (r * r))) : 0
      }
      means.push(sum / n)
      paths.forEach(([name, opt], j) => {
        const got = opt.update(grads, states[j])
        const u = firstMismatch(got.updates, want.updates, RTOL, floors)
        expect(
          u,
          `${name} step ${step}: update ${u} is ${got.updates[u]}, want ${want.updates[u]} (worst ${maxScaledError(got.updates, want.updates, floors)})`,
        ).toBe(-1)
        const st = firstMismatch(got.state, want.state, RTOL, STATE_FLOOR)
        expect(st, `${name} step ${step} state ${st}: ${got.state[st]} vs ${want.state[st]}`).toBe(-1)
        // The gain's slots are the same bits on every path: p' = g, a' from the same X.
        for (let i = 0; i < n; i++) {
          expect(
            bits([got.state[i * s + p], got.state[i * s + aAt]]),
            `${name} step ${step} slots ${i}`,
          ).toEqual(bits([want.state[i * s + p], want.state[i * s + aAt]]))
        }
        for (const i of silent) expect(Object.is(got.updates[i], 0), `${name} silent ${i}`).toBe(true)
        for (const i of late)
          if (step < 3) expect(Object.is(got.updates[i], 0), `${name} late ${i}`).toBe(true)
        states[j] = got.state
      })
      oracleState = want.state
    }
    const aOf = (i: number) => f32(oracleState[i * s + aAt])
    // From the first step: a sums the means of steps 2 and 3 (indices 1, 2), then is held.
    const early = f32(f32(0 + means[1]) + means[2])
    // The late ones start at step index 3: their own steps 2 and 3 are indices 4 and 5.
    const own = f32(f32(0 + means[4]) + means[5])
    expect(early).not.toBe(own)
    for (let i = 0; i < n; i++) {
      if (silent.has(i)) expect(aOf(i), `silent ${i}`).toBe(0)
      else expect(aOf(i), `coordinate ${i}`).toBe(late.has(i) ? own : early)
    }
    for (const [, opt] of paths) opt.dispose?.()
  })

  it('pools per call: two calls on the halves differ from one call on the whole, unless handed its pool', () => {
    const a = gainArchitecture(latch(3))
    const opt = fusedLstmOptimizer(randomLstmWeights(a, 8, 0.6), fusedKernel())
    const s = opt.stateSize
    const n = 600
    // Counts 1 and 2: this step is each coordinate's step 2 or 3 (in the window, and T for half).
    const state = midRunState(a, n, 9, (i) => 1 + (i % 2))
    const grads = randomGradients(n, 10)
    for (let i = 0; i < n / 2; i++) grads[i] = Math.abs(grads[i]) // the halves' means differ
    const whole = opt.update(grads, state)
    const halves = [0, n / 2].map((begin) =>
      opt.update(grads.subarray(begin, begin + n / 2), state.subarray(begin * s, (begin + n / 2) * s)),
    )
    const joined = (k: 'updates' | 'state') => [...bits(halves[0][k]), ...bits(halves[1][k])]
    expect(joined('updates')).not.toEqual(bits(whole.updates))
    expect(joined('state')).not.toEqual(bits(whole.state))
    // Each half handed the pool of the whole (added up half by half) gives the whole's bits.
    const pool = { sum: 0, count: 0 }
    for (const begin of [0, n / 2])
      opt.pool?.(grads.subarray(begin, begin + n / 2), state.subarray(begin * s, (begin + n / 2) * s), pool)
    expect(pool).toEqual(opt.pool?.(grads, state))
    const pooled = [0, n / 2].map((begin) =>
      opt.update(grads.subarray(begin, begin + n / 2), state.subarray(begin * s, (begin + n / 2) * s), pool),
    )
    expect([...bits(pooled[0].updates), ...bits(pooled[1].updates)]).toEqual(bits(whole.updates))
    expect([...bits(pooled[0].state), ...bits(pooled[1].state)]).toEqual(bits(whole.state))
  })

  it('gives the same bits for any split handed the whole pool, partial blocks and in place', () => {
    const a = gainArchitecture(latch(4))
    const opt = fusedLstmOptimizer(randomLstmWeights(a, 16, 0.6), fusedKernel())
    const s = opt.stateSize
    const n = 2_500
    const grads = randomGradients(n, 17)
    for (let i = 0; i < n; i += 3) grads[i] = 0
    const state = midRunState(a, n, 18, (i) => (i * 37) % 9)
    for (let i = 0; i < n; i += 5) state[i * s + slotsOf(a).z] = 0 // some unseen: z = 0
    expectSameBitsForAnySplit(opt, grads, state, [
      [0, 1],
      [1, 8],
      [8, 13],
      [13, 1024],
      [1024, 1025],
      [1025, 2500],
    ])
  })

  it('every path: in place gives the bits of out of place, and a given pool those of the call itself', () => {
    const a = gainArchitecture(latch(2), false)
    const weights = randomLstmWeights(a, 19, 0.6)
    const n = 300
    const state = midRunState(a, n, 20, (i) => i % 4)
    const grads = randomGradients(n, 21)
    for (const opt of [
      fusedLstmOptimizer(weights, fusedKernel()),
      lstmPlainOptimizer(weights),
      lstmOptimizer(weights),
      lstmReferenceOptimizer(weights),
    ]) {
      const want = opt.update(grads, state)
      const pooled = opt.update(grads, state, opt.pool?.(grads, state))
      expect(bits(pooled.updates)).toEqual(bits(want.updates))
      expect(bits(pooled.state)).toEqual(bits(want.state))
      const inPlace = state.slice()
      const updates = new Float32Array(n)
      opt.updateInto(grads, inPlace, { updates, state: inPlace })
      expect(bits(updates)).toEqual(bits(want.updates))
      expect(bits(inPlace)).toEqual(bits(want.state))
      // A pool that says otherwise changes the answer: the pool is really what the step reads.
      const other = opt.update(grads, state, { sum: 0.9 * n, count: n })
      expect(bits(other.updates)).not.toEqual(bits(want.updates))
      opt.dispose?.()
    }
  })

  it('runs through F16 and BF16 state round trips: counts exact, p′ the 16-bit gradient, k near the F32 run', () => {
    const a = gainArchitecture(latch(3, 1))
    const { spec, p, a: aAt, lo } = slotsOf(a)
    const s = spec.stateSize
    const opt = fusedLstmOptimizer(randomLstmWeights(a, 13, 0.6), fusedKernel())
    const n = 500
    for (const [name, roundTrip] of [
      ['F16', (x: Float32Array) => f16ToF32(f32ToF16(x))],
      ['BF16', (x: Float32Array) => bf16ToF32(f32ToBf16(x))],
    ] as const) {
      let wide = opt.init(n)
      let narrow = opt.init(n)
      for (let step = 0; step < 5; step++) {
        const grads = randomGradients(n, 14 + step).map((g) => Math.max(-1e4, Math.min(1e4, g)))
        for (let i = 0; i < n / 2; i++) grads[i] = Math.abs(grads[i])
        wide = opt.update(grads, wide).state
        const stepped = opt.update(grads, narrow)
        expect(stepped.updates.every(Number.isFinite), `${name} step ${step}`).toBe(true)
        narrow = roundTrip(stepped.state)
        expect(narrow.every(Number.isFinite), `${name} step ${step}`).toBe(true)
        const round = roundTrip(grads)
        for (let i = 0; i < n; i++) {
          expect(256 * narrow[i * s + lo + 1] + narrow[i * s + lo]).toBe(Math.min(step + 1, 65535))
          expect(narrow[i * s + p]).toBe(round[i])
        }
      }
      // The latched multipliers (a is the same for every coordinate that started together).
      const k = (state: Float32Array) => Math.exp(Math.min(0.5, Math.max(-0.5, state[aAt] / 2 - 0.02)))
      const logK = Math.log(k(wide))
      expect(Math.abs(logK), 'latched, inside the cap').toBeGreaterThan(0.01)
      expect(Math.abs(logK)).toBeLessThan(0.5)
      // 16 bits move a through p, r and a itself (§6: a's own rounding moves log k by at most
      // A·|a'|/(T − 1)·2^-9 in BF16); measured 1e-4 (BF16) and 8e-3 (F16, whose range flushes the
      // gradients below 6e-8 to 0) of a log k of 0.097.
      expect(Math.abs(Math.log(k(narrow)) - logK), name).toBeLessThan(0.02)
    }
  })

  it('refuses a gain outside the contract instead of ignoring it', () => {
    const model = kernelModel(randomLstmWeights(gainArchitecture(latch(3)), 22))
    const withGain = (gain: object) => ({
      ...model,
      output: { kind: 'tanh-rms' as const, scale: 0.5, power: 0.3, gain: gain as LatchGain },
    })
    for (const gain of [
      { ...latch(3), kind: 'lag' },
      { ...latch(3), after: 1 },
      { ...latch(3), after: 2.5 },
      { ...latch(3), after: 65536 },
      { ...latch(3), strength: -1 },
      { ...latch(3), strength: Number.POSITIVE_INFINITY },
      { ...latch(3), center: Number.NaN },
      { ...latch(3), cap: 0 },
      { ...latch(3), cap: 21 },
    ]) {
      expect(() => kernelInstance(fusedKernel(), withGain(gain)), JSON.stringify(gain)).toThrow(RangeError)
    }
    expect(kernelInstance(fusedKernel(), withGain({ ...latch(3), after: 65535, cap: 20 })).stateSize).toBe(
      lstmSpec(gainArchitecture(latch(3), false)).stateSize,
    )
  })
})
