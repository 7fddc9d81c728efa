import { describe, expect, it } from 'vitest'
import { firstMismatch } from '../../test/support/close'
import {
  lstmArchitecture,
  randomGradients,
  randomLstmWeights,
  randomUniform,
} from '../../test/support/random'
import { lstmPlainOptimizer } from './lstm-plain'
import { lstmReferenceStep } from './lstm-reference'

// Same agreement metric as the tfjs implementation (see lstm.test.ts): 1e-5 relative, floors 0.1
// for h and c and 0.1·|outputScale| for the updates.
describe('lstmPlainOptimizer', () => {
  it.each([
    [1, 1, 'log-sign'],
    [1, 4, 'none'],
    [2, 20, 'log-sign'],
    [3, 8, 'none'],
  ] as const)(
    'matches the float64 oracle with L=%i, H=%i, %s, over 3 chained steps',
    (layers, hidden, pre) => {
      const architecture = lstmArchitecture(layers, hidden, pre)
      const weights = randomLstmWeights(architecture, layers + hidden)
      const opt = lstmPlainOptimizer(weights)
      const n = 2000
      let state = randomUniform(n * opt.stateSize, 1, 0.5)
      let oracle: ArrayLike<number> = state
      for (let step = 0; step < 3; step++) {
        const grads = randomGradients(n, step)
        grads[0] = 0
        const got = opt.update(grads, state)
        const want = lstmReferenceStep(weights, grads, oracle)
        expect(firstMismatch(got.updates, want.updates, 1e-5, 0.01)).toBe(-1)
        expect(firstMismatch(got.state, want.state, 1e-5, 0.1)).toBe(-1)
        state = got.state
        oracle = want.state
      }
    },
  )
})
