import * as tf from '@tensorflow/tfjs-core'
import { beforeAll, describe, expect, it } from 'vitest'
import { firstMismatch, maxScaledError, RTOL, STATE_FLOOR, updatesFloor } from '../../test/support/close'
import {
  lstmArchitecture,
  randomGradients,
  randomLstmWeights,
  randomUniform,
} from '../../test/support/random'
import type { Architecture } from '../contract'
import { initTf } from '../runtime/tf-node'
import { NonFiniteGradientError, OptimizerConfigError, StateLengthError } from './errors'
import { lstmOptimizer } from './lstm'
import { lstmReferenceStep } from './lstm-reference'

// Agreement with the float64 oracle within test/support/close.ts's tolerance (RTOL and floors).

const arch = lstmArchitecture

/** Runs tfjs and the oracle side by side for `steps` chained steps, each on its own state. */
function expectMatchesOracle(architecture: Architecture, n: number, steps: number, seed: number) {
  const weights = randomLstmWeights(architecture, seed)
  const opt = lstmOptimizer(weights)
  let state = opt.init(n)
  let oracleState: ArrayLike<number> = new Float64Array(n * opt.stateSize)
  for (let step = 0; step < steps; step++) {
    const grads = randomGradients(n, seed * 1000 + step)
    const got = opt.update(grads, state)
    const want = lstmReferenceStep(weights, grads, oracleState)
    const u = firstMismatch(got.updates, want.updates, RTOL, updatesFloor(architecture))
    const s = firstMismatch(got.state, want.state, RTOL, STATE_FLOOR)
    expect(
      u,
      `update ${u} at step ${step}: ${got.updates[u]} vs ${want.updates[u]} (worst ${maxScaledError(got.updates, want.updates, updatesFloor(architecture))})`,
    ).toBe(-1)
    expect(
      s,
      `state ${s} at step ${step}: ${got.state[s]} vs ${want.state[s]} (worst ${maxScaledError(got.state, want.state, STATE_FLOOR)})`,
    ).toBe(-1)
    state = got.state
    oracleState = want.state
  }
  opt.dispose?.()
}

describe.each(['wasm', 'cpu'] as const)('lstmOptimizer on tfjs-%s', (backend) => {
  beforeAll(async () => {
    await initTf(backend)
  })

  it.each([
    [1, 4, 'none'],
    [1, 4, 'log-sign'],
    [2, 20, 'none'],
    [2, 20, 'log-sign'],
    [3, 8, 'none'],
    [3, 8, 'log-sign'],
  ] as const)(
    'matches the float64 oracle with L=%i, H=%i, %s, over 4 chained steps',
    (layers, hidden, pre) => {
      expectMatchesOracle(arch(layers, hidden, pre), 500, 4, layers * 100 + hidden)
    },
  )

  it('matches the float64 oracle at paper size for N = 10,000 over 3 chained steps', () => {
    expectMatchesOracle(arch(2, 20, 'log-sign'), 10_000, 3, 42)
  })

  it('matches the oracle from a random (non-zero) state, with p read from the weights', () => {
    const a = arch(2, 6, 'log-sign', 3)
    const weights = randomLstmWeights(a, 5, 0.6)
    const opt = lstmOptimizer(weights)
    const n = 300
    const state = randomUniform(n * opt.stateSize, 6, 2)
    const grads = randomGradients(n, 7)
    const got = opt.update(grads, state)
    const want = lstmReferenceStep(weights, grads, state)
    expect(firstMismatch(got.updates, want.updates, RTOL, updatesFloor(a))).toBe(-1)
    expect(firstMismatch(got.state, want.state, RTOL, STATE_FLOOR)).toBe(-1)
    opt.dispose?.()
  })

  it('matches the oracle on extreme gradients: 0, ±1e-30, around exp(-p), ±1e30', () => {
    for (const pre of ['log-sign', 'none'] as const) {
      const a = arch(2, 8, pre)
      const weights = randomLstmWeights(a, 11)
      const opt = lstmOptimizer(weights)
      const t = Math.exp(-10)
      const grads = Float32Array.from([
        0,
        1e-30,
        -1e-30,
        t * (1 - 1e-6),
        t * (1 + 1e-6),
        -t,
        1e30,
        -1e30,
        1,
        -1,
      ])
      const got = opt.update(grads, opt.init(grads.length))
      const want = lstmReferenceStep(weights, grads, new Float64Array(grads.length * opt.stateSize))
      expect(firstMismatch(got.updates, want.updates, RTOL, updatesFloor(a)), pre).toBe(-1)
      expect(firstMismatch(got.state, want.state, RTOL, STATE_FLOOR), pre).toBe(-1)
      expect(got.updates.every(Number.isFinite)).toBe(true)
      opt.dispose?.()
    }
  })

  it('leaks no tensors across updates, and dispose() releases its weights', () => {
    const opt = lstmOptimizer(randomLstmWeights(arch(2, 20, 'log-sign'), 1))
    const before = tf.memory().numTensors
    let state = opt.init(100)
    state = opt.update(randomGradients(100, 1), state).state
    const afterFirst = tf.memory().numTensors
    for (let i = 0; i < 3; i++) state = opt.update(randomGradients(100, 2 + i), state).state
    expect(tf.memory().numTensors).toBe(afterFirst)
    opt.dispose?.()
    expect(tf.memory().numTensors).toBe(before)
  })

  it('hands out its own arrays, which later tfjs work (that may grow the backend heap) leaves alone', () => {
    const opt = lstmOptimizer(randomLstmWeights(arch(2, 20, 'log-sign'), 3))
    const grads = randomGradients(500, 3)
    const result = opt.update(grads, opt.init(500))
    const updates = result.updates.slice()
    const state = result.state.slice()
    tf.tidy(() => tf.fill([1 << 22], 7).dataSync())
    opt.update(randomGradients(500, 4), opt.init(500))
    expect(result.updates).toEqual(updates)
    expect(result.state).toEqual(state)
    opt.dispose?.()
  })

  it('keeps its weights when called inside a tidy()', () => {
    const opt = lstmOptimizer(randomLstmWeights(arch(1, 4, 'none'), 1))
    const grads = randomGradients(10, 1)
    // The first update uploads the weights: inside a tidy() they must survive its end.
    let first: Float32Array | undefined
    tf.tidy(() => {
      first = opt.update(grads, opt.init(10)).updates
    })
    const second = opt.update(grads, opt.init(10))
    expect(second.updates).toEqual(first)
    opt.dispose?.()
  })

  it('handles N = 1 and N = 0', () => {
    const opt = lstmOptimizer(randomLstmWeights(arch(2, 20, 'log-sign'), 2))
    const one = opt.update(Float32Array.of(0.5), opt.init(1))
    expect(one.updates.length).toBe(1)
    expect(one.state.length).toBe(opt.stateSize)
    const none = opt.update(new Float32Array(0), opt.init(0))
    expect(none.updates.length).toBe(0)
    expect(none.state.length).toBe(0)
    opt.dispose?.()
  })
})

