import * as tf from '@tensorflow/tfjs-core'
import '@tensorflow/tfjs-backend-cpu'
import { createRequire } from 'node:module'
import { beforeAll, describe, expect, it } from 'vitest'
import { digitsPerClass, digitsSubset } from './build'
import { parseDigits, tasks } from './src/tasks'

beforeAll(async () => {
  await tf.setBackend('cpu')
})

describe('the bundled digits', () => {
  it('hold the first images of each class of the mnist package, interleaved, as the playground reads them', () => {
    const digits = parseDigits(digitsSubset())
    expect(digits.count).toBe(10 * digitsPerClass)
    expect(Array.from(digits.labels.subarray(0, 12))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1])
    const three = createRequire(import.meta.url)('mnist/src/digits/3.json') as { data: number[] }
    const ours = digits.images.subarray(3 * 784, 4 * 784)
    for (let p = 0; p < 784; p++)
      expect(Math.abs(ours[p] - three.data[p])).toBeLessThanOrEqual(0.5 / 255 + 1e-6)
  })
})

describe('the 2-D tasks', () => {
  for (const task of tasks.filter((t) => t.surface !== undefined)) {
    it(`${task.id}: the tf.js loss is the function whose contours are drawn, and its minimum is one`, async () => {
      const surface = task.surface!
      const [xy] = task.init(`test-${task.id}`)
      for (const [x, y] of [[-1.2, 1], [0.3, -0.7], [2, 2], surface.minimum]) {
        xy.assign(tf.tensor1d([x, y]))
        const loss = (await task.loss([xy], 0).data())[0]
        expect(loss).toBeCloseTo(surface.f(x, y), 3)
      }
      expect(surface.f(...surface.minimum)).toBeCloseTo(0, 12)
      xy.dispose()
    })
  }
})
