import { beforeAll, describe, expect, it } from 'vitest'
import {
  extendedArchitecture,
  paperArchitecture,
  randomGradients,
  randomLstmWeights,
  randomUniform,
} from '../../test/support/random'
import { fusedKernel } from '../runtime/kernel-node'
import { initTf } from '../runtime/tf-node'
import { adam, momentum, nesterov, rmsprop, sgd } from './baselines'
import { NonFiniteGradientError, StateLengthError } from './errors'
import { fusedLstmOptimizer } from './fused/lstm-fused'
import { lstmOptimizer } from './lstm'
import { lstmPlainOptimizer } from './lstm-plain'
import { lstmReferenceOptimizer } from './lstm-reference'
import type { Optimizer } from './optimizer'

const paper = randomLstmWeights(paperArchitecture, 2016)
const quadratics = randomLstmWeights(
  { kind: 'lstm-cw', layers: 3, hidden: 5, preprocessing: 'none', outputScale: 0.05 },
  7,
)
const extended = randomLstmWeights(extendedArchitecture, 10, 0.6)
const rmsOutput = randomLstmWeights(
  {
    ...extendedArchitecture,
    features: { ...extendedArchitecture.features, logRms: 10 },
    output: { kind: 'tanh-rms', scale: 1, power: 0.3 },
  },
  11,
  0.6,
)
// l2o-mlp@1.6.0's shape: a decay and the gain, which pools over the call (Optimizer.pool), latched
// at the second step so that a call's pool shows from a fresh state's second step on; |log k| ≤
// strength · |X| ≤ 0.5 stays below the cap, so calls with different pools get different multipliers.
const gainOutput = randomLstmWeights(
  {
    ...extendedArchitecture,
    features: { ...extendedArchitecture.features, logRms: 10 },
    output: {
      kind: 'tanh-rms',
      scale: 1,
      power: 0.3,
      decay: { after: 3, power: 0.5 },
      gain: { kind: 'latch', after: 2, center: 0, strength: 0.5, cap: 0.7 },
    },
  },
  12,
  0.6,
)

/** Every optimizer in the core; `steps` and learning rate chosen so each baseline converges on the quadratic. */
const optimizers: { name: string; make: () => Optimizer; quadraticSteps?: number }[] = [
  { name: 'lstm (tfjs-wasm), log-sign L=2 H=20', make: () => lstmOptimizer(paper) },
  { name: 'lstm (tfjs-wasm), none L=3 H=5', make: () => lstmOptimizer(quadratics) },
  { name: 'lstm (fused kernel), log-sign L=2 H=20', make: () => fusedLstmOptimizer(paper, fusedKernel()) },
  { name: 'lstm (fused kernel), none L=3 H=5', make: () => fusedLstmOptimizer(quadratics, fusedKernel()) },
  { name: 'lstm float64 reference', make: () => lstmReferenceOptimizer(paper) },
  { name: 'lstm plain TypeScript', make: () => lstmPlainOptimizer(paper) },
  { name: 'lstm (tfjs-wasm), moments + ELU + tanh L=2 H=8', make: () => lstmOptimizer(extended) },
  { name: 'lstm float64 reference, moments + ELU + tanh', make: () => lstmReferenceOptimizer(extended) },
  { name: 'lstm plain TypeScript, moments + ELU + tanh', make: () => lstmPlainOptimizer(extended) },
  { name: 'lstm (tfjs-wasm), moments + logRms + ELU + tanh-rms', make: () => lstmOptimizer(rmsOutput) },
  {
    name: 'lstm (fused kernel), moments + logRms + ELU + tanh-rms',
    make: () => fusedLstmOptimizer(rmsOutput, fusedKernel()),
  },
  { name: 'lstm (tfjs-wasm), tanh-rms with decay and gain', make: () => lstmOptimizer(gainOutput) },
  {
    name: 'lstm (fused kernel), tanh-rms with decay and gain',
    make: () => fusedLstmOptimizer(gainOutput, fusedKernel()),
  },
  { name: 'lstm plain TypeScript, tanh-rms with decay and gain', make: () => lstmPlainOptimizer(gainOutput) },
  {
    name: 'lstm float64 reference, tanh-rms with decay and gain',
    make: () => lstmReferenceOptimizer(gainOutput),
  },
  { name: 'sgd', make: () => sgd({ learningRate: 0.05 }), quadraticSteps: 300 },
  { name: 'momentum', make: () => momentum({ learningRate: 0.02, momentum: 0.9 }), quadraticSteps: 300 },
  { name: 'nag', make: () => nesterov({ learningRate: 0.02, momentum: 0.9 }), quadraticSteps: 300 },
  { name: 'rmsprop', make: () => rmsprop({ learningRate: 0.01 }), quadraticSteps: 2000 },
  { name: 'adam', make: () => adam({ learningRate: 0.05 }), quadraticSteps: 2000 },
]

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length))

