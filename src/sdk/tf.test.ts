import '@tensorflow/tfjs-backend-cpu'
import * as tf from '@tensorflow/tfjs-core'
import '@tensorflow/tfjs-core/dist/register_all_gradients'
import { beforeAll, describe, expect, it } from 'vitest'
import { fakeSetup } from '../../test/sdk/setup'
import { SdkError } from './errors'
import { TfOptimizer } from './tf'

beforeAll(async () => {
  await tf.setBackend('cpu')
})

describe('TfOptimizer', () => {
  it('flattens variables in a fixed order, steps once, and assigns θ + update', async () => {
    const { server, client } = fakeSetup()
    const opt = await TfOptimizer.create(client, { optimizer: 'toy@1.0.0', mode: 'stateless' })
    const w = tf.variable(tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]), true, 'tf-test-w')
    const b = tf.variable(tf.tensor1d([10, 20]), true, 'tf-test-b')
    const gw = tf.fill([2, 3], 1)
    const gb = tf.tensor1d([2, 4])
    await opt.applyGradients([
      { variable: w, grad: gw },
      { variable: b, grad: gb },
    ])
    expect(opt.layout!.map((e) => [e.name, e.offset, e.size])).toEqual([
      ['tf-test-w', 0, 6],
      ['tf-test-b', 6, 2],
    ])
    const sent = server.requests.find((r) => r.path === '/v1/step')!.tensors!.get('grads')!.data
    expect(Array.from(sent)).toEqual([1, 1, 1, 1, 1, 1, 2, 4])
    expect(Array.from(await w.data())).toEqual(
      [1, 2, 3, 4, 5, 6].map((x) => Math.fround(x + Math.fround(-0.1))),
    )
    expect(Array.from(await b.data())).toEqual([
      Math.fround(10 - Math.fround(0.2)),
      Math.fround(20 - Math.fround(0.4)),
    ])

    // A map in another key order still lands on the same coordinates.
    await opt.applyGradients({ 'tf-test-b': gb, 'tf-test-w': gw })
    const second = server.requests
      .filter((r) => r.path === '/v1/step')
      .at(-1)!
      .tensors!.get('grads')!.data
    expect(Array.from(second)).toEqual([1, 1, 1, 1, 1, 1, 2, 4])
    expect(opt.stepCount).toBe(2)

    await expect(opt.applyGradients([{ variable: w, grad: gw }])).rejects.toBeInstanceOf(SdkError)
    tf.dispose([w, b, gw, gb])
  })

  it('trains with tf.variableGrads and resumes from its checkpoint with the same layout', async () => {
    const { client } = fakeSetup()
    const opt = await TfOptimizer.create(client, { optimizer: 'toy@1.0.0', mode: 'session' })
    const x = tf.variable(tf.tensor1d([3, -2]), true, 'tf-test-x')
    const loss = () => tf.sum(tf.square(x)) as tf.Scalar
    const { grads } = tf.variableGrads(loss, [x])
    await opt.applyGradients(grads)
    tf.dispose(grads)
    const resumed = await TfOptimizer.create(client, { checkpoint: opt.save() })
    expect(resumed.layout).toEqual(opt.layout)
    expect(resumed.stepCount).toBe(1)
    const again = tf.variableGrads(loss, [x])
    await resumed.applyGradients(again.grads)
    tf.dispose(again.grads)
    expect(resumed.stepCount).toBe(2)
    x.dispose()
  })
})
