import { expect } from 'vitest'
import type { CallPool, Optimizer } from '../../src/core'

/** The float32 bits of each number: equality that tells −0 from +0 and compares NaNs by payload. */
export const bits = (a: ArrayLike<number>) => Array.from(new Uint32Array(Float32Array.from(a).buffer))

/**
 * Steps `state` once whole, then in one call per [begin, end) of `splits`, then once in place
 * (updateInto into the state itself), and expects the same bits every way: updates and new state.
 * An optimizer that pools over its call (Optimizer.pool: a `gain`) hands each split the pool of the
 * whole call, added up part by part over `splits` when they tile the call, else in one pass.
 */
export function expectSameBitsForAnySplit(
  opt: Optimizer,
  grads: Float32Array,
  state: Float32Array,
  splits: [number, number][],
): void {
  const s = opt.stateSize
  const whole = opt.update(grads, state)
  let pool: CallPool | undefined
  if (opt.pool !== undefined) {
    const tiles = splits.every(([begin], k) => begin === (k === 0 ? 0 : splits[k - 1][1]))
    if (tiles && splits.at(-1)?.[1] === grads.length) {
      pool = { sum: 0, count: 0 }
      for (const [begin, end] of splits)
        opt.pool(grads.subarray(begin, end), state.subarray(begin * s, end * s), pool)
      const once = opt.pool(grads, state)
      expect(pool, 'the pool added up part by part').toEqual(once)
    } else pool = opt.pool(grads, state)
  }
  for (const [begin, end] of splits) {
    const part = opt.update(grads.subarray(begin, end), state.subarray(begin * s, end * s), pool)
    expect(bits(part.updates), `updates [${begin}, ${end})`).toEqual(bits(whole.updates.subarray(begin, end)))
    expect(bits(part.state), `state [${begin}, ${end})`).toEqual(
      bits(whole.state.subarray(begin * s, end * s)),
    )
  }
  const inPlace = state.slice()
  const updates = new Float32Array(grads.length)
  opt.updateInto(grads, inPlace, { updates, state: inPlace })
  expect(bits(updates), 'updates in place').toEqual(bits(whole.updates))
  expect(bits(inPlace), 'state in place').toEqual(bits(whole.state))
}
