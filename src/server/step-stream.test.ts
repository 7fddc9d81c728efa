import { beforeAll, describe, expect, it } from 'vitest'
import { expectProblem } from '../../test/support/problem'
import { binaryBody, binaryType, f32, useTestServer } from '../../test/support/server'
import { defineOptimizer } from '../core'
import { decodeSafetensors, openBody } from './body'
import { chunkCoordinates } from './compute'
import type { BaselineTarget } from './registry/resolve'
import { streamStepAnswer } from './step-stream'

// An optimizer whose update overflows exactly where the gradient is 2: with S = 127 a step is cut
// into calls of chunkCoordinates(127) coordinates, and only the last call overflows.
const stateSize = 127
const overflowing: BaselineTarget = {
  kind: 'baseline',
  name: 'sgd',
  hyperparameters: {},
  digest: `sha256:${'e'.repeat(64)}`,
  optimizer: defineOptimizer(stateSize, (grads) => ({
    updates: grads.map((g) => (g === 2 ? Number.POSITIVE_INFINITY : -g)),
    state: new Float32Array(grads.length * stateSize),
  })),
  stateSize,
  label: 'overflowing',
  deprecatedAt: null,
}

describe('the streamed binary answer', () => {
  const s = useTestServer()
  const n = 2 * chunkCoordinates(stateSize)
  beforeAll(() => {
    // A route of its own around streamStepAnswer, registered before the app serves anything.
    s.app.post('/test/overflowing-step', async (c) => {
      const body = await openBody(c, 64 * 1024 * 1024)
      await body.ready(body.bytes.length)
      const grads = decodeSafetensors(body.bytes, 1).tensors.get('grads')!.data as Float32Array
      return streamStepAnswer(c, overflowing, grads, undefined, body, 'F32')
    })
  })

  it('refuses a step whose last call overflows with a problem, never a 200 cut short', async () => {
    const grads = new Float32Array(n).fill(1)
    grads[n - 1] = 2
    const res = await s.app.request('/test/overflowing-step', {
      method: 'POST',
      body: binaryBody({ grads: f32([n], grads) }),
      headers: { ...s.clientAuth, ...binaryType },
    })
    const problem = await expectProblem(res, 422, 'non_finite_result')
    expect(problem.index).toBe(n - 1)
  })
})