/** Raw little-endian bytes and back, as the wire format carries a state. */
function byteRoundTrip(state: Float32Array): Float32Array {
  const bytes = new Uint8Array(state.buffer, state.byteOffset, state.byteLength).slice()
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4)
}

describe.each(optimizers)('optimizer contract: $name', ({ make }) => {
  let opt: Optimizer
  beforeAll(async () => {
    await initTf('wasm')
    opt = make()
    return () => opt.dispose?.()
  })

  it('starts from zeros of N·S floats', () => {
    const state = opt.init(7)
    expect(state.length).toBe(7 * opt.stateSize)
    expect(state.every((v) => v === 0)).toBe(true)
  })

  it('keeps shapes stable and values finite over several steps, and never mutates its inputs', () => {
    const n = 257
    let state = opt.init(n)
    for (let step = 0; step < 4; step++) {
      const grads = randomGradients(n, step)
      const gradsBefore = grads.slice()
      const stateBefore = state.slice()
      const out = opt.update(grads, state)
      expect(bits(grads)).toEqual(bits(gradsBefore))
      expect(bits(state)).toEqual(bits(stateBefore))
      expect(out.updates).toBeInstanceOf(Float32Array)
      expect(out.state).toBeInstanceOf(Float32Array)
      expect(out.updates.length).toBe(n)
      expect(out.state.length).toBe(n * opt.stateSize)
      expect(out.updates.every(Number.isFinite)).toBe(true)
      expect(out.state.every(Number.isFinite)).toBe(true)
      // Fresh buffers: a caller may keep or reuse its inputs.
      expect(out.updates.buffer).not.toBe(grads.buffer)
      if (opt.stateSize > 0) expect(out.state.buffer).not.toBe(state.buffer)
      state = out.state
    }
  })

  it('gives bit-identical results from a state that went through a raw byte round trip', () => {
    const n = 64
    let state = opt.init(n)
    for (let step = 0; step < 3; step++) state = opt.update(randomGradients(n, 10 + step), state).state
    const restored = byteRoundTrip(state)
    expect(bits(restored)).toEqual(bits(state))
    const grads = randomGradients(n, 20)
    const a = opt.update(grads, state)
    const b = opt.update(grads, restored)
    expect(bits(b.updates)).toEqual(bits(a.updates))
    expect(bits(b.state)).toEqual(bits(a.state))
  })

  it('is a function of its inputs only: a shard of the coordinates gets the same results (handed the pool of the whole, for a step that pools)', () => {
    const n = 50
    // For a gain, a state after one step from fresh: this step latches (T = 2).
    const state =
      opt.pool !== undefined
        ? opt.update(randomGradients(n, 2), opt.init(n)).state
        : opt.stateSize === 0
          ? opt.init(n)
          : randomUniform(n * opt.stateSize, 3, 0.5).map(Math.abs)
    const grads = randomGradients(n, 4)
    const whole = opt.update(grads, state)
    const [lo, hi] = [10, 30]
    const shardOf = <T extends Float32Array>(a: T, s = 1) => a.subarray(lo * s, hi * s)
    const pool = opt.pool?.(grads, state)
    const shard = opt.update(shardOf(grads), shardOf(state, opt.stateSize), pool)
    expect(bits(shard.updates)).toEqual(bits(shardOf(whole.updates)))
    expect(bits(shard.state)).toEqual(bits(shardOf(whole.state, opt.stateSize)))
    const alone = opt.update(shardOf(grads), shardOf(state, opt.stateSize))
    if (opt.pool === undefined) {
      // A coordinatewise step ignores a pool.
      const ignored = opt.update(shardOf(grads), shardOf(state, opt.stateSize), { sum: 1e6, count: 3 })
      expect(bits(ignored.updates)).toEqual(bits(alone.updates))
      expect(bits(alone.updates)).toEqual(bits(shardOf(whole.updates)))
    } else {
      // Alone, the shard is a call of its own: another pool, another multiplier.
      expect(bits(alone.updates)).not.toEqual(bits(shardOf(whole.updates)))
    }
  })

  it('updateInto writes the same bits as update into caller buffers, in place or not', () => {
    const n = 97
    const state = opt.stateSize === 0 ? opt.init(n) : randomUniform(n * opt.stateSize, 5, 0.5).map(Math.abs)
    const grads = randomGradients(n, 6)
    const gradsBefore = grads.slice()
    const want = opt.update(grads, state)
    for (let round = 0; round < 2; round++) {
      // Twice: buffers an optimizer reuses between calls must not leak into the next result.
      const out = { updates: new Float32Array(n).fill(7), state: new Float32Array(n * opt.stateSize).fill(7) }
      opt.updateInto(grads, state, out)
      expect(bits(out.updates)).toEqual(bits(want.updates))
      expect(bits(out.state)).toEqual(bits(want.state))
    }
    const inPlace = state.slice()
    const updates = new Float32Array(n)
    opt.updateInto(grads, inPlace, { updates, state: inPlace })
    expect(bits(updates)).toEqual(bits(want.updates))
    expect(bits(inPlace)).toEqual(bits(want.state))
    expect(bits(grads)).toEqual(bits(gradsBefore))
    // A smaller call after a larger one (reused scratch) still matches a shard of the whole.
    const shard = { updates: new Float32Array(20), state: new Float32Array(20 * opt.stateSize) }
    const pool = opt.pool?.(grads, state)
    opt.updateInto(
      grads.subarray(30, 50),
      state.subarray(30 * opt.stateSize, 50 * opt.stateSize),
      shard,
      pool,
    )
    expect(bits(shard.updates)).toEqual(bits(want.updates.subarray(30, 50)))
    expect(bits(shard.state)).toEqual(bits(want.state.subarray(30 * opt.stateSize, 50 * opt.stateSize)))
  })

  it('updateInto checks its inputs and output sizes before writing anything', () => {
    const n = 5
    const out = { updates: new Float32Array(n).fill(7), state: new Float32Array(n * opt.stateSize).fill(7) }
    const grads = Float32Array.from([0.5, 0.25, Number.NaN, 0.125, 1])
    expect(() => opt.updateInto(grads, opt.init(n), out)).toThrow(NonFiniteGradientError)
    expect(() => opt.updateInto(new Float32Array(n), new Float32Array(n * opt.stateSize + 1), out)).toThrow(
      StateLengthError,
    )
    expect(() =>
      opt.updateInto(new Float32Array(n), opt.init(n), {
        updates: new Float32Array(n + 1),
        state: out.state,
      }),
    ).toThrow(RangeError)
    expect(out.updates.every((v) => v === 7)).toBe(true)
    expect(out.state.every((v) => v === 7)).toBe(true)
  })

  it.each([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY])(
    'refuses a %s gradient naming the coordinate',
    (bad) => {
      const grads = Float32Array.from([0.5, 0.25, 0.125, bad, 1])
      expect(() => opt.update(grads, opt.init(5))).toThrow(NonFiniteGradientError)
      expect(() => opt.update(grads, opt.init(5))).toThrow(/coordinate 3 /)
    },
  )

  it('refuses a state of the wrong length', () => {
    expect(() => opt.update(new Float32Array(5), new Float32Array(5 * opt.stateSize + 1))).toThrow(
      StateLengthError,
    )
  })
})

describe.each(optimizers.filter((o) => o.quadraticSteps !== undefined))(
  'baseline $name',
  ({ make, quadraticSteps }) => {
    it('drives a 10-d ill-conditioned quadratic to its minimum', () => {
      const opt = make()
      // f(θ) = ½ Σ a_i (θ_i − θ*_i)², curvatures a_i from 1 to 10.
      const curvature = Float32Array.from({ length: 10 }, (_, i) => 1 + i)
      const optimum = randomUniform(10, 99, 3)
      const theta = new Float32Array(10)
      let state = opt.init(10)
      const grads = new Float32Array(10)
      for (let step = 0; step < (quadraticSteps ?? 0); step++) {
        for (let i = 0; i < 10; i++) grads[i] = curvature[i] * (theta[i] - optimum[i])
        const out = opt.update(grads, state)
        for (let i = 0; i < 10; i++) theta[i] += out.updates[i]
        state = out.state
      }
      for (let i = 0; i < 10; i++)
        expect(Math.abs(theta[i] - optimum[i]), `coordinate ${i}`).toBeLessThan(1e-3)
    })
  },
)
