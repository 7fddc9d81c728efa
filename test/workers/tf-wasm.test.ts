import * as tf from '@tensorflow/tfjs-core'
import { describe, expect, it } from 'vitest'
import { initTf } from '../../src/runtime/tf-workers'

describe('tfjs inside workerd', () => {
  it('runs on the wasm backend with correct results', async () => {
    await initTf()
    expect(tf.getBackend()).toBe('wasm')
    const y = tf.sigmoid(tf.matMul(tf.tensor2d([1, 0, 1, 1], [2, 2]), tf.tensor2d([1, 0, 0, 1], [2, 2])))
    const data = Array.from(await y.data())
    expect(data[0]).toBeCloseTo(0.7310586, 6)
    expect(data[2]).toBeCloseTo(0.7310586, 6)
    expect(data[3]).toBeCloseTo(0.7310586, 6)
  })

  it('memoises initialisation', async () => {
    expect(initTf()).toBe(initTf())
  })
})
