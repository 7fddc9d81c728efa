import * as tf from '@tensorflow/tfjs-core'
import { describe, expect, it } from 'vitest'
import { initPreferredTf, initTf } from './tf-node'

describe('initTf', () => {
  it('selects the backend asked for, and switches back and forth', async () => {
    await initTf('cpu')
    expect(tf.getBackend()).toBe('cpu')
    await initTf('wasm')
    expect(tf.getBackend()).toBe('wasm')
    await initTf('cpu')
    expect(tf.getBackend()).toBe('cpu')
  })

  it('memoises: a second call reuses the initialised backend', async () => {
    await initTf('wasm')
    const backend = tf.backend()
    await initTf('wasm')
    expect(tf.backend()).toBe(backend)
  })

  it('runs real math on wasm', async () => {
    await initTf('wasm')
    const y = tf.tidy(() => tf.sigmoid(tf.tensor1d([0, 100])))
    expect(Array.from(y.dataSync())).toEqual([0.5, 1])
    y.dispose()
  })

  it('prefers wasm', async () => {
    await initTf('cpu')
    expect(await initPreferredTf()).toBe('wasm')
    expect(tf.getBackend()).toBe('wasm')
  })
})
