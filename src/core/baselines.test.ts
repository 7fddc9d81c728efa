import { describe, expect, it } from 'vitest'
import {
  adam,
  baselineHyperparameters,
  baselineNames,
  baselineOptimizer,
  baselineWith,
  momentum,
  nesterov,
  rmsprop,
  sgd,
} from './baselines'
import { OptimizerConfigError } from './errors'
import type { Optimizer } from './optimizer'

/** Runs `grads` (one array per step) through `opt` from a fresh state; returns each step's updates. */
function trajectory(opt: Optimizer, grads: number[][]): number[][] {
  let state = opt.init(grads[0].length)
  return grads.map((g) => {
    const out = opt.update(Float32Array.from(g), state)
    state = out.state
    return Array.from(out.updates)
  })
}

function expectClose(actual: number[][], expected: number[][]) {
  expect(actual.length).toBe(expected.length)
  actual.forEach((row, t) => {
    row.forEach((v, i) => {
      expect(
        Math.abs(v - expected[t][i]),
        `step ${t} coordinate ${i}: ${v} vs ${expected[t][i]}`,
      ).toBeLessThan(1e-6 * Math.max(1, Math.abs(expected[t][i])))
    })
  })
}

// Expected values follow torch.optim's update rules, written out by hand.
describe('baselines follow torch.optim', () => {
  it('sgd: update = −lr·g', () => {
    expectClose(trajectory(sgd({ learningRate: 0.1 }), [[1, -2]]), [[-0.1, 0.2]])
  })

  it('momentum: buf = μ·buf + g, update = −lr·buf', () => {
    expectClose(trajectory(momentum({ learningRate: 0.1, momentum: 0.9 }), [[1], [1], [-1]]), [
      [-0.1],
      [-0.19],
      [-0.071],
    ])
  })

  it('nesterov: update = −lr·(g + μ·buf) with the new buf', () => {
    expectClose(trajectory(nesterov({ learningRate: 0.1, momentum: 0.9 }), [[1], [1]]), [
      [-0.19],
      [-0.1 * (1 + 0.9 * 1.9)],
    ])
  })

  it('rmsprop: v = αv + (1−α)g², update = −lr·g/(√v + ε)', () => {
    const v1 = 0.01 * 4
    const v2 = 0.99 * v1 + 0.01 * 1
    expectClose(trajectory(rmsprop({ learningRate: 0.01 }), [[2], [-1]]), [
      [(-0.01 * 2) / (Math.sqrt(v1) + 1e-8)],
      [(-0.01 * -1) / (Math.sqrt(v2) + 1e-8)],
    ])
  })

  it('adam: bias-corrected moments, step count kept per coordinate in the state', () => {
    const [lr, b1, b2, eps] = [0.01, 0.9, 0.999, 1e-8]
    const g = [[0.5], [-2]]
    let [m, v] = [0, 0]
    const expected = g.map(([gt], t) => {
      m = b1 * m + (1 - b1) * gt
      v = b2 * v + (1 - b2) * gt * gt
      const denom = Math.sqrt(v) / Math.sqrt(1 - b2 ** (t + 1)) + eps
      return [(-lr / (1 - b1 ** (t + 1))) * (m / denom)]
    })
    expectClose(trajectory(adam({ learningRate: lr }), g), expected)
    const opt = adam({ learningRate: lr })
    const out = opt.update(Float32Array.of(0.5, 1), opt.init(2))
    expect(Array.from(out.state.filter((_, i) => i % 3 === 2))).toEqual([1, 1])
  })

  it('adam: the first step moves each coordinate by about lr, whatever the gradient scale', () => {
    expectClose(trajectory(adam({ learningRate: 0.001 }), [[1e-3, -1e3]]), [[-0.001, 0.001]])
  })
})

describe('baselineOptimizer', () => {
  it.each([
    ['sgd', { learningRate: 0.1 }, 0],
    ['momentum', { learningRate: 0.1, momentum: 0.9 }, 1],
    ['nag', { learningRate: 0.1, momentum: 0.9 }, 1],
    ['rmsprop', { learningRate: 0.01, alpha: 0.9, eps: 1e-6 }, 1],
    ['adam', { learningRate: 1e-3, beta1: 0.8, beta2: 0.99, eps: 1e-7 }, 3],
  ])('builds %s', (name, hp, stateSize) => {
    expect(baselineOptimizer(name, hp).stateSize).toBe(stateSize)
  })

  it('fills defaults from the one table, the same ones the factories use', () => {
    const filled = baselineWith('adam', { learningRate: 0.01 })
    expect(filled.hyperparameters).toEqual({ beta1: 0.9, beta2: 0.999, eps: 1e-8, learningRate: 0.01 })
    const explicit = trajectory(
      baselineOptimizer('rmsprop', { learningRate: 0.01, alpha: 0.99, eps: 1e-8 }),
      [[1], [2]],
    )
    expect(trajectory(rmsprop({ learningRate: 0.01 }), [[1], [2]])).toEqual(explicit)
    expect(baselineNames).toEqual(['sgd', 'momentum', 'nag', 'rmsprop', 'adam'])
    expect(baselineHyperparameters('rmsprop')).toEqual({
      required: ['learningRate'],
      optional: ['alpha', 'eps'],
    })
  })

  it('passes hyper-parameters through', () => {
    const direct = trajectory(rmsprop({ learningRate: 0.01, alpha: 0.5, eps: 1e-3 }), [[1], [2]])
    const named = trajectory(baselineOptimizer('rmsprop', { learningRate: 0.01, alpha: 0.5, eps: 1e-3 }), [
      [1],
      [2],
    ])
    expect(named).toEqual(direct)
    expect(named).not.toEqual(trajectory(rmsprop({ learningRate: 0.01 }), [[1], [2]]))
  })

  it.each([
    [
      'lbfgs',
      { learningRate: 1 },
      /unknown optimizer "lbfgs"; baselines are sgd, momentum, nag, rmsprop, adam/,
    ],
    ['toString', { learningRate: 1 }, /unknown optimizer/],
    ['sgd', {}, /sgd needs learningRate/],
    ['sgd', { learningRate: 0 }, /learningRate must be a finite number in \(0, 100\], got 0/],
    ['sgd', { learningRate: 1e38 }, /learningRate must be a finite number in \(0, 100\], got 1e\+38/],
    ['sgd', { learningRate: '0.1' }, /learningRate must be a finite number/],
    ['sgd', { learningRate: Number.NaN }, /learningRate must be a finite number/],
    [
      'sgd',
      { learningRate: 0.1, momentum: 0.9 },
      /sgd has no hyper-parameter momentum; it accepts learningRate/,
    ],
    ['momentum', { learningRate: 0.1 }, /momentum needs momentum/],
    ['nag', { learningRate: 0.1, momentum: 1 }, /momentum must be a finite number in \[0, 1\)/],
    ['adam', { learningRate: 0.1, beta2: -0.1 }, /beta2 must be/],
    ['rmsprop', { learningRate: 0.1, eps: 0 }, /eps must be a finite number in \(0, 1\]/],
    ['adam', { learningRate: 0.1, eps: 2 }, /eps must be a finite number in \(0, 1\]/],
  ])('refuses %s with %o', (name, hp, message) => {
    expect(() => baselineOptimizer(name, hp as Record<string, unknown>)).toThrow(OptimizerConfigError)
    expect(() => baselineOptimizer(name, hp as Record<string, unknown>)).toThrow(message)
  })
})
