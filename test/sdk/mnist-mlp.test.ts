import '@tensorflow/tfjs-backend-cpu'
import * as tf from '@tensorflow/tfjs-core'
import '@tensorflow/tfjs-core/dist/register_all_gradients'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  batchTensors,
  createMlp,
  type MnistData,
  mlpLoss,
  mlpLossAndGrads,
  paramList,
} from '../../examples/mnist-mlp'

beforeAll(async () => {
  await tf.setBackend('cpu')
})

describe('the MNIST MLP of the examples', () => {
  it("computes the same loss and gradients as tfjs's autodiff", async () => {
    const count = 16
    const data: MnistData = {
      images: Float32Array.from({ length: count * 784 }, (_, i) => ((i * 7919) % 256) / 255),
      labels: Uint8Array.from({ length: count }, (_, i) => i % 10),
      count,
    }
    const p = createMlp(3, 'grad-check')
    const { x, y } = batchTensors(
      data,
      Int32Array.from({ length: count }, (_, i) => i),
    )
    const manual = mlpLossAndGrads(p, x, y)
    const auto = tf.variableGrads(() => mlpLoss(p, x, y), paramList(p))
    expect((await manual.loss.data())[0]).toBeCloseTo((await auto.value.data())[0], 5)
    for (const v of paramList(p)) {
      const a = await manual.grads[v.name].data()
      const b = await auto.grads[v.name].data()
      expect(a.length).toBe(v.size)
      for (let i = 0; i < a.length; i++) expect(a[i]).toBeCloseTo(b[i], 6)
    }
    tf.dispose([x, y, manual.loss, auto.value, ...Object.values(manual.grads), ...Object.values(auto.grads)])
    tf.dispose(paramList(p))
  })
})
