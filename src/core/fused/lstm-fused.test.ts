import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { expectSameBitsForAnySplit } from '../../../test/support/bits'
import { firstMismatch, maxScaledError, RTOL, STATE_FLOOR, updatesFloor } from '../../../test/support/close'
import {
  lstmArchitecture,
  randomGradients,
  randomLstmWeights,
  randomUniform,
} from '../../../test/support/random'
import { fusedKernel } from '../../runtime/kernel-node'
import { NonFiniteGradientError, StateLengthError } from '../errors'
import { lstmReferenceStep } from '../lstm-reference'
import { kernelInstance } from './kernel'
import { fusedLstmOptimizer, kernelModel } from './lstm-fused'

// The fused kernel against the float64 oracle within test/support/close.ts's tolerance, as
// lstm.test.ts checks tfjs. PyTorch parity is test/parity's, the approximations' accuracy
// kernel-math.test.ts's.

function expectOracle(
  weights: ReturnType<typeof randomLstmWeights>,
  grads: Float32Array,
  state: Float32Array,
  what: string,
) {
  const got = fusedLstmOptimizer(weights, fusedKernel()).update(grads, state)
  const want = lstmReferenceStep(weights, grads, state)
  const floor = updatesFloor(weights.architecture)
  const u = firstMismatch(got.updates, want.updates, RTOL, floor)
  const s = firstMismatch(got.state, want.state, RTOL, STATE_FLOOR)
  expect(
    u,
    `${what}: update ${u} is ${got.updates[u]}, oracle ${want.updates[u]} (worst ${maxScaledError(got.updates, want.updates, floor)})`,
  ).toBe(-1)
  expect(
    s,
    `${what}: state ${s} is ${got.state[s]}, oracle ${want.state[s]} (worst ${maxScaledError(got.state, want.state, STATE_FLOOR)})`,
  ).toBe(-1)
  return got
}

