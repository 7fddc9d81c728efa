import { env, exports } from 'cloudflare:workers'
import * as tf from '@tensorflow/tfjs-core'
import { describe, expect, it } from 'vitest'
import { initTf } from '../../src/runtime/tf-workers'

describe('the Worker inside workerd', () => {
  it('answers /healthz on the wasm backend, learned optimizers on the fused kernel', async () => {
    const response = await exports.default.fetch(new Request('http://l2o.test/healthz'))
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({
      status: 'ok',
      runtime: 'workers',
      backend: 'wasm',
      kernel: 'fused-wasm',
    })
  })

  it('has the migrated registry tables in D1', async () => {
    const { results } = await env.DB.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all()
    expect(results.map((r) => r.name)).toEqual(expect.arrayContaining(['versions', 'aliases', 'sessions']))
  })
})

describe('tfjs inside workerd', () => {
  it('computes on the wasm backend (SIMD binary imported as a module)', async () => {
    expect(await initTf()).toBe('wasm')
    expect(tf.getBackend()).toBe('wasm')
    const y = tf.sigmoid(tf.matMul(tf.tensor2d([1, 0, 1, 1], [2, 2]), tf.tensor2d([1, 0, 0, 1], [2, 2])))
    expect(Array.from(await y.data())).toEqual([
      expect.closeTo(0.7310586, 6),
      expect.closeTo(0.5, 6),
      expect.closeTo(0.7310586, 6),
      expect.closeTo(0.7310586, 6),
    ])
  })

  it('initialises once per isolate', () => {
    expect(initTf()).toBe(initTf())
  })
})