describe('lstmOptimizer at large N (tfjs-wasm)', () => {
  beforeAll(async () => {
    await initTf('wasm')
  })

  it('updates 65,536 coordinates at paper size, matching the oracle on a sample', () => {
    const a = arch(2, 20, 'log-sign')
    const weights = randomLstmWeights(a, 3)
    const opt = lstmOptimizer(weights)
    const n = 65_536
    const grads = randomGradients(n, 4)
    const state = randomUniform(n * opt.stateSize, 5, 0.5)
    const got = opt.update(grads, state)
    expect(got.updates.length).toBe(n)
    expect(got.state.length).toBe(n * opt.stateSize)
    for (const i of [0, 1, 4097, 32_768, 65_535]) {
      const row = state.subarray(i * opt.stateSize, (i + 1) * opt.stateSize)
      const want = lstmReferenceStep(weights, grads.subarray(i, i + 1), row)
      const gotRow = got.state.subarray(i * opt.stateSize, (i + 1) * opt.stateSize)
      expect(firstMismatch(got.updates.subarray(i, i + 1), want.updates, RTOL, updatesFloor(a))).toBe(-1)
      expect(firstMismatch(gotRow, want.state, RTOL, STATE_FLOOR)).toBe(-1)
    }
    opt.dispose?.()
  })
})

describe('lstmOptimizer input checks', () => {
  beforeAll(async () => {
    await initTf('wasm')
  })

  it.each([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY])(
    'refuses a %s gradient naming its coordinate',
    (bad) => {
      const opt = lstmOptimizer(randomLstmWeights(arch(1, 4, 'log-sign'), 1))
      const grads = Float32Array.from([0.1, -0.2, bad, 0.3])
      let caught: unknown
      try {
        opt.update(grads, opt.init(4))
      } catch (e) {
        caught = e
      }
      expect(caught).toBeInstanceOf(NonFiniteGradientError)
      expect((caught as NonFiniteGradientError).index).toBe(2)
      expect((caught as Error).message).toContain('coordinate 2')
      opt.dispose?.()
    },
  )

  it('refuses a state of the wrong length', () => {
    const opt = lstmOptimizer(randomLstmWeights(arch(2, 3, 'none'), 1))
    expect(() => opt.update(new Float32Array(4), new Float32Array(4 * 12 - 1))).toThrow(StateLengthError)
    expect(() => opt.update(new Float32Array(4), new Float32Array(4 * 12 - 1))).toThrow(
      /47 floats .* needs 48/,
    )
  })

  it('refuses weights whose shapes do not match the architecture', () => {
    const weights = randomLstmWeights(arch(2, 3, 'log-sign'), 1)
    weights.cells[1].weightHh = new Float32Array(5)
    expect(() => lstmOptimizer(weights)).toThrow(OptimizerConfigError)
    expect(() => lstmOptimizer(weights)).toThrow(/cells\.1\.weight_hh has 5 floats, expected 36/)
  })
})