describe('fusedLstmOptimizer', () => {
  it('matches the float64 oracle on random architectures, weights, states and gradients', () => {
    fc.assert(
      fc.property(
        fc.record({
          layers: fc.integer({ min: 1, max: 3 }),
          hidden: fc.integer({ min: 1, max: 24 }),
          logSign: fc.boolean(),
          p: fc.double({ min: 0.5, max: 30, noNaN: true }),
          // Up to twice PyTorch's initial scale 1/√H, and states up to ±2: the floors above are
          // made for operands of about that size (gate sums of order 10).
          weightScale: fc.double({ min: 0.1, max: 2, noNaN: true }),
          stateScale: fc.double({ min: 0, max: 2, noNaN: true }),
          n: fc.integer({ min: 1, max: 40 }),
          seed: fc.integer({ min: 1, max: 2 ** 30 }),
        }),
        ({ layers, hidden, logSign, p, weightScale, stateScale, n, seed }) => {
          const a = lstmArchitecture(layers, hidden, logSign ? 'log-sign' : 'none', p)
          const weights = randomLstmWeights(a, seed, weightScale / Math.sqrt(hidden))
          const grads = randomGradients(n, seed + 1)
          if (n > 2) grads[1] = 0
          const state = randomUniform(n * 2 * layers * hidden, seed + 2, stateScale)
          expectOracle(weights, grads, state, JSON.stringify({ layers, hidden, p, weightScale, n, seed }))
        },
      ),
      { numRuns: 200 },
    )
  })

  it('matches the oracle at paper size over 3 chained steps, N = 10,000', () => {
    const a = lstmArchitecture(2, 20, 'log-sign')
    const weights = randomLstmWeights(a, 42)
    const opt = fusedLstmOptimizer(weights, fusedKernel())
    let state = opt.init(10_000)
    let oracle: ArrayLike<number> = new Float64Array(state.length)
    for (let step = 0; step < 3; step++) {
      const grads = randomGradients(10_000, 100 + step)
      const got = opt.update(grads, state)
      const want = lstmReferenceStep(weights, grads, oracle)
      expect(firstMismatch(got.updates, want.updates, RTOL, updatesFloor(a)), `step ${step}`).toBe(-1)
      expect(firstMismatch(got.state, want.state, RTOL, STATE_FLOOR), `step ${step}`).toBe(-1)
      state = got.state
      oracle = want.state
    }
  })

  it('matches the oracle on extreme gradients: ±0, ±1e-30, subnormals, around exp(-p), ±1e30, ±3.4e38', () => {
    for (const pre of ['log-sign', 'none'] as const) {
      const a = lstmArchitecture(2, 8, pre)
      const t = Math.exp(-10)
      const grads = Float32Array.from([
        0,
        -0,
        1e-30,
        -1e-30,
        1e-44,
        t * (1 - 1e-6),
        t * (1 + 1e-6),
        -t,
        1e30,
        -1e30,
        3.4e38,
        -3.4e38,
        1,
        -1,
      ])
      expectOracle(randomLstmWeights(a, 11), grads, new Float32Array(grads.length * 32), pre)
    }
  })

  it('compares |g| with exp(-p) as float64 does, for a p whose exp(-p) lies between two float32s', () => {
    // exp(-10) = 4.5399929762484854e-5 lies strictly between two float32s: a float32 |g| just
    // below it must take the small-gradient branch, the next one up the log branch.
    const t = Math.exp(-10)
    const below = Math.fround(t) < t ? Math.fround(t) : Math.fround(t) - 2 ** -38
    const above = new Float32Array([below])
    new Uint32Array(above.buffer)[0] += 1
    const a = lstmArchitecture(1, 2, 'log-sign')
    expectOracle(
      randomLstmWeights(a, 3),
      Float32Array.from([below, above[0], -below, -above[0]]),
      new Float32Array(16),
      'threshold',
    )
  })

  it('gives the same bits for any split into calls, N not a multiple of its blocks, and in place', () => {
    const a = lstmArchitecture(2, 20, 'log-sign')
    const opt = fusedLstmOptimizer(randomLstmWeights(a, 9), fusedKernel())
    const n = 2_500 // blocks of 8 and calls of 1,024: a partial block at the end of each
    const grads = randomGradients(n, 1)
    const state = randomUniform(n * 80, 2, 1)
    expectSameBitsForAnySplit(opt, grads, state, [
      [0, 1],
      [1, 8],
      [8, 9],
      [9, 1024],
      [1024, 1025],
      [1025, 2500],
    ])
  })

  it('never mutates its inputs, and handles N = 0', () => {
    const opt = fusedLstmOptimizer(randomLstmWeights(lstmArchitecture(1, 3, 'none'), 1), fusedKernel())
    const grads = randomGradients(20, 1)
    const state = randomUniform(20 * 6, 2)
    const [g, s] = [grads.slice(), state.slice()]
    opt.update(grads, state)
    expect(grads).toEqual(g)
    expect(state).toEqual(s)
    const none = opt.update(new Float32Array(0), new Float32Array(0))
    expect([none.updates.length, none.state.length]).toEqual([0, 0])
  })

  it('stays finite for huge weights, cell states up to ±3.4e38 and gradients up to ±3.4e38', () => {
    // h is in (-1, 1) in every state a step makes; c grows by at most 1 a step, but any finite c
    // must give finite results (no product of c with a denominator can overflow).
    const a = lstmArchitecture(2, 6, 'log-sign')
    const weights = randomLstmWeights(a, 5, 300)
    const n = 64
    const grads = randomGradients(n, 6)
    grads[0] = 3.4e38
    grads[1] = -3.4e38
    const state = randomUniform(n * 24, 7, 1)
    const huge = randomUniform(n * 24, 8, 3.4e38)
    for (let i = 0; i < state.length; i++) if (Math.floor(i / 6) % 2 === 1) state[i] = huge[i]
    const got = fusedLstmOptimizer(weights, fusedKernel()).update(grads, state)
    expect(got.updates.every(Number.isFinite)).toBe(true)
    expect(got.state.every(Number.isFinite)).toBe(true)
  })

  it('reports from updateInto whether every update and state value it wrote is finite', () => {
    const a = lstmArchitecture(2, 6, 'log-sign')
    const n = 2 * 1000 + 3 // several kernel blocks and a partial one
    const grads = randomGradients(n, 9)
    const stepped = (outputScale: number) => {
      const opt = fusedLstmOptimizer(randomLstmWeights({ ...a, outputScale }, 5, 300), fusedKernel())
      const out = { updates: new Float32Array(n), state: new Float32Array(n * opt.stateSize) }
      return { checked: opt.updateInto(grads, opt.init(n), out), out }
    }
    const ok = stepped(0.1)
    expect(ok.checked).toBe(true)
    expect(ok.out.updates.every(Number.isFinite) && ok.out.state.every(Number.isFinite)).toBe(true)
    // Head weights of ~300 times a scale near float32's largest: updates overflow to ±Infinity.
    const overflowing = stepped(3e38)
    expect(overflowing.out.updates.some((u) => !Number.isFinite(u))).toBe(true)
    expect(overflowing.checked).toBe(false)
  })

  it('refuses non-finite gradients and a state of the wrong length, as every optimizer does', () => {
    const opt = fusedLstmOptimizer(randomLstmWeights(lstmArchitecture(1, 2, 'none'), 1), fusedKernel())
    expect(() => opt.update(Float32Array.of(1, Number.NaN), opt.init(2))).toThrow(NonFiniteGradientError)
    expect(() => opt.update(Float32Array.of(1, 2), new Float32Array(7))).toThrow(StateLengthError)
  })

  it('takes every architecture the contract allows (L ≤ 8, H ≤ 256) and no more', () => {
    const weights = randomLstmWeights(lstmArchitecture(8, 256, 'log-sign'), 1)
    expect(fusedLstmOptimizer(weights, fusedKernel()).stateSize).toBe(2 * 8 * 256)
    const model = { ...kernelModel(weights), hidden: 257 }
    expect(() => kernelInstance(fusedKernel(), model)).toThrow(RangeError)
  })
})
